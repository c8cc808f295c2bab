"""One contract suite for every ModelRegistry backend: SQLite (tmp file) and SageMaker (moto).

Both backends must give the same answers to the same calls; backend-specific storage details
are tested in test_registry_local.py and test_registry_sagemaker.py.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from models.registry.base import (
    APPROVED,
    PENDING,
    REJECTED,
    ModelRegistry,
    RegistryError,
    TransitionError,
    VersionNotFound,
)
from ordernimbus.errors import TenantError

BUCKET = "ordernimbus-test-artifacts"
IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/ordernimbus-inference:1.0"


def sample_metrics(wape: float = 0.21, passed: bool = True) -> dict[str, Any]:
    scores = {"wape": wape, "mase": 0.83, "smape": 0.31, "pinball": 1.74, "coverage": 0.79}
    naive = {"wape": 0.27, "mase": 1.0, "smape": 0.36, "pinball": 2.2, "coverage": 0.61}
    return {
        "frequency": "D",
        "horizon": 28,
        "season_length": 7,
        "quantiles": [0.1, 0.5, 0.9],
        "ensemble": scores,
        "members": {"xgboost": dict(scores, wape=wape + 0.01), "seasonal_naive": naive},
        "baselines": {"seasonal_naive": naive},
        "gate": {
            "passed": passed,
            "metric": "wape",
            "max_ratio": 1.0,
            "best_baseline": "seasonal_naive",
            "best_baseline_value": 0.27,
            "ensemble_value": wape,
        },
        "data": {"start": "2013-01-01", "end": "2017-10-02", "series": 400, "rows": 123},
    }


LINEAGE = {"pipeline_run_id": "run-0001", "data_fingerprint": "sha256:ab12", "code_version": "5658add"}


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Dummy credentials and an in-process moto AWS with the artifacts bucket."""
    for name, value in {
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_EC2_METADATA_DISABLED": "true",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    import boto3
    from moto import mock_aws

    with mock_aws():
        boto3.client("s3", region_name="us-east-1").create_bucket(Bucket=BUCKET)
        yield


@pytest.fixture(params=["local", pytest.param("sagemaker", marks=pytest.mark.aws)])
def registry(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ModelRegistry]:
    if request.param == "local":
        from models.registry.local import LocalRegistry

        local = LocalRegistry(f"sqlite:///{tmp_path / 'registry.db'}")
        yield local
        local.close()
    else:
        request.getfixturevalue("aws")
        from models.registry.sagemaker import SageMakerRegistry

        yield SageMakerRegistry("us-east-1", audit_bucket=BUCKET)


def register(reg: ModelRegistry, tenant: str = "acme", wape: float = 0.21, passed: bool = True) -> int:
    version = reg.register(
        tenant,
        f"s3://{BUCKET}/models/{tenant}/model-{wape}.tar.gz",
        sample_metrics(wape, passed),
        LINEAGE,
        passed,
        inference_spec={"image": IMAGE},
    )
    return version.version


def test_register_assigns_versions_per_tenant_and_round_trips_fields(registry: ModelRegistry) -> None:
    before = datetime.now(UTC)
    first = registry.register(
        "acme", "s3://b/acme/1.tar.gz", sample_metrics(0.2), LINEAGE, True,
        created_by="pipeline:run-0001", inference_spec={"image": IMAGE},
    )  # fmt: skip
    assert (first.version, first.group, first.status) == (1, "ordernimbus-acme", PENDING)
    assert first.artifact_uri == "s3://b/acme/1.tar.gz"
    assert first.metrics == sample_metrics(0.2)
    assert first.lineage == LINEAGE
    assert first.gate_passed is True
    assert first.created_by == "pipeline:run-0001"
    assert first.inference_spec == {"image": IMAGE}
    assert first.approved_at is None
    assert first.decided_by is None
    assert first.reason is None
    assert first.created_at.tzinfo is not None
    assert abs((first.created_at - before).total_seconds()) < 60
    assert register(registry, "acme", 0.3) == 2
    assert register(registry, "globex", 0.4) == 1  # numbering is per group
    assert [v.version for v in registry.list_versions("acme")] == [1, 2]
    assert registry.get("acme", 2).metrics["ensemble"]["wape"] == 0.3
    assert registry.get("globex", 1).group == "ordernimbus-globex"


def test_tenants_are_isolated(registry: ModelRegistry) -> None:
    register(registry, "acme")
    registry.approve("acme", 1, "alice@acme", "beats naive")
    assert registry.list_versions("globex") == []
    assert registry.serving_version("globex") is None
    assert registry.audit_log("globex") == []
    with pytest.raises(VersionNotFound) as info:
        registry.get("globex", 1)
    assert info.value.status == 404
    assert "globex" in str(info.value)
    with pytest.raises(VersionNotFound):
        registry.approve("globex", 1, "mallory", "take over")
    assert registry.get("acme", 1).status == APPROVED


@pytest.mark.parametrize("bad", ["", "ACME", "../acme", "a", "acme/../../x"])
def test_invalid_tenant_ids_are_refused(registry: ModelRegistry, bad: str) -> None:
    with pytest.raises(TenantError):
        registry.register(bad, "s3://b/m", sample_metrics(), LINEAGE, True, inference_spec={"image": IMAGE})
    with pytest.raises(TenantError):
        registry.list_versions(bad)


def test_approve_sets_serving_and_rollback_is_reapproval(registry: ModelRegistry) -> None:
    for wape in (0.2, 0.19, 0.18):
        register(registry, wape=wape)
    assert registry.serving_version("acme") is None
    one = registry.approve("acme", 1, "alice", "first model")
    assert (one.status, one.decided_by, one.reason, one.override) == (APPROVED, "alice", "first model", False)
    assert one.approved_at is not None
    serving = registry.serving_version("acme")
    assert serving is not None
    assert serving.version == 1
    registry.approve("acme", 3, "bob", "better wape")
    serving = registry.serving_version("acme")
    assert serving is not None
    assert serving.version == 3
    again = registry.approve("acme", 1, "carol", "roll back: v3 drifts")
    assert again.approved_at is not None
    assert again.approved_at > one.approved_at
    serving = registry.serving_version("acme")
    assert serving is not None
    assert (serving.version, serving.reason) == (1, "roll back: v3 drifts")
    assert registry.get("acme", 2).status == PENDING


def test_rejecting_the_serving_version_falls_back(registry: ModelRegistry) -> None:
    register(registry)
    register(registry)
    registry.approve("acme", 1, "alice", "ok")
    registry.approve("acme", 2, "alice", "ok too")
    rejected = registry.reject("acme", 2, "bob", "bad forecasts on store 3")
    assert (rejected.status, rejected.reason, rejected.approved_at) == (
        REJECTED, "bad forecasts on store 3", None,
    )  # fmt: skip
    serving = registry.serving_version("acme")
    assert serving is not None
    assert serving.version == 1
    registry.reject("acme", 1, "bob", "nothing serves")
    assert registry.serving_version("acme") is None


@pytest.mark.parametrize("reason", ["", "   "])
def test_decisions_need_a_reason(registry: ModelRegistry, reason: str) -> None:
    register(registry)
    with pytest.raises(RegistryError, match="reason"):
        registry.approve("acme", 1, "alice", reason)
    with pytest.raises(RegistryError, match="reason"):
        registry.reject("acme", 1, "alice", reason)
    with pytest.raises(RegistryError, match="actor"):
        registry.approve("acme", 1, " ", "fine")
    assert registry.get("acme", 1).status == PENDING
    assert [e.action for e in registry.audit_log("acme")] == ["register"]


def test_failed_gate_needs_override_and_records_it(registry: ModelRegistry) -> None:
    register(registry, wape=0.4, passed=False)
    with pytest.raises(TransitionError, match="quality gate"):
        registry.approve("acme", 1, "alice", "looks fine")
    assert registry.get("acme", 1).status == PENDING
    approved = registry.approve("acme", 1, "alice", "promo week, baseline unfair", override=True)
    assert approved.status == APPROVED
    assert approved.override is True
    last = registry.audit_log("acme")[-1]
    assert last.action == "approve"
    assert last.detail["override"] is True
    assert last.detail["overrides"] == ["gate_failed"]
    assert last.detail["reason"] == "promo week, baseline unfair"


def test_rejected_to_approved_needs_override(registry: ModelRegistry) -> None:
    register(registry)
    registry.reject("acme", 1, "alice", "wrong data window")
    with pytest.raises(TransitionError, match="rejected"):
        registry.approve("acme", 1, "bob", "actually fine")
    with pytest.raises(TransitionError, match="already"):
        registry.reject("acme", 1, "bob", "twice")
    approved = registry.approve("acme", 1, "bob", "data window was right", override=True)
    assert approved.status == APPROVED
    assert approved.override is True
    assert registry.audit_log("acme")[-1].detail["overrides"] == ["was_rejected"]


def test_audit_log_records_every_change_in_order(registry: ModelRegistry) -> None:
    register(registry)
    register(registry, passed=False)
    registry.approve("acme", 1, "alice", "good")
    registry.reject("acme", 2, "bob", "gate failed")
    registry.approve("acme", 1, "carol", "re-approve")
    log = registry.audit_log("acme")
    assert [(e.action, e.version, e.actor) for e in log] == [
        ("register", 1, "pipeline"),
        ("register", 2, "pipeline"),
        ("approve", 1, "alice"),
        ("reject", 2, "bob"),
        ("approve", 1, "carol"),
    ]
    assert all(e.tenant_id == "acme" and e.at.tzinfo is not None for e in log)
    assert [e.at for e in log] == sorted(e.at for e in log)
    assert log[3].detail == {
        "reason": "gate failed",
        "override": False,
        "overrides": [],
        "from_status": PENDING,
        "to_status": REJECTED,
    }
    assert log[4].detail["from_status"] == APPROVED
    assert log[4].detail["to_status"] == APPROVED
    assert log[1].detail["gate_passed"] is False


def test_unknown_version_and_bad_registrations_are_refused(registry: ModelRegistry) -> None:
    with pytest.raises(VersionNotFound):
        registry.approve("acme", 7, "alice", "ok")
    with pytest.raises(RegistryError, match="contradicts"):
        registry.register("acme", "s3://b/m", sample_metrics(passed=False), LINEAGE, True,
                          inference_spec={"image": IMAGE})  # fmt: skip
    with pytest.raises(RegistryError, match="JSON"):
        registry.register("acme", "s3://b/m", {"when": datetime.now(UTC)}, LINEAGE, True,
                          inference_spec={"image": IMAGE})  # fmt: skip
    with pytest.raises(RegistryError, match="artifact_uri"):
        registry.register("acme", " ", sample_metrics(), LINEAGE, True, inference_spec={"image": IMAGE})
    assert registry.list_versions("acme") == []
    assert registry.audit_log("acme") == []


def test_concurrent_approvals_leave_one_serving_version(registry: ModelRegistry) -> None:
    for _ in range(3):
        register(registry)
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def approve(version: int) -> None:
        try:
            barrier.wait(timeout=10)
            registry.approve("acme", version, f"approver-{version}", f"ship v{version}")
        except BaseException as exc:  # re-raised in the main thread below
            errors.append(exc)

    threads = [threading.Thread(target=approve, args=(v,)) for v in (2, 3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert errors == []
    two, three = registry.get("acme", 2), registry.get("acme", 3)
    assert two.status == three.status == APPROVED
    assert two.approved_at is not None
    assert three.approved_at is not None
    assert two.approved_at != three.approved_at
    latest = max((two, three), key=lambda v: (v.approved_at, v.version))
    serving = registry.serving_version("acme")
    assert serving is not None
    assert serving.version == latest.version
    approvals = [e for e in registry.audit_log("acme") if e.action == "approve"]
    assert sorted((e.version, e.actor) for e in approvals) == [(2, "approver-2"), (3, "approver-3")]
