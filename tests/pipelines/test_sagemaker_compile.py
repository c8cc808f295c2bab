"""The SageMaker compiler: same DAG as the local runner, fully offline, content-addressed code, CDK form."""

from __future__ import annotations

import io
import json
import shutil
import socket
import tarfile
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from ordernimbus.cli import app
from ordernimbus.settings import Settings
from pipelines.definition import PIPELINES, build_pipeline, forecast_pipeline
from pipelines.local import CODE_PACKAGES, runner_view
from pipelines.sagemaker import definition, with_defaults
from pipelines.sagemaker_code import ROOT, build_bundle
from pipelines.sagemaker_target import SageMakerTarget
from pipelines.sagemaker_view import compiled_view

runner = CliRunner()
TARGET = SageMakerTarget(region="eu-west-1", role_arn="arn:aws:iam::123456789012:role/sm", bucket="bkt")


@pytest.mark.parametrize("which", ["build", "forecast"])
def test_runner_and_compiler_read_the_same_dag(
    which: str, compiled_build: str, compiled_forecast: str
) -> None:
    pdef = with_defaults(PIPELINES[which](), TenantId="golden-co")
    local = runner_view(pdef)
    sm = compiled_view(compiled_build if which == "build" else compiled_forecast)

    assert sm["steps"] == sorted(s["name"] for s in local["steps"])
    assert sm["edges"] == local["edges"]
    assert sm["parameters"] == local["parameters"]
    assert sm["condition"] == local["condition"]
    for step in local["steps"]:
        if step["kind"] in ("processing", "training"):
            assert sm["inputs"][step["name"]] == step["inputs"], step["name"]
        if step["property_files"]:
            assert sm["property_files"][step["name"]] == step["property_files"]
    cacheable = {
        s["name"]
        for s in local["steps"]
        if s["cache"] and s["kind"] in ("processing", "training", "transform")
    }
    assert set(sm["cached"]) == cacheable
    assert set(sm["retried"]) == {s["name"] for s in local["steps"] if s["retryable"]}


def test_gate_registers_into_the_tenant_group_pending_and_never_auto_approves_a_failed_gate(
    compiled_build: str,
) -> None:
    gate = next(s for s in json.loads(compiled_build)["Steps"] if s["Type"] == "Condition")
    passed, failed = gate["Arguments"]["IfSteps"][0], gate["Arguments"]["ElseSteps"][0]
    for step in (passed, failed):
        args = step["Arguments"]
        assert step["Type"] == "RegisterModel"
        assert args["ModelPackageGroupName"] == {
            "Std:Join": {"On": "", "Values": ["ordernimbus-", {"Get": "Parameters.TenantId"}]}
        }
        assert (
            args["ModelMetrics"]["ModelQuality"]["Statistics"]["S3Uri"]["Std:Join"]["Values"][-1]
            == "evaluation.json"
        )
    assert passed["Arguments"]["ModelApprovalStatus"] == {"Get": "Parameters.ModelApprovalStatus"}
    assert failed["Arguments"]["ModelApprovalStatus"] == "PendingManualApproval"
    assert passed["Arguments"]["CustomerMetadataProperties"]["ordernimbus:gate_passed"] == "true"
    assert failed["Arguments"]["CustomerMetadataProperties"]["ordernimbus:gate_passed"] == "false"
    params = {p["Name"]: p for p in json.loads(compiled_build)["Parameters"]}
    assert params["ModelApprovalStatus"]["DefaultValue"] == "PendingManualApproval"
    assert params["TenantId"]["DefaultValue"] == "golden-co"


