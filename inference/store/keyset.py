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
from ordernimbus.text import control_free

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
    return encode_document(
        {
            "t": tenant,
            "s": key.set_id,
            "k": [key.store_id, key.sku, key.target_date.isoformat()],
            "f": fingerprint,
        }
    )


def encode_document(doc: dict[str, Any]) -> str:
    """A cursor document (tenant ``t``, scope ``s``, filters ``f``, key ``k``) as urlsafe base64."""
    raw = json.dumps({"v": _VERSION, **doc}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def decode_cursor(cursor: str, tenant: str, fingerprint: str) -> CursorKey:
    """The position in ``cursor``, after checking it was issued to ``tenant`` for these filters."""
    doc = parse_document(cursor, width=3)
    try:
        day = date.fromisoformat(doc["k"][2])
    except ValueError:
        raise _malformed() from None
    if doc["t"] != tenant:
        raise InvalidCursorError("the cursor was not issued for this tenant; start again without a cursor")
    if doc["f"] != fingerprint:
        raise InvalidCursorError(
            "the cursor was issued for other filters (store_id, sku, start, end): repeat the same "
            "filters with it, or start again without a cursor"
        )
    store_id, sku, _ = doc["k"]
    return CursorKey(doc["s"], store_id, sku, day)


def parse_document(cursor: str, width: int) -> dict[str, Any]:
    """The document in ``cursor``: text fields a database can take and a key of ``width`` parts.

    A cursor is client input: edited by hand, it reached the queries with a NUL (PostgreSQL refuses
    it in text) or a lone surrogate (no driver can encode it), and the API answered 500.
    """
    if not isinstance(cursor, str) or not 0 < len(cursor) <= MAX_CURSOR_LENGTH:
        raise _malformed()
    try:
        doc = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        key = doc["k"]
        fields = [doc["t"], doc["s"], doc["f"], *key] if isinstance(key, list) else []
        ok = (
            doc["v"] == _VERSION
            and isinstance(key, list)
            and len(key) == width
            and all(isinstance(text, str) and control_free(text) for text in fields)
        )
    except (binascii.Error, ValueError, TypeError, KeyError, UnicodeDecodeError):
        raise _malformed() from None
    if not ok:
        raise _malformed()
    return dict(doc)


def _malformed() -> InvalidCursorError:
    return InvalidCursorError(
        "malformed cursor: pass next_cursor back exactly as it was returned, or omit it"
    )
