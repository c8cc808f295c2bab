"""Data in through the API: uploads run the CLI's ingest for the key's tenant; Shopify webhooks are
verified by the shop's signature and summed per day without losing other orders' sales."""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from realcuts import store_item_cut
from serving_world import SHOP_SECRET, World, assert_problem

from features.lake import SalesLake
from serving.app import create_app

pytestmark = pytest.mark.integration
ORDERS = json.loads((Path(__file__).resolve().parents[1] / "data" / "shopify_orders_page.json").read_text())[
    "orders"
]


def kaggle_csv(stores: int = 1, items: int = 2, since: str = "2017-11-01") -> tuple[bytes, pd.DataFrame]:
    """The real cut written the way the Kaggle file is laid out (date, store, item, sales)."""
    cut = store_item_cut(stores=stores, items=items, since=since)
    text = cut.rename(columns={"store_id": "store", "sku": "item", "units": "sales"})
    text["date"] = text["date"].dt.strftime("%Y-%m-%d")
    return text[["date", "store", "item", "sales"]].to_csv(index=False).encode(), cut


def upload(client: TestClient, key: str, name: str, data: bytes, **form: str) -> Any:
    return client.post("/v1/uploads", headers={"X-API-Key": key}, files={"file": (name, data)}, data=form)


def lake(world: World, tenant: str) -> pd.DataFrame:
    return SalesLake(world.settings.lake_dir).read(tenant)


def test_upload_merges_into_the_keys_tenant_idempotently(world: World, client: TestClient) -> None:
    data, cut = kaggle_csv()
    first = upload(client, world.b.keys["analyst"], "sales.csv", data)
    assert first.status_code == 201, first.text
    body = first.json()
    assert (body["rows_in"], body["rows_new"], body["frequency"]) == (len(cut), len(cut), "D")
    assert body["report"]["status"] == "accepted"
    assert body["report"]["tenant_id"] == world.b.name
    stored = lake(world, world.b.name)
    assert stored["units"].sum() == cut["units"].sum()
    assert lake(world, world.a.name).empty  # nothing went anywhere else
    again = upload(client, world.b.keys["admin"], "sales.csv", data).json()
    assert (again["rows_new"], again["rows_updated"], again["rows_unchanged"]) == (0, 0, len(cut))


def test_bad_rows_reject_the_upload_with_located_problems(world: World, client: TestClient) -> None:
    data, _ = kaggle_csv(since="2017-12-20")
    lines = data.decode().splitlines()
    lines[3] = lines[3].rsplit(",", 1)[0] + ",lots"
    bad = "\n".join(lines).encode()
    before = lake(world, world.b.name)
    body = assert_problem(upload(client, world.b.keys["analyst"], "december.csv", bad), 422)
    assert body["problems"][0]["file"] == "december.csv"
    assert body["problems"][0]["row"] == 4
    assert body["problems"][0]["column"] == "sales"
    pd.testing.assert_frame_equal(lake(world, world.b.name), before)  # the lake is untouched
    lenient = upload(client, world.b.keys["analyst"], "december.csv", bad, lenient="true")
    assert lenient.status_code == 201
    assert lenient.json()["quarantined"] is True
    assert lenient.json()["source_rows"] == len(lines) - 1


def test_upload_refusals_are_clear_4xx(world: World, client: TestClient) -> None:
    key = world.b.keys["analyst"]
    assert ".csv" in assert_problem(upload(client, key, "sales.exe", b"MZ"), 415)["detail"]
    tab = b"date\tstore\tsku\tunits\n2024-03-01\t1\tA\t3\n"
    assert upload(client, key, "export.tsv", tab).status_code == 201  # what the CLI reads, the API takes
    assert (
        "mapping"
        in assert_problem(upload(client, key, "s.csv", b"a,b\n1,2\n", mapping="{nope"), 400)["detail"]
    )
    assert_problem(upload(client, key, "empty.csv", b""), 422)
    deep = assert_problem(upload(client, key, "deep.json", b"[" * 100_000 + b"]" * 100_000), 422)
    assert "nests too deeply" in deep["detail"]
    small = world.settings.model_copy(update={"api_max_body_bytes": 4096})
    with TestClient(create_app(small), raise_server_exceptions=False) as limited:
        data, _ = kaggle_csv(since="2016-01-01")
        assert len(data) > 4096
        assert_problem(upload(limited, key, "big.csv", data), 413)


