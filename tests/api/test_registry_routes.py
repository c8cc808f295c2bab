"""Registry through the API: approvers decide (with reasons, overrides recorded), others only read."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from serving_world import World, assert_problem


def call(client: TestClient, world: World, method: str, url: str, role: str, **kwargs: Any) -> Any:
    return client.request(method, url, headers={"X-API-Key": world.a.keys[role]}, **kwargs)


def test_versions_list_marks_the_serving_one_and_hides_nothing_of_the_gate(
    world: World, client: TestClient
) -> None:
    versions = call(client, world, "GET", "/v1/registry/versions", "analyst").json()
    assert [v["version"] for v in versions] == [1, 2, 3]
    assert [v["serving"] for v in versions] == [True, False, False]
    assert [v["gate_passed"] for v in versions] == [True, True, False]
    assert versions[0]["reason"] == "the seeded champion"
    assert versions[2]["metrics"]["gate"]["passed"] is False
    assert_problem(call(client, world, "GET", "/v1/registry/versions", "viewer"), 403)
    assert_problem(call(client, world, "GET", "/v1/registry/versions/42", "analyst"), 404)


def test_card_is_html_with_plots_under_a_strict_policy(world: World, client: TestClient) -> None:
    response = call(client, world, "GET", "/v1/registry/versions/2/card", "approver")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    csp = response.headers["content-security-policy"]
    assert "img-src data:" in csp
    assert "script-src" not in csp
    assert "default-src 'none'" in csp
    html = response.text
    assert html.count("data:image/png;base64,") >= 2  # backtest plots and the SHAP drivers, inline
    assert "not in the artifact" not in html  # the artifact's explain.json and backtest were read
    assert world.a.name in html


def test_compare_puts_two_versions_side_by_side(world: World, client: TestClient) -> None:
    body = call(client, world, "GET", "/v1/registry/compare?a=1&b=3", "analyst").json()
    wape = next(r for r in body["metrics"] if r["kind"] == "ensemble" and r["metric"] == "wape")
    assert (wape["a"], wape["b"]) == (0.12, 0.31)
    assert wape["b_better"] is False
    assert_problem(call(client, world, "GET", "/v1/registry/compare?a=1&b=9", "analyst"), 404)


def test_decisions_need_the_approver_role_a_reason_and_override_for_a_failed_gate(
    world: World, client: TestClient
) -> None:
    url = "/v1/registry/versions/3/approve"
    for role in ("admin", "analyst", "viewer"):
        assert_problem(call(client, world, "POST", url, role, json={"reason": "ship it"}), 403)
    assert_problem(call(client, world, "POST", url, "approver", json={}), 422)
    assert_problem(call(client, world, "POST", url, "approver", json={"reason": ""}), 422)
    refused = assert_problem(call(client, world, "POST", url, "approver", json={"reason": "ship it"}), 409)
    assert "quality gate" in refused["detail"]
    assert world.registry.get(world.a.name, 3).status == "PendingManualApproval"
    approved = call(
        client, world, "POST", url, "approver", json={"reason": "holiday spike, reviewed", "override": True}
    )
    assert approved.status_code == 200, approved.text
    body = approved.json()
    assert body["version"]["status"] == "Approved"
    assert body["version"]["serving"] is True
    assert body["version"]["override"] is True
    # No sales in this world: the approval says why no forecast run started instead of failing.
    assert body["job"] is None
    assert "no sales data" in body["note"]
    audit = call(client, world, "GET", "/v1/registry/audit", "analyst").json()
    last = audit[-1]
    assert last["action"] == "approve"
    assert last["version"] == 3
    assert last["actor"] == f"key:{world.a.key_ids['approver']}"
    assert "gate_failed" in str(last["detail"])
    serving = call(client, world, "GET", "/v1/registry/versions", "analyst").json()
    assert [v["serving"] for v in serving] == [False, False, True]


def test_reject_needs_a_reason_and_cannot_override(world: World, client: TestClient) -> None:
    url = "/v1/registry/versions/2/reject"
    assert_problem(call(client, world, "POST", url, "approver", json={"reason": "x", "override": True}), 400)
    rejected = call(client, world, "POST", url, "approver", json={"reason": "worse on the holdout"})
    assert rejected.status_code == 200, rejected.text
    assert rejected.json()["version"]["status"] == "Rejected"
    assert rejected.json()["version"]["reason"] == "worse on the holdout"
    again = assert_problem(call(client, world, "POST", url, "approver", json={"reason": "again"}), 409)
    assert "already Rejected" in again["detail"]
    back = call(
        client,
        world,
        "POST",
        "/v1/registry/versions/2/approve",
        "approver",
        json={"reason": "r", "forecast": False},
    )
    assert_problem(back, 409)
