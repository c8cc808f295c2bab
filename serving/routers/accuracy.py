"""Realised accuracy of past forecasts against the actuals that arrived since (monitoring scores them).

``/accuracy`` lists one check's rows at a level (total, per store, per SKU), keyset-paginated;
``/accuracy/trend`` gives one key's accuracy across checks, for a chart of accuracy over time.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

from fastapi import APIRouter, Query

from inference.store.base import InvalidCursorError
from inference.store.monitoring import ALL, MonitoringStore
from ordernimbus.errors import NotFoundError, OrderNimbusError
from serving import cursors, reads
from serving.deps import CurrentPrincipal, ServicesDep
from serving.params import ID_QUERY, PRINTABLE
from serving.schemas import AccuracyPagePublic, AccuracyPublic, AccuracyTrendPublic

router = APIRouter(prefix="/accuracy", tags=["accuracy"])


@router.get("", response_model=AccuracyPagePublic)
def list_accuracy(
    *,
    caller: CurrentPrincipal,
    svc: ServicesDep,
    level: reads.Level = "total",
    store_id: Annotated[str | None, ID_QUERY] = None,
    sku: Annotated[str | None, ID_QUERY] = None,
    check_id: Annotated[
        str | None, Query(min_length=1, max_length=36, pattern=PRINTABLE, description="default: newest")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: Annotated[str | None, Query(max_length=cursors.MAX_CURSOR_LENGTH)] = None,
) -> AccuracyPagePublic:
    """WAPE, bias, pinball loss and interval coverage of the newest check (or ``check_id``)."""
    tenant = caller.tenant_id
    filters = cursors.fingerprint(level=level, store_id=store_id, sku=sku)
    after = None
    if cursor:
        scope, after = cursors.decode(cursor, tenant, filters, 2)
        if check_id is not None and check_id != scope:
            raise InvalidCursorError("the cursor belongs to another accuracy check; start again without it")
        check_id = scope
    check = reads.latest_check(svc.engine, tenant, check_id)
    if check is None:
        if check_id is not None:
            raise NotFoundError(f"this tenant has no accuracy check {check_id!r}")
        return AccuracyPagePublic(check_id=None, checked_at=None, level=level, items=[], next_cursor=None)
    rows = reads.accuracy_rows(
        svc.engine, tenant, check.check_id, level, store_id=store_id, sku=sku, after=after, limit=limit
    )
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        next_cursor = cursors.encode(tenant, check.check_id, filters, [rows[-1]["store_id"], rows[-1]["sku"]])
    return AccuracyPagePublic(
        check_id=check.check_id,
        checked_at=check.checked_at,
        level=level,
        items=[AccuracyPublic.of(r) for r in rows],
        next_cursor=next_cursor,
    )


@router.get("/trend", response_model=AccuracyTrendPublic)
def accuracy_trend(
    *,
    caller: CurrentPrincipal,
    svc: ServicesDep,
    level: reads.Level = "total",
    store_id: Annotated[str | None, ID_QUERY] = None,
    sku: Annotated[str | None, ID_QUERY] = None,
    limit: Annotated[int, Query(ge=1, le=1000, description="newest checks to return")] = 90,
) -> AccuracyTrendPublic:
    """One key's accuracy over time: the tenant total, a store (``store_id``), or a SKU (both)."""
    needed = {"total": (), "store": ("store_id",), "sku": ("store_id", "sku")}[level]
    given = {"store_id": store_id, "sku": sku}
    if any(given[n] is None for n in needed) or any(
        v is not None for k, v in given.items() if k not in needed
    ):
        raise OrderNimbusError(
            f"level {level!r} needs exactly {', '.join(needed) or 'no key'} "
            "(store_id/sku as query parameters)"
        )
    series = MonitoringStore(engine=svc.engine).accuracy_series(
        caller.tenant_id, level, store_id or ALL, sku or ALL, limit=limit
    )
    return AccuracyTrendPublic(
        level=level, store_id=store_id, sku=sku, items=[AccuracyPublic.of(asdict(r)) for r in series]
    )
