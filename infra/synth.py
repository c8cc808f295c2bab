"""``python -m infra.synth --env dev --out cdk.out``: synthesize one environment offline.

Prints one line per stack and every cdk-nag finding, and exits non-zero when a finding is not
acknowledged, so ``make synth`` fails in CI exactly where a reviewer would object.
The same :func:`synthesize` is what the infra tests call.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from infra.app import DEFAULT_ENV, build_app
from infra.config import ENVIRONMENTS

VALIDATION_REPORT = "validation-report.json"


@dataclass(frozen=True)
class NagFinding:
    rule: str
    severity: str
    description: str
    paths: tuple[str, ...]

    def __str__(self) -> str:
        return f"[{self.severity}] {self.rule}: {self.description} at {', '.join(self.paths)}"


@dataclass(frozen=True)
class SynthResult:
    outdir: Path
    stack_names: dict[str, str]  # concern -> stack (and template file) name
    findings: tuple[NagFinding, ...]
    seconds: float

    @property
    def errors(self) -> tuple[NagFinding, ...]:
        return tuple(finding for finding in self.findings if finding.severity == "error")

    def template(self, concern: str) -> dict[str, Any]:
        path = self.outdir / f"{self.stack_names[concern]}.template.json"
        loaded: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        return loaded


def synthesize(
    env: str,
    outdir: Path,
    *,
    pipeline_definitions_dir: Path | None = None,
    lambda_asset_dir: Path | None = None,
) -> SynthResult:
    """Write the cloud assembly of ``env`` to ``outdir``; nag findings are returned, not raised."""
    context: dict[str, Any] = {"env": env}
    if pipeline_definitions_dir is not None:
        context["pipelineDefinitionsDir"] = str(pipeline_definitions_dir.resolve())
    if lambda_asset_dir is not None:
        context["lambdaAssetDir"] = str(lambda_asset_dir.resolve())
    started = time.perf_counter()
    built = build_app(context=context, outdir=str(outdir))
    report = outdir / VALIDATION_REPORT
    report.unlink(missing_ok=True)
    try:
        built.app.synth()
    except RuntimeError as exc:  # jsii surfaces the plugin's ValidationFailed as RuntimeError
        if "ValidationFailed" not in str(exc):
            raise
    return SynthResult(
        outdir=outdir,
        stack_names={concern: stack.stack_name for concern, stack in built.stacks.items()},
        findings=read_findings(report),
        seconds=time.perf_counter() - started,
    )


def read_findings(report: Path) -> tuple[NagFinding, ...]:
    """Every violation in CDK's policy-validation report (absent when there is none)."""
    if not report.is_file():
        return ()
    document = json.loads(report.read_text(encoding="utf-8"))
    return tuple(
        NagFinding(
            rule=violation["ruleName"],
            severity=violation.get("severity", "error"),
            description=violation.get("description", ""),
            paths=tuple(item["constructPath"] for item in violation.get("violatingConstructs", [])),
        )
        for plugin in document.get("pluginReports", [])
        for violation in plugin.get("violations", [])
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.synth", description=__doc__)
    parser.add_argument("--env", default=DEFAULT_ENV, choices=sorted(ENVIRONMENTS))
    parser.add_argument("--out", type=Path, default=Path("cdk.out"))
    parser.add_argument("--pipeline-definitions-dir", type=Path, default=None)
    parser.add_argument("--lambda-asset-dir", type=Path, default=None)
    args = parser.parse_args(argv)
    result = synthesize(
        args.env,
        args.out.resolve(),
        pipeline_definitions_dir=args.pipeline_definitions_dir,
        lambda_asset_dir=args.lambda_asset_dir,
    )
    for concern, name in result.stack_names.items():
        resources = len(result.template(concern).get("Resources", {}))
        print(f"{name:<36} {resources:>4} resources")
    for finding in result.findings:
        print(finding, file=sys.stderr)
    print(
        f"synthesized {args.env} to {result.outdir} in {result.seconds:.1f}s; "
        f"{len(result.errors)} unacknowledged cdk-nag errors"
    )
    return 1 if result.errors else 0


if __name__ == "__main__":
    sys.exit(main())
