"""Strong ETags and conditional GETs for forecast reads.

A forecast set never changes once complete, so (set id + normalised query) identifies a response
exactly: the ETag is a digest of those, and a client that sends it back in If-None-Match gets a 304
without a body. Responses are private (they belong to one tenant) and vary by API key.
"""

from __future__ import annotations

import hashlib

from starlette.responses import Response

CACHE_CONTROL = "private, max-age=60"
REPRESENTATION = "v1"  # bump when the response format changes, so old ETags stop matching


def strong_etag(*parts: object) -> str:
    text = "\x1f".join([REPRESENTATION, *("" if p is None else str(p) for p in parts)])
    return '"' + hashlib.sha256(text.encode()).hexdigest()[:32] + '"'


def matches(if_none_match: str | None, etag: str) -> bool:
    """RFC 9110 If-None-Match: weak comparison, ``*`` matches any current representation."""
    if not if_none_match:
        return False
    candidates = [c.strip() for c in if_none_match.split(",")]
    return any(c == "*" or c.removeprefix("W/") == etag for c in candidates)


def cache_headers(etag: str) -> dict[str, str]:
    return {"ETag": etag, "Cache-Control": CACHE_CONTROL, "Vary": "X-API-Key"}


def not_modified(etag: str) -> Response:
    return Response(status_code=304, headers=cache_headers(etag))
