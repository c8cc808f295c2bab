"""What a route may ask for: the stores, the calling principal, a role check.

The stores are opened on first use, not at import or app creation, so importing ``serving.app``
(uvicorn, Lambda cold start) touches no database, and a database that is down makes /v1/ready say
so instead of the process failing to start.
"""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, HTTPException, Request, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.engine import Engine
from starlette.concurrency import run_in_threadpool

from inference.store.engine import create_engine_for
from inference.store.factory import open_forecast_store
from inference.store.jobs import JobStore
from inference.store.sql import SqlForecastStore
from models.registry.base import ModelRegistry
from ordernimbus.settings import Settings
from serving.auth import ROLES, ApiKeyStore, Principal, Role, parse_key_id
from serving.ratelimit import RateLimiter

if TYPE_CHECKING:
    from serving.jobrunner import JobRunner
    from serving.jwt_auth import JwtVerifier

API_KEY_HEADER = "X-API-Key"
_api_key = APIKeyHeader(name=API_KEY_HEADER, auto_error=False, description="onk_<key_id>_<secret>")
_bearer = HTTPBearer(
    auto_error=False, description="a Cognito-style RS256 JWT (when the deployment configures a JWKS file)"
)
_CHALLENGE = {"WWW-Authenticate": f'ApiKey header="{API_KEY_HEADER}", Bearer'}


