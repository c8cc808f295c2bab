"""The tenant-isolation matrix: every route of the app x {own key, other tenant's key, no key,
revoked key, wrong role}, on SQLite and on PostgreSQL.

The routes come from the app's own route table (and must agree with its OpenAPI document), so a
route added without a row here fails :func:`test_every_route_has_a_row`. Each row says who may call
the route and builds a request addressed at tenant A's resources (A's series, job, versions, keys).
The other tenant's credential must then get the documented status and a body that holds none of
A's identifying strings (tenant id, set id, job id, key ids, store names) beyond what it sent.

Mutating rows are built so they can run in any order on one world: approve and reject address
different versions, key revocation revokes a key made for the purpose, and the generate row sends
an out-of-range horizon (422 after authorisation), since a real forecast run is the e2e test's job.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from serving_world import SHOP_SECRET, World, assert_problem

from features.outages import Outage
from serving.app import create_app
from serving.auth import ROLES

ALL_ROLES = frozenset(ROLES)
Request = tuple[str, dict[str, Any]]  # (url, extra httpx kwargs)
CASES = ("own", "other", "none", "revoked", "wrong-role")
A_OUTAGE = Outage.parse("2017-04-01", "2017-04-02")


@dataclass(frozen=True)
class Row:
    roles: frozenset[str] | None  # None: public; "hmac" rows use the shop signature instead
    build: Callable[[World], Request]
    ok: int
    other: frozenset[int]
    echoes: bool = False  # the response repeats the request's store/sku: those are not a leak
    hmac: bool = False


def _series(w: World) -> str:
    store, sku = w.a.series[0]
    return f"store_id={store}&sku={sku}"


def _csv() -> bytes:
    return b"date,store,item,sales\n2017-09-29,1,1,13\n2017-09-30,1,1,17\n"


def _with_sales(w: World) -> str:
    """``/v1/outages``, with tenant A's sales in the lake (the outage routes check requests against them)."""
    from serving_world import tenant_sales

    from features.lake import SalesLake

    lake = SalesLake(w.settings.lake_dir)
    if not lake.exists(w.a.name):
        lake.upsert(w.a.name, tenant_sales(w.a.prefix), source="matrix")
    return "/v1/outages"


def _marked_outage(w: World) -> Request:
    """An outage marked in A's data, for the DELETE row to address (B has it only if B marked it)."""
    from features.lake import SalesLake

    _with_sales(w)
    lake = SalesLake(w.settings.lake_dir)
    lake.update_outages(w.a.name, lambda marked: marked if A_OUTAGE in marked else [*marked, A_OUTAGE])
    return (f"/v1/outages?first={A_OUTAGE.first.date()}&last={A_OUTAGE.last.date()}", {})


def _fresh_key(w: World) -> Request:
    info, _ = w.keys.create(w.a.name, "viewer", "to revoke")
    return f"/v1/keys/{info.key_id}", {}


def _order(w: World) -> Request:
    order = {
        "id": 820982911946154508, "created_at": "2017-10-01T10:00:00-04:00", "test": False,
        "line_items": [{"sku": "a-item-9", "quantity": 2, "price": "4.50", "total_discount": "0.00"}],
        "refunds": [], "source_name": "web",
    }  # fmt: skip
    return "/v1/uploads/shopify", {"content": json.dumps(order).encode()}


