"""Forecast reads for the caller's tenant; the tenant comes from the API key, never the request."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Header, Query, Response

from inference.store.base import ForecastSetNotFoundError
from serving import caching
from serving.deps import CurrentPrincipal, Store
from serving.schemas import ForecastItemPublic, ForecastPagePublic, ForecastSetPublic

router = APIRouter(prefix="/forecasts", tags=["forecasts"])
_ID = Query(min_length=1, max_length=128)


@router.get("", response_model=ForecastPagePublic, responses={304: {"description": "not modified"}})
def list_forecasts(
    *,
    caller: CurrentPrincipal,
    store: Store,
    response: Response,
    store_id: Annotated[str | None, _ID] = None,
    sku: Annotated[str | None, _ID] = None,
    start: Annotated[date | None, Query(description="first target_date, inclusive")] = None,
    end: Annotated[date | None, Query(description="last target_date, inclusive")] = None,
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
    response.headers.update(caching.cache_headers(etag))
    return ForecastPagePublic(
        forecast_set=ForecastSetPublic.of(fs),
        items=[ForecastItemPublic.of(row) for row in page.rows],
        next_cursor=page.next_cursor,
    )


@router.get("/current", response_model=ForecastSetPublic, responses={304: {"description": "not modified"}})
def current_forecast_set(
    *,
    caller: CurrentPrincipal,
    store: Store,
    response: Response,
    if_none_match: Annotated[str | None, Header()] = None,
) -> ForecastSetPublic | Response:
    """Metadata of the tenant's current forecast set: model version, coverage, when it was made."""
    fs = store.current_set(caller.tenant_id)
    if fs is None:
        raise ForecastSetNotFoundError(
            f"tenant {caller.tenant_id!r} has no complete forecast set yet: run the forecast pipeline first"
        )
    etag = caching.strong_etag("current", fs.set_id)
    if caching.matches(if_none_match, etag):
        return caching.not_modified(etag)
    response.headers.update(caching.cache_headers(etag))
    return ForecastSetPublic.of(fs)
