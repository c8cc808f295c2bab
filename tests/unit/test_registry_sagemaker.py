"""What only the SageMaker backend has: how it lays state out in SageMaker and S3 (against moto)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from models.registry.base import RegistryError
from models.registry.factory import open_registry
from models.registry.local import LocalRegistry
from models.registry.sagemaker import (
    K_APPROVED_AT,
    K_GATE,
    K_METRICS,
    META_VALUE_MAX,
    SageMakerRegistry,
    compact_metrics,
)
from ordernimbus.settings import Settings

BUCKET = "ordernimbus-test-artifacts"
IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/ordernimbus-inference:1.0"
METRICS: dict[str, Any] = {
    "ensemble": {"wape": 0.212345678, "mase": 0.8, "smape": 0.3, "pinball": 1.7, "coverage": 0.79},
    "members": {"xgboost": {"wape": 0.22}},
    "gate": {"passed": True, "best_baseline": "seasonal_naive"},
    "windows": [{"cutoff": f"2017-0{m}-01", "ensemble": {"wape": 0.2}} for m in range(1, 10)],
}


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    for name, value in {
        "AWS_DEFAULT_REGION": "us-east-1",
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
        boto3.client("s3", region_name="us-east-1").create_bucket(Bucket=BUCKET)
        yield boto3


pytestmark = pytest.mark.aws


def _package(boto3: Any, version: int) -> dict[str, Any]:
    sm = boto3.client("sagemaker", region_name="us-east-1")
    summaries = sm.list_model_packages(ModelPackageGroupName="ordernimbus-acme")["ModelPackageSummaryList"]
    arn = next(s["ModelPackageArn"] for s in summaries if s["ModelPackageVersion"] == version)
    package: dict[str, Any] = sm.describe_model_package(ModelPackageName=arn)
    return package


def test_package_layout_in_sagemaker_and_s3(aws: Any) -> None:
    registry = SageMakerRegistry("us-east-1", audit_bucket=BUCKET, default_image=IMAGE)
    lineage = {"pipeline_run_id": "run-7", "feature_spec": {"lags": list(range(200))}}
    registry.register("acme", "s3://b/acme/model.tar.gz", METRICS, lineage, True)
    package = _package(aws, 1)
    container = package["InferenceSpecification"]["Containers"][0]
    assert container == {"Image": IMAGE, "ModelDataUrl": "s3://b/acme/model.tar.gz"}
    assert package["ModelApprovalStatus"] == "PendingManualApproval"
    props = package["CustomerMetadataProperties"]
    assert props[K_GATE] == "true"
    assert json.loads(props[K_METRICS])["wape"] == 0.2123
    assert props["lineage:pipeline_run_id"] == "run-7"
    assert "lineage:feature_spec" not in props  # longer than 256 characters: only in the S3 document
    assert all(isinstance(v, str) and len(v) <= META_VALUE_MAX for v in props.values())
    uri = package["ModelMetrics"]["ModelQuality"]["Statistics"]["S3Uri"]
    assert uri.startswith(f"s3://{BUCKET}/registry/ordernimbus-acme/versions/")
    s3 = aws.client("s3", region_name="us-east-1")
    document = json.loads(s3.get_object(Bucket=BUCKET, Key=uri.split("/", 3)[3])["Body"].read())
    assert document["metrics"] == METRICS
    assert registry.get("acme", 1).lineage == lineage


def test_metadata_survives_updates_and_reject_clears_approval_time(aws: Any) -> None:
    registry = SageMakerRegistry("us-east-1", audit_bucket=BUCKET, default_image=IMAGE)
    registry.register("acme", "s3://b/m.tar.gz", METRICS, {"pipeline_run_id": "run-7"}, True)
    registry.approve("acme", 1, "alice", "good enough")
    approved = _package(aws, 1)
    assert approved["ApprovalDescription"] == "good enough"
    assert approved["CustomerMetadataProperties"][K_GATE] == "true"  # moto would wipe it if not resent
    assert approved["CustomerMetadataProperties"]["lineage:pipeline_run_id"] == "run-7"
    assert K_APPROVED_AT in approved["CustomerMetadataProperties"]
    registry.reject("acme", 1, "bob", "drift")
    rejected = _package(aws, 1)
    assert rejected["ModelApprovalStatus"] == "Rejected"
    assert K_APPROVED_AT not in rejected["CustomerMetadataProperties"]
    assert (
        rejected["CustomerMetadataProperties"][K_METRICS] == approved["CustomerMetadataProperties"][K_METRICS]
    )


def test_audit_is_one_s3_object_per_entry(aws: Any) -> None:
    registry = SageMakerRegistry("us-east-1", audit_bucket=BUCKET, default_image=IMAGE)
    registry.register("acme", "s3://b/m.tar.gz", METRICS, {}, True)
    registry.approve("acme", 1, "alice", "ok")
    listing = aws.client("s3", region_name="us-east-1").list_objects_v2(
        Bucket=BUCKET, Prefix="registry/ordernimbus-acme/audit/"
    )
    assert listing["KeyCount"] == 2
    assert [e.action for e in registry.audit_log("acme")] == ["register", "approve"]


def test_missing_image_or_bucket_is_a_clear_error(aws: Any) -> None:
    with pytest.raises(RegistryError, match="ORDERNIMBUS_ARTIFACTS_BUCKET"):
        SageMakerRegistry("us-east-1")
    registry = SageMakerRegistry("us-east-1", audit_bucket=BUCKET)
    with pytest.raises(RegistryError, match="container image"):
        registry.register("acme", "s3://b/m.tar.gz", METRICS, {}, True)
    assert registry.list_versions("acme") == []


def test_compact_metrics_fit_one_metadata_value() -> None:
    many = {"ensemble": {f"metric_with_a_long_name_{i}": 1 / 3 for i in range(40)}}
    text = compact_metrics(many)
    assert len(text) <= META_VALUE_MAX
    assert json.loads(text)["metric_with_a_long_name_0"] == 0.3333
    assert json.loads(compact_metrics({"ensemble": {"mase": float("nan")}})) == {"mase": None}


def test_factory_opens_the_configured_backend(aws: Any, tmp_path: Path) -> None:
    local = open_registry(Settings(home=tmp_path, registry_backend="local"))
    assert isinstance(local, LocalRegistry)
    assert local.url == f"sqlite:///{tmp_path / 'registry.db'}"
    remote = open_registry(Settings(home=tmp_path, registry_backend="sagemaker", artifacts_bucket=BUCKET))
    assert isinstance(remote, SageMakerRegistry)
    assert remote.bucket == BUCKET
    with pytest.raises(RegistryError, match="ARTIFACTS_BUCKET"):
        open_registry(Settings(home=tmp_path, registry_backend="sagemaker"))


def test_requests_on_the_wire_are_sagemakers_model_registry_calls(aws: Any) -> None:
    """The exact SageMaker API calls, as serialised by botocore and accepted by moto."""
    sent: list[tuple[str, dict[str, Any]]] = []

    def record(model: Any, params: dict[str, Any], **_: Any) -> None:
        sent.append((model.name, json.loads(params["body"] or b"{}")))

    sm = aws.client("sagemaker", region_name="us-east-1")
    sm.meta.events.register("before-call.sagemaker", record)
    registry = SageMakerRegistry(
        "us-east-1", sm, audit_bucket=BUCKET, s3_client=aws.client("s3", region_name="us-east-1")
    )
    spec = {"image": IMAGE, "environment": {"ORDERNIMBUS_HORIZON": "28"}}
    registry.register("acme", "s3://b/acme/model.tar.gz", METRICS, {"pipeline_run_id": "run-7"}, True,
                      inference_spec=spec)  # fmt: skip
    calls = [name for name, _ in sent]
    assert calls[:3] == ["DescribeModelPackageGroup", "CreateModelPackageGroup", "CreateModelPackage"]
    group = sent[1][1]
    assert group["ModelPackageGroupName"] == "ordernimbus-acme"
    create = sent[2][1]
    assert create["ModelPackageGroupName"] == "ordernimbus-acme"
    assert create["ModelApprovalStatus"] == "PendingManualApproval"
    assert create["InferenceSpecification"]["Containers"] == [
        {
            "Image": IMAGE,
            "ModelDataUrl": "s3://b/acme/model.tar.gz",
            "Environment": {"ORDERNIMBUS_HORIZON": "28"},
        }
    ]
    statistics = create["ModelMetrics"]["ModelQuality"]["Statistics"]
    assert statistics["ContentType"] == "application/json"
    assert statistics["S3Uri"].startswith(f"s3://{BUCKET}/registry/ordernimbus-acme/versions/")
    assert create["CustomerMetadataProperties"][K_GATE] == "true"

    sent.clear()
    registry.approve("acme", 1, "alice", "beats naive by 12 %")
    update = next(body for name, body in sent if name == "UpdateModelPackage")
    assert update["ModelApprovalStatus"] == "Approved"
    assert update["ApprovalDescription"] == "beats naive by 12 %"
    assert update["ModelPackageArn"].endswith(":model-package/ordernimbus-acme/1")
    assert K_APPROVED_AT in update["CustomerMetadataProperties"]
    listing = [body for name, body in sent if name == "ListModelPackages"]
    assert all(body["ModelPackageGroupName"] == "ordernimbus-acme" for body in listing)

    sent.clear()
    assert registry.serving_version("acme").version == 1  # type: ignore[union-attr]
    query = {"ModelPackageGroupName": "ordernimbus-acme", "ModelPackageType": "Versioned"}
    assert ("ListModelPackages", {**query, "ModelApprovalStatus": "Approved"}) in sent
    assert {name for name, _ in sent} <= {"ListModelPackages", "DescribeModelPackage"}  # reads never write

    sent.clear()
    with pytest.raises(RegistryError, match="needs a non-empty reason"):
        registry.reject("acme", 1, "bob", " ")
    assert "UpdateModelPackage" not in [name for name, _ in sent]  # refused before anything is sent
