"""The approval rules and the serving choice, shared by every backend (pure functions)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from models.registry.base import (
    APPROVED,
    MAX_REASON_CHARS,
    PENDING,
    REJECTED,
    ModelVersion,
    RegistryError,
    TransitionError,
    check_decision,
    pick_serving,
)

T0 = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)


def version(
    n: int, status: str = PENDING, gate: bool = True, approved_at: datetime | None = None
) -> ModelVersion:
    return ModelVersion(
        tenant_id="acme", group="ordernimbus-acme", version=n, status=status,  # type: ignore[arg-type]
        artifact_uri=f"s3://b/{n}", metrics={}, lineage={}, gate_passed=gate, created_at=T0,
        approved_at=approved_at,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("status", "gate", "override", "expected"),
    [
        (PENDING, True, False, []),
        (APPROVED, True, False, []),  # re-approval = rollback
        (PENDING, False, True, ["gate_failed"]),
        (REJECTED, True, True, ["was_rejected"]),
        (REJECTED, False, True, ["was_rejected", "gate_failed"]),
    ],
)
def test_allowed_approvals_report_their_overrides(
    status: str, gate: bool, override: bool, expected: list[str]
) -> None:
    assert check_decision(version(1, status, gate), APPROVED, "alice", "why", override) == expected


@pytest.mark.parametrize(
    ("status", "gate", "target", "match"),
    [
        (PENDING, False, APPROVED, "quality gate"),
        (REJECTED, True, APPROVED, "rejected"),
        (REJECTED, True, REJECTED, "already"),
        (APPROVED, True, PENDING, "cannot go back"),
        (PENDING, True, PENDING, "cannot go back"),
    ],
)
def test_refused_transitions(status: str, gate: bool, target: str, match: str) -> None:
    with pytest.raises(TransitionError, match=match) as info:
        check_decision(version(4, status, gate), target, "alice", "why", False)  # type: ignore[arg-type]
    assert info.value.status == 409
    assert "version 4" in str(info.value)


def test_reason_limits() -> None:
    current = version(1)
    check_decision(current, APPROVED, "alice", "x" * MAX_REASON_CHARS, False)
    with pytest.raises(RegistryError, match="at most"):
        check_decision(current, APPROVED, "alice", "x" * (MAX_REASON_CHARS + 1), False)


def test_serving_is_latest_approval_with_version_tie_break() -> None:
    v1 = version(1, APPROVED, approved_at=T0 + timedelta(hours=2))
    v2 = version(2, APPROVED, approved_at=T0)
    v3 = version(3, REJECTED)
    assert pick_serving([v2, v1, v3]) == v1
    tie = replace(v2, approved_at=v1.approved_at)
    assert pick_serving([v1, tie]) == tie  # same instant: the higher version serves
    assert pick_serving([v3, version(4)]) is None
