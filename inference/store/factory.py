"""Opens the forecast store the settings name; the one place a URL becomes a store."""

from __future__ import annotations

from sqlalchemy.engine import Engine

from inference.store.sql import SqlForecastStore
from ordernimbus.settings import Settings


def open_forecast_store(settings: Settings, *, engine: Engine | None = None) -> SqlForecastStore:
    """The store at ``settings.db_url`` keeping ``settings.forecast_sets_kept`` sets per tenant.

    Pass ``engine`` to share one connection pool with the API key store (the API does).
    """
    return SqlForecastStore(settings.db_url, keep_sets=settings.forecast_sets_kept, engine=engine)
