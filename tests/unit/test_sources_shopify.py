"""Shopify orders -> events -> daily records; webhook signatures."""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import json
import math
import subprocess
import sys
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from features.errors import ContractError
from features.ingest import ingest_file
from features.lake import SalesLake
from features.sources.shopify import parse_shopify_payload, read_shopify
from features.sources.shopify_hmac import verify_shopify_hmac

PAGE = Path(__file__).parents[1] / "data" / "shopify_orders_page.json"
TODAY = date(2024, 6, 30)


@pytest.fixture
def page() -> dict[str, Any]:
    return json.loads(PAGE.read_text())


def test_events_of_a_page(page: dict[str, Any]) -> None:
    events = parse_shopify_payload(page)
    assert events["event_id"].is_unique
    by_id = events.set_index("event_id")
    # 23:30 at UTC-5 is 1 March in the shop, although it is 2 March in UTC
    assert by_id.loc["order/5501001/line/9001", "date"] == pd.Timestamp("2024-03-01")
    assert by_id.loc["order/5501001/line/9002", "revenue"] == pytest.approx(5.0)  # 5.50 - 0.50 discount
    refund = by_id.loc["refund/8801/line/8901"]
    assert (refund["date"], refund["units"], refund["revenue"]) == (pd.Timestamp("2024-03-05"), -1.0, -10.0)
    assert by_id.loc["order/5501002/line/9003", "store_id"] == "all"  # online order: no location
    assert by_id.loc["cancel/5501004/line/9005", "units"] == -2.0
    assert "variant-4444" in set(events["sku"])
    assert not events["order_id"].eq(5501003).any()  # test order
    assert "GIFT-25" not in set(events["sku"])


def record(frame: pd.DataFrame, store: str, sku: str, day: str) -> dict[Any, Any]:
    """The one stored record of a key, as a dict."""
    match = frame[(frame["store_id"] == store) & (frame["sku"] == sku) & (frame["date"] == pd.Timestamp(day))]
    assert len(match) == 1
    return match.iloc[0].to_dict()


def test_ingesting_a_page_nets_refunds_on_their_own_day(page: dict[str, Any], tmp_path: Path) -> None:
    lake = SalesLake(tmp_path / "lake")
    result = ingest_file(PAGE, "shop", lake, tmp_path / "reports", today=TODAY)
    stored = lake.read("shop")
    assert record(stored, "111", "SKU-RED", "2024-03-01")["units"] == 2
    assert record(stored, "all", "SKU-RED", "2024-03-02")["units"] == 3  # order day untouched
    assert record(stored, "all", "SKU-RED", "2024-03-05")["units"] == -1  # refund day
    cancelled = record(stored, "111", "SKU-BLUE", "2024-03-03")
    assert (cancelled["units"], cancelled["revenue"], cancelled["unit_price"]) == (0.0, 0.0, 5.5)
    assert record(stored, "222", "variant-4444", "2024-03-04")["unit_price"] == 7.25
    assert result.source_rows == 7
    assert result.report["source"]["orders"] == 5
    assert result.report["source"]["skipped_test_orders"] == 1
    assert result.report["level"] == "transactions"
    assert "channel" in stored.columns
    assert stored["channel"].isin(["web", "pos"]).all()


def test_a_folder_of_pages_is_one_upload_and_repeated_orders_count_once(
    page: dict[str, Any], tmp_path: Path
) -> None:
    folder = tmp_path / "export"
    folder.mkdir()
    first, second = copy.deepcopy(page), copy.deepcopy(page)
    first["orders"] = page["orders"][:2]
    second["orders"] = page["orders"][1:]  # order 1002 is on both pages
    (folder / "orders-001.json").write_text(json.dumps(first))
    (folder / "orders-002.json").write_text(json.dumps(second))
    lake = SalesLake(tmp_path / "lake")
    ingest_file(folder, "shop", lake, tmp_path / "reports", today=TODAY)
    whole = SalesLake(tmp_path / "whole")
    ingest_file(PAGE, "shop", whole, tmp_path / "reports", today=TODAY)
    pd.testing.assert_frame_equal(lake.read("shop"), whole.read("shop"))


def test_webhook_order_and_problems(page: dict[str, Any]) -> None:
    order = page["orders"][0]
    assert len(parse_shopify_payload({"order": order})) == 2
    assert len(parse_shopify_payload(order)) == 2
    assert len(parse_shopify_payload([order, page["orders"][1]])) == 4
    bad = copy.deepcopy(order)
    bad["line_items"][0]["quantity"] = "two"
    bad["line_items"][1]["sku"] = '=HYPERLINK("http://evil")'
    with pytest.raises(ContractError) as caught:
        parse_shopify_payload({"orders": [bad]}, source="webhook")
    messages = {(p.row, p.column): p.message for p in caught.value.problems}
    assert messages[(1, "line_items[0].quantity")] == "expected a number, got 'two'"
    assert "formula injection" in messages[(1, "line_items.sku")]


