"""API keys: the only way a request gets a tenant and a role.

A key reads ``onk_<key_id>_<secret>``. Only a salted scrypt hash of the whole key is stored, so a
leaked database does not leak usable keys. scrypt is slow on purpose (tens of milliseconds), so a
successful verification is remembered in-process, keyed by the SHA-256 of the key, for 15 minutes
after its last use; the key's row (and its stored hash) is still read on every request (one
primary-key lookup), so revoking a key or changing its role takes effect on the very next request,
cache or not.
"""

from __future__ import annotations

import base64
import builtins
import hashlib
import hmac
import re
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal, cast, get_args

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from inference.store.engine import create_engine_for
from inference.store.migrations import migrate
from inference.store.tables import api_keys
from ordernimbus.errors import NotFoundError, OrderNimbusError
from ordernimbus.tenancy import validate_tenant
from ordernimbus.text import control_free

Role = Literal["admin", "approver", "analyst", "viewer"]
ROLES: tuple[Role, ...] = get_args(Role)
KEY_PREFIX = "onk_"
MAX_KEY_LENGTH = 200
MAX_NAME_LENGTH = 200
_KEY_ID = re.compile(r"^[0-9a-f]{16}$")
_SCRYPT_N, _SCRYPT_R, _SCRYPT_P, _DKLEN = 2**14, 8, 1, 32


class ApiKeyError(OrderNimbusError):
    title = "API key request refused"


class ApiKeyNotFoundError(NotFoundError, ApiKeyError):
    title = "API key not found"


@dataclass(frozen=True)
class KeyInfo:
    """What may be shown about a key: never its secret or hash."""

    key_id: str
    tenant_id: str
    role: Role
    name: str
    created_at: datetime
    revoked_at: datetime | None


@dataclass(frozen=True)
class Principal:
    """Who is calling: the tenant and role come from the key's row (or a verified token), never
    from the request. An API key holds exactly one role; a token may hold several (``roles``)."""

    tenant_id: str
    role: Role
    key_id: str
    roles: frozenset[Role] = frozenset()
    actor: str = ""

    def holds(self, allowed: frozenset[Role]) -> bool:
        return self.role in allowed or bool(self.roles & allowed)

    @property
    def who(self) -> str:
        """The name recorded in audit logs and job rows."""
        return self.actor or f"key:{self.key_id}"


