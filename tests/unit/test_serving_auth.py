"""API keys against a real SQLite database: format, hashing, caching, immediate revocation."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import sqlalchemy as sa

from inference.store.tables import api_keys
from ordernimbus.errors import OrderNimbusError
from serving.auth import (
    ROLES,
    ApiKeyError,
    ApiKeyNotFoundError,
    ApiKeyStore,
    Principal,
    hash_key,
    key_matches,
    parse_key_id,
)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def keys(tmp_path: Path, clock: FakeClock) -> ApiKeyStore:
    store = ApiKeyStore(f"sqlite:///{tmp_path / 'keys.db'}", cache_ttl_seconds=30, clock=clock)
    yield store
    store.close()


def test_created_key_has_the_documented_format_and_verifies(keys: ApiKeyStore) -> None:
    info, plaintext = keys.create("acme", "analyst", name="planning notebook")
    assert re.fullmatch(r"onk_[0-9a-f]{16}_[A-Za-z0-9_-]{43}", plaintext)
    assert plaintext.startswith(f"onk_{info.key_id}_")
    assert (info.tenant_id, info.role, info.name, info.revoked_at) == (
        "acme",
        "analyst",
        "planning notebook",
        None,
    )
    assert keys.verify(plaintext) == Principal(tenant_id="acme", role="analyst", key_id=info.key_id)
    assert keys.list("acme") == [info]


def test_only_a_salted_scrypt_hash_is_stored(keys: ApiKeyStore) -> None:
    _, plaintext = keys.create("acme", "viewer")
    _, _other = keys.create("acme", "viewer")
    with keys._engine.connect() as conn:
        stored = conn.execute(sa.select(api_keys.c.secret_hash)).scalars().all()
    # the secret is everything after the key id's "_" (it may hold "_" itself: a chunk after its last
    # one can be two characters, which a base64 digest holds by chance, 1 run in ~700)
    secret = plaintext.partition("_")[2].partition("_")[2]
    assert len(secret) >= 40
    assert all(plaintext not in h and secret not in h for h in stored)
    scheme, n, r, p, _salt, _digest = stored[0].split("$")
    assert (scheme, n, r, p) == ("scrypt", str(2**14), "8", "1")
    assert stored[0].split("$")[4] != stored[1].split("$")[4]  # a fresh salt per key
    assert key_matches(plaintext, stored[0]) != key_matches(plaintext, stored[1])
    assert hash_key("x") != hash_key("x")
    assert key_matches("x", hash_key("x"))


@pytest.mark.parametrize(
    "tamper",
    [
        lambda k: k[:-1] + ("A" if k[-1] != "A" else "B"),  # wrong secret, right key id
        lambda k: k.replace("onk_", "onx_"),
        lambda k: k.split("_")[0] + "_" + k.split("_")[1],  # no secret
        lambda k: "onk_0000000000000000_" + k.split("_", 2)[2],  # unknown key id
        lambda k: k + "x" * 300,
        lambda k: "",
    ],
)
def test_wrong_or_malformed_keys_are_refused(keys: ApiKeyStore, tamper: object) -> None:
    _, plaintext = keys.create("acme", "viewer")
    assert keys.verify(tamper(plaintext)) is None  # type: ignore[operator]


def test_successful_verifications_are_cached_but_revocation_is_immediate(
    keys: ApiKeyStore, clock: FakeClock
) -> None:
    info, plaintext = keys.create("acme", "viewer")
    for _ in range(3):
        assert keys.verify(plaintext) is not None
    assert keys.stats == {"hash_checks": 1, "cache_hits": 2}
    clock.now += 31  # past the TTL: scrypt runs again
    assert keys.verify(plaintext) is not None
    assert keys.stats["hash_checks"] == 2
    revoked = keys.revoke(info.key_id, "acme")
    assert revoked.revoked_at is not None
    assert keys.verify(plaintext) is None  # still within the cache TTL, refused anyway
    assert keys.revoke(info.key_id, "acme").revoked_at == revoked.revoked_at  # idempotent


def test_a_key_in_use_stays_verified(keys: ApiKeyStore, clock: FakeClock) -> None:
    """The TTL counts from the last use: a busy key never pays scrypt again (nor meets the guess limit)."""
    _, plaintext = keys.create("acme", "viewer")
    for _ in range(5):
        assert keys.verify(plaintext) is not None
        clock.now += 20  # under the 30 s TTL each time, 80 s in all
    assert keys.stats == {"hash_checks": 1, "cache_hits": 4}
    assert keys.probably_cached(plaintext)


def test_revocation_by_another_process_is_seen_despite_the_cache(keys: ApiKeyStore, tmp_path: Path) -> None:
    info, plaintext = keys.create("acme", "viewer")
    assert keys.verify(plaintext) is not None
    other_process = ApiKeyStore(f"sqlite:///{tmp_path / 'keys.db'}")
    other_process.revoke(info.key_id, "acme")
    other_process.close()
    assert keys.verify(plaintext) is None


def test_role_comes_from_the_database_on_every_request(keys: ApiKeyStore) -> None:
    info, plaintext = keys.create("acme", "admin")
    assert keys.verify(plaintext).role == "admin"  # type: ignore[union-attr]
    with keys._engine.begin() as conn:
        conn.execute(api_keys.update().where(api_keys.c.key_id == info.key_id).values(role="viewer"))
    assert keys.verify(plaintext).role == "viewer"  # type: ignore[union-attr]


def test_tenants_cannot_list_or_revoke_each_others_keys(keys: ApiKeyStore) -> None:
    mine, plaintext = keys.create("acme", "admin")
    theirs, _ = keys.create("globex", "viewer")
    assert [k.key_id for k in keys.list("acme")] == [mine.key_id]
    assert [k.key_id for k in keys.list("globex")] == [theirs.key_id]
    with pytest.raises(ApiKeyNotFoundError) as err:
        keys.revoke(mine.key_id, "globex")
    assert err.value.status == 404
    assert keys.verify(plaintext) is not None


def test_bad_create_arguments_are_named(keys: ApiKeyStore) -> None:
    with pytest.raises(ApiKeyError, match="expected one of admin, approver, analyst, viewer"):
        keys.create("acme", "superuser")
    with pytest.raises(OrderNimbusError, match="invalid tenant"):
        keys.create("Not A Tenant", "viewer")
    with pytest.raises(ApiKeyError, match="200"):
        keys.create("acme", "viewer", name="x" * 201)
    assert ROLES == ("admin", "approver", "analyst", "viewer")


def test_cache_stays_bounded(tmp_path: Path, clock: FakeClock) -> None:
    store = ApiKeyStore(f"sqlite:///{tmp_path / 'k.db'}", cache_size=2, clock=clock)
    made = [store.create("acme", "viewer")[1] for _ in range(3)]
    for plaintext in made:
        assert store.verify(plaintext) is not None
    assert len(store._cache) == 2
    assert parse_key_id(made[0]) is not None
    store.close()
