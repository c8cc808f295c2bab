"""The /v1 API end to end over real databases (SQLite file and the PostgreSQL server).

Tenants are isolated by construction (the tenant comes from the key), and this file tries to break
that from every side: other tenants' keys, cursors and set ids, tenant hints in the request,
missing, wrong and revoked keys, on every route.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from inference.store.sql import SqlForecastStore
from ordernimbus.settings import Settings
from serving.app import create_app
from serving.auth import ApiKeyStore

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
PG_URL = os.environ.get("ORDERNIMBUS_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
DAY0 = date(2025, 6, 2)
PROBLEM_FIELDS = {"type", "title", "status", "detail", "instance"}
FORECAST_ROUTES = ["/v1/forecasts", "/v1/forecasts/current"]


def _pg_admin() -> Any:
    import psycopg

    try:
        return psycopg.connect(PG_URL.replace("+psycopg", ""), autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        pytest.skip(f"PostgreSQL not reachable at {PG_URL} ({exc}); set ORDERNIMBUS_TEST_POSTGRES_URL")


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    schema = f"t_api_{uuid.uuid4().hex[:10]}"
    with _pg_admin() as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    yield f"{PG_URL}?options=-csearch_path%3D{schema}"
    with _pg_admin() as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


def rows_for(prefix: str, n_series: int, level: float) -> list[tuple[Any, ...]]:
    return [
        (
            f"{prefix}-store-{s % 2}",
            f"sku-{s:03d}",
            DAY0 + timedelta(d),
            d + 1,
            level,
            level + 1,
            level + 3,
            level + 1.2,
        )
        for s in range(n_series)
        for d in range(14)
    ]


@dataclass
class World:
    client: TestClient
    settings: Settings
    keys: ApiKeyStore
    store: SqlForecastStore
    a: str
    b: str
    empty: str
    key_a: str
    key_b: str
    key_empty: str
    key_a_admin: str
    key_revoked: str
    set_a: str
    set_b: str

    def get(self, path: str, key: str | None = None, **headers: str) -> Any:
        if key is not None:
            headers["X-API-Key"] = key
        return self.client.get(path, headers=headers)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def world(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[World]:
    db = (
        f"sqlite:///{tmp_path / 'api.db'}" if request.param == "sqlite" else request.getfixturevalue("pg_url")
    )
    settings = Settings(home=tmp_path / "home", database_url=db, api_rate_limit_per_minute=10_000)
    a, b, empty = (f"{label}-{uuid.uuid4().hex[:8]}" for label in ("alpha", "beta", "gamma"))
    store, keys = SqlForecastStore(db), ApiKeyStore(db)
    set_a = store.write_set(a, 3, [rows_for("a", 5, 10.0)]).set_id
    set_b = store.write_set(b, 9, [rows_for("b", 3, 500.0)]).set_id
    revoked_info, key_revoked = keys.create(a, "viewer", "old laptop")
    keys.revoke(revoked_info.key_id, a)
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        yield World(
            client, settings, keys, store, a, b, empty,
            key_a=keys.create(a, "viewer")[1], key_b=keys.create(b, "analyst")[1],
            key_empty=keys.create(empty, "viewer")[1], key_a_admin=keys.create(a, "admin")[1],
            key_revoked=key_revoked, set_a=set_a, set_b=set_b,
        )  # fmt: skip
    store.close()
    keys.close()


def assert_problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert set(body) >= PROBLEM_FIELDS
    assert body["status"] == status
    return dict(body)


def all_items(
    world: World, key: str, query: str = "", limit: int = 7
) -> tuple[list[dict[str, Any]], set[str]]:
    items, set_ids, cursor = [], set(), None
    while True:
        url = f"/v1/forecasts?limit={limit}{query}" + (f"&cursor={cursor}" if cursor else "")
        body = world.get(url, key).json()
        items.extend(body["items"])
        set_ids.add(body["forecast_set"]["set_id"])
        cursor = body["next_cursor"]
        if cursor is None:
            return items, set_ids


# -- the isolation matrix --------------------------------------------------------------------


def test_own_key_reads_exactly_its_own_tenant(world: World) -> None:
    items, set_ids = all_items(world, world.key_a)
    assert set_ids == {world.set_a}
    assert len(items) == 5 * 14
    assert {i["store_id"] for i in items} == {"a-store-0", "a-store-1"}
    assert {i["model_version"] for i in items} == {3}
    assert set(items[0]) == {
        "store_id",
        "sku",
        "target_date",
        "horizon_day",
        "p10",
        "p50",
        "p90",
        "mean",
        "model_version",
    }
    current = world.get("/v1/forecasts/current", world.key_a)
    assert current.status_code == 200
    assert (current.json()["set_id"], current.json()["rows"], current.json()["series"]) == (
        world.set_a,
        70,
        5,
    )


def test_other_tenants_key_never_sees_the_data(world: World) -> None:
    items, set_ids = all_items(world, world.key_b)
    assert set_ids == {world.set_b}
    assert {i["store_id"] for i in items} == {"b-store-0", "b-store-1"}
    # Asking for the other tenant's stores, or naming the other tenant, changes nothing.
    hinted = world.get(
        f"/v1/forecasts?store_id=a-store-0&tenant_id={world.a}", world.key_b, **{"X-Tenant-Id": world.a}
    )
    assert hinted.status_code == 200
    assert hinted.json()["items"] == []
    assert hinted.json()["forecast_set"]["set_id"] == world.set_b
    # A tenant without forecasts gets 404, not someone else's.
    for route in FORECAST_ROUTES:
        assert_problem(world.get(route, world.key_empty), 404)


def test_other_tenants_cursor_is_refused(world: World) -> None:
    cursor = world.get("/v1/forecasts?limit=3", world.key_a).json()["next_cursor"]
    refused = assert_problem(world.get(f"/v1/forecasts?limit=3&cursor={cursor}", world.key_b), 400)
    assert refused["title"] == "Invalid pagination cursor"
    assert world.set_a not in str(refused)


@pytest.mark.parametrize("route", [*FORECAST_ROUTES, "/v1/keys"])
@pytest.mark.parametrize("case", ["none", "empty", "garbage", "wrong-secret", "unknown-id", "revoked"])
def test_missing_wrong_and_revoked_keys_get_401(world: World, route: str, case: str) -> None:
    key = {
        "none": None,
        "empty": "",
        "garbage": "letmein",
        "wrong-secret": world.key_a[:-2] + ("xy" if not world.key_a.endswith("xy") else "zz"),
        "unknown-id": "onk_" + "0" * 16 + "_" + world.key_a.split("_", 2)[2],
        "revoked": world.key_revoked,
    }[case]
    body = assert_problem(world.get(route, key), 401)
    assert body["title"] == "Unauthorized"
    assert "WWW-Authenticate" in world.get(route, key).headers


def test_revocation_through_the_api_is_immediate(world: World) -> None:
    created = world.client.post(
        "/v1/keys", json={"role": "viewer", "name": "dashboard"}, headers={"X-API-Key": world.key_a_admin}
    )
    assert created.status_code == 201
    assert created.headers["cache-control"] == "no-store"
    new_key, key_id = created.json()["api_key"], created.json()["key"]["key_id"]
    assert world.get("/v1/forecasts/current", new_key).status_code == 200
    assert world.get("/v1/forecasts/current", new_key).status_code == 200  # now served from the cache
    revoked = world.client.delete(f"/v1/keys/{key_id}", headers={"X-API-Key": world.key_a_admin})
    assert revoked.status_code == 200
    assert revoked.json()["revoked_at"] is not None
    assert_problem(world.get("/v1/forecasts/current", new_key), 401)


def test_key_management_needs_admin_and_stays_in_the_tenant(world: World) -> None:
    body = assert_problem(world.get("/v1/keys", world.key_a), 403)
    assert "admin" in body["detail"]
    listed = world.get("/v1/keys", world.key_a_admin).json()
    assert {k["role"] for k in listed} == {"viewer", "admin"}
    assert all("hash" not in str(k) and "api_key" not in k for k in listed)
    b_key_id = world.key_b.split("_")[1]
    assert_problem(world.client.delete(f"/v1/keys/{b_key_id}", headers={"X-API-Key": world.key_a_admin}), 404)
    assert world.get("/v1/forecasts", world.key_b).status_code == 200
    assert_problem(
        world.client.post("/v1/keys", json={"role": "root"}, headers={"X-API-Key": world.key_a_admin}), 422
    )


# -- reads: filters, pagination, caching ----------------------------------------------------


def test_filters_and_pagination_cover_each_row_once(world: World) -> None:
    start, end = DAY0 + timedelta(3), DAY0 + timedelta(8)
    items, _ = all_items(world, world.key_a, f"&store_id=a-store-1&start={start}&end={end}", limit=4)
    keys = [(i["store_id"], i["sku"], i["target_date"]) for i in items]
    assert keys == sorted(set(keys))
    assert len(keys) == 2 * 6  # skus 1 and 3 are in store 1; six days each
    assert {i["store_id"] for i in items} == {"a-store-1"}
    assert min(i["target_date"] for i in items) == start.isoformat()


def test_etag_and_if_none_match(world: World) -> None:
    first = world.get("/v1/forecasts?limit=5&sku=sku-001", world.key_a)
    etag = first.headers["etag"]
    assert etag.startswith('"')
    assert first.headers["cache-control"] == "private, max-age=60"
    again = world.get("/v1/forecasts?sku=sku-001&limit=5", world.key_a, **{"If-None-Match": etag})
    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["etag"] == etag
    assert (
        world.get("/v1/forecasts?limit=6&sku=sku-001", world.key_a, **{"If-None-Match": etag}).status_code
        == 200
    )
    current = world.get("/v1/forecasts/current", world.key_a)
    assert (
        world.get(
            "/v1/forecasts/current", world.key_a, **{"If-None-Match": current.headers["etag"]}
        ).status_code
        == 304
    )
    # A new set changes the tag, so the client gets fresh data.
    world.store.write_set(world.a, 4, [rows_for("a", 2, 20.0)])
    fresh = world.get("/v1/forecasts?limit=5&sku=sku-001", world.key_a, **{"If-None-Match": etag})
    assert fresh.status_code == 200
    assert fresh.headers["etag"] != etag
    assert {i["model_version"] for i in fresh.json()["items"]} == {4}


# -- problems --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "field"),
    [("limit=0", "limit"), ("limit=1001", "limit"), ("start=yesterday", "start"), ("store_id=", "store_id")],
)
def test_validation_errors_are_422_problems_naming_the_field(world: World, query: str, field: str) -> None:
    body = assert_problem(world.get(f"/v1/forecasts?{query}", world.key_a), 422)
    assert field in body["detail"]
    assert body["errors"][0]["loc"] == ["query", field]


def test_store_errors_become_problems_with_their_status_and_title(world: World) -> None:
    body = assert_problem(world.get("/v1/forecasts?start=2025-06-09&end=2025-06-01", world.key_a), 400)
    assert body["title"] == "Forecast store request refused"
    assert body["type"].startswith("urn:ordernimbus:problem:")
    assert body["instance"] == "/v1/forecasts"
    assert_problem(world.get("/v1/no-such-route", world.key_a), 404)
    assert_problem(world.client.put("/v1/forecasts", headers={"X-API-Key": world.key_a}), 405)


def test_unexpected_errors_are_500_problems_without_internals(world: World) -> None:
    def boom() -> None:
        raise RuntimeError("secret connection string postgres://u:p@h")

    world.client.app.add_api_route("/v1/boom", boom)  # type: ignore[attr-defined]
    response = world.client.get("/v1/boom")
    body = assert_problem(response, 500)
    assert "secret" not in body["detail"]
    assert response.headers["connection"] == "close"  # the client opens a fresh connection next


def test_rate_limit_gives_429_with_retry_after(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path, api_rate_limit_per_minute=3)
    _, key = ApiKeyStore(settings.db_url).create("acme", "viewer")
    with TestClient(create_app(settings)) as client:
        statuses = [
            client.get("/v1/forecasts/current", headers={"X-API-Key": key}).status_code for _ in range(4)
        ]
        assert statuses == [404, 404, 404, 429]
        limited = client.get("/v1/forecasts/current", headers={"X-API-Key": key})
        assert_problem(limited, 429)
        assert int(limited.headers["retry-after"]) >= 1
        assert client.get("/v1/health").status_code == 200  # not keyed, not limited


def test_two_api_key_headers_are_refused_not_first_wins(world: World) -> None:
    both = [("X-API-Key", world.key_a), ("X-API-Key", world.key_b)]
    body = assert_problem(world.client.get("/v1/forecasts/current", headers=both), 401)
    assert "one X-API-Key" in body["detail"]


def test_guessing_a_known_key_ids_secret_does_not_lock_its_holder_out(tmp_path: Path) -> None:
    """Key ids are not secret (jobs and the audit log show them); ten wrong secrets used to spend
    the key's own budget, and its holder got 429."""
    settings = Settings(home=tmp_path, api_rate_limit_per_minute=5)
    keys = ApiKeyStore(settings.db_url)
    info, key = keys.create("acme", "viewer")
    _, idle = keys.create("acme", "viewer")
    with TestClient(create_app(settings)) as client:
        assert client.get("/v1/forecasts/current", headers={"X-API-Key": key}).status_code == 404  # verified
        guesses = [
            client.get("/v1/forecasts/current", headers={"X-API-Key": f"onk_{info.key_id}_guess{i}"})
            for i in range(8)
        ]
        # 5 checks a minute per key id, the holder's first one included: scrypt stays bounded
        assert [g.status_code for g in guesses] == [401] * 4 + [429] * 4
        assert "unverified attempts" in guesses[-1].json()["detail"]
        holder = [
            client.get("/v1/forecasts/current", headers={"X-API-Key": key}).status_code for _ in range(5)
        ]
        assert holder == [404, 404, 404, 404, 429]  # its own budget: 5 a minute, one spent before
        assert client.get("/v1/forecasts/current", headers={"X-API-Key": idle}).status_code == 404


