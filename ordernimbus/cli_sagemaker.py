"""``ordernimbus pipeline definition|upsert|start|describe``: the pipelines on SageMaker.

``definition`` is offline (no AWS call, no credentials needed); ``upsert``, ``start`` and
``describe`` call SageMaker through boto3. The commands join the ``pipeline`` group of
:mod:`ordernimbus.cli` (merged in with ``pipeline_app.add_typer(sagemaker_app)``).
"""

from __future__ import annotations

import json
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console

from ordernimbus.errors import ConflictError, NotFoundError, OrderNimbusError
from ordernimbus.settings import Settings, get_settings

sagemaker_app = typer.Typer()
out = Console(width=None if sys.stdout.isatty() else 160)
err = Console(stderr=True, width=None if sys.stderr.isatty() else 160)


class Target(StrEnum):
    sagemaker = "sagemaker"
    local = "local"


class Which(StrEnum):
    build = "build"
    forecast = "forecast"


TargetOpt = Annotated[
    Target, typer.Option(help="sagemaker: compiled SDK definition; local: the runner's DAG")
]
WhichOpt = Annotated[Which, typer.Option("--pipeline", "-p", help="which pipeline")]
TenantOpt = Annotated[str | None, typer.Option("--tenant", "-t", help="tenant id (default of TenantId)")]
Region = Annotated[str | None, typer.Option(help="AWS region (default ORDERNIMBUS_AWS_REGION)")]
RoleArn = Annotated[
    str | None, typer.Option(help="execution role ARN (default ORDERNIMBUS_SAGEMAKER_ROLE_ARN)")
]
Bucket = Annotated[str | None, typer.Option(help="artifacts bucket (default ORDERNIMBUS_ARTIFACTS_BUCKET)")]
ImageUri = Annotated[
    str | None,
    typer.Option(
        help="step image with the requirements baked in (default: the PyTorch framework image of the region)"
    ),
]
Name = Annotated[str | None, typer.Option(help="SageMaker pipeline name (default ordernimbus-<pipeline>)")]
Spark = Annotated[
    bool | None,
    typer.Option(
        "--spark-features/--no-spark-features",
        help="features step as PySparkProcessor (default: by --spark-min-rows)",
    ),
]
SparkRows = Annotated[
    int, typer.Option(help="with --tenant: use Spark when the tenant's lake has this many rows")
]


def fail(exc: OrderNimbusError) -> NoReturn:
    from pipelines.sagemaker_client import SageMakerError

    err.print(f"[bold red]error:[/] {exc}", highlight=False)
    code = 3 if isinstance(exc, NotFoundError) else 4 if isinstance(exc, ConflictError) else 2
    raise typer.Exit(1 if isinstance(exc, SageMakerError) else code)


def _pipeline(which: Which, tenant: str | None) -> Any:
    from ordernimbus.tenancy import validate_tenant
    from pipelines.definition import PIPELINES
    from pipelines.sagemaker import with_defaults

    pdef = PIPELINES[which.value]()
    return with_defaults(pdef, TenantId=validate_tenant(tenant)) if tenant else pdef


def _spark(settings: Settings, tenant: str | None, spark: bool | None, min_rows: int) -> bool:
    """Explicit flag, else: is the tenant large (rows in its local lake >= ``min_rows``)?"""
    if spark is not None or not tenant:
        return bool(spark)
    import pyarrow.parquet as pq

    from features.lake import SalesLake

    lake = SalesLake(settings.lake_dir)
    return lake.exists(tenant) and pq.ParquetFile(lake.path(tenant)).metadata.num_rows >= min_rows


def _target(settings: Settings, placeholders: bool, spark: bool, **flags: Any) -> Any:
    """The compile/upsert target (role and bucket required), or the stack form with placeholders."""
    from pipelines.sagemaker_target import stack_target, target_from_settings

    extra = {k: v for k, v in flags.items() if v is not None and k not in ("role_arn", "bucket", "region")}
    if placeholders:
        return stack_target(flags.get("region") or settings.aws_region, spark_features=spark, **extra)
    return target_from_settings(settings, spark_features=spark, **{k: v for k, v in flags.items() if v})


def _control_target(settings: Settings, region: str | None) -> Any:
    """Starting and reading executions needs only the region (role and bucket live in the pipeline)."""
    from pipelines.sagemaker_target import SageMakerTarget

    return SageMakerTarget(
        region=region or settings.aws_region,
        role_arn=settings.sagemaker_role_arn or "",
        bucket=settings.artifacts_bucket or "",
    )


