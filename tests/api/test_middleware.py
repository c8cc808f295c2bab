"""What every response carries: request ids, security headers, body limits, access logs, CORS,
and the per-tenant rate limit on top of the per-key one."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from serving_world import World, assert_problem

from serving.app import SMALL_BODY_BYTES, create_app


def test_request_ids_are_echoed_or_made(world: World, client: TestClient) -> None:
    given = client.get("/v1/health", headers={"X-Request-ID": "trace-42.abc"})
    assert given.headers["x-request-id"] == "trace-42.abc"
    bad = client.get("/v1/health", headers={"X-Request-ID": "x" * 500})
    assert len(bad.headers["x-request-id"]) == 32
    assert bad.headers["x-request-id"] != "x" * 500
    ids = {client.get("/v1/health").headers["x-request-id"] for _ in range(3)}
    assert len(ids) == 3
    problem = client.get("/v1/forecasts", headers={"X-Request-ID": "req-7"})
    assert assert_problem(problem, 401)["request_id"] == "req-7"


def test_security_headers_on_data_errors_and_docs(world: World, client: TestClient) -> None:
    for response in (
        client.get("/v1/forecasts/current", headers={"X-API-Key": world.a.keys["viewer"]}),
        client.get("/v1/nope"),
    ):
        h = response.headers
        assert h["x-content-type-options"] == "nosniff"
        assert h["x-frame-options"] == "DENY"
        assert h["referrer-policy"] == "no-referrer"
        assert h["strict-transport-security"].startswith("max-age=")
        assert h["content-security-policy"] == "default-src 'none'; frame-ancestors 'none'"
    assert client.get("/v1/nope").headers["cache-control"] == "no-store"  # tenant data: never cached shared
    docs = client.get("/docs")
    assert docs.status_code == 200
    assert "content-security-policy" not in docs.headers


def test_bodies_over_the_route_limit_are_413_before_any_work(world: World, client: TestClient) -> None:
    key = {"X-API-Key": world.a.keys["admin"]}
    big = json.dumps({"role": "viewer", "name": "x" * (SMALL_BODY_BYTES + 10)})
    body = assert_problem(
        client.post("/v1/keys", content=big, headers=key | {"content-type": "application/json"}), 413
    )
    assert f"{SMALL_BODY_BYTES:,}" in body["detail"]
    assert not [k for k in client.get("/v1/keys", headers=key).json() if k["name"].startswith("xxx")]

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit is counted as the body streams
        for _ in range(SMALL_BODY_BYTES // 1000 + 5):
            yield b"x" * 1000

    assert_problem(client.post("/v1/keys", content=chunks(), headers=key), 413)


def test_a_query_parameter_given_twice_is_422_not_last_wins(world: World, client: TestClient) -> None:
    key = {"X-API-Key": world.a.keys["viewer"]}
    once = client.get("/v1/inventory/recommendations?limit=5", headers=key)
    assert once.status_code == 200
    for query in ("limit=5&limit=6", "cursor=a&cursor=b", "sku=1&store_id=1&sku=2", "sku=&sku=%C2%90"):
        body = assert_problem(client.get(f"/v1/inventory/recommendations?{query}", headers=key), 422)
        assert "more than once" in body["detail"]
    # different parameters, and a parameter with an empty value, are fine
    assert client.get("/v1/forecasts/current?limit=5&start=2017-01-01", headers=key).status_code == 200


def test_access_log_is_one_json_line_with_the_tenant(
    world: World, client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="ordernimbus.access"):
        client.get(
            "/v1/forecasts/current", headers={"X-API-Key": world.a.keys["viewer"], "X-Request-ID": "log-1"}
        )
        client.get("/v1/forecasts/current", headers={"X-API-Key": "onk_nope"})
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == "ordernimbus.access"]
    ok, refused = lines[-2], lines[-1]
    assert ok["request_id"] == "log-1"
    assert ok["status"] == 200
    assert ok["tenant"] == world.a.name
    assert ok["caller"] == f"key:{world.a.key_ids['viewer']}"
    assert ok["path"] == "/v1/forecasts/current"
    assert ok["ms"] >= 0
    assert ok["bytes"] > 0
    assert refused["status"] == 401
    assert refused["tenant"] is None
    assert "onk_nope" not in json.dumps(lines)


def test_cors_follows_settings(world: World) -> None:
    settings = world.settings.model_copy(update={"api_cors_origins": ("https://app.example.com",)})
    with TestClient(create_app(settings)) as client:
        preflight = {"Access-Control-Request-Method": "GET", "Access-Control-Request-Headers": "x-api-key"}
        allowed = client.options("/v1/forecasts", headers={"Origin": "https://app.example.com", **preflight})
        assert allowed.status_code == 200
        assert allowed.headers["access-control-allow-origin"] == "https://app.example.com"
        denied = client.options("/v1/forecasts", headers={"Origin": "https://evil.example.com", **preflight})
        assert "access-control-allow-origin" not in denied.headers
        got = client.get("/v1/health", headers={"Origin": "https://app.example.com"})
        assert "X-Request-ID" in got.headers["access-control-expose-headers"]


def test_tenant_budget_caps_all_its_keys_together(world: World) -> None:
    settings = world.settings.model_copy(update={"api_rate_limit_per_tenant_per_minute": 4})
    with TestClient(create_app(settings)) as client:
        a_keys = [world.a.keys[r] for r in ("viewer", "analyst")]
        statuses = [
            client.get("/v1/forecasts/current", headers={"X-API-Key": a_keys[i % 2]}).status_code
            for i in range(6)
        ]
        assert statuses == [200, 200, 200, 200, 429, 429]
        limited = client.get("/v1/forecasts/current", headers={"X-API-Key": a_keys[0]})
        assert "tenant" in assert_problem(limited, 429)["detail"]
        assert int(limited.headers["retry-after"]) >= 1
        assert (
            client.get("/v1/forecasts/current", headers={"X-API-Key": world.b.keys["viewer"]}).status_code
            == 200
        )


def test_free_text_in_bodies_refuses_control_characters(world: World, client: TestClient) -> None:
    """A NUL in a key's name answered 500 on PostgreSQL and was stored as is on SQLite."""
    admin = {"X-API-Key": world.a.keys["admin"]}
    names = ("a\x00b", "bell\x07", "esc\x1b[2J", "two\nlines")
    for name in names:
        assert_problem(client.post("/v1/keys", json={"role": "viewer", "name": name}, headers=admin), 422)
    assert not {k["name"] for k in client.get("/v1/keys", headers=admin).json()} & set(names)
    made = client.post("/v1/keys", json={"role": "viewer", "name": "Kasse Zürich 2"}, headers=admin)
    assert made.status_code == 201, made.text
    for reason in ("ok\x00", "ok\x1b"):
        approver = {"X-API-Key": world.a.keys["approver"]}
        refused = client.post("/v1/registry/versions/1/reject", json={"reason": reason}, headers=approver)
        assert_problem(refused, 422)