# -- health ----------------------------------------------------------------------------------


def test_health_needs_no_key_and_ready_checks_the_database(world: World, tmp_path: Path) -> None:
    assert world.client.get("/v1/health").json()["status"] == "ok"
    assert world.client.get("/v1/ready").json()["status"] == "ready"
    for probe in ("/v1/health", "/v1/ready"):  # load balancers' health checks may send HEAD
        head = world.client.head(probe)
        assert (head.status_code, head.content) == (200, b"")
    down = Settings(
        home=tmp_path, database_url="postgresql+psycopg://nobody@127.0.0.1:1/none?connect_timeout=2"
    )
    with TestClient(create_app(down), raise_server_exceptions=False) as client:
        assert client.get("/v1/health").status_code == 200
        body = assert_problem(client.get("/v1/ready"), 503)
        assert "nobody" not in body["detail"]


def test_uvicorn_serves_the_module_level_app(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**os.environ, "ORDERNIMBUS_HOME": str(tmp_path / "home")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "serving.app:app", "--port", str(port), "--log-level", "warning"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/health", timeout=2) as resp:
                    assert resp.status == 200
                    break
            except OSError:
                assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
                assert time.monotonic() < deadline, "uvicorn did not answer within 30 s"
                time.sleep(0.2)
    finally:
        proc.terminate()
        proc.wait(10)


def test_openapi_documents_the_key_header_and_routes(world: World) -> None:
    spec = world.client.get("/openapi.json").json()
    assert {"/v1/health", "/v1/ready", "/v1/forecasts", "/v1/forecasts/current", "/v1/keys"} <= set(
        spec["paths"]
    )
    schemes = spec["components"]["securitySchemes"]
    assert any(s.get("in") == "header" and s.get("name") == "X-API-Key" for s in schemes.values())