# -- HMAC ---------------------------------------------------------------------------------------


def _sign(body: bytes, secret: str) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def test_hmac_accepts_the_right_signature_only() -> None:
    body = PAGE.read_bytes()
    good = _sign(body, "hush")
    assert verify_shopify_hmac(body, "hush", good)
    assert verify_shopify_hmac(body, "hush", f"  {good}\n")
    assert not verify_shopify_hmac(body + b" ", "hush", good)
    assert not verify_shopify_hmac(body, "other", good)
    assert not verify_shopify_hmac(body, "hush", good[:-4] + "AAA=")
    assert not verify_shopify_hmac(body, "hush", "not base64 at all!")
    assert not verify_shopify_hmac(body, "hush", "")
    assert not verify_shopify_hmac(body, "", _sign(body, ""))
    assert not verify_shopify_hmac(body, "hush", "é")


def test_hmac_module_imports_without_pandas() -> None:
    code = (
        "import sys; from features.sources.shopify_hmac import verify_shopify_hmac; "
        "heavy = {'pandas', 'numpy', 'pyarrow', 'pandera'} & set(sys.modules); print(sorted(heavy))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).parents[2],
    )
    assert out.stdout.strip() == "[]"


HOSTILE = [None, "", [], {}, 0, -1, 1e308, "NaN", "Infinity", "a\x00b", "\ud800", "x" * 5000, True,
           "9999-12-31T23:59:59Z", "0001-01-01T00:00:00Z", "2024-02-30T00:00:00Z", 10**30,
           "1e400"]  # fmt: skip
FIELDS = [
    ("id",), ("created_at",), ("cancelled_at",), ("location_id",), ("test",), ("line_items",), ("refunds",),
    ("line_items", 0), ("line_items", 0, "id"), ("line_items", 0, "sku"), ("line_items", 0, "quantity"),
    ("line_items", 0, "price"), ("line_items", 0, "total_discount"), ("line_items", 0, "variant_id"),
    ("refunds", 0), ("refunds", 0, "created_at"), ("refunds", 0, "refund_line_items"),
    ("refunds", 0, "refund_line_items", 0), ("refunds", 0, "refund_line_items", 0, "line_item_id"),
    ("refunds", 0, "refund_line_items", 0, "quantity"),
]  # fmt: skip


@pytest.mark.parametrize("field", FIELDS, ids=lambda path: ".".join(map(str, path)))
def test_a_hostile_value_anywhere_in_an_order_is_a_contract_error_or_clean_events(
    page: dict[str, Any], field: tuple[Any, ...]
) -> None:
    """Webhooks carry any JSON a signed sender puts there; a 500 makes Shopify retry it for days.

    28 such orders raised TypeError, AttributeError, OverflowError or UnicodeEncodeError.
    """
    refunded = next(o for o in page["orders"] if o.get("refunds"))
    for value in HOSTILE:
        order = copy.deepcopy(refunded)
        *path, last = field
        holder = order
        for step in path:
            holder = holder[step]
        holder[last] = value
        events, problems = _outcome(order)
        if events is None:
            assert problems, (field, value)
            continue
        assert events["units"].map(math.isfinite).all(), (field, value)
        assert events["date"].between("1900-01-01", "2199-12-31").all(), (field, value)
        for column in ("event_id", "store_id", "sku"):
            for text in events[column]:
                text.encode("utf-8")  # what Parquet and PostgreSQL need


def _outcome(order: dict[str, Any]) -> tuple[pd.DataFrame | None, list[Any]]:
    try:
        return parse_shopify_payload(order), []
    except ContractError as error:
        return None, list(error.problems)


def test_json_nesting_too_deep_is_refused_by_name(tmp_path: Path) -> None:
    deep = tmp_path / "deep.json"
    deep.write_bytes(b"[" * 100_000 + b"]" * 100_000)
    with pytest.raises(ContractError, match="nests too deeply"):
        read_shopify(deep)
    with pytest.raises(ContractError, match="nests too deeply"):
        parse_shopify_payload(_nested())  # a webhook's body, parsed by the route


def _nested() -> Any:
    value: Any = {"line_items": []}
    for _ in range(sys.getrecursionlimit() + 10):
        value = [value]
    return value
