"""Prepare step: one JSON line per series with the history tail the models need (Batch Transform input).

Its second output, ``history/history.parquet``, holds the last ``history_days`` of actuals per
series (units, and unit price / stock on hand where the tenant sends them): Publish loads them into
the store's ``sales_history`` for the API's charts and takes the stock on hand for inventory advice.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from features.frequency import base, period
from features.outages import fill, read_outages
from ordernimbus.settings import get_settings
from ordernimbus.tenancy import validate_tenant
from pipelines.contract import StepContext
from pipelines.steps._io import SALES, run_step

# XGBoost's and DeepAR's look back: a year of lags plus the longest rolling window, with margin.
LAGS_TAIL = {"D": 500, "W": 120}
SERIES_PER_FILE = 2000
HISTORY = "history.parquet"
HISTORY_COLUMNS = ("store_id", "sku", "date", "units", "unit_price", "on_hand")


def main(ctx: StepContext) -> None:
    validate_tenant(ctx.param("tenant"))
    from features.frequency import detect_frequency

    sales = pd.read_parquet(ctx.input("raw") / SALES)
    freq = detect_frequency(sales)
    history_days = int(ctx.param("history_days", str(get_settings().sales_history_days)))
    write_history(sales, history_days, ctx.output("history") / HISTORY)  # the charts show real sales only
    sales, _ = fill(sales, read_outages(ctx.input("raw") / SALES), freq)  # as the models were trained
    days = tail_periods(freq) * period(freq).days
    sales = sales[sales["date"] > sales["date"].max() - pd.Timedelta(days=days)]
    columns = [c for c in sales.columns if c not in ("tenant_id", "store_id", "sku")]
    out = ctx.output("batch")
    request = {
        "horizon": int(ctx.param("horizon", "28")),
        "quantiles": ctx.param("quantiles", "0.1,0.5,0.9"),
        "frequency": freq,
        "last_date": str(sales["date"].max().date()),
    }
    (out / "request.json").write_text(json.dumps(request))
    lines: list[str] = []
    n_series, n_file = 0, 0
    for (store, sku), group in sales.groupby(["store_id", "sku"], sort=True):
        history = {c: group[c].tolist() for c in columns}
        history["date"] = group["date"].dt.strftime("%Y-%m-%d").tolist()
        lines.append(json.dumps({"store_id": store, "sku": sku, "history": history}, allow_nan=True) + "\n")
        n_series += 1
        if len(lines) == SERIES_PER_FILE:
            n_file = _write_part(out, n_file, lines)
    if lines:
        n_file = _write_part(out, n_file, lines)
    print(f"prepared {n_series} series in {n_file} file(s), history since {sales['date'].min().date()}")


def tail_periods(freq: str) -> int:
    """The periods of history every member's forecast reads, as its backtest read them.

    ARIMA's window is the longest: MSTL's yearly component needs two years of days. The tail was
    500 days, so the shipped ARIMA silently dropped the year that the backtest had scored it with
    (a December-peaking tenant's ARIMA forecast 990 units where its full history gave 2,374).
    """
    from models.statistical import AutoARIMAForecaster, AutoETSForecaster

    windows = (AutoARIMAForecaster().default_window(freq), AutoETSForecaster().default_window(freq))
    return max(LAGS_TAIL[base(freq)], *windows)


def _write_part(out: Path, n_file: int, lines: list[str]) -> int:
    """Write one part file of whole series lines; empties ``lines``, returns the next file number."""
    (out / f"part-{n_file:05d}.jsonl").write_text("".join(lines))
    lines.clear()
    return n_file + 1


def write_history(sales: pd.DataFrame, days: int, path: Path) -> None:
    """The last ``days`` days of actuals (up to the tenant's last date), series by series."""
    recent = sales[sales["date"] > sales["date"].max() - pd.Timedelta(days=days)]
    frame = pd.DataFrame({c: recent[c] if c in recent.columns else None for c in HISTORY_COLUMNS})
    frame = frame.astype({"store_id": str, "sku": str, "units": float, "unit_price": float, "on_hand": float})
    frame.sort_values(["store_id", "sku", "date"]).to_parquet(path, index=False)


if __name__ == "__main__":
    run_step(main)