def _bodies(
    target: Target, which: list[Which], tenant: str | None, sm_target: Any, name: str | None
) -> dict[str, str]:
    from pipelines.local import runner_view

    bodies = {}
    for w in which:
        pdef = _pipeline(w, tenant)
        if target is Target.local:
            bodies[w.value] = json.dumps(runner_view(pdef), indent=2) + "\n"
        else:
            from pipelines.sagemaker import definition

            bodies[w.value] = definition(pdef, sm_target, name=name)
    return bodies


@sagemaker_app.command("definition")
def pipeline_definition(  # noqa: PLR0917 - one parameter per CLI option
    target: TargetOpt = Target.sagemaker,
    which: WhichOpt = Which.build,
    tenant: TenantOpt = None,
    out_file: Annotated[
        Path | None, typer.Option("--out", help="write the JSON here instead of stdout")
    ] = None,
    out_dir: Annotated[
        Path | None,
        typer.Option(
            help="write build.json and forecast.json here (both "
            "pipelines; `make synth` reads build/pipelines)"
        ),
    ] = None,
    placeholders: Annotated[
        bool, typer.Option(help="${OrderNimbus:...} role/bucket/key for the CDK stacks")
    ] = False,
    region: Region = None,
    role_arn: RoleArn = None,
    bucket: Bucket = None,
    image_uri: ImageUri = None,
    name: Name = None,
    spark: Spark = None,
    spark_min_rows: SparkRows = 50_000_000,
) -> None:
    """Print (or write) a pipeline definition as JSON; offline, no AWS credentials needed."""
    from pipelines.sagemaker_code import artifacts, current_bundle
    from pipelines.sagemaker_target import apply_placeholders

    s = get_settings()
    try:
        sm_target = None
        if target is Target.sagemaker:
            unconfigured = not (role_arn or s.sagemaker_role_arn) and not (bucket or s.artifacts_bucket)
            if unconfigured and not placeholders:
                err.print("no role ARN or bucket configured (ORDERNIMBUS_SAGEMAKER_ROLE_ARN, "
                          "ORDERNIMBUS_ARTIFACTS_BUCKET): printing the CDK form with ${OrderNimbus:...} "
                          "placeholders", highlight=False, markup=False)  # fmt: skip
            sm_target = _target(
                s,
                placeholders or unconfigured,
                _spark(s, tenant, spark, spark_min_rows),
                region=region,
                role_arn=role_arn,
                bucket=bucket,
                image_uri=image_uri,
            )
            if sm_target.placeholders and not region and not image_uri:
                note = f"step images are resolved for {sm_target.region} (ORDERNIMBUS_AWS_REGION)"
                err.print(f"{note}: pass --region <the stack's region>; jobs pull images in their region",
                          highlight=False)  # fmt: skip
        which_list = [Which.build, Which.forecast] if out_dir else [which]
        if sm_target is not None:
            err.print(
                f"compiling {', '.join(w.value for w in which_list)} for SageMaker ({sm_target.region}) ..."
            )
        bodies = _bodies(target, which_list, tenant, sm_target, None if out_dir else name)
    except (OrderNimbusError, ValueError) as exc:
        fail(exc if isinstance(exc, OrderNimbusError) else OrderNimbusError(str(exc)))
    if out_dir:
        out_dir.mkdir(parents=True, exist_ok=True)
        for key, body in bodies.items():
            (out_dir / f"{key}.json").write_text(body)
        if sm_target is not None:
            bundle = current_bundle()
            folder = out_dir / bundle.key("code").removeprefix("code/").rsplit("/", 1)[0]
            folder.mkdir(parents=True, exist_ok=True)
            for file, data in artifacts(bundle).items():
                (folder / file).write_bytes(data)
            where = apply_placeholders(bundle.uri(sm_target.bucket, sm_target.prefix).rsplit("/", 1)[0])
            err.print(f"code objects (upload them to {where}/): {folder}")
        err.print(f"wrote {', '.join(str(out_dir / f'{k}.json') for k in bodies)}")
    elif out_file:
        out_file.parent.mkdir(parents=True, exist_ok=True)
        out_file.write_text(bodies[which.value])
        err.print(f"wrote {out_file}")
    else:
        sys.stdout.write(bodies[which.value])