ROWS: dict[tuple[str, str], Row] = {
    ("GET", "/v1/health"): Row(None, lambda w: ("/v1/health", {}), 200, frozenset({200})),
    ("GET", "/v1/ready"): Row(None, lambda w: ("/v1/ready", {}), 200, frozenset({200})),
    ("HEAD", "/v1/health"): Row(None, lambda w: ("/v1/health", {}), 200, frozenset({200})),
    ("HEAD", "/v1/ready"): Row(None, lambda w: ("/v1/ready", {}), 200, frozenset({200})),
    ("GET", "/v1/forecasts"): Row(
        ALL_ROLES, lambda w: ("/v1/forecasts?limit=1000", {}), 200, frozenset({200})
    ),
    ("GET", "/v1/forecasts/current"): Row(
        ALL_ROLES, lambda w: ("/v1/forecasts/current", {}), 200, frozenset({200})
    ),
    ("GET", "/v1/forecasts/series"): Row(
        ALL_ROLES, lambda w: (f"/v1/forecasts/series?{_series(w)}", {}), 200, frozenset({404}), echoes=True
    ),
    ("POST", "/v1/forecasts/generate"): Row(
        frozenset({"admin", "approver", "analyst"}),
        lambda w: ("/v1/forecasts/generate", {"json": {"horizon": 400}}),
        422,
        frozenset({422}),
    ),
    ("GET", "/v1/jobs"): Row(ALL_ROLES, lambda w: ("/v1/jobs", {}), 200, frozenset({200})),
    ("GET", "/v1/jobs/{job_id}"): Row(
        ALL_ROLES, lambda w: (f"/v1/jobs/{w.a.job_id}", {}), 200, frozenset({404})
    ),
    ("GET", "/v1/accuracy"): Row(
        ALL_ROLES, lambda w: ("/v1/accuracy?level=sku&limit=1000", {}), 200, frozenset({200})
    ),
    ("GET", "/v1/accuracy/trend"): Row(
        ALL_ROLES, lambda w: ("/v1/accuracy/trend", {}), 200, frozenset({200})
    ),
    ("GET", "/v1/explanations"): Row(
        ALL_ROLES, lambda w: (f"/v1/explanations?{_series(w)}", {}), 200, frozenset({200}), echoes=True
    ),
    ("GET", "/v1/inventory/recommendations"): Row(
        ALL_ROLES, lambda w: ("/v1/inventory/recommendations?limit=1000", {}), 200, frozenset({200})
    ),
    ("GET", "/v1/inventory/alerts"): Row(
        ALL_ROLES, lambda w: ("/v1/inventory/alerts", {}), 200, frozenset({200})
    ),
    ("GET", "/v1/sales"): Row(
        ALL_ROLES, lambda w: (f"/v1/sales?{_series(w)}", {}), 200, frozenset({200}), echoes=True
    ),
    ("POST", "/v1/uploads"): Row(
        frozenset({"admin", "analyst"}),
        lambda w: ("/v1/uploads", {"files": {"file": ("matrix.csv", _csv(), "text/csv")}}),
        201,
        frozenset({201}),
    ),
    ("POST", "/v1/uploads/shopify"): Row(None, _order, 200, frozenset({401}), hmac=True),
    # B gets its own outages, or 404 while it has no sales (until the upload row gave it some)
    ("GET", "/v1/outages"): Row(ALL_ROLES, lambda w: (_with_sales(w), {}), 200, frozenset({200, 404})),
    ("POST", "/v1/outages"): Row(
        frozenset({"admin", "analyst"}),
        lambda w: (_with_sales(w), {"json": {"first": "2017-03-01", "last": "2017-03-03"}}),
        201,
        frozenset({201, 404}),
    ),
    ("DELETE", "/v1/outages"): Row(
        frozenset({"admin", "analyst"}), _marked_outage, 200, frozenset({200, 404})
    ),
    ("GET", "/v1/registry/versions"): Row(
        frozenset({"admin", "approver", "analyst"}),
        lambda w: ("/v1/registry/versions", {}),
        200,
        frozenset({200}),
    ),
    ("GET", "/v1/registry/versions/{version}"): Row(
        frozenset({"admin", "approver", "analyst"}),
        lambda w: (f"/v1/registry/versions/{w.a.versions['pending']}", {}),
        200,
        frozenset({404}),
    ),
    ("GET", "/v1/registry/versions/{version}/card"): Row(
        frozenset({"admin", "approver", "analyst"}),
        lambda w: (f"/v1/registry/versions/{w.a.versions['pending']}/card", {}),
        200,
        frozenset({404}),
    ),
    ("GET", "/v1/registry/compare"): Row(
        frozenset({"admin", "approver", "analyst"}),
        lambda w: (f"/v1/registry/compare?a=1&b={w.a.versions['failed']}", {}),
        200,
        frozenset({404}),
    ),
    ("GET", "/v1/registry/audit"): Row(
        frozenset({"admin", "approver", "analyst"}),
        lambda w: ("/v1/registry/audit", {}),
        200,
        frozenset({200}),
    ),
    ("POST", "/v1/registry/versions/{version}/approve"): Row(
        frozenset({"approver"}),
        lambda w: (
            f"/v1/registry/versions/{w.a.versions['pending']}/approve",
            {"json": {"reason": "matrix", "forecast": False}},
        ),
        200,
        frozenset({404}),
    ),
    ("POST", "/v1/registry/versions/{version}/reject"): Row(
        frozenset({"approver"}),
        lambda w: (f"/v1/registry/versions/{w.a.versions['failed']}/reject", {"json": {"reason": "matrix"}}),
        200,
        frozenset({404}),
    ),
    ("GET", "/v1/keys"): Row(frozenset({"admin"}), lambda w: ("/v1/keys", {}), 200, frozenset({200})),
    ("POST", "/v1/keys"): Row(
        frozenset({"admin"}), lambda w: ("/v1/keys", {"json": {"role": "viewer"}}), 201, frozenset({201})
    ),
    ("DELETE", "/v1/keys/{key_id}"): Row(frozenset({"admin"}), _fresh_key, 200, frozenset({404})),
}


def route_table(app: FastAPI) -> set[tuple[str, str]]:
    """(method, path) of every API route, walking included routers as FastAPI stores them."""

    def walk(routes: list[Any], prefix: str) -> Iterator[tuple[str, str]]:
        for route in routes:
            if isinstance(route, APIRoute):
                yield from ((m, prefix + route.path) for m in route.methods)
            elif hasattr(route, "original_router"):
                yield from walk(route.original_router.routes, prefix + route.include_context.prefix)

    return set(walk(app.routes, ""))


