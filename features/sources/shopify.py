"""Shopify orders (Admin REST API ``orders.json`` pages, or one webhook order) -> sales events.

One event per line item sold and per refunded line item, each with a stable ``event_id``. Events,
not daily totals, are what :func:`parse_shopify_payload` returns: a webhook carries one order, and
only events let the API store orders idempotently (a retried webhook repeats its event ids) before
re-aggregating the days they touch. Files go through :func:`features.sources.aggregate.partial_daily`
like any other transaction lines.

Dates: ``created_at`` carries the shop's UTC offset (``2024-03-01T23:30:00-05:00``); the sales day is
the date in that offset, i.e. the shop's local calendar day, never the UTC day.

Refunds are netted on the *refund's* date, not the order's. A demand history must not change after
the fact: forecasts were judged against the units recorded for a day, and rewriting past days on
every late refund would move those actuals (and the training data of the next run) retroactively.
Dating returns when they happen is also how the other sources behave (Online Retail's 'C' invoices
and Walmart's negative weeks carry their own dates). A cancelled order without refund lines counts
as returned in full on its ``cancelled_at`` date. Test orders and gift-card lines are skipped.
"""

from __future__ import annotations

import json
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from features.errors import ContractError, Problem
from features.sources.base import file_error
from features.sources.cells import clean_identifiers
from features.sources.mapping import DEFAULT_STORE

EVENT_COLUMNS = (
    "event_id",
    "kind",
    "order_id",
    "_row",
    "store_id",
    "sku",
    "date",
    "units",
    "unit_price",
    "revenue",
    "channel",
)


def parse_shopify_payload(
    payload: dict[str, Any] | list[Any], source: str = "shopify payload"
) -> pd.DataFrame:
    """Sales events of an orders page, a list of orders, or one order; ContractError if any is malformed."""
    events, problems, _ = shopify_events(payload, source)
    if problems:
        raise ContractError(problems[:20], total=len(problems))
    return events


def read_shopify(path: Path) -> tuple[pd.DataFrame, list[Problem], dict[str, int]]:
    """Events of one orders page, or of every ``*.json`` page in a directory (read in name order).

    The pages of one export must come in one upload: the lake replaces whole days, so a day split
    across two uploads would keep only the second upload's part of it.
    """
    files = sorted(path.glob("*.json")) if path.is_dir() else [path]
    if not files:
        raise file_error(path.name, "the folder holds no Shopify orders pages (*.json)")
    frames, problems, counts = [], [], {"orders": 0, "skipped_test_orders": 0, "skipped_gift_cards": 0}
    for file in files:
        try:
            payload = json.loads(file.read_bytes())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise file_error(
                file.name, f"not valid JSON ({exc}); expected a Shopify orders.json page"
            ) from None
        events, found, seen = shopify_events(payload, file.name, offset=counts["orders"])
        frames.append(events.assign(_file=file.name))
        problems += found
        counts = {k: counts[k] + seen[k] for k in counts}
    events = pd.concat(frames, ignore_index=True)
    # Overlapping exports repeat orders: the last page's version of an event wins.
    events = events.drop_duplicates("event_id", keep="last", ignore_index=True)
    return events, problems, counts


def shopify_events(
    payload: Any, source: str, offset: int = 0
) -> tuple[pd.DataFrame, list[Problem], dict[str, int]]:
    """Events and problems of one payload; rows number orders from ``offset + 1``.

    Pages of one export are numbered on from each other, so a row names one order in the upload.
    """
    orders = _orders(payload, source)
    parser = _Parser(source)
    for position, order in enumerate(orders, start=offset + 1):
        parser.order(position, order)
    frame = pd.DataFrame(parser.events, columns=list(EVENT_COLUMNS))
    frame["date"] = pd.to_datetime(frame["date"]).astype("datetime64[ns]")
    for column in ("units", "unit_price", "revenue"):
        frame[column] = frame[column].astype(float)
    frame["_row"] = frame["_row"].astype("int64")
    problems = parser.problems
    for column in ("store_id", "sku", "channel"):
        frame[column], found = clean_identifiers(
            frame[column], frame["_row"].to_numpy(), f"line_items.{column}", column, column != "channel"
        )
        for f in found:
            problems += [
                Problem(source, int(row), str(column), str(message))
                for row, column, message in zip(f["row"].tolist(), f["column"], f["message"], strict=True)
            ]
    return frame, problems, parser.counts


def _orders(payload: Any, source: str) -> list[Any]:
    if isinstance(payload, dict):
        if isinstance(payload.get("orders"), list):
            return list(payload["orders"])
        if isinstance(payload.get("order"), dict):
            return [payload["order"]]
        if "line_items" in payload:
            return [payload]
    if isinstance(payload, list):
        orders: list[Any] = []
        for item in payload:
            orders += _orders(item, source) if isinstance(item, dict) and "orders" in item else [item]
        return orders
    return _bad_shape(source)


def _bad_shape(source: str) -> list[Any]:
    raise file_error(
        source, 'expected Shopify orders: {"orders": [...]}, a list of orders, or one order object'
    )


