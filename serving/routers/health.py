"""Liveness (no dependencies at all) and readiness (the database answers)."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException

from ordernimbus import __version__
from serving.deps import ServicesDep
from serving.schemas import HealthPublic

router = APIRouter(tags=["health"])


@router.api_route("/health", methods=["GET", "HEAD"], response_model=HealthPublic)  # HEAD: load balancers
def health() -> HealthPublic:
    return HealthPublic(status="ok", version=__version__)


@router.api_route(
    "/ready",
    methods=["GET", "HEAD"],
    response_model=HealthPublic,
    responses={503: {"description": "database unreachable"}},
)
def ready(svc: ServicesDep) -> HealthPublic:
    try:
        svc.store().ping()
    except Exception as exc:  # any failure to reach the database means "not ready"
        raise HTTPException(503, f"database unreachable ({type(exc).__name__})") from None
    return HealthPublic(status="ready", version=__version__)
