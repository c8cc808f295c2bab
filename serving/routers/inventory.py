"""Inventory advice of the current forecast set: reorder points, order quantities, stock-out alerts.

The advice is written with the forecast set and turns current with it, so it always matches the
forecasts ``/forecasts`` serves; ``/inventory/alerts`` is the same list narrowed to the series
whose stock on hand is already below the reorder point.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from inference.store.base import ForecastSet, ForecastSetNotFoundError
from inference.store.sql import SqlForecastStore
from serving import cursors, reads
from serving.deps import CurrentPrincipal, Services, ServicesDep, Store
from serving.params import ID_QUERY
from serving.schemas_ops import InventoryItemPublic, InventoryPagePublic

router = APIRouter(prefix="/inventory", tags=["inventory"])
Limit = Annotated[int, Query(ge=1, le=1000)]
Cursor = Annotated[str | None, Query(max_length=cursors.MAX_CURSOR_LENGTH)]


@router.get("/recommendations", response_model=InventoryPagePublic)
def recommendations(
    *,
    caller: CurrentPrincipal,
    store: Store,
    svc: ServicesDep,
    store_id: Annotated[str | None, ID_QUERY] = None,
    sku: Annotated[str | None, ID_QUERY] = None,
    at_risk: Annotated[bool, Query(description="only series at risk of a stock-out")] = False,
    limit: Limit = 100,
    cursor: Cursor = None,
) -> InventoryPagePublic:
    """Reorder point and order quantity per series, for the lead time and service level set."""
    return _page(
        caller.tenant_id, store, svc, store_id=store_id, sku=sku, at_risk=at_risk, limit=limit, cursor=cursor
    )


@router.get("/alerts", response_model=InventoryPagePublic)
def alerts(
    *, caller: CurrentPrincipal, store: Store, svc: ServicesDep, limit: Limit = 100, cursor: Cursor = None
) -> InventoryPagePublic:
    """Series whose stock on hand is below the reorder point: order now or risk a stock-out."""
    return _page(
        caller.tenant_id, store, svc, store_id=None, sku=None, at_risk=True, limit=limit, cursor=cursor
    )


def _page(
    tenant: str,
    store: SqlForecastStore,
    svc: Services,
    *,
    store_id: str | None,
    sku: str | None,
    at_risk: bool,
    limit: int,
    cursor: str | None,
) -> InventoryPagePublic:
    filters = cursors.fingerprint(store_id=store_id, sku=sku, at_risk=at_risk)
    set_id, after = cursors.decode(cursor, tenant, filters, 2) if cursor else (None, None)
    fs = store.current_set(tenant) if set_id is None else _set(store, tenant, set_id)
    if fs is None:
        raise ForecastSetNotFoundError("no complete forecast set yet: run the forecast pipeline first")
    rows = reads.inventory(
        svc.engine,
        tenant,
        fs.set_id,
        store_id=store_id,
        sku=sku,
        at_risk_only=at_risk,
        after=after,
        limit=limit,
    )
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        next_cursor = cursors.encode(tenant, fs.set_id, filters, [rows[-1]["store_id"], rows[-1]["sku"]])
    return InventoryPagePublic(
        forecast_set_id=fs.set_id,
        model_version=fs.model_version,
        items=[InventoryItemPublic.of(r) for r in rows],
        next_cursor=next_cursor,
    )


def _set(store: SqlForecastStore, tenant: str, set_id: str) -> ForecastSet:
    """The set a cursor was issued for, so paging finishes in it even after a newer one is current."""
    found = next((s for s in store.list_sets(tenant) if s.set_id == set_id and s.status == "complete"), None)
    if found is None:
        raise ForecastSetNotFoundError(
            f"forecast set {set_id} is gone (retention keeps the newest sets); start again without a cursor"
        )
    return found