class Services:
    """The app's long-lived objects: one engine shared by the forecast, key and job stores."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.limiter = RateLimiter(settings.api_rate_limit_per_minute)
        self.guesses = RateLimiter(settings.api_rate_limit_per_minute)  # scrypt runs per key id
        self.tenant_limiter = RateLimiter(settings.api_rate_limit_per_tenant_per_minute)
        self.jwt: JwtVerifier | None = None
        if settings.api_jwt_jwks_path is not None:  # pyjwt + cryptography load only when tokens are on
            from serving.jwt_auth import JwtVerifier

            self.jwt = JwtVerifier(settings)
        self._lock = threading.Lock()
        self._engine: Engine | None = None
        self._store: SqlForecastStore | None = None
        self._keys: ApiKeyStore | None = None
        self._jobs: JobStore | None = None
        self._registry: ModelRegistry | None = None
        self._runner: JobRunner | None = None

    def store(self) -> SqlForecastStore:
        self._open()
        assert self._store is not None
        return self._store

    def keys(self) -> ApiKeyStore:
        self._open()
        assert self._keys is not None
        return self._keys

    def jobs(self) -> JobStore:
        self._open()
        assert self._jobs is not None
        return self._jobs

    @property
    def engine(self) -> Engine:
        self._open()
        assert self._engine is not None
        return self._engine

    def registry(self) -> ModelRegistry:
        """The model registry (its own database; SageMaker on AWS), opened on first use."""
        if self._registry is None:
            from models.registry.factory import open_registry

            with self._lock:
                if self._registry is None:
                    self._registry = open_registry(self.settings)
        return self._registry

    def runner(self) -> JobRunner:
        """Runs API-started jobs in this process (see :mod:`serving.jobrunner`)."""
        if self._runner is None:
            from serving.jobrunner import JobRunner

            jobs = self.jobs()
            with self._lock:
                if self._runner is None:
                    self._runner = JobRunner(self.settings, jobs)
        return self._runner

    def _open(self) -> None:
        if self._jobs is not None:
            return
        with self._lock:
            if self._jobs is not None:
                return
            engine = create_engine_for(self.settings.db_url)
            try:
                store = open_forecast_store(self.settings, engine=engine)
                keys = ApiKeyStore(self.settings.db_url, engine=engine)
                jobs = JobStore(self.settings.db_url, engine=engine)
            except BaseException:
                engine.dispose()
                raise
            self._engine, self._store, self._keys, self._jobs = engine, store, keys, jobs

    def close(self) -> None:
        with self._lock:
            if self._engine is not None:
                self._engine.dispose()
            close = getattr(self._registry, "close", None)
            if close is not None:
                close()
            self._engine = self._store = self._keys = self._jobs = self._registry = self._runner = None


# The getters below are coroutines although they do no I/O worth awaiting: FastAPI runs every
# plain ``def`` dependency in the thread pool, and those hand-offs were most of a request's cost
# (measured with the load benchmark's route: 4 thread hops per request instead of 2).
async def services(request: Request) -> Services:
    return request.app.state.services  # type: ignore[no-any-return]


ServicesDep = Annotated[Services, Depends(services)]


async def forecast_store(svc: ServicesDep) -> SqlForecastStore:
    return svc.store()


async def key_store(svc: ServicesDep) -> ApiKeyStore:
    return svc.keys()


async def job_store(svc: ServicesDep) -> JobStore:
    return svc.jobs()


async def registry(svc: ServicesDep) -> ModelRegistry:
    return svc.registry()


async def principal(
    request: Request,
    svc: ServicesDep,
    api_key: Annotated[str | None, Security(_api_key)],
    bearer: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)],
) -> Principal:
    """The verified caller: 401 for a missing, malformed, unknown, wrong, revoked or expired
    credential; 429 past the key's or the tenant's request budget.

    A coroutine: the usual work is one primary-key read, cheaper inline than a thread-pool hop;
    only a key not verified recently (scrypt, tens of ms) goes to a worker thread.
    """
    if len(request.headers.getlist(API_KEY_HEADER)) > 1:  # which one? never the first by accident
        raise HTTPException(401, f"send one {API_KEY_HEADER} header, not several", headers=_CHALLENGE)
    if api_key:
        found = await _from_api_key(svc, api_key)
    elif bearer is not None and bearer.credentials:
        found = _from_token(svc, bearer.credentials)
    else:
        raise HTTPException(401, f"missing {API_KEY_HEADER} header", headers=_CHALLENGE)
    _limit(svc.tenant_limiter, f"tenant:{found.tenant_id}", svc.settings.api_rate_limit_per_tenant_per_minute,
           "this tenant's")  # fmt: skip
    request.state.tenant_id = found.tenant_id
    request.state.caller = found.who
    return found


async def _from_api_key(svc: Services, api_key: str) -> Principal:
    key_id = parse_key_id(api_key)
    if key_id is None:
        raise HTTPException(401, "invalid or revoked API key", headers=_CHALLENGE)
    keys = svc.keys()
    if keys.probably_cached(api_key):  # verified before: no scrypt, so nothing to bound
        found = keys.verify(api_key)
    else:
        # Guessing secrets for a known key id costs scrypt: bounded per key id on a bucket of its
        # own. On the key's own bucket, ten wrong secrets used to lock its holder out (key ids are
        # not secret: jobs and the audit log show them); now they spend only the guessers' budget.
        _limit(
            svc.guesses,
            key_id,
            svc.settings.api_rate_limit_per_minute,
            "unverified attempts for this key id's",
        )
        found = await run_in_threadpool(keys.verify, api_key)
    if found is None:
        raise HTTPException(401, "invalid or revoked API key", headers=_CHALLENGE)
    _limit(svc.limiter, key_id, svc.settings.api_rate_limit_per_minute, "this key's")
    return found


def _from_token(svc: Services, token: str) -> Principal:
    if svc.jwt is None:
        raise HTTPException(401, "bearer tokens are not enabled on this deployment", headers=_CHALLENGE)
    from serving.jwt_auth import TokenRejected

    try:
        identity = svc.jwt.verify(token)
    except TokenRejected as exc:
        raise HTTPException(401, str(exc), headers=_CHALLENGE) from None
    if not identity.roles:
        raise HTTPException(403, f"the bearer token grants no role: expected a group of {', '.join(ROLES)}")
    subject = identity.subject[:120]
    _limit(svc.limiter, f"jwt:{subject}", svc.settings.api_rate_limit_per_minute, "this user's")
    role = next(r for r in ROLES if r in identity.roles)
    return Principal(identity.tenant_id, role, f"jwt:{subject}"[:32], identity.roles, f"user:{subject}")


def _limit(limiter: RateLimiter, key: str, per_minute: int, whose: str) -> None:
    wait = limiter.acquire(key)
    if wait > 0:
        raise HTTPException(
            429,
            f"rate limit of {per_minute} requests per minute ({whose}) exceeded",
            headers={"Retry-After": str(max(1, round(wait + 0.5)))},
        )


CurrentPrincipal = Annotated[Principal, Depends(principal)]
Store = Annotated[SqlForecastStore, Depends(forecast_store)]
Keys = Annotated[ApiKeyStore, Depends(key_store)]
Jobs = Annotated[JobStore, Depends(job_store)]
Registry = Annotated[ModelRegistry, Depends(registry)]


def require_role(*roles: Role) -> Callable[[Principal], Awaitable[Principal]]:
    """A dependency admitting only callers whose key has one of ``roles`` (no implicit hierarchy)."""
    allowed = frozenset(roles)

    async def check(caller: CurrentPrincipal) -> Principal:
        if not caller.holds(allowed):
            held = ", ".join(sorted({caller.role, *caller.roles}))
            raise HTTPException(
                403, f"this credential has role {held}; this action needs {' or '.join(sorted(allowed))}"
            )
        return caller

    return check