@sagemaker_app.command("upsert")
def pipeline_upsert(  # noqa: PLR0917 - one parameter per CLI option
    target: TargetOpt = Target.sagemaker,
    which: Annotated[
        list[Which] | None, typer.Option("--pipeline", "-p", help="repeat for both (default)")
    ] = None,
    region: Region = None,
    role_arn: RoleArn = None,
    bucket: Bucket = None,
    image_uri: ImageUri = None,
    name: Name = None,
    spark: Spark = None,
) -> None:
    """Create or update the SageMaker pipeline(s) from the compiled definition; uploads the code archive."""
    from pipelines.sagemaker import definition
    from pipelines.sagemaker_client import SageMakerPipelines
    from pipelines.sagemaker_code import current_bundle

    selected = which or [Which.build, Which.forecast]
    if name and len(selected) > 1:
        fail(OrderNimbusError("--name names one pipeline: pass a single --pipeline with it"))
    try:
        _require_sagemaker(target, "upsert")
        sm_target = _target(
            get_settings(),
            False,
            bool(spark),
            region=region,
            role_arn=role_arn,
            bucket=bucket,
            image_uri=image_uri,
        )
        client = SageMakerPipelines(sm_target)
        for w in selected:
            pdef = _pipeline(w, None)
            pipeline_name = name or pdef.name
            err.print(f"compiling {w.value} ...")
            body = definition(pdef, sm_target, name=pipeline_name)
            result = client.upsert(pipeline_name, body, current_bundle(), pdef.description)
            verb = "created" if result.created else "updated"
            code = "uploaded" if result.code_uploaded else "unchanged"
            out.print(f"{verb} {result.pipeline_arn} (code {code}: {result.code_uri})", highlight=False)
    except OrderNimbusError as exc:
        fail(exc)


@sagemaker_app.command("start")
def pipeline_start(  # noqa: PLR0917 - one parameter per CLI option
    tenant: Annotated[str, typer.Option("--tenant", "-t", help="tenant id")],
    target: TargetOpt = Target.sagemaker,
    which: WhichOpt = Which.build,
    param: Annotated[
        list[str] | None, typer.Option("--param", help="pipeline parameter Name=Value (repeat)")
    ] = None,
    region: Region = None,
    name: Name = None,
    wait: Annotated[bool, typer.Option(help="poll until the execution ends")] = False,
    poll_seconds: Annotated[float, typer.Option(help="seconds between polls with --wait")] = 30.0,
) -> None:
    """Start an execution of a SageMaker pipeline for a tenant; prints its ARN."""
    from pipelines.sagemaker_client import SageMakerPipelines

    try:
        _require_sagemaker(target, "start")
        params = _params(param or [])
        client = SageMakerPipelines(_control_target(get_settings(), region))
        pdef = _pipeline(which, None)
        execution = client.start(name or pdef.name, pdef, tenant, params)
        out.print(execution.arn, highlight=False)
        if wait:
            execution = client.wait(
                execution.arn,
                tenant,
                poll_seconds,
                on_poll=lambda e: err.print(f"  {e.status}", highlight=False),
            )
    except OrderNimbusError as exc:
        fail(exc)
    _print_execution(execution)
    if execution.status in ("Failed", "Stopped"):
        raise typer.Exit(1)


@sagemaker_app.command("describe")
def pipeline_describe(
    execution_arn: Annotated[str, typer.Argument(help="execution ARN printed by `pipeline start`")],
    tenant: Annotated[str, typer.Option("--tenant", "-t", help="tenant id")],
    region: Region = None,
) -> None:
    """Status, parameters and steps of a SageMaker execution of the tenant."""
    from pipelines.sagemaker_client import SageMakerPipelines

    try:
        execution = SageMakerPipelines(_control_target(get_settings(), region)).execution(
            execution_arn, tenant
        )
    except OrderNimbusError as exc:
        fail(exc)
    _print_execution(execution)


def _require_sagemaker(target: Target, verb: str) -> None:
    if target is not Target.sagemaker:
        raise OrderNimbusError(
            f"`pipeline {verb}` is for --target sagemaker; locally use `ordernimbus pipeline run`"
        )


def _params(items: list[str]) -> dict[str, str]:
    params = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise OrderNimbusError(f"--param {item!r}: expected Name=Value")
        params[key] = value
    return params


def _print_execution(execution: Any) -> None:
    from rich.table import Table

    out.print(
        f"{execution.arn}: [bold]{execution.status}[/]"
        + (f" ({execution.failure_reason})" if execution.failure_reason else ""),
        highlight=False,
    )
    table = Table("parameter", "value")
    for key, value in sorted(execution.parameters.items()):
        table.add_row(key, value)
    out.print(table)
    if execution.steps is None:
        out.print("steps: not available from this endpoint (ListPipelineExecutionSteps)")
        return
    steps = Table("step", "status", "started", "cache hit")
    for step in execution.steps:
        cached = (step.get("CacheHitResult") or {}).get("SourcePipelineExecutionArn", "")
        steps.add_row(
            step.get("StepName", ""), step.get("StepStatus", ""), str(step.get("StartTime", "")), cached
        )
    out.print(steps)
