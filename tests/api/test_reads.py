"""Read routes return exactly what the stores hold for the caller's tenant (SQLite and PostgreSQL).

Expected values are recomputed here from the same real data the world was seeded with, not read
back through the code under test.
"""

from __future__ import annotations

import base64
import json
from datetime import date, timedelta
from typing import Any

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from serving_world import (
    HORIZON,
    ORIGIN,
    World,
    accuracy_rows,
    assert_problem,
    realistic_forecast,
    tenant_sales,
)

from inference.inventory import InventoryPolicy, recommend


def get(client: TestClient, world: World, url: str, role: str = "viewer", **headers: str) -> Any:
    return client.get(url, headers={"X-API-Key": world.a.keys[role], **headers})


def known_sales() -> pd.DataFrame:
    sales = tenant_sales("a")
    return sales[sales["date"] <= ORIGIN]


def test_series_forecast_with_its_history_window(world: World, client: TestClient) -> None:
    store, sku = world.a.series[1]
    body = get(client, world, f"/v1/forecasts/series?store_id={store}&sku={sku}&history_days=21").json()
    expected = realistic_forecast(known_sales(), ORIGIN, HORIZON)
    expected = expected[(expected["store_id"] == store) & (expected["sku"] == sku)]
    assert [p["target_date"] for p in body["forecast"]] == [d.isoformat() for d in expected["target_date"]]
    assert [p["p50"] for p in body["forecast"]] == pytest.approx(expected["p50"].tolist())
    assert [p["horizon_day"] for p in body["forecast"]] == list(range(1, HORIZON + 1))
    sales = known_sales()
    actual = sales[(sales["store_id"] == store) & (sales["sku"] == sku)].tail(21)
    assert [h["date"] for h in body["history"]] == [d.date().isoformat() for d in actual["date"]]
    assert [h["units"] for h in body["history"]] == actual["units"].tolist()
    assert (
        body["history"][-1]["date"]
        == (date.fromisoformat(body["forecast"][0]["target_date"]) - timedelta(1)).isoformat()
    )
    assert body["forecast_set"]["set_id"] == world.a.set_id
    none = get(client, world, f"/v1/forecasts/series?store_id={store}&sku={sku}&history_days=0").json()
    assert none["history"] == []
    assert len(none["forecast"]) == HORIZON


def test_series_forecast_etag_and_unknown_series(world: World, client: TestClient) -> None:
    store, sku = world.a.series[0]
    url = f"/v1/forecasts/series?store_id={store}&sku={sku}"
    first = get(client, world, url)
    assert first.headers["cache-control"] == "private, max-age=60"
    assert get(client, world, url, **{"If-None-Match": first.headers["etag"]}).status_code == 304
    other = get(client, world, f"{url}&history_days=30", **{"If-None-Match": first.headers["etag"]})
    assert other.status_code == 200
    body = assert_problem(get(client, world, f"/v1/forecasts/series?store_id={store}&sku=nope"), 404)
    assert "nope" in body["detail"]
    assert_problem(get(client, world, f"/v1/forecasts/series?store_id={store}"), 422)


def test_current_set_carries_its_realised_accuracy(world: World, client: TestClient) -> None:
    body = get(client, world, "/v1/forecasts/current").json()
    expected = accuracy_rows(tenant_sales("a"), world.a.set_id, 3)[0]
    assert body["set_id"] == world.a.set_id
    assert body["model_version"] == 3
    assert body["accuracy"]["level"] == "total"
    assert body["accuracy"]["store_id"] is None
    assert body["accuracy"]["sku"] is None
    assert body["accuracy"]["wape"] == pytest.approx(expected.wape)
    assert body["accuracy"]["bias"] == pytest.approx(expected.bias)
    assert body["accuracy"]["n"] == expected.n == 6 * HORIZON


