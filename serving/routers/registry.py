"""The model registry for a tenant's people: versions, model cards, the audit log, and decisions.

Reading is for the tenant's admins, approvers and analysts (metrics, lineage and artifact
locations are not for dashboard viewers); approving and rejecting is for approvers only, with a
reason always and ``override: true`` to approve a version that failed the quality gate (recorded).
Approving also starts the forecast pipeline with the newly serving version, as the CLI does; the
response carries that job so the approver can follow it.

The model card is rendered on request from the registry and the version's artifact (backtests,
SHAP drivers). Rendering needs pandas and matplotlib, so the full package serves it; the slim
Lambda package answers 501 and points at ``ordernimbus registry show --html``.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import HTMLResponse

from inference.store.jobs import JobConflictError
from ordernimbus.errors import ConflictError, OrderNimbusError
from serving import artifacts
from serving.auth import Principal
from serving.deps import Registry, ServicesDep, require_role
from serving.jobrunner import BackendNotWiredError
from serving.schemas_ops import (
    AuditEntryPublic,
    DecisionCreate,
    DecisionPublic,
    JobPublic,
    ModelVersionPublic,
)

router = APIRouter(prefix="/registry", tags=["registry"])
Reader = Annotated[Principal, Depends(require_role("admin", "approver", "analyst"))]
Approver = Annotated[Principal, Depends(require_role("approver"))]
Version = Annotated[int, Path(ge=1, le=2**31 - 1)]
# The card's plots are inline PNGs and its styles inline: allow exactly that, nothing external.
CARD_CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; frame-ancestors 'none'"


class FullPackageRequiredError(OrderNimbusError):
    status = 501
    title = "Not available in this deployment"


@router.get("/versions", response_model=list[ModelVersionPublic])
def list_versions(caller: Reader, registry: Registry) -> list[ModelVersionPublic]:
    """Every version of the tenant's model group, oldest first, with the serving one marked."""
    serving = registry.serving_version(caller.tenant_id)
    number = serving.version if serving else None
    return [ModelVersionPublic.of(v, number) for v in registry.list_versions(caller.tenant_id)]


@router.get("/versions/{version}", response_model=ModelVersionPublic)
def get_version(version: Version, caller: Reader, registry: Registry) -> ModelVersionPublic:
    serving = registry.serving_version(caller.tenant_id)
    return ModelVersionPublic.of(
        registry.get(caller.tenant_id, version), serving.version if serving else None
    )


@router.get(
    "/versions/{version}/card",
    response_class=HTMLResponse,
    responses={200: {"content": {"text/html": {}}}, 501: {"description": "needs the full package"}},
)
def model_card(version: Version, caller: Reader, registry: Registry) -> HTMLResponse:
    """The version's model card: metrics against the champion and baselines, backtest plots,
    interval coverage, SHAP drivers, data range, lineage and approval history."""
    found = registry.get(caller.tenant_id, version)
    try:
        from models.registry.card import card_for, render_card_html

        with artifacts.unpacked(found.artifact_uri) as artifact_dir:
            html = render_card_html(card_for(registry, caller.tenant_id, version, artifact_dir))
    except ImportError as exc:
        raise FullPackageRequiredError(
            f"rendering model cards needs the full package ({exc.name} is missing here); use "
            "`ordernimbus registry show --html` or the embedded API"
        ) from None
    return HTMLResponse(html, headers={"Content-Security-Policy": CARD_CSP, "Cache-Control": "no-store"})


@router.get("/compare", response_model=dict[str, Any])
def compare_versions(
    caller: Reader,
    registry: Registry,
    a: Annotated[int, Query(ge=1, le=2**31 - 1)],
    b: Annotated[int, Query(ge=1, le=2**31 - 1)],
) -> dict[str, Any]:
    """Two versions side by side: every scored model and metric, the gate, lineage and data range."""
    from models.registry.card import compare

    return compare(registry, caller.tenant_id, a, b)


@router.get("/audit", response_model=list[AuditEntryPublic])
def audit_log(caller: Reader, registry: Registry) -> list[AuditEntryPublic]:
    """Every registry change of the tenant (who, when, what, why), oldest first."""
    return [AuditEntryPublic.of(e) for e in registry.audit_log(caller.tenant_id)]


@router.post("/versions/{version}/approve", response_model=DecisionPublic)
def approve(
    version: Version, body: DecisionCreate, caller: Approver, registry: Registry, svc: ServicesDep
) -> DecisionPublic:
    """Approve a version: it serves from now on, and the forecast pipeline runs with it."""
    approved = registry.approve(caller.tenant_id, version, caller.who, body.reason, override=body.override)
    job, note = None, None
    if body.forecast:
        try:
            job = svc.runner().submit_forecast(caller.tenant_id, None, caller.who)
        except JobConflictError as exc:
            note = (
                f"a forecast job ({exc.job_id}) was already running with the previous version; start "
                "another with POST /v1/forecasts/generate when it ends"
            )
        except (ConflictError, BackendNotWiredError) as exc:
            note = f"no forecast run started: {exc}"
    public = ModelVersionPublic.of(approved, approved.version)
    return DecisionPublic(version=public, job=JobPublic.of(job) if job else None, note=note)


@router.post("/versions/{version}/reject", response_model=DecisionPublic)
def reject(version: Version, body: DecisionCreate, caller: Approver, registry: Registry) -> DecisionPublic:
    """Reject a version (it never serves unless approved later with ``override``)."""
    if body.override:
        raise OrderNimbusError("override applies to approvals only")
    rejected = registry.reject(caller.tenant_id, version, caller.who, body.reason)
    serving = registry.serving_version(caller.tenant_id)
    return DecisionPublic(
        version=ModelVersionPublic.of(rejected, serving.version if serving else None), job=None, note=None
    )
