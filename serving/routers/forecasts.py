"""Forecast reads for the caller's tenant; the tenant comes from the credential, never the request.

These are the hottest routes, and each does a few indexed reads of well under a millisecond, so
they are coroutines that read inline: a thread-pool hand-off per request cost more CPU than the
reads themselves (measured: about 2.5 instead of 3-4 ms of CPU per request in-process). Routes
with slow work (uploads, model cards, jobs) stay plain functions that run in the thread pool.

``/forecasts`` pages through the current set; ``/forecasts/series`` is one series' forecast with its
recent actuals for a chart; ``/forecasts/current`` is the set's metadata with its realised accuracy.
A category filter is not offered: the sales contract (DESIGN.md §4) has no category attribute yet.
"""

from __future__ import annotations

import hashlib
from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Header, Query, Response
from pydantic import BaseModel

from inference.store.base import ForecastSetNotFoundError
from serving import caching, reads
from serving.deps import CurrentPrincipal, ServicesDep, Store
from serving.params import ID_QUERY, IsoDate
from serving.schemas import (
    AccuracyPublic,
    CurrentSetPublic,
    ForecastItemPublic,
    ForecastPagePublic,
    ForecastPointPublic,
    ForecastSetPublic,
    SalesPointPublic,
    SeriesForecastPublic,
)

router = APIRouter(prefix="/forecasts", tags=["forecasts"])


@router.get("", response_model=ForecastPagePublic, responses={304: {"description": "not modified"}})
async def list_forecasts(
    *,
    caller: CurrentPrincipal,
    store: Store,
    store_id: Annotated[str | None, ID_QUERY] = None,
    sku: Annotated[str | None, ID_QUERY] = None,
    start: Annotated[IsoDate | None, Query(description="first target_date, inclusive")] = None,
    end: Annotated[IsoDate | None, Query(description="last target_date, inclusive")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: Annotated[str | None, Query(max_length=2048)] = None,
    if_none_match: Annotated[str | None, Header()] = None,
) -> ForecastPagePublic | Response:
    """One page of the current forecast set (or of the set a cursor was issued for)."""
    page = store.query(
        caller.tenant_id, store_id=store_id, sku=sku, start=start, end=end, limit=limit, cursor=cursor
    )
    fs = page.forecast_set
    assert fs is not None  # query raises ForecastSetNotFoundError rather than return no set
    etag = caching.strong_etag("forecasts", fs.set_id, store_id, sku, start, end, limit, cursor)
    if caching.matches(if_none_match, etag):
        return caching.not_modified(etag)
    body = ForecastPagePublic(
        forecast_set=ForecastSetPublic.of(fs),
        items=[ForecastItemPublic.of(row) for row in page.rows],
        next_cursor=page.next_cursor,
    )
    return _json(body, etag)


@router.get("/current", response_model=CurrentSetPublic, responses={304: {"description": "not modified"}})
async def current_forecast_set(
    *,
    caller: CurrentPrincipal,
    store: Store,
    svc: ServicesDep,
    response: Response,
    if_none_match: Annotated[str | None, Header()] = None,
) -> CurrentSetPublic | Response:
    """Metadata of the tenant's current forecast set: model version, coverage, when it was made,
    and its realised accuracy once actuals for its dates have been scored (else null)."""
    fs = store.current_set(caller.tenant_id)
    if fs is None:
        raise _no_set(caller.tenant_id)
    scored = reads.total_accuracy_of_set(svc.engine, caller.tenant_id, fs.set_id)
    etag = caching.strong_etag("current", fs.set_id, scored["check_id"] if scored else None)
    if caching.matches(if_none_match, etag):
        return caching.not_modified(etag)
    response.headers.update(caching.cache_headers(etag))
    base = ForecastSetPublic.of(fs).model_dump()
    return CurrentSetPublic(**base, accuracy=AccuracyPublic.of(scored) if scored else None)


@router.get(
    "/series",
    response_model=SeriesForecastPublic,
    responses={304: {"description": "not modified"}, 404: {"description": "no forecast for this series"}},
)
async def series_forecast(
    *,
    caller: CurrentPrincipal,
    store: Store,
    svc: ServicesDep,
    store_id: Annotated[str, ID_QUERY],
    sku: Annotated[str, ID_QUERY],
    history_days: Annotated[
        int, Query(ge=0, le=reads.MAX_HISTORY_DAYS, description="days of actuals before the forecast")
    ] = 90,
    if_none_match: Annotated[str | None, Header()] = None,
) -> SeriesForecastPublic | Response:
    """One series' forecast (every horizon day) with its recent actuals, ready to chart."""
    page = store.query(caller.tenant_id, store_id=store_id, sku=sku, limit=1000)
    fs = page.forecast_set
    assert fs is not None
    if not page.rows:
        raise ForecastSetNotFoundError(
            f"the current forecast set has no forecast for store_id {store_id!r}, sku {sku!r}"
        )
    first = page.rows[0].target_date
    history = (
        reads.sales(svc.engine, caller.tenant_id, store_id, sku, start=first - timedelta(days=history_days),
                    end=first - timedelta(days=1), limit=history_days)
        if history_days else []
    )  # fmt: skip
    digest = hashlib.sha256(
        repr([(h["date"], h["units"], h["unit_price"]) for h in history]).encode()
    ).hexdigest()
    etag = caching.strong_etag("series", fs.set_id, store_id, sku, history_days, digest)
    if caching.matches(if_none_match, etag):
        return caching.not_modified(etag)
    body = SeriesForecastPublic(
        store_id=store_id,
        sku=sku,
        forecast_set=ForecastSetPublic.of(fs),
        forecast=[ForecastPointPublic.of(row) for row in page.rows],
        history=[SalesPointPublic(**h) for h in history],
    )
    return _json(body, etag)


def _json(body: BaseModel, etag: str) -> Response:
    """The body, serialised once: it was built from typed store rows through the response model,
    so FastAPI's second validation of it would only cost time on the hottest routes."""
    return Response(
        body.model_dump_json(), media_type="application/json", headers=caching.cache_headers(etag)
    )


def _no_set(tenant: str) -> ForecastSetNotFoundError:
    return ForecastSetNotFoundError(
        f"tenant {tenant!r} has no complete forecast set yet: run the forecast pipeline first"
    )