def test_compiling_makes_no_network_call(monkeypatch: pytest.MonkeyPatch) -> None:
    attempts: list[Any] = []

    def refuse(*args: Any, **kwargs: Any) -> Any:
        attempts.append(args)
        raise OSError("network disabled in this test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.delenv("AWS_ACCESS_KEY_ID", raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    body = definition(build_pipeline(), TARGET)
    assert json.loads(body)["Version"] == "2020-12-01"
    assert attempts == []


def test_code_archive_is_content_addressed(tmp_path: Path, compiled_build: str) -> None:
    for package in CODE_PACKAGES:
        shutil.copytree(ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    first, again = build_bundle(tmp_path), build_bundle(tmp_path)
    assert first.data == again.data  # reproducible bytes: same code, same key, SageMaker cache hit
    (tmp_path / "pipelines" / "steps" / "train.py").write_text("# changed\n", encoding="utf-8")
    changed = build_bundle(tmp_path)
    assert changed.sha256 != first.sha256

    with tarfile.open(fileobj=io.BytesIO(first.data)) as archive:
        names = archive.getnames()
    assert {
        "requirements.txt",
        "ordernimbus_serve.py",
        "pipelines/steps/train.py",
        "pipelines/sagemaker_container.py",
    } <= set(names)
    assert not [n for n in names if "__pycache__" in n or n.endswith(".parquet")]

    other = definition(
        with_defaults(build_pipeline(), TenantId="golden-co"),
        SageMakerTarget(
            region="eu-west-1",
            role_arn="arn:aws:iam::123456789012:role/ordernimbus-golden-sagemaker",
            bucket="ordernimbus-golden-artifacts",
        ),
        changed,
    )
    diff = [(a, b) for a, b in zip(compiled_build.splitlines(), other.splitlines(), strict=True) if a != b]
    assert diff
    assert all("/code/" in a and changed.sha256[:16] in b for a, b in diff)  # only the code URIs moved


def test_cli_local_target_prints_the_runner_view(home: Settings) -> None:
    result = runner.invoke(
        app, ["pipeline", "definition", "--target", "local", "--pipeline", "forecast", "--tenant", "acme"]
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == runner_view(with_defaults(forecast_pipeline(), TenantId="acme"))


def test_cli_prints_the_cdk_form_when_no_target_is_configured(home: Settings) -> None:
    result = runner.invoke(app, ["pipeline", "definition", "--pipeline", "forecast"])
    assert result.exit_code == 0, result.output
    assert "printing the CDK form" in result.stderr
    step = json.loads(result.stdout)["Steps"][0]
    assert step["Arguments"]["RoleArn"] == "${OrderNimbus:SageMakerRoleArn}"


def test_cli_refuses_a_partial_target_and_a_bad_tenant(home: Settings) -> None:
    result = runner.invoke(app, ["pipeline", "definition", "--target", "sagemaker", "--bucket", "b"])
    assert result.exit_code == 2
    assert "ORDERNIMBUS_SAGEMAKER_ROLE_ARN" in result.output
    assert "--placeholders" in result.output
    result = runner.invoke(app, ["pipeline", "definition", "--target", "local", "--tenant", "../x"])
    assert result.exit_code == 2
    assert "invalid tenant id" in result.output
    result = runner.invoke(app, ["pipeline", "definition", "--role-arn", "sagemaker-role", "--bucket", "b"])
    assert result.exit_code == 2
    assert "expected an IAM role ARN" in result.output


def test_cli_writes_the_cdk_form_that_infra_loads_and_renders(home: Settings, tmp_path: Path) -> None:
    from infra.pipeline_definitions import PLACEHOLDERS, load_definitions

    out = tmp_path / "pipelines"
    result = runner.invoke(
        app, ["pipeline", "definition", "--placeholders", "--region", "eu-west-1", "--out-dir", str(out)]
    )
    assert result.exit_code == 0, result.output
    definitions = load_definitions(out)
    assert definitions["build"].steps[:2] == ("Validate", "Features")
    assert "QualityGate" in definitions["build"].steps
    values = {name: f"<{name}>" for name in PLACEHOLDERS}
    build = json.loads(definitions["build"].render(values))
    first = build["Steps"][0]["Arguments"]
    assert first["RoleArn"] == "<SageMakerRoleArn>"
    assert first["ProcessingResources"]["ClusterConfig"]["VolumeKmsKeyId"] == "<KmsKeyArn>"
    assert first["ProcessingInputs"][-1]["S3Input"]["S3Uri"].startswith(
        "s3://<ArtifactsBucket>/pipelines/code/"
    )
    assert "ordernimbus-placeholder" not in definitions["build"].body + definitions["forecast"].body
    archives = list(out.glob("code/*/sourcedir.tar.gz"))
    assert len(archives) == 1
    assert archives[0].parent.name in first["ProcessingInputs"][-1]["S3Input"]["S3Uri"]
