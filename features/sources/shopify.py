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
import math
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from features.errors import ContractError, Problem
from features.sources.base import file_error
from features.sources.cells import clean_identifiers
from features.sources.mapping import DEFAULT_STORE

# The years a Shopify time may name: pandas counts nanoseconds to 2262, and 9999-12-31 overflowed.
EARLIEST, LATEST = 1900, 2199
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
        except RecursionError:
            raise file_error(file.name, "nests too deeply to be a Shopify orders.json page") from None
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
    _check_text(payload, source)
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


def _check_text(payload: Any, source: str) -> None:
    """Refuse what no store can hold before parsing: an unpaired surrogate (JSON's ``\\ud800``
    escape decodes to one; writing it to Parquet or PostgreSQL fails) or nesting Python cannot walk."""
    try:
        json.dumps(payload, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise file_error(
            source, "holds text that is not valid Unicode (an unpaired \\ud800-style escape)"
        ) from None
    except RecursionError:
        raise file_error(source, "nests too deeply to be Shopify orders") from None


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
        order_id = self.identifier(row, "id", order.get("id"))
        day = self.local_date(row, "created_at", order.get("created_at"))
        store = _store(self.identifier(row, "location_id", order.get("location_id")))
        channel = order.get("source_name") if isinstance(order.get("source_name"), str) else None
        items: dict[Any, tuple[str, float]] = {}
        sales: list[tuple[Any, ...]] = []
        for i, item in enumerate(self.listed(row, "line_items", order.get("line_items"))):
            where = f"line_items[{i}]"
            if not isinstance(item, dict):
                self.problem(row, where, f"expected a line item object, got {type(item).__name__}")
                continue
            if item.get("gift_card") is True:
                self.counts["skipped_gift_cards"] += 1
                continue
            line_id = self.identifier(row, f"{where}.id", item.get("id"))
            sku = self.sku(row, where, item)
            quantity = self.number(row, f"{where}.quantity", item.get("quantity"))
            price = self.number(row, f"{where}.price", item.get("price"))
            discount = self.number(row, f"{where}.total_discount", item.get("total_discount", 0))
            if sku is None or quantity is None or price is None or discount is None or day is None:
                continue
            items[line_id] = (sku, price)
            sales.append(
                (
                    f"order/{order_id}/line/{line_id}",
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
        refunded = self.refunds(row, order, order_id, store, channel, items)
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

    def refunds(  # noqa: PLR0917 - the order's context, passed on from order()
        self,
        row: int,
        order: dict[str, Any],
        order_id: str | None,
        store: str,
        channel: str | None,
        items: dict[Any, tuple[str, float]],
    ) -> int:
        count = 0
        for r, refund in enumerate(self.listed(row, "refunds", order.get("refunds"))):
            if not isinstance(refund, dict):
                self.problem(row, f"refunds[{r}]", f"expected a refund object, got {type(refund).__name__}")
                continue
            day = self.local_date(row, f"refunds[{r}].created_at", refund.get("created_at"))
            lines = self.listed(row, f"refunds[{r}].refund_line_items", refund.get("refund_line_items"))
            for j, line in enumerate(lines):
                where = f"refunds[{r}].refund_line_items[{j}]"
                if not isinstance(line, dict):
                    self.problem(row, where, f"expected a refund line object, got {type(line).__name__}")
                    continue
                quantity = self.number(row, f"{where}.quantity", line.get("quantity"))
                known = items.get(self.identifier(row, f"{where}.line_item_id", line.get("line_item_id")))
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
                        f"refund/{self.identifier(row, f'refunds[{r}].id', refund.get('id'))}"
                        f"/line/{self.identifier(row, f'{where}.id', line.get('id'))}",
                        "refund",
                        order_id,
                        row,
                        _store(self.identifier(row, f"{where}.location_id", line.get("location_id")), store),
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
            day = datetime.fromisoformat(value).date() if isinstance(value, str) else None
        except ValueError:
            day = None
        if day is None or not EARLIEST <= day.year <= LATEST:
            self.problem(
                row,
                column,
                f"expected an ISO 8601 time such as 2024-03-01T10:15:00-05:00 in the years {EARLIEST}"
                f"-{LATEST}, got {_shown(value)}",
            )
            return None
        return day

    def number(self, row: int, column: str, value: Any) -> float | None:
        try:
            number = float(value) if not isinstance(value, bool) else None
        except (TypeError, ValueError, OverflowError):
            number = None
        if number is None:
            self.problem(row, column, f"expected a number, got {_shown(value)}")
        elif not math.isfinite(number):
            self.problem(row, column, f"expected a finite number, got {_shown(value)}")
            return None
        return number

    def identifier(self, row: int, column: str, value: Any) -> str | None:
        """An id as text: Shopify's are numbers or strings; anything else is a problem, not a key."""
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | str):
            self.problem(row, column, f"expected an id (a number or a text), got {_shown(value)}")
            return None
        return str(value)

    def listed(self, row: int, column: str, value: Any) -> list[Any]:
        """A JSON array field; missing or null is empty."""
        if value is None:
            return []
        if not isinstance(value, list):
            self.problem(row, column, f"expected a list, got {_shown(value)}")
            return []
        return value

    def sku(self, row: int, where: str, item: dict[str, Any]) -> str | None:
        raw = item.get("sku")
        if raw not in (None, "") and (isinstance(raw, bool) or not isinstance(raw, int | str)):
            self.problem(row, f"{where}.sku", f"expected a text, got {_shown(raw)}")
            return None
        sku = str(raw or "").strip()
        if sku:
            return sku
        variant = self.identifier(row, f"{where}.variant_id", item.get("variant_id"))
        if variant is not None:
            return f"variant-{variant}"
        self.problem(row, f"{where}.sku", "line item has neither a sku nor a variant_id")
        return None


def _shown(value: Any) -> str:
    """A value for a message, cut short: a hostile payload may carry megabytes in one field."""
    text = repr(value)
    return text if len(text) <= 60 else f"{text[:57]}..."


def _store(location: Any, fallback: str = DEFAULT_STORE) -> str:
    return str(location) if location not in (None, "") else fallback
