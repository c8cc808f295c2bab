"""The CDK app: every OrderNimbus stack for one environment, checked by cdk-nag.

Context keys (``cdk -c key=value``, ``CDK_CONTEXT_JSON`` or :func:`build_app`'s ``context``):

- ``env``: ``dev`` (default), ``staging`` or ``prod`` (see :mod:`infra.config`);
- ``pipelineDefinitionsDir``: compiled ``build.json`` / ``forecast.json`` (default ``build/pipelines``);
- ``lambdaAssetDir``: the API's Lambda package directory (default ``build/lambda``).

The drift-check function is a container image built from this repository
(:mod:`infra.monitor_image`); synthesis stages its build context but runs no Docker.

Relative paths are resolved against the repository root, so the result does not depend on the
directory the command runs in. Synthesis needs no AWS credentials and makes no lookups.
Run as ``python infra/app.py`` (writes ``cdk.out``) or through :mod:`infra.synth`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aws_cdk import App, Stack, Tags

from infra.config import EnvConfig, get_config
from infra.errors import InfraConfigError
from infra.monitor_image import monitor_image
from infra.nag import enable_checks
from infra.pipeline_definitions import load_definitions
from infra.stacks.api import ApiStack
from infra.stacks.data import DataStack
from infra.stacks.events import EventsStack
from infra.stacks.ml import MlStack
from infra.stacks.observability import ObservabilityStack
from infra.stacks.storage import StorageStack

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_ENV = "dev"
DEFAULT_PIPELINE_DIR = "build/pipelines"
DEFAULT_LAMBDA_DIR = "build/lambda"
# CDK feature flags a new `cdk init` would set and that change what we deploy (there is no cdk.json).
FEATURE_FLAGS: dict[str, Any] = {
    "@aws-cdk/aws-s3:serverAccessLogsUseBucketPolicy": True,  # bucket policy, not the legacy ACL
    "@aws-cdk/aws-s3:createDefaultLoggingPolicy": True,
    "@aws-cdk/core:enablePartitionLiterals": True,
    "@aws-cdk/aws-secretsmanager:useAttachedSecretResourcePolicyForSecretTargetAttachments": True,
    "@aws-cdk/aws-iam:standardizedServicePrincipals": True,
}
# CDK marks these taggable but CloudFormation rejects Tags on them (cfn-lint F3002).
UNTAGGABLE = ["AWS::RDS::DBProxyTargetGroup"]
# Handler modules the API asset must contain: checked here, not discovered at the first invocation.
# (The monitor is not in it: serving/ imports no pandas, and the monitor is an image of its own.)
ASSET_MODULES = ("serving/lambda_handler.py",)


@dataclass(frozen=True)
class OrderNimbusApp:
    app: App
    config: EnvConfig
    stacks: dict[str, Stack]  # concern ("storage", "data", ...) -> stack


def build_app(context: dict[str, Any] | None = None, outdir: str | None = None) -> OrderNimbusApp:
    """Build (not synthesize) the app; ``app.synth()`` runs the nag checks and writes templates."""
    app = App(context={**FEATURE_FLAGS, **(context or {})}, outdir=outdir)
    config = get_config(str(app.node.try_get_context("env") or DEFAULT_ENV))
    definitions = load_definitions(
        _context_dir(
            app,
            "pipelineDefinitionsDir",
            DEFAULT_PIPELINE_DIR,
            "compile them with `ordernimbus pipeline definition --target sagemaker`",
        )
    )
    asset_dir = _context_dir(app, "lambdaAssetDir", DEFAULT_LAMBDA_DIR, "build it with `make lambda-package`")
    missing = [module for module in ASSET_MODULES if not (asset_dir / module).is_file()]
    if missing:
        raise InfraConfigError(
            f"Lambda asset {asset_dir} (context key 'lambdaAssetDir') lacks {missing}; build the "
            "package first (make lambda-package)"
        )
    image = monitor_image(REPO_ROOT)

    def name(concern: str) -> str:
        return f"{config.prefix}-{concern}"

    protect = {"termination_protection": config.deletion_protection}
    storage = StorageStack(app, name("storage"), config=config, **protect)
    data = DataStack(app, name("data"), config=config, **protect)
    ml = MlStack(
        app,
        name("ml"),
        config=config,
        key=storage.key,
        build_definition=definitions["build"],
        forecast_definition=definitions["forecast"],
        **protect,
    )
    api = ApiStack(
        app, name("api"), config=config, data=data, key=storage.key, asset_dir=asset_dir, **protect
    )
    events = EventsStack(
        app, name("events"), config=config, data=data, key=storage.key, monitor_image=image, **protect
    )
    events.add_stack_dependency(ml, "rules start pipelines that must exist first")
    observability = ObservabilityStack(
        app, name("observability"), config=config, http_api=api.http_api, monitor=events.monitor, **protect
    )
    stacks: dict[str, Stack] = {
        "storage": storage,
        "data": data,
        "ml": ml,
        "api": api,
        "events": events,
        "observability": observability,
    }
    for key, value in (("project", "ordernimbus"), ("environment", config.name)):
        Tags.of(app).add(key, value, exclude_resource_types=UNTAGGABLE)
    enable_checks(app)
    return OrderNimbusApp(app=app, config=config, stacks=stacks)


def _context_dir(app: App, key: str, default: str, hint: str) -> Path:
    value = Path(str(app.node.try_get_context(key) or default)).expanduser()
    path = value if value.is_absolute() else REPO_ROOT / value
    if not path.is_dir():
        raise InfraConfigError(f"context key {key!r}: directory {path} does not exist; {hint}")
    return path


def main() -> None:
    """Entry point of ``python infra/app.py`` and of the ``cdk`` CLI (which sets ``CDK_OUTDIR``)."""
    outdir = None if os.environ.get("CDK_OUTDIR") else str(REPO_ROOT / "cdk.out")
    assembly = build_app(outdir=outdir).app.synth()
    print(f"cloud assembly written to {assembly.directory}")


if __name__ == "__main__":
    main()
