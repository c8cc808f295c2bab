"""Keyset cursors for the API's list routes other than forecasts (inventory, accuracy).

The same idea as :mod:`inference.store.keyset`: an opaque, urlsafe-base64 JSON document holding
where the page ended, bound to the tenant, the list it came from (including the forecast set or
accuracy check it read) and a digest of the filters, so a cursor reused across tenants, lists or
filters is refused with a clear message instead of yielding a silently wrong page.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from inference.store.base import InvalidCursorError
from inference.store.keyset import MAX_CURSOR_LENGTH, encode_document, parse_document


def fingerprint(**filters: Any) -> str:
    normal = {k: (None if v is None else str(v)) for k, v in sorted(filters.items())}
    return hashlib.sha256(json.dumps(normal, separators=(",", ":")).encode()).hexdigest()[:16]


def encode(tenant: str, scope: str, filters: str, key: list[str]) -> str:
    return encode_document({"t": tenant, "s": scope, "f": filters, "k": key})


def decode(cursor: str, tenant: str, filters: str, width: int) -> tuple[str, list[str]]:
    """(scope, key) of ``cursor`` after checking it was issued to ``tenant`` for these filters."""
    doc = parse_document(cursor, width)
    if doc["t"] != tenant:
        raise InvalidCursorError("the cursor was not issued for this tenant; start again without a cursor")
    if doc["f"] != filters:
        raise InvalidCursorError(
            "the cursor was issued for other filters: repeat the same filters with it, "
            "or start again without one"
        )
    return doc["s"], list(doc["k"])


__all__ = ["MAX_CURSOR_LENGTH", "decode", "encode", "fingerprint"]
