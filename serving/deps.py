"""What a route may ask for: the stores, the calling principal, a role check.

The stores are opened on first use, not at import or app creation, so importing ``serving.app``
(uvicorn, Lambda cold start) touches no database, and a database that is down makes /v1/ready say
so instead of the process failing to start.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, HTTPException, Request, Security
from fastapi.security import APIKeyHeader
from sqlalchemy.engine import Engine

from inference.store.engine import create_engine_for
from inference.store.factory import open_forecast_store
from inference.store.sql import SqlForecastStore
from ordernimbus.settings import Settings
from serving.auth import ApiKeyStore, Principal, Role, parse_key_id
from serving.ratelimit import RateLimiter

API_KEY_HEADER = "X-API-Key"
_api_key = APIKeyHeader(name=API_KEY_HEADER, auto_error=False, description="onk_<key_id>_<secret>")
_CHALLENGE = {"WWW-Authenticate": f'ApiKey header="{API_KEY_HEADER}"'}


class Services:
    """The app's long-lived objects: one engine shared by the forecast store and the key store."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.limiter = RateLimiter(settings.api_rate_limit_per_minute)
        self._lock = threading.Lock()
        self._engine: Engine | None = None
        self._store: SqlForecastStore | None = None
        self._keys: ApiKeyStore | None = None

    def store(self) -> SqlForecastStore:
        self._open()
        assert self._store is not None
        return self._store

    def keys(self) -> ApiKeyStore:
        self._open()
        assert self._keys is not None
        return self._keys

    def _open(self) -> None:
        if self._keys is not None:
            return
        with self._lock:
            if self._keys is not None:
                return
            engine = create_engine_for(self.settings.db_url)
            try:
                store = open_forecast_store(self.settings, engine=engine)
                keys = ApiKeyStore(self.settings.db_url, engine=engine)
            except BaseException:
                engine.dispose()
                raise
            self._engine, self._store, self._keys = engine, store, keys

    def close(self) -> None:
        with self._lock:
            if self._engine is not None:
                self._engine.dispose()
            self._engine = self._store = self._keys = None


def services(request: Request) -> Services:
    return request.app.state.services  # type: ignore[no-any-return]


ServicesDep = Annotated[Services, Depends(services)]


def forecast_store(svc: ServicesDep) -> SqlForecastStore:
    return svc.store()


def key_store(svc: ServicesDep) -> ApiKeyStore:
    return svc.keys()


def principal(svc: ServicesDep, api_key: Annotated[str | None, Security(_api_key)]) -> Principal:
    """The verified caller; 401 for a missing, malformed, unknown, wrong or revoked key."""
    if not api_key:
        raise HTTPException(401, f"missing {API_KEY_HEADER} header", headers=_CHALLENGE)
    key_id = parse_key_id(api_key)
    if key_id is None:
        raise HTTPException(401, "invalid or revoked API key", headers=_CHALLENGE)
    wait = svc.limiter.acquire(key_id)
    if wait > 0:
        raise HTTPException(
            429,
            f"rate limit of {svc.settings.api_rate_limit_per_minute} requests per minute exceeded",
            headers={"Retry-After": str(max(1, round(wait + 0.5)))},
        )
    found = svc.keys().verify(api_key)
    if found is None:
        raise HTTPException(401, "invalid or revoked API key", headers=_CHALLENGE)
    return found


CurrentPrincipal = Annotated[Principal, Depends(principal)]
Store = Annotated[SqlForecastStore, Depends(forecast_store)]
Keys = Annotated[ApiKeyStore, Depends(key_store)]


def require_role(*roles: Role) -> Callable[[Principal], Principal]:
    """A dependency admitting only callers whose key has one of ``roles`` (no implicit hierarchy)."""
    allowed = frozenset(roles)

    def check(caller: CurrentPrincipal) -> Principal:
        if caller.role not in allowed:
            raise HTTPException(
                403,
                f"this API key has role {caller.role!r}; this action needs {' or '.join(sorted(allowed))}",
            )
        return caller

    return check