def test_every_route_has_a_row(tmp_path: Any) -> None:
    from ordernimbus.settings import Settings

    app = create_app(Settings(home=tmp_path))
    table = route_table(app)
    documented = {(m.upper(), p) for p, ops in app.openapi()["paths"].items() for m in ops}
    assert table == documented, "the route table and the OpenAPI document disagree"
    missing = sorted(table - ROWS.keys())
    assert not missing, f"routes without an isolation-matrix row (add one to ROWS): {missing}"
    assert not sorted(ROWS.keys() - table), "rows for routes that no longer exist"


def _matrix() -> list[Any]:
    params = []
    for (method, path), row in ROWS.items():
        for case in CASES:
            if case == "wrong-role" and (row.roles is None or row.roles == ALL_ROLES):
                continue  # public routes and routes open to every role have no wrong role
            params.append(pytest.param(method, path, case, id=f"{method} {path} [{case}]"))
    return params


def _sign(body: bytes, secret: str) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def _headers(world: World, row: Row, case: str, body: bytes) -> dict[str, str]:
    a, b = world.a, world.b
    if row.hmac:
        shop, secret = {
            "own": (a.shop, SHOP_SECRET + "a"),
            "other": (a.shop, SHOP_SECRET + "b"),  # B's secret cannot speak for A's shop
            "none": (a.shop, ""),
            "revoked": ("removed-shop.myshopify.com", SHOP_SECRET + "a"),
        }[case]
        headers = {"X-Shopify-Shop-Domain": shop, "X-Shopify-Topic": "orders/create"}
        return headers | ({"X-Shopify-Hmac-Sha256": _sign(body, secret)} if secret else {})
    allowed = sorted(row.roles or ALL_ROLES, key=ROLES.index)
    if case == "own":
        return {"X-API-Key": a.keys[allowed[0]]}
    if case == "other":
        return {"X-API-Key": b.keys[allowed[0]]}
    if case == "revoked":
        return {"X-API-Key": world.revoked_key}
    if case == "wrong-role":
        return {"X-API-Key": a.keys[next(r for r in ROLES if r not in allowed)]}
    return {}


def _expected(row: Row, case: str) -> frozenset[int]:
    if case == "own":
        return frozenset({row.ok})
    if case == "other":
        return row.other
    if row.roles is None and not row.hmac:
        return frozenset({row.ok})  # public
    return frozenset({401 if case in ("none", "revoked") or row.hmac else 403})


@pytest.mark.parametrize(("method", "path", "case"), _matrix())
def test_isolation(world: World, client: TestClient, method: str, path: str, case: str) -> None:
    row = ROWS[(method, path)]
    url, kwargs = row.build(world)
    body = kwargs.get("content", b"")
    response = client.request(method, url, headers=_headers(world, row, case, body), **kwargs)
    expected = _expected(row, case)
    assert response.status_code in expected, f"{case}: {response.status_code} {response.text[:300]}"
    if response.status_code >= 400:
        assert_problem(response, response.status_code)
    if case == "own":
        return
    _assert_nothing_of_a(world, row, response, url)
    if case == "other":
        _assert_a_untouched(world, method, path, url)


def _assert_nothing_of_a(world: World, row: Row, response: httpx.Response, url: str) -> None:
    text = response.text
    # What the caller sent (an id in the path, a store in the query) may come back; nothing else.
    markers = [m for m in world.a.markers() if m not in url]
    if row.echoes:
        markers = [m for m in markers if not m.startswith("a-store")]
    leaked = [m for m in markers if m in text]
    assert not leaked, f"tenant A's {leaked} in a response to another credential: {text[:300]}"


def _assert_a_untouched(world: World, method: str, path: str, url: str) -> None:
    """Mutations by B's credential aimed at A's objects leave them exactly as they were."""
    if path.endswith("/approve"):
        assert world.registry.get(world.a.name, world.a.versions["pending"]).decided_by in (
            None,
            f"key:{world.a.key_ids['approver']}",
        )
    if path.endswith("/reject"):
        version = world.registry.get(world.a.name, world.a.versions["failed"])
        assert version.decided_by in (None, f"key:{world.a.key_ids['approver']}")
    if method == "DELETE" and path == "/v1/outages":
        from features.lake import SalesLake

        assert A_OUTAGE in SalesLake(world.settings.lake_dir).outages(world.a.name)
    elif method == "DELETE":
        key_id = url.rsplit("/", 1)[1]
        assert all(k.revoked_at is None for k in world.keys.list(world.a.name) if k.key_id == key_id)


def test_revoked_key_is_refused_on_every_route_even_with_a_valid_other_header(
    world: World, client: TestClient
) -> None:
    """A revoked key stays refused when a bearer header rides along (bearer tokens are off here)."""
    response = client.get(
        "/v1/forecasts", headers={"X-API-Key": world.revoked_key, "Authorization": "Bearer x.y.z"}
    )
    assert_problem(response, 401)
