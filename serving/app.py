"""The forecast API: ``create_app(settings)`` builds it; ``app`` is what uvicorn and Lambda serve.

Light by construction: FastAPI, pydantic, SQLAlchemy and our store/auth modules only, so the same
app runs under uvicorn on one machine and behind API Gateway through Mangum in a small package.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from ordernimbus import __version__
from ordernimbus.settings import Settings, get_settings
from serving.deps import API_KEY_HEADER, Services
from serving.problems import install_problem_handlers
from serving.routers import forecasts, health, keys

API_PREFIX = "/v1"


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
        description="Demand forecasts per store and SKU with p10/p50/p90 intervals. "
        f"Authenticate with the {API_KEY_HEADER} header; the key decides the tenant.",
        lifespan=lifespan,
    )
    app.state.services = services
    install_problem_handlers(app)
    if settings.api_cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(settings.api_cors_origins),
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=[API_KEY_HEADER, "If-None-Match", "Content-Type"],
            expose_headers=["ETag", "Retry-After"],
        )
    for router in (health.router, forecasts.router, keys.router):
        app.include_router(router, prefix=API_PREFIX)
    return app


app = create_app()
