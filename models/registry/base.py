"""Registry entities and the port every backend implements (SageMaker Model Registry semantics).

A tenant has one ModelPackageGroup, ``ordernimbus-<tenant>``, holding versions 1, 2, ... Each version
is PendingManualApproval, Approved or Rejected. The *serving* version is the most recently
approved one, so rolling back is approving an older version again.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol

from ordernimbus.errors import ConflictError, NotFoundError, OrderNimbusError
from ordernimbus.text import control_free

ApprovalStatus = Literal["PendingManualApproval", "Approved", "Rejected"]
PENDING: ApprovalStatus = "PendingManualApproval"
APPROVED: ApprovalStatus = "Approved"
REJECTED: ApprovalStatus = "Rejected"


class RegistryError(OrderNimbusError):
    title = "Registry request refused"


class VersionNotFound(NotFoundError, RegistryError):  # noqa: N818 - the port's public name
    title = "Model version not found"


class TransitionError(ConflictError, RegistryError):
    title = "Approval transition not allowed"


@dataclass(frozen=True)
class ModelVersion:
    """One registered model version (a SageMaker ModelPackage)."""

    tenant_id: str
    group: str
    version: int
    status: ApprovalStatus
    artifact_uri: str
    metrics: dict[str, Any]
    lineage: dict[str, Any]
    gate_passed: bool
    created_at: datetime
    created_by: str = "pipeline"
    approved_at: datetime | None = None
    decided_by: str | None = None
    reason: str | None = None
    override: bool = False
    inference_spec: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class AuditEntry:
    """An append-only record of one registry change."""

    tenant_id: str
    at: datetime
    actor: str
    action: str
    version: int | None
    detail: dict[str, Any]


class ModelRegistry(Protocol):
    """What the pipelines, the CLI and the API need from a registry backend."""

    def register(  # noqa: PLR0917 - the port's signature
        self,
        tenant: str,
        artifact_uri: str,
        metrics: dict[str, Any],
        lineage: dict[str, Any],
        gate_passed: bool,
        created_by: str = "pipeline",
        inference_spec: dict[str, Any] | None = None,
    ) -> ModelVersion: ...

    def list_versions(self, tenant: str) -> list[ModelVersion]: ...

    def get(self, tenant: str, version: int) -> ModelVersion: ...

    def approve(
        self, tenant: str, version: int, actor: str, reason: str, override: bool = False
    ) -> ModelVersion: ...

    def reject(self, tenant: str, version: int, actor: str, reason: str) -> ModelVersion: ...

    def serving_version(self, tenant: str) -> ModelVersion | None: ...

    def audit_log(self, tenant: str) -> list[AuditEntry]: ...


MAX_REASON_CHARS = 1024  # SageMaker's ApprovalDescription limit, enforced on both backends alike

# Names of the rules an approval may override; recorded in the audit detail when used.
OVERRIDE_GATE_FAILED = "gate_failed"
OVERRIDE_WAS_REJECTED = "was_rejected"
OVERRIDE_HOW = '--override on the CLI, "override": true over the API'


def check_decision(
    current: ModelVersion, target: ApprovalStatus, actor: str, reason: str, override: bool
) -> list[str]:
    """Apply the approval rules to one decision; return the rules it overrides (empty if none).

    Shared by every backend so that SQLite and SageMaker refuse exactly the same transitions:
    SageMaker itself would let a version go back to PendingManualApproval or be approved
    without any reason, which loses the audit trail a manual gate exists for.
    """
    if not isinstance(actor, str) or not actor.strip():
        raise RegistryError("actor must name who decides (e.g. an e-mail or user id), got an empty value")
    if not isinstance(reason, str) or not reason.strip():
        verb = "approving" if target == APPROVED else "rejecting"
        raise RegistryError(f"{verb} version {current.version} needs a non-empty reason")
    if not control_free(reason, breaks=True):  # written raw to whoever reads the audit log
        raise RegistryError(
            "reason: expected text without control characters other than tabs and line breaks"
        )
    if len(reason) > MAX_REASON_CHARS:
        raise RegistryError(f"reason is {len(reason)} characters; at most {MAX_REASON_CHARS} are kept")
    if target == PENDING:
        raise TransitionError(
            f"version {current.version} cannot go back to {PENDING}; approve or reject it instead"
        )
    if target == REJECTED:
        if current.status == REJECTED:
            raise TransitionError(f"version {current.version} is already {REJECTED}")
        return []
    overrides: list[str] = []
    if current.status == REJECTED:
        if not override:
            raise TransitionError(
                f"version {current.version} was rejected; approving it needs an override ({OVERRIDE_HOW})"
            )
        overrides.append(OVERRIDE_WAS_REJECTED)
    if not current.gate_passed:
        if not override:
            raise TransitionError(
                f"version {current.version} failed the quality gate; approving it needs an override "
                f"({OVERRIDE_HOW})"
            )
        overrides.append(OVERRIDE_GATE_FAILED)
    return overrides


def pick_serving(versions: list[ModelVersion]) -> ModelVersion | None:
    """The most recently approved version; ties on approved_at go to the higher version number."""
    approved = [v for v in versions if v.status == APPROVED and v.approved_at is not None]
    if not approved:
        return None
    return max(approved, key=lambda v: (v.approved_at, v.version))


def check_json_object(name: str, value: Any) -> None:
    if not isinstance(value, dict):
        raise RegistryError(f"{name} must be a JSON object (dict), got {type(value).__name__}")
    try:
        json.dumps(value)
    except (TypeError, ValueError) as exc:
        raise RegistryError(f"{name} is not JSON-serialisable: {exc}") from exc


def check_registration(
    artifact_uri: str, metrics: dict[str, Any], lineage: dict[str, Any], gate_passed: bool, created_by: str
) -> None:
    """Refuse a registration the registry could not faithfully store or that contradicts itself."""
    if not isinstance(artifact_uri, str) or not artifact_uri.strip():
        raise RegistryError("artifact_uri must be the model artifact's location, got an empty value")
    if not isinstance(gate_passed, bool):
        raise RegistryError(f"gate_passed must be True or False, got {gate_passed!r}")
    if not isinstance(created_by, str) or not created_by.strip():
        raise RegistryError("created_by must name who registers the version, got an empty value")
    check_json_object("metrics", metrics)
    check_json_object("lineage", lineage)
    gate = metrics.get("gate")
    if isinstance(gate, dict) and "passed" in gate and bool(gate["passed"]) != gate_passed:
        raise RegistryError(
            f"gate_passed={gate_passed} contradicts metrics['gate']['passed']={gate['passed']!r}"
        )