def test_accuracy_pages_cover_each_series_once(world: World, client: TestClient) -> None:
    expected = {
        (r.store_id, r.sku): r
        for r in accuracy_rows(tenant_sales("a"), world.a.set_id, 3)
        if r.level == "sku"
    }
    seen: list[tuple[str, str]] = []
    cursor, check = None, None
    while True:
        url = "/v1/accuracy?level=sku&limit=4" + (f"&cursor={cursor}" if cursor else "")
        body = get(client, world, url).json()
        check = check or body["check_id"]
        assert body["check_id"] == check
        for item in body["items"]:
            seen.append((item["store_id"], item["sku"]))
            assert item["wape"] == pytest.approx(expected[seen[-1]].wape)
            assert item["coverage"] == pytest.approx(expected[seen[-1]].coverage)
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert seen == sorted(expected)
    stores = get(client, world, "/v1/accuracy?level=store").json()["items"]
    assert [s["store_id"] for s in stores] == ["a-store-1", "a-store-2"]
    assert all(s["sku"] is None for s in stores)
    one = get(client, world, "/v1/accuracy?level=sku&store_id=a-store-2").json()["items"]
    assert {i["store_id"] for i in one} == {"a-store-2"}
    assert len(one) == 3


def test_accuracy_cursor_is_bound_to_its_filters_and_trend_needs_its_keys(
    world: World, client: TestClient
) -> None:
    cursor = get(client, world, "/v1/accuracy?level=sku&limit=2").json()["next_cursor"]
    body = assert_problem(get(client, world, f"/v1/accuracy?level=store&limit=2&cursor={cursor}"), 400)
    assert body["title"] == "Invalid pagination cursor"
    assert_problem(get(client, world, "/v1/accuracy?cursor=not-a-cursor"), 400)
    trend = get(client, world, "/v1/accuracy/trend?level=store&store_id=a-store-1").json()
    assert len(trend["items"]) == 1
    assert trend["items"][0]["store_id"] == "a-store-1"
    assert_problem(get(client, world, "/v1/accuracy/trend?level=sku&store_id=a-store-1"), 400)
    assert_problem(get(client, world, "/v1/accuracy/trend?level=total&sku=a-item-1"), 400)
    assert_problem(get(client, world, "/v1/accuracy?check_id=nope"), 404)


def test_inventory_advice_matches_the_inventory_model(world: World, client: TestClient) -> None:
    fc = realistic_forecast(known_sales(), ORIGIN, HORIZON)
    stock = {key: (5.0 if i % 2 == 0 else 900.0) for i, key in enumerate(world.a.series)}
    expected = recommend(
        fc, InventoryPolicy(lead_time_days=7, service_level=0.95, review_days=7), on_hand=stock
    )
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        url = "/v1/inventory/recommendations?limit=4" + (f"&cursor={cursor}" if cursor else "")
        body = get(client, world, url).json()
        assert body["forecast_set_id"] == world.a.set_id
        items += body["items"]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert [(i["store_id"], i["sku"]) for i in items] == world.a.series
    got = pd.DataFrame(items)
    assert got["reorder_point"].tolist() == pytest.approx(expected["reorder_point"].tolist())
    assert got["order_quantity"].tolist() == pytest.approx(expected["order_quantity"].tolist())
    assert got["stockout_risk"].tolist() == expected["stockout_risk"].tolist()
    alerts = get(client, world, "/v1/inventory/alerts").json()["items"]
    assert [(a["store_id"], a["sku"]) for a in alerts] == [
        k for k, risk in zip(world.a.series, expected["stockout_risk"], strict=True) if risk
    ]
    assert alerts
    assert all(a["on_hand"] < a["reorder_point"] for a in alerts)
    one = get(client, world, "/v1/inventory/recommendations?store_id=a-store-1&at_risk=true").json()["items"]
    assert all(i["store_id"] == "a-store-1" and i["stockout_risk"] for i in one)


