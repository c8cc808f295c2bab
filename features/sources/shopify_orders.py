"""Shopify order webhooks into the sales lake, idempotently and without losing other orders' sales.

A webhook carries one order, but the lake holds one total per store x SKU x day: upserting that
order's lines alone would overwrite the day's total with one order's share. So every order's
events (sales lines, refunds, cancellations, with the stable ``event_id`` of
:mod:`features.sources.shopify`) are kept per tenant in ``webhooks/<tenant>/shopify_events.parquet``;
a webhook replaces the events of its order (``orders/updated`` sends the whole order again), then
the days its old and new events touch are re-summed from every stored event and upserted. A retried
or repeated webhook produces the same totals: nothing changes twice.

Days a tenant also loads from files are re-summed from webhook events only when a webhook touches
them; a tenant should feed one Shopify shop either by webhooks or by exports, not both.

Imports pandas, so it lives here rather than in serving/: the API imports it only inside the webhook
route, which the pandas-free Lambda package answers with 501.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from features.contract import RECORD_KEY
from features.lake import SalesLake
from features.sources.aggregate import finish_daily, partial_daily
from features.sources.shopify import EVENT_COLUMNS, parse_shopify_payload
from ordernimbus.atomic import file_lock, replacing
from ordernimbus.settings import Settings
from ordernimbus.tenancy import tenant_dir

EVENTS_FILE = "shopify_events.parquet"
KEY = list(RECORD_KEY)


@dataclass(frozen=True)
class WebhookResult:
    order_events: int
    days_updated: int
    rows_total: int


def apply_order_webhook(settings: Settings, tenant: str, payload: Any, source: str) -> WebhookResult:
    """Store the order's events and re-sum the days they touch into the tenant's lake."""
    events = _typed(parse_shopify_payload(payload, source).drop(columns=["_row"]))
    folder = tenant_dir(settings.home / "webhooks", tenant)
    folder.mkdir(parents=True, exist_ok=True)
    with file_lock(folder / ".lock"):
        stored = _typed(_read(folder / EVENTS_FILE))
        orders = set(events["order_id"].astype(str))
        replaced = stored["order_id"].astype(str).isin(orders)
        touched = pd.concat([stored.loc[replaced, KEY], events[KEY]]).drop_duplicates(ignore_index=True)
        kept = pd.concat([stored.loc[~replaced], events], ignore_index=True)
        daily = _resum(kept, touched)
        result = SalesLake(settings.lake_dir).upsert(tenant, daily, source=source)
        _write(folder / EVENTS_FILE, kept)  # after the lake: a failed upsert leaves both as they were
    return WebhookResult(len(events), len(daily), result.rows_total)


def _typed(frame: pd.DataFrame) -> pd.DataFrame:
    """One dtype per column whatever the source (an empty frame, a Parquet file, a payload)."""
    frame = frame.copy()
    for column in ("event_id", "kind", "order_id", "store_id", "sku"):
        frame[column] = frame[column].astype(str)
    frame["date"] = pd.to_datetime(frame["date"]).astype("datetime64[ns]")
    for column in ("units", "unit_price", "revenue"):
        frame[column] = frame[column].astype(float)
    return frame


def _resum(events: pd.DataFrame, touched: pd.DataFrame) -> pd.DataFrame:
    """Daily records for the touched keys from every stored event; a key left without events is 0."""
    lines = events.merge(touched, on=KEY, how="inner")
    if len(lines):
        daily = finish_daily([partial_daily(lines)])
        daily["date"] = pd.to_datetime(daily["date"]).astype("datetime64[ns]")
    else:
        daily = touched.iloc[:0].assign(units=pd.Series(dtype=float))
    gone = touched.merge(daily[KEY], on=KEY, how="left", indicator=True)
    gone = gone.loc[gone["_merge"] == "left_only", KEY].assign(units=0.0)
    out = pd.concat([daily, gone], ignore_index=True) if len(gone) else daily
    out["units"] = out["units"].astype(float)
    return out.sort_values(KEY, ignore_index=True)


def _read(path: Path) -> pd.DataFrame:
    if path.exists():
        return pd.read_parquet(path)
    return pd.DataFrame({c: pd.Series(dtype=object) for c in EVENT_COLUMNS if c != "_row"})


def _write(path: Path, frame: pd.DataFrame) -> None:
    with replacing(path, durable=True) as tmp:
        frame.to_parquet(tmp, index=False)