def hash_key(plaintext: str) -> str:
    """``scrypt$n$r$p$salt$hash`` (base64): parameters travel with the hash so they can be raised later."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(
        plaintext.encode(), salt=salt, n=_SCRYPT_N, r=_SCRYPT_R, p=_SCRYPT_P, dklen=_DKLEN
    )
    return "$".join(["scrypt", str(_SCRYPT_N), str(_SCRYPT_R), str(_SCRYPT_P), _b64(salt), _b64(digest)])


def key_matches(plaintext: str, stored: str) -> bool:
    """Constant-time check of ``plaintext`` against a :func:`hash_key` value."""
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(digest)
        actual = hashlib.scrypt(
            plaintext.encode(), salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p), dklen=len(expected)
        )
    except ValueError:
        return False
    return hmac.compare_digest(actual, expected)


def parse_key_id(plaintext: str) -> str | None:
    """The key id inside a well-formed key, else None (no database work for garbage)."""
    if (
        not isinstance(plaintext, str)
        or len(plaintext) > MAX_KEY_LENGTH
        or not plaintext.startswith(KEY_PREFIX)
    ):
        return None
    key_id, sep, secret = plaintext[len(KEY_PREFIX) :].partition("_")
    if not sep or not secret or not _KEY_ID.fullmatch(key_id):
        return None
    return key_id


class ApiKeyStore:
    """Creates, verifies, lists and revokes keys in the same database as the forecast store."""

    def __init__(
        self,
        url: str,
        *,
        engine: Engine | None = None,
        cache_ttl_seconds: float = 900.0,
        cache_size: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._engine = engine if engine is not None else create_engine_for(url)
        self._owns_engine = engine is None
        self._ttl = cache_ttl_seconds
        self._size = cache_size
        self._clock = clock
        self._cache: dict[str, tuple[str, str, float]] = {}  # sha256(key) -> (key_id, stored hash, expiry)
        self._lock = threading.Lock()
        # Observable cost: how often scrypt actually ran versus how often the cache saved it.
        self.stats = {"hash_checks": 0, "cache_hits": 0}
        migrate(self._engine)

    def close(self) -> None:
        if self._owns_engine:
            self._engine.dispose()

    def create(self, tenant: str, role: str, name: str = "") -> tuple[KeyInfo, str]:
        """A new key for ``tenant``; the plaintext is returned once and never stored."""
        validate_tenant(tenant)
        if role not in ROLES:
            raise ApiKeyError(f"unknown role {role!r}: expected one of {', '.join(ROLES)}")
        if not isinstance(name, str) or len(name) > MAX_NAME_LENGTH:
            raise ApiKeyError(f"key name must be a string of at most {MAX_NAME_LENGTH} characters")
        if not control_free(name):  # the CLI stored ESC and BEL; `apikey list` printed them raw
            raise ApiKeyError("key name: expected text without control characters")
        key_id = secrets.token_hex(8)
        plaintext = f"{KEY_PREFIX}{key_id}_{secrets.token_urlsafe(32)}"
        info = KeyInfo(key_id, tenant, cast(Role, role), name, datetime.now(UTC), None)
        with self._engine.connect() as conn:
            conn.execution_options(sqlite_begin="IMMEDIATE")
            with conn.begin():
                conn.execute(
                    api_keys.insert().values(
                        key_id=key_id,
                        tenant_id=tenant,
                        role=role,
                        name=name,
                        secret_hash=hash_key(plaintext),
                        created_at=info.created_at,
                    )
                )
        return info, plaintext

    def verify(self, plaintext: str) -> Principal | None:
        """The caller behind ``plaintext``, or None for a malformed, unknown, wrong or revoked key."""
        key_id = parse_key_id(plaintext)
        if key_id is None:
            return None
        with self._engine.connect() as conn:
            row = conn.execute(
                sa.select(
                    api_keys.c.tenant_id, api_keys.c.role, api_keys.c.secret_hash, api_keys.c.revoked_at
                ).where(api_keys.c.key_id == key_id)
            ).first()
        if row is None or row.revoked_at is not None:
            return None
        if self._remembered(plaintext, key_id, row.secret_hash):
            self.stats["cache_hits"] += 1
        else:
            self.stats["hash_checks"] += 1
            if not key_matches(plaintext, row.secret_hash):
                return None
            self._remember(plaintext, key_id, row.secret_hash)
        return Principal(tenant_id=row.tenant_id, role=row.role, key_id=key_id)

    def revoke(self, key_id: str, tenant: str) -> KeyInfo:
        """Revoke a key of ``tenant`` (idempotent); another tenant's key is reported as not found."""
        validate_tenant(tenant)
        with self._engine.connect() as conn:
            conn.execution_options(sqlite_begin="IMMEDIATE")
            with conn.begin():
                conn.execute(
                    api_keys.update()
                    .where(
                        api_keys.c.key_id == key_id,
                        api_keys.c.tenant_id == tenant,
                        api_keys.c.revoked_at.is_(None),
                    )
                    .values(revoked_at=datetime.now(UTC))
                )
                row = conn.execute(
                    sa.select(api_keys).where(api_keys.c.key_id == key_id, api_keys.c.tenant_id == tenant)
                ).first()
        if row is None:
            raise ApiKeyNotFoundError(f"tenant {tenant!r} has no API key {key_id!r}")
        with self._lock:
            self._cache = {d: v for d, v in self._cache.items() if v[0] != key_id}
        return _to_info(row)

    def list(self, tenant: str) -> builtins.list[KeyInfo]:
        """Every key of ``tenant``, revoked ones included, oldest first."""
        validate_tenant(tenant)
        with self._engine.connect() as conn:
            rows = conn.execute(
                sa.select(api_keys)
                .where(api_keys.c.tenant_id == tenant)
                .order_by(api_keys.c.created_at, api_keys.c.key_id)
            ).all()
        return [_to_info(row) for row in rows]

    def probably_cached(self, plaintext: str) -> bool:
        """Whether ``verify`` will most likely skip scrypt (an unexpired cache entry exists), so a
        caller on an event loop can run it inline and send only the slow case to a thread."""
        digest = hashlib.sha256(plaintext.encode()).hexdigest()
        with self._lock:
            hit = self._cache.get(digest)
        return hit is not None and self._clock() < hit[2]

    def _remembered(self, plaintext: str, key_id: str, stored: str) -> bool:
        digest = hashlib.sha256(plaintext.encode()).hexdigest()
        with self._lock:
            hit = self._cache.get(digest)
        if hit is None:
            return False
        cached_id, cached_hash, expires = hit
        now = self._clock()
        valid = (
            now < expires
            and hmac.compare_digest(cached_id, key_id)
            and hmac.compare_digest(cached_hash, stored)
        )
        if valid:  # sliding: a key in use never needs scrypt again, even while its id is being guessed
            with self._lock:
                self._cache[digest] = (cached_id, cached_hash, now + self._ttl)
        return valid

    def _remember(self, plaintext: str, key_id: str, stored: str) -> None:
        digest = hashlib.sha256(plaintext.encode()).hexdigest()
        now = self._clock()
        with self._lock:
            if len(self._cache) >= self._size:
                self._cache = {d: v for d, v in self._cache.items() if v[2] > now}
                while len(self._cache) >= self._size:
                    del self._cache[next(iter(self._cache))]
            self._cache[digest] = (key_id, stored, now + self._ttl)


def _to_info(row: sa.Row[tuple[object, ...]]) -> KeyInfo:
    m = row._mapping
    created = m["created_at"]
    revoked = m["revoked_at"]
    return KeyInfo(
        key_id=m["key_id"],
        tenant_id=m["tenant_id"],
        role=m["role"],
        name=m["name"],
        created_at=_utc(created),
        revoked_at=_utc(revoked) if revoked is not None else None,
    )


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")
