"""A tenant's outages over the API: the dates whose sales were lost, as ``ordernimbus outage`` marks them.

A point-of-sale integration knows when it was offline; marking the stretch here keeps the next
build from reading it as zero demand (``features.outages``). Reading is for every role; marking
and unmarking for admins and analysts, as uploads are. The tenant is always the credential's.
Checking a request against the tenant's sales needs pandas, so the slim Lambda package answers 501.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from serving.auth import Principal
from serving.deps import CurrentPrincipal, ServicesDep, require_role
from serving.params import ID_QUERY, IsoDate
from serving.routers.registry import FullPackageRequiredError
from serving.schemas_ops import OutageCreate, OutagePublic

router = APIRouter(prefix="/outages", tags=["data"])
Marker = Annotated[Principal, Depends(require_role("admin", "analyst"))]


def _service(svc: Any) -> tuple[Any, Any, Any]:
    """(the tenant lake, ``Outage``, ``ordernimbus.outages``), or 501 where pandas is absent."""
    try:
        from features.lake import SalesLake
        from features.outages import Outage
        from ordernimbus import outages
    except ImportError as exc:
        raise FullPackageRequiredError(
            f"outages need the full package ({exc.name} is missing here): use the embedded API or "
            "`ordernimbus outage`"
        ) from None
    return SalesLake(svc.settings.lake_dir), Outage, outages


@router.get("", response_model=list[OutagePublic])
def list_outages(caller: CurrentPrincipal, svc: ServicesDep) -> list[OutagePublic]:
    """The tenant's marked outages, oldest first, with the series each fills and the records it keeps."""
    lake, _, outages = _service(svc)
    return [OutagePublic(**m.as_dict()) for m in outages.listed(lake, caller.tenant_id)]


@router.post("", response_model=OutagePublic, status_code=201)
def mark_outage(body: OutageCreate, caller: Marker, svc: ServicesDep) -> OutagePublic:
    """Mark ``first``..``last`` (one store, or every store) as lost; marking it again changes nothing."""
    lake, outage, outages = _service(svc)
    wanted = outage.parse(body.first.isoformat(), body.last.isoformat(), body.store)
    done = outages.mark(lake, caller.tenant_id, wanted)
    return OutagePublic(**done.as_dict(), created=done.created)


@router.delete("", response_model=OutagePublic)
def unmark_outage(
    caller: Marker,
    svc: ServicesDep,
    first: Annotated[IsoDate, Query(description="first date of the outage, as marked")],
    last: Annotated[IsoDate, Query(description="last date of the outage, as marked")],
    store: Annotated[str | None, ID_QUERY] = None,
) -> OutagePublic:
    """Unmark an outage (404 when it is not marked): its periods count as no sales again from the
    next build on. Answers with the outage as it was."""
    lake, outage, outages = _service(svc)
    wanted = outage.parse(first.isoformat(), last.isoformat(), store)
    return OutagePublic(**outages.unmark(lake, caller.tenant_id, wanted).as_dict())
