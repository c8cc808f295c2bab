"""Opaque keyset-pagination cursors: where a page ended, bound to who asked and what they asked.

A cursor is urlsafe base64 of a small JSON document holding the tenant, the forecast set, the last
(store_id, sku, target_date) returned and a fingerprint of the filters. It is not a secret: the
tenant always comes from the credential and a cursor only ever narrows what that tenant may read,
so binding is about catching client mistakes (a cursor reused across tenants, sets or filters)
with a clear error instead of a silently wrong page.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from dataclasses import dataclass
from datetime import date
from typing import Any

from inference.store.base import InvalidCursorError

MAX_CURSOR_LENGTH = 2048
_VERSION = 1


@dataclass(frozen=True)
class CursorKey:
    set_id: str
    store_id: str
    sku: str
    target_date: date


def filters_fingerprint(**filters: str | date | None) -> str:
    """A short stable digest of the query's filters (dates as ISO text)."""
    normal = {k: (v.isoformat() if isinstance(v, date) else v) for k, v in sorted(filters.items())}
    return hashlib.sha256(json.dumps(normal, separators=(",", ":")).encode()).hexdigest()[:16]


def encode_cursor(tenant: str, key: CursorKey, fingerprint: str) -> str:
    doc = {
        "v": _VERSION, "t": tenant, "s": key.set_id,
        "k": [key.store_id, key.sku, key.target_date.isoformat()], "f": fingerprint,
    }  # fmt: skip
    raw = json.dumps(doc, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def decode_cursor(cursor: str, tenant: str, fingerprint: str) -> CursorKey:
    """The position in ``cursor``, after checking it was issued to ``tenant`` for these filters."""
    doc = _parse(cursor)
    if doc["t"] != tenant:
        raise InvalidCursorError("the cursor was not issued for this tenant; start again without a cursor")
    if doc["f"] != fingerprint:
        raise InvalidCursorError(
            "the cursor was issued for other filters (store_id, sku, start, end): repeat the same "
            "filters with it, or start again without a cursor"
        )
    store_id, sku, day = doc["k"]
    return CursorKey(doc["s"], store_id, sku, date.fromisoformat(day))


def _parse(cursor: str) -> dict[str, Any]:
    malformed = InvalidCursorError(
        "malformed cursor: pass next_cursor back exactly as it was returned, or omit it"
    )
    if not isinstance(cursor, str) or not 0 < len(cursor) <= MAX_CURSOR_LENGTH:
        raise malformed
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        doc = json.loads(raw)
        key = doc["k"]
        ok = (
            doc["v"] == _VERSION
            and all(isinstance(doc[f], str) for f in ("t", "s", "f"))
            and isinstance(key, list)
            and len(key) == 3
            and all(isinstance(part, str) for part in key)
        )
        if ok:
            date.fromisoformat(key[2])
    except (binascii.Error, ValueError, TypeError, KeyError, UnicodeDecodeError):
        raise malformed from None
    if not ok:
        raise malformed
    return dict(doc)