def test_sales_history_window(world: World, client: TestClient) -> None:
    store, sku = world.a.series[2]
    sales = known_sales()
    series = sales[(sales["store_id"] == store) & (sales["sku"] == sku)].set_index("date")["units"]
    body = get(client, world, f"/v1/sales?store_id={store}&sku={sku}&start=2017-09-01&end=2017-09-10").json()
    assert [i["date"] for i in body["items"]] == [f"2017-09-{d:02d}" for d in range(1, 11)]
    assert [i["units"] for i in body["items"]] == series["2017-09-01":"2017-09-10"].tolist()
    newest = get(client, world, f"/v1/sales?store_id={store}&sku={sku}&limit=5").json()["items"]
    assert [i["date"] for i in newest][-1] == ORIGIN.date().isoformat()
    assert len(newest) == 5
    assert get(client, world, f"/v1/sales?store_id={store}&sku=unknown").json()["items"] == []
    assert_problem(
        get(client, world, f"/v1/sales?store_id={store}&sku={sku}&start=2017-09-10&end=2017-09-01"), 400
    )


def test_explanations_of_a_series_and_of_the_model(world: World, client: TestClient) -> None:
    store, sku = world.a.series[3]
    body = get(client, world, f"/v1/explanations?store_id={store}&sku={sku}&top=3").json()
    assert body["model_version"] == world.a.versions["approved"]
    assert body["scope"] == "series"
    importances = [d["importance"] for d in body["drivers"]]
    assert importances == sorted(importances, reverse=True)
    assert len(importances) == 3
    assert body["global_drivers"][0] == {
        "feature": "lag_7",
        "label": "lag 7",
        "importance": pytest.approx(1.01),
    }
    assert body["drivers"][0]["label"] is None  # the per-SKU entries of this artifact carry no label
    unknown = get(client, world, f"/v1/explanations?store_id={store}&sku=new-sku").json()
    assert unknown["scope"] == "global"
    assert unknown["drivers"] == unknown["global_drivers"]
    pinned = get(client, world, f"/v1/explanations?version={world.a.versions['failed']}").json()
    assert pinned["model_version"] == world.a.versions["failed"]
    assert pinned["global_drivers"][0]["importance"] == pytest.approx(1.03)
    assert_problem(get(client, world, f"/v1/explanations?store_id={store}"), 400)
    assert_problem(get(client, world, "/v1/explanations?version=99"), 404)


def test_explanations_missing_from_the_artifact_is_a_clear_404(
    world: World, client: TestClient, tmp_path: Any
) -> None:
    import tarfile

    bare = tmp_path / "model.tar.gz"
    with tarfile.open(bare, "w:gz") as tar:
        (tmp_path / "manifest.json").write_text("{}")
        tar.add(tmp_path / "manifest.json", arcname="manifest.json")
    from serving_world import version_metrics

    v = world.registry.register(
        world.b.name, bare.as_uri(), version_metrics(0.1, True), {"pipeline_run_id": "x"}, True
    )
    response = client.get(
        f"/v1/explanations?version={v.version}", headers={"X-API-Key": world.b.keys["viewer"]}
    )
    body = assert_problem(response, 404)
    assert "explain.json" in body["detail"]


@pytest.mark.parametrize("poison", ["\ud800", "a\x00b", "\x1b[2J"])
@pytest.mark.parametrize(
    "url",
    ["/v1/forecasts?limit=2", "/v1/inventory/recommendations?limit=2", "/v1/accuracy?level=sku&limit=2"],
)
def test_a_hand_edited_cursor_is_a_clear_400_not_a_database_error(
    world: World, client: TestClient, url: str, poison: str
) -> None:
    """A cursor is client input: a NUL or a lone surrogate in it reached the query and answered 500."""
    cursor = get(client, world, url).json()["next_cursor"]
    doc = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    for field in ("key", "scope"):
        edited = {**doc, "k": [poison, *doc["k"][1:]]} if field == "key" else {**doc, "s": poison}
        raw = base64.urlsafe_b64encode(json.dumps(edited).encode()).decode().rstrip("=")
        body = assert_problem(get(client, world, f"{url}&cursor={raw}"), 400)
        assert body["title"] == "Invalid pagination cursor"
        assert "malformed cursor" in body["detail"]
    assert get(client, world, f"{url}&cursor={cursor}").status_code == 200  # the real one still pages
