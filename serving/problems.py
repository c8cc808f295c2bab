"""RFC 7807 problem responses: the API's one way of saying no.

Every error leaves as ``application/problem+json`` with type, title, status, detail and instance:
HTTP errors (401, 403, 404, 405, 429, 503), request validation (422, with the failing fields) and
our own ``OrderNimbusError`` family, which carries its HTTP status and title. Anything else is a
500 whose detail says nothing about internals; the traceback goes to the log.
"""

from __future__ import annotations

import logging
import re
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ordernimbus.errors import OrderNimbusError

PROBLEM_JSON = "application/problem+json"
log = logging.getLogger(__name__)


def problem(
    request: Request,
    status: int,
    detail: str,
    *,
    title: str | None = None,
    type_: str = "about:blank",
    headers: dict[str, str] | None = None,
    **extensions: Any,
) -> JSONResponse:
    body = {
        "type": type_,
        "title": title or _phrase(status),
        "status": status,
        "detail": detail,
        "instance": request.url.path,
        **extensions,
    }
    request_id = request.scope.get("state", {}).get("request_id")
    if request_id:
        body["request_id"] = request_id
    return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM_JSON)


def install_problem_handlers(app: FastAPI) -> None:
    app.add_exception_handler(StarletteHTTPException, _http_error)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _validation_error)  # type: ignore[arg-type]
    app.add_exception_handler(OrderNimbusError, _domain_error)  # type: ignore[arg-type]
    app.add_exception_handler(Exception, _unexpected_error)


async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    detail = exc.detail if isinstance(exc.detail, str) else _phrase(exc.status_code)
    return problem(request, exc.status_code, detail, headers=dict(exc.headers or {}))


async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    errors = [
        {
            "loc": [str(part) for part in err.get("loc", ())],
            "msg": str(err.get("msg", "")),
            "type": err.get("type"),
        }
        for err in exc.errors()
    ]
    detail = "; ".join(f"{'.'.join(e['loc'])}: {e['msg']}" for e in errors[:5]) or "invalid request"
    return problem(request, 422, detail, title="Request validation failed", errors=errors)


async def _domain_error(request: Request, exc: OrderNimbusError) -> JSONResponse:
    slug = re.sub(r"(?<!^)(?=[A-Z])", "-", type(exc).__name__).lower().removesuffix("-error")
    return problem(
        request,
        exc.status,
        str(exc),
        title=exc.title,
        type_=f"urn:ordernimbus:problem:{slug}",
        **_extensions(exc),
    )


def _extensions(exc: OrderNimbusError) -> dict[str, Any]:
    """Machine-readable parts of an error: the located input problems, the conflicting job."""
    extra: dict[str, Any] = {}
    found = getattr(exc, "problems", None)
    if isinstance(found, list):
        extra["problems"] = [
            {k: getattr(p, k, None) for k in ("file", "row", "column", "message")} for p in found
        ]
        extra["total"] = getattr(exc, "total", len(found))
    job_id = getattr(exc, "job_id", None)
    if isinstance(job_id, str):
        extra["job_id"] = job_id
    return extra


async def _unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    """500, and the connection closed: Starlette re-raises the error to the server after this
    response, and a client that reused the connection saw its next request reset (seen once against
    uvicorn, with a valid request after a 500); a client told to close opens a fresh one instead."""
    log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return problem(
        request, 500, "an unexpected error occurred; it has been logged", headers={"Connection": "close"}
    )


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"
