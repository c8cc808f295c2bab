"""One pure-ASGI middleware for what every response needs: a request id, security headers, a body
size limit, one value per query parameter and a structured JSON access log line.

A query parameter given twice (``?cursor=a&cursor=b``) is refused with 422: every parameter of this
API takes one value, and FastAPI would silently keep the last one, so a client's bug would return
a page of some other cursor or SKU instead of an error.

Pure ASGI rather than ``BaseHTTPMiddleware``: it adds no task or stream copy per request, which
matters at the load this API is benchmarked at. The access log is one JSON object per request on
the ``ordernimbus.access`` logger (CloudWatch on Lambda parses it into fields); the tenant and the
caller are filled in by the auth dependency through ``request.state`` once the credential is
verified, so a refused request logs no tenant at all.
"""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import parse_qsl

from starlette.exceptions import HTTPException

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

REQUEST_ID_HEADER = "X-Request-ID"
_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
access_log = logging.getLogger("ordernimbus.access")

SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"strict-transport-security", b"max-age=63072000; includeSubDomains"),
    (b"cross-origin-resource-policy", b"same-origin"),
)
# JSON needs nothing from the page; HTML pages (the model card) send their own, looser policy.
API_CSP = b"default-src 'none'; frame-ancestors 'none'"
# The interactive docs load Swagger UI / ReDoc from their CDN: no CSP there rather than a broken page.
_DOCS_PATHS = ("/docs", "/redoc")


class BodyTooLarge(HTTPException):
    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body is larger than the limit of {limit:,} bytes for this route")
        self.limit = limit


class ApiMiddleware:
    """Request ids, security headers, per-route body limits and the access log, in one pass."""

    def __init__(self, app: ASGIApp, *, body_limit: Callable[[str], int]) -> None:
        self.app = app
        self.body_limit = body_limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = _request_id(scope)
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        path: str = scope.get("path", "")
        limit = self.body_limit(path)
        declared = _content_length(scope)
        outcome = {"status": 500, "bytes": 0}

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                outcome["status"] = message["status"]
                message["headers"] = _with_headers(list(message.get("headers", [])), request_id, path)
            elif message["type"] == "http.response.body":
                outcome["bytes"] += len(message.get("body", b""))
            await send(message)

        try:
            if declared is not None and declared > limit:
                detail = f"the request body is larger than the limit of {limit:,} bytes for this route"
                await _problem(
                    send_wrapper, 413, "Content Too Large", detail, path=path, request_id=request_id
                )
                return
            repeated = _repeated_query_key(scope)
            if repeated is not None:
                detail = f"query parameter {repeated!r} is given more than once; it takes one value"
                await _problem(
                    send_wrapper, 422, "Unprocessable Content", detail, path=path, request_id=request_id
                )
                return
            await self.app(scope, _limited(receive, limit), send_wrapper)
        finally:
            _log(scope, state, outcome, request_id, started)


def _limited(receive: Receive, limit: int) -> Receive:
    """``receive`` that raises :class:`BodyTooLarge` once more than ``limit`` bytes have arrived
    (a chunked upload has no Content-Length to refuse it by up front)."""
    seen = 0

    async def wrapped() -> Message:
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > limit:
                raise BodyTooLarge(limit)
        return message

    return wrapped


def _repeated_query_key(scope: Scope) -> str | None:
    query = scope.get("query_string", b"").decode("latin-1")
    if "&" not in query:
        return None
    seen: set[str] = set()
    for key, _ in parse_qsl(query, keep_blank_values=True):
        if key in seen:
            return key
        seen.add(key)
    return None


async def _problem(send: Send, status: int, title: str, detail: str, *, path: str, request_id: str) -> None:
    body = json.dumps(
        {
            "type": "about:blank",
            "title": title,
            "status": status,
            "detail": detail,
            "instance": path,
            "request_id": request_id,
        }
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/problem+json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def _with_headers(
    headers: list[tuple[bytes, bytes]], request_id: str, path: str
) -> list[tuple[bytes, bytes]]:
    present = {name.lower() for name, _ in headers}
    headers.append((b"x-request-id", request_id.encode()))
    headers.extend(h for h in SECURITY_HEADERS if h[0] not in present)
    if b"content-security-policy" not in present and not path.startswith(_DOCS_PATHS):
        headers.append((b"content-security-policy", API_CSP))
    if b"cache-control" not in present:
        headers.append((b"cache-control", b"no-store"))  # tenant data: never in a shared cache
    return headers


def _request_id(scope: Scope) -> str:
    """The caller's X-Request-ID when well-formed, else API Gateway's request id (Lambda), else new."""
    for name, value in scope.get("headers", []):
        if name == b"x-request-id":
            text = value.decode("latin-1")
            if _VALID_REQUEST_ID.fullmatch(text):
                return text
            break
    event = scope.get("aws.event")
    if isinstance(event, dict):
        gateway_id = (event.get("requestContext") or {}).get("requestId")
        if isinstance(gateway_id, str) and _VALID_REQUEST_ID.fullmatch(gateway_id):
            return gateway_id
    return uuid.uuid4().hex


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def _log(
    scope: Scope, state: dict[str, Any], outcome: dict[str, int], request_id: str, started: float
) -> None:
    if not access_log.isEnabledFor(logging.INFO):
        return
    client = scope.get("client")
    record = {
        "ts": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "request_id": request_id,
        "method": scope.get("method"),
        "path": scope.get("path"),
        "status": outcome["status"],
        "ms": round((time.perf_counter() - started) * 1000, 2),
        "bytes": outcome["bytes"],
        "client": client[0] if client else None,
        "tenant": state.get("tenant_id"),
        "caller": state.get("caller"),
    }
    access_log.info(json.dumps(record, separators=(",", ":")))
