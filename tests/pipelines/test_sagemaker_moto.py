"""Upsert, start and describe against SageMaker (moto), and a registration the registry adapter can read.

moto stores pipelines and executions but runs no step (executions are instantly Succeeded), so what
is checked is the control plane: the definition deployed is byte for byte the compiled one, the code
archive is uploaded once to its content key, executions carry every parameter and belong to one
tenant. The last test performs the RegisterModel step's request by hand (its arguments resolved the
way SageMaker resolves them) and reads the version back through ``SageMakerRegistry``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from typer.testing import CliRunner

from ordernimbus.cli import app
from ordernimbus.errors import NotFoundError, OrderNimbusError
from ordernimbus.settings import Settings, get_settings
from pipelines.definition import build_pipeline, forecast_pipeline
from pipelines.sagemaker_client import SageMakerPipelines
from pipelines.sagemaker_code import build_bundle
from pipelines.sagemaker_container import write_document
from pipelines.sagemaker_target import SageMakerTarget

pytestmark = pytest.mark.aws
REGION = "eu-west-1"
BUCKET = "ordernimbus-test-artifacts"
ROLE = "arn:aws:iam::123456789012:role/ordernimbus-sagemaker"
TARGET = SageMakerTarget(region=REGION, role_arn=ROLE, bucket=BUCKET)
runner = CliRunner()


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    for name, value in {
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_EC2_METADATA_DISABLED": "true",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    import boto3
    from moto import mock_aws

    with mock_aws():
        boto3.client("s3", region_name=REGION).create_bucket(
            Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION}
        )
        yield boto3


def test_upsert_creates_then_updates_and_uploads_the_code_once(aws: Any, compiled_build: str) -> None:
    client = SageMakerPipelines(TARGET)
    bundle = build_bundle()
    first = client.upsert("ordernimbus-build", compiled_build, bundle, "build")
    assert first.created
    assert first.code_uploaded
    s3 = aws.client("s3", region_name=REGION)
    stored = s3.get_object(Bucket=BUCKET, Key=bundle.key("pipelines"))
    assert stored["Body"].read() == bundle.data
    assert stored["Metadata"]["sha256"] == bundle.sha256

    sm = aws.client("sagemaker", region_name=REGION)
    described = sm.describe_pipeline(PipelineName="ordernimbus-build")
    assert described["PipelineDefinition"] == compiled_build
    assert described["RoleArn"] == ROLE

    changed = compiled_build.replace('"DefaultValue": 200', '"DefaultValue": 300')
    second = client.upsert("ordernimbus-build", changed, bundle, "build")
    assert (second.created, second.code_uploaded) == (False, False)
    assert second.pipeline_arn == first.pipeline_arn
    assert sm.describe_pipeline(PipelineName="ordernimbus-build")["PipelineDefinition"] == changed


def test_start_passes_every_parameter_and_executions_belong_to_their_tenant(
    aws: Any, compiled_build: str
) -> None:
    client = SageMakerPipelines(TARGET)
    with pytest.raises(NotFoundError, match="run `pipeline upsert` first"):
        client.start("ordernimbus-build", build_pipeline(), "acme", {})
    client.upsert("ordernimbus-build", compiled_build, build_bundle())

    execution = client.start(
        "ordernimbus-build",
        build_pipeline(),
        "acme",
        {"InputDataUri": "s3://lake/sales/acme", "Horizon": "14"},
    )
    assert execution.tenant_id == "acme"
    assert execution.parameters["TenantId"] == "acme"
    assert execution.parameters["Horizon"] == "14"
    assert execution.parameters["ModelApprovalStatus"] == "PendingManualApproval"
    assert set(execution.parameters) == {p.name for p in build_pipeline().parameters}
    assert execution.status == "Succeeded"  # moto: no step runs
    assert execution.steps is None  # moto 5.2.5 does not implement ListPipelineExecutionSteps
    sm = aws.client("sagemaker", region_name=REGION)
    assert sm.describe_model_package_group(ModelPackageGroupName="ordernimbus-acme")["ModelPackageGroupName"]

    with pytest.raises(NotFoundError, match="for tenant 'other-co'"):
        client.execution(execution.arn, "other-co")
    with pytest.raises(OrderNimbusError, match=r"Horizon: expected 1\.\.365"):
        client.start("ordernimbus-build", build_pipeline(), "acme", {"Horizon": "0"})
    with pytest.raises(OrderNimbusError, match=r"\['InputDataUri'\] name the data"):
        client.start("ordernimbus-build", build_pipeline(), "acme", {})
    with pytest.raises(OrderNimbusError, match="unknown parameters"):
        client.start("ordernimbus-build", build_pipeline(), "acme", {"Horizont": "7"})


def test_cli_upsert_start_describe(aws: Any, monkeypatch: pytest.MonkeyPatch, home: Settings) -> None:
    monkeypatch.setenv("ORDERNIMBUS_SAGEMAKER_ROLE_ARN", ROLE)
    monkeypatch.setenv("ORDERNIMBUS_ARTIFACTS_BUCKET", BUCKET)
    monkeypatch.setenv("ORDERNIMBUS_AWS_REGION", REGION)
    get_settings.cache_clear()

    result = runner.invoke(app, ["pipeline", "upsert", "--pipeline", "forecast"])
    assert result.exit_code == 0, result.output
    assert "created arn:aws:sagemaker:eu-west-1:" in result.stdout
    assert "code uploaded" in result.stdout
    deployed = aws.client("sagemaker", region_name=REGION).describe_pipeline(
        PipelineName="ordernimbus-forecast"
    )
    assert [s["Name"] for s in json.loads(deployed["PipelineDefinition"])["Steps"]] == [
        "Prepare",
        "TransformModel",
        "Transform",
        "Publish",
    ]

    result = runner.invoke(
        app,
        [
            "pipeline",
            "start",
            "--pipeline",
            "forecast",
            "--tenant",
            "acme",
            "--param",
            "ModelDataUri=s3://bucket/acme/model.tar.gz",
            "--param",
            "ModelVersion=3",
            "--param",
            "InputDataUri=s3://lake/sales/acme",
        ],
    )
    assert result.exit_code == 0, result.output
    arn = result.stdout.splitlines()[0].strip()
    assert arn.startswith("arn:aws:sagemaker:eu-west-1:")
    assert "/execution/" in arn

    shown = runner.invoke(app, ["pipeline", "describe", arn, "--tenant", "acme"])
    assert shown.exit_code == 0, shown.output
    assert "Succeeded" in shown.stdout
    assert "s3://bucket/acme/model.tar.gz" in shown.stdout
    assert runner.invoke(app, ["pipeline", "describe", arn, "--tenant", "other-co"]).exit_code == 3
    bad = runner.invoke(
        app, ["pipeline", "start", "--pipeline", "forecast", "--tenant", "acme", "--param", "Horizon"]
    )
    assert bad.exit_code == 2
    assert "expected Name=Value" in bad.output
    local = runner.invoke(app, ["pipeline", "start", "--target", "local", "--tenant", "acme"])
    assert local.exit_code == 2
    assert "pipeline run" in local.output
    get_settings.cache_clear()


def _resolve(value: Any, env: dict[str, str]) -> Any:
    """Evaluate Get / Std:Join the way SageMaker does at execution time (enough for one step)."""
    if isinstance(value, dict):
        if "Get" in value:
            return env[value["Get"]]
        if "Std:Join" in value:
            join = value["Std:Join"]
            return join["On"].join(str(_resolve(v, env)) for v in join["Values"])
        return {k: _resolve(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve(v, env) for v in value]
    return value


def test_the_compiled_registration_is_readable_by_the_sagemaker_registry(
    aws: Any, compiled_build: str, tmp_path: Any
) -> None:
    from models.registry.sagemaker import SageMakerRegistry

    gate = next(s for s in json.loads(compiled_build)["Steps"] if s["Type"] == "Condition")
    register = gate["Arguments"]["IfSteps"][0]
    outputs = f"s3://{BUCKET}/pipelines/runs/acme/exec-1/Evaluate"
    env = {
        "Parameters.TenantId": "acme",
        "Parameters.ModelApprovalStatus": "PendingManualApproval",
        "Execution.PipelineExecutionId": "exec-1",
        "Steps.Evaluate.ProcessingOutputConfig.Outputs['evaluation'].S3Output.S3Uri": f"{outputs}/evaluation",
        "Steps.Evaluate.ProcessingOutputConfig.Outputs['model'].S3Output.S3Uri": f"{outputs}/model",
    }
    request = _resolve(register["Arguments"], env)

    # what the Evaluate job leaves in its outputs (the adapter's --document), uploaded as SageMaker would
    evaluation, model = tmp_path / "evaluation", tmp_path / "model"
    evaluation.mkdir()
    model.mkdir()
    metrics = {
        "ensemble": {"wape": 0.1053, "mase": 0.775},
        "gate": {"passed": True, "wape_ratio": 0.76, "best_baseline": "seasonal_naive"},
    }
    (evaluation / "evaluation.json").write_text(json.dumps(metrics))
    (model / "data_meta.json").write_text(
        json.dumps({"fingerprint": "f00d", "start": "2016-06-01", "end": "2017-12-31"})
    )
    write_document(evaluation, model)
    s3 = aws.client("s3", region_name=REGION)
    for name in ("evaluation.json", "document.json"):
        s3.put_object(
            Bucket=BUCKET,
            Key=f"pipelines/runs/acme/exec-1/Evaluate/evaluation/{name}",
            Body=(evaluation / name).read_bytes(),
        )

    sm = aws.client("sagemaker", region_name=REGION)
    sm.create_model_package_group(ModelPackageGroupName="ordernimbus-acme")
    request.pop("SkipModelValidation", None)
    sm.create_model_package(**request)

    (version,) = SageMakerRegistry(REGION, audit_bucket=BUCKET).list_versions("acme")
    assert version.status == "PendingManualApproval"
    assert version.gate_passed is True
    assert version.metrics == metrics
    assert version.lineage["data_fingerprint"] == "f00d"
    assert version.artifact_uri == f"{outputs}/model/model.tar.gz"
    assert version.created_by == "pipeline:exec-1"
    assert SageMakerRegistry(REGION, audit_bucket=BUCKET).list_versions("other-co") == []


def test_placeholder_targets_cannot_be_deployed() -> None:
    from pipelines.sagemaker_client import SageMakerError
    from pipelines.sagemaker_target import stack_target

    with pytest.raises(SageMakerError, match="for the CDK stacks"):
        SageMakerPipelines(stack_target(REGION), sagemaker=object(), s3=object())
    assert forecast_pipeline().name == "ordernimbus-forecast"