class _Parser:
    def __init__(self, source: str) -> None:
        self.source = source
        self.events: list[tuple[Any, ...]] = []
        self.problems: list[Problem] = []
        self.counts = {"orders": 0, "skipped_test_orders": 0, "skipped_gift_cards": 0}

    def problem(self, row: int, column: str, message: str) -> None:
        self.problems.append(Problem(self.source, row, column, message))

    def order(self, row: int, order: Any) -> None:
        if not isinstance(order, dict):
            self.problem(row, "orders", f"expected an order object, got {type(order).__name__}")
            return
        self.counts["orders"] += 1
        if order.get("test") is True:
            self.counts["skipped_test_orders"] += 1
            return
        order_id = order.get("id")
        day = self.local_date(row, "created_at", order.get("created_at"))
        store = _store(order.get("location_id"))
        channel = order.get("source_name") if isinstance(order.get("source_name"), str) else None
        items: dict[Any, tuple[str, float]] = {}
        sales: list[tuple[Any, ...]] = []
        for i, item in enumerate(order.get("line_items") or []):
            where = f"line_items[{i}]"
            if not isinstance(item, dict) or item.get("gift_card") is True:
                self.counts["skipped_gift_cards"] += isinstance(item, dict)
                continue
            sku = self.sku(row, where, item)
            quantity = self.number(row, f"{where}.quantity", item.get("quantity"))
            price = self.number(row, f"{where}.price", item.get("price"))
            discount = self.number(row, f"{where}.total_discount", item.get("total_discount", 0))
            if sku is None or quantity is None or price is None or discount is None or day is None:
                continue
            items[item.get("id")] = (sku, price)
            sales.append(
                (
                    f"order/{order_id}/line/{item.get('id')}",
                    "sale",
                    order_id,
                    row,
                    store,
                    sku,
                    day,
                    quantity,
                    price,
                    quantity * price - discount,
                    channel,
                )
            )
        self.events += sales
        refunded = self.refunds(row, order, store, channel, items)
        if order.get("cancelled_at") and not refunded:
            cancelled = self.local_date(row, "cancelled_at", order.get("cancelled_at"))
            if cancelled is not None:
                self.events += [
                    (
                        event[0].replace("order/", "cancel/", 1),
                        "cancel",
                        order_id,
                        row,
                        store,
                        event[5],
                        cancelled,
                        -event[7],
                        event[8],
                        -event[9],
                        channel,
                    )
                    for event in sales
                ]

    def refunds(
        self,
        row: int,
        order: dict[str, Any],
        store: str,
        channel: str | None,
        items: dict[Any, tuple[str, float]],
    ) -> int:
        count = 0
        for r, refund in enumerate(order.get("refunds") or []):
            day = self.local_date(row, f"refunds[{r}].created_at", (refund or {}).get("created_at"))
            for j, line in enumerate((refund or {}).get("refund_line_items") or []):
                where = f"refunds[{r}].refund_line_items[{j}]"
                quantity = self.number(row, f"{where}.quantity", line.get("quantity"))
                known = items.get(line.get("line_item_id"))
                if known is None and isinstance(line.get("line_item"), dict):
                    sku = self.sku(row, f"{where}.line_item", line["line_item"])
                    price = self.number(row, f"{where}.line_item.price", line["line_item"].get("price"))
                    known = (sku, price) if sku is not None and price is not None else None
                if known is None:
                    self.problem(row, f"{where}.line_item_id", "refers to no line item of this order")
                    continue
                if quantity is None or day is None:
                    continue
                subtotal = self.number(row, f"{where}.subtotal", line.get("subtotal", known[1] * quantity))
                self.events.append(
                    (
                        f"refund/{refund.get('id')}/line/{line.get('id')}",
                        "refund",
                        order.get("id"),
                        row,
                        _store(line.get("location_id"), store),
                        known[0],
                        day,
                        -quantity,
                        known[1],
                        -(subtotal if subtotal is not None else known[1] * quantity),
                        channel,
                    )
                )
                count += 1
        return count

    def local_date(self, row: int, column: str, value: Any) -> date | None:
        try:
            return datetime.fromisoformat(str(value)).date()
        except ValueError:
            self.problem(
                row, column, f"expected an ISO 8601 time such as 2024-03-01T10:15:00-05:00, got {value!r}"
            )
            return None

    def number(self, row: int, column: str, value: Any) -> float | None:
        try:
            number = float(value)
        except (TypeError, ValueError):
            self.problem(row, column, f"expected a number, got {value!r}")
            return None
        return number

    def sku(self, row: int, where: str, item: dict[str, Any]) -> str | None:
        sku = str(item.get("sku") or "").strip()
        if sku:
            return sku
        if item.get("variant_id") is not None:
            return f"variant-{item['variant_id']}"
        self.problem(row, f"{where}.sku", "line item has neither a sku nor a variant_id")
        return None


def _store(location: Any, fallback: str = DEFAULT_STORE) -> str:
    return str(location) if location not in (None, "") else fallback
