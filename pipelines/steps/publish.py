"""Publish step: load the transform's predictions into the forecast store as one atomic set.

Per predictions file (whole series, as the transform wrote them) it streams the forecast rows into
the store and computes the inventory recommendations of those series (inference/inventory.py);
the recommendations go in with the set, so both turn current in the same transaction. Before
that, the recent actuals from Prepare are upserted into ``sales_history``. Progress lines go to
stdout as rows load, so a long publish shows it is alive.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from inference.inventory import InventoryPolicy, recommend
from inference.store.base import FORECAST_COLUMNS
from inference.store.factory import open_forecast_store
from inference.store.history import history_state, upsert_history
from inference.store.sql import SqlForecastStore
from ordernimbus.settings import Settings, get_settings
from ordernimbus.tenancy import validate_tenant
from pipelines.contract import StepContext
from pipelines.steps._io import run_step

CHUNK = 50_000
HISTORY = "history.parquet"


def read_predictions(file: Path) -> list[tuple[Any, ...]]:
    """The forecast tuples of one ``.out`` file (JSON Lines from the handler), in store order."""
    rows: list[tuple[Any, ...]] = []
    with open(file) as handle:
        for line in handle:
            if not line.strip():
                continue
            r = json.loads(line)
            rows.append((str(r["store_id"]), str(r["sku"]), date.fromisoformat(r["target_date"]),
                         int(r["horizon_day"]), float(r["p10"]), float(r["p50"]), float(r["p90"]),
                         float(r["mean"])))  # fmt: skip
    return rows


def forecast_chunks(
    folder: Path,
    policy: InventoryPolicy,
    on_hand: dict[tuple[str, str], float],
    advice: list[tuple[Any, ...]],
) -> Iterator[list[tuple[Any, ...]]]:
    """Forecast rows file by file; each file's inventory recommendations are appended to ``advice``."""
    files = sorted(folder.glob("*.out"))
    loaded = 0
    for i, file in enumerate(files, start=1):
        rows = read_predictions(file)
        if not rows:
            continue
        frame = pd.DataFrame(rows, columns=list(FORECAST_COLUMNS))
        advice.extend(recommend(frame, policy, on_hand).itertuples(index=False, name=None))
        for start in range(0, len(rows), CHUNK):
            yield rows[start : start + CHUNK]
            loaded += len(rows[start : start + CHUNK])
            print(f"loaded {loaded} forecast rows (file {i}/{len(files)})", flush=True)


def publish_history(
    store: SqlForecastStore, tenant: str, path: Path, days: int, refresh_days: int = 0
) -> dict[tuple[str, str], float]:
    """Upsert the recent actuals; return the latest stock on hand per series (when the data has it).

    With ``refresh_days`` > 0 and history already stored, only the last ``refresh_days`` before the
    stored latest day are rewritten (late corrections there win), plus every day of a series not
    stored yet: a large tenant's year of actuals is then not rewritten on every run.
    """
    if not path.exists():
        print("no history from Prepare: sales_history left as it is")
        return {}
    history = pd.read_parquet(path)
    if history.empty:
        return {}
    keep_since = (history["date"].max() - pd.Timedelta(days=days - 1)).date()
    rows = _to_refresh(store, tenant, history, refresh_days)
    written = upsert_history(store.engine, tenant, _history_chunks(rows), keep_since=keep_since)
    print(f"sales history: {written.rows} of {len(history)} rows upserted, {written.deleted} older than "
          f"{keep_since} removed")  # fmt: skip
    stock = history.dropna(subset=["on_hand"]) if "on_hand" in history.columns else history.iloc[:0]
    last = stock.sort_values("date").groupby(["store_id", "sku"])["on_hand"].last()
    keys = last.index.to_frame(index=False).astype(str)
    series = zip(keys["store_id"], keys["sku"], strict=True)
    return dict(zip(series, last.astype(float).tolist(), strict=True))


def _to_refresh(
    store: SqlForecastStore, tenant: str, history: pd.DataFrame, refresh_days: int
) -> pd.DataFrame:
    latest, stored = history_state(store.engine, tenant)
    if refresh_days <= 0 or latest is None:
        return history
    recent = history["date"] > pd.Timestamp(latest) - pd.Timedelta(days=refresh_days)
    keys = pd.MultiIndex.from_arrays([history["store_id"].astype(str), history["sku"].astype(str)])
    new_series = ~keys.isin(list(stored)) if stored else np.ones(len(history), dtype=bool)
    return history[recent | new_series]


def _history_chunks(history: pd.DataFrame, size: int = 100_000) -> Iterator[list[tuple[Any, ...]]]:
    stores, skus = history["store_id"].astype(str).tolist(), history["sku"].astype(str).tolist()
    days = pd.to_datetime(history["date"]).dt.date.tolist()
    units = history["units"].astype(float).tolist()
    raw = history["unit_price"] if "unit_price" in history.columns else pd.Series(np.nan, index=history.index)
    prices = [None if math.isnan(p) else p for p in raw.astype(float).tolist()]
    for start in range(0, len(units), size):
        stop = start + size
        yield list(zip(stores[start:stop], skus[start:stop], days[start:stop], units[start:stop],
                       prices[start:stop], strict=True))  # fmt: skip


def policy_from(ctx: StepContext, settings: Settings) -> InventoryPolicy:
    return InventoryPolicy(
        lead_time_days=int(ctx.param("lead_time_days", str(settings.inventory_lead_time_days))),
        service_level=float(ctx.param("service_level", str(settings.inventory_service_level))),
        review_days=int(ctx.param("review_days", str(settings.inventory_review_days))),
    )


def main(ctx: StepContext) -> None:
    settings = get_settings()
    tenant = validate_tenant(ctx.param("tenant"))
    version = int(ctx.param("model_version"))
    policy = policy_from(ctx, settings)
    run_id = ctx.param("run_id", "manual")
    with open_forecast_store(settings) as store:
        on_hand = publish_history(store, tenant, ctx.input("history") / HISTORY, settings.sales_history_days,
                                  settings.sales_history_refresh_days)  # fmt: skip
        advice: list[tuple[Any, ...]] = []
        metadata = {"pipeline_run_id": run_id, "inventory": {"lead_time_days": policy.lead_time_days,
                    "service_level": policy.service_level, "review_days": policy.review_days}}  # fmt: skip
        chunks = forecast_chunks(ctx.input("predictions"), policy, on_hand, advice)
        fset = store.write_set(tenant, version, chunks, metadata=metadata, inventory=_after(advice))
    print(f"published forecast set {fset.set_id}: {fset.rows} rows, {fset.series} series, "
          f"{fset.start_date}..{fset.end_date}, model version {version}; {len(advice)} inventory "
          f"recommendations ({sum(a[-1] for a in advice)} series below their reorder point)")  # fmt: skip


def _after(advice: list[tuple[Any, ...]]) -> Iterator[list[tuple[Any, ...]]]:
    """The recommendations, read only when the store asks for them (after the last forecast chunk)."""
    yield advice


if __name__ == "__main__":
    run_step(main)
