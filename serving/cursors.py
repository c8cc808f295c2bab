"""Keyset cursors for the API's list routes other than forecasts (inventory, accuracy).

The same idea as :mod:`inference.store.keyset`: an opaque, urlsafe-base64 JSON document holding
where the page ended, bound to the tenant, the list it came from (including the forecast set or
accuracy check it read) and a digest of the filters, so a cursor reused across tenants, lists or
filters is refused with a clear message instead of yielding a silently wrong page.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from typing import Any

from inference.store.base import InvalidCursorError

MAX_CURSOR_LENGTH = 2048


def fingerprint(**filters: Any) -> str:
    normal = {k: (None if v is None else str(v)) for k, v in sorted(filters.items())}
    return hashlib.sha256(json.dumps(normal, separators=(",", ":")).encode()).hexdigest()[:16]


def encode(tenant: str, scope: str, filters: str, key: list[str]) -> str:
    doc = {"v": 1, "t": tenant, "s": scope, "f": filters, "k": key}
    raw = json.dumps(doc, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def decode(cursor: str, tenant: str, filters: str, width: int) -> tuple[str, list[str]]:
    """(scope, key) of ``cursor`` after checking it was issued to ``tenant`` for these filters."""
    malformed = InvalidCursorError(
        "malformed cursor: pass next_cursor back exactly as it was returned, or omit it"
    )
    if not 0 < len(cursor) <= MAX_CURSOR_LENGTH:
        raise malformed
    try:
        doc = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        scope, key = doc["s"], doc["k"]
        ok = (
            doc["v"] == 1
            and isinstance(scope, str)
            and isinstance(key, list)
            and len(key) == width
            and all(isinstance(part, str) for part in key)
        )
    except (binascii.Error, ValueError, TypeError, KeyError, UnicodeDecodeError):
        raise malformed from None
    if not ok:
        raise malformed
    if doc.get("t") != tenant:
        raise InvalidCursorError("the cursor was not issued for this tenant; start again without a cursor")
    if doc.get("f") != filters:
        raise InvalidCursorError(
            "the cursor was issued for other filters: repeat the same filters with it, "
            "or start again without one"
        )
    return scope, key