def post_order(client: TestClient, world: World, order: dict[str, Any], topic: str = "orders/create") -> Any:
    body = json.dumps(order).encode()
    digest = hmac.new((SHOP_SECRET + "a").encode(), body, hashlib.sha256).digest()
    return client.post(
        "/v1/uploads/shopify",
        content=body,
        headers={
            "X-Shopify-Shop-Domain": world.a.shop, "X-Shopify-Topic": topic,
            "X-Shopify-Hmac-Sha256": base64.b64encode(digest).decode(), "X-Shopify-Webhook-Id": "wh-1",
        },
    )  # fmt: skip


def units(world: World, store: str, sku: str, day: str) -> float:
    frame = lake(world, world.a.name)
    hit = frame[(frame["store_id"] == store) & (frame["sku"] == sku) & (frame["date"] == pd.Timestamp(day))]
    return float(hit["units"].sum()) if len(hit) else 0.0


def test_webhook_orders_add_up_per_day_and_retries_change_nothing(world: World, client: TestClient) -> None:
    big = copy.deepcopy(ORDERS[2]) | {"test": False}  # 50 x SKU-RED, location 111, 2024-03-02 (shop time)
    small = copy.deepcopy(ORDERS[0]) | {"id": 5501099, "created_at": "2024-03-02T12:00:00-05:00"}
    test_order = post_order(client, world, ORDERS[2])  # Shopify test orders are not sales
    assert test_order.status_code == 200
    assert test_order.json()["order_events"] == 0
    assert units(world, "111", "SKU-RED", "2024-03-02") == 0.0
    assert post_order(client, world, big).status_code == 200
    response = post_order(client, world, small)
    assert response.status_code == 200, response.text
    assert response.json()["order_events"] == 2
    assert units(world, "111", "SKU-RED", "2024-03-02") == 52.0  # 50 + 2: the second order did not overwrite
    assert units(world, "111", "SKU-BLUE", "2024-03-02") == 1.0
    for _ in range(2):
        assert post_order(client, world, small).status_code == 200  # Shopify retries
    assert units(world, "111", "SKU-RED", "2024-03-02") == 52.0
    updated = copy.deepcopy(small)
    updated["line_items"] = [li for li in updated["line_items"] if li["sku"] == "SKU-RED"]
    updated["line_items"][0]["quantity"] = 5
    assert post_order(client, world, updated, "orders/updated").status_code == 200
    assert units(world, "111", "SKU-RED", "2024-03-02") == 55.0
    assert units(world, "111", "SKU-BLUE", "2024-03-02") == 0.0  # the line left the order


def test_webhook_refunds_net_on_their_own_day(world: World, client: TestClient) -> None:
    refunded = copy.deepcopy(ORDERS[1])  # 3 x SKU-RED on 03-02, one returned on 03-05
    assert post_order(client, world, refunded, "orders/updated").status_code == 200
    assert units(world, "all", "SKU-RED", "2024-03-02") == 3.0
    assert units(world, "all", "SKU-RED", "2024-03-05") == -1.0


def test_webhook_refusals(world: World, client: TestClient) -> None:
    assert "topic" in assert_problem(post_order(client, world, ORDERS[3], "products/create"), 400)["detail"]
    body = b"{not json"
    digest = base64.b64encode(hmac.new((SHOP_SECRET + "a").encode(), body, hashlib.sha256).digest()).decode()
    headers = {
        "X-Shopify-Shop-Domain": world.a.shop,
        "X-Shopify-Topic": "orders/create",
        "X-Shopify-Hmac-Sha256": digest,
    }
    assert_problem(client.post("/v1/uploads/shopify", content=body, headers=headers), 400)
    tampered = json.dumps(ORDERS[3]).encode()
    assert_problem(client.post("/v1/uploads/shopify", content=tampered, headers=headers), 401)
    broken = copy.deepcopy(ORDERS[3])
    broken["line_items"][0]["quantity"] = "two"
    problem = assert_problem(post_order(client, world, broken), 422)
    assert problem["problems"]
    assert problem["problems"][0]["column"]
    # signed but hostile: each of these answered 500, and Shopify retries a 5xx for days
    for field, value in (("line_items", True), ("created_at", "9999-12-31T23:59:59Z"), ("id", "\ud800")):
        assert_problem(post_order(client, world, copy.deepcopy(ORDERS[3]) | {field: value}), 422)
