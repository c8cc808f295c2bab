"""The forecast API: ``create_app(settings)`` builds it; ``app`` is what uvicorn and Lambda serve.

Light by construction: FastAPI, pydantic, SQLAlchemy and our store/auth modules only, so the same
app runs under uvicorn on one machine and behind API Gateway through Mangum in a small package.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from ordernimbus import __version__
from ordernimbus.settings import Settings, get_settings
from serving.deps import API_KEY_HEADER, Services
from serving.middleware import REQUEST_ID_HEADER, ApiMiddleware
from serving.openapi import install_openapi
from serving.problems import install_problem_handlers
from serving.routers import (
    accuracy,
    data,
    explanations,
    forecasts,
    health,
    inventory,
    jobs,
    keys,
    outages,
    registry,
)  # fmt: skip

API_PREFIX = "/v1"
ROUTERS = (
    health.router, forecasts.router, jobs.router, accuracy.router, explanations.router, inventory.router,
    data.router, outages.router, registry.router, keys.router,
)  # fmt: skip
# JSON bodies here are a few hundred bytes; only uploads may be large (settings.api_max_body_bytes).
SMALL_BODY_BYTES = 64 * 1024
WEBHOOK_BODY_BYTES = 5 * 1024 * 1024


def create_app(settings: Settings | None = None) -> FastAPI:
    """The app for ``settings`` (the process's settings when omitted); stores open on first use."""
    settings = settings or get_settings()
    services = Services(settings)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        services.close()

    app = FastAPI(
        title="OrderNimbus forecast API",
        version=__version__,
        description="Demand forecasts per store and SKU with p10/p50/p90 intervals, realised accuracy, "
        "SHAP drivers, inventory advice, uploads, jobs and the model registry. Authenticate with the "
        f"{API_KEY_HEADER} header (or a bearer token where enabled): the credential decides the tenant. "
        "Errors are RFC 7807 problem documents.",
        lifespan=lifespan,
    )
    app.state.services = services
    install_problem_handlers(app)
    install_openapi(app)
    if settings.api_cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(settings.api_cors_origins),
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=[
                API_KEY_HEADER,
                "Authorization",
                "If-None-Match",
                "Content-Type",
                REQUEST_ID_HEADER,
            ],
            expose_headers=["ETag", "Retry-After", "Location", REQUEST_ID_HEADER],
        )
    app.add_middleware(ApiMiddleware, body_limit=_body_limits(settings))  # outermost: sees every response
    for router in ROUTERS:
        app.include_router(router, prefix=API_PREFIX)
    return app


def _body_limits(settings: Settings) -> Callable[[str], int]:
    uploads = f"{API_PREFIX}/uploads"

    def limit(path: str) -> int:
        if path == f"{uploads}/shopify":
            return WEBHOOK_BODY_BYTES
        return settings.api_max_body_bytes if path == uploads else SMALL_BODY_BYTES

    return limit


app = create_app()
