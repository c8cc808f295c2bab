"""Prepare step: one JSON line per series with the history tail the models need (Batch Transform input)."""

from __future__ import annotations

import json

import pandas as pd

from features.frequency import base
from ordernimbus.tenancy import validate_tenant
from pipelines.contract import StepContext
from pipelines.steps._io import SALES, run_step

# History the models look back over: a year of lags plus the longest rolling window, with margin.
TAIL = {"D": 500, "W": 120}
SERIES_PER_FILE = 2000


def main(ctx: StepContext) -> None:
    validate_tenant(ctx.param("tenant"))
    from features.frequency import detect_frequency

    sales = pd.read_parquet(ctx.input("raw") / SALES)
    freq = detect_frequency(sales)
    days = TAIL[base(freq)] * (7 if base(freq) == "W" else 1)
    sales = sales[sales["date"] > sales["date"].max() - pd.Timedelta(days=days)]
    columns = [c for c in sales.columns if c not in ("tenant_id", "store_id", "sku")]
    out = ctx.output("batch")
    request = {"horizon": int(ctx.param("horizon", "28")), "quantiles": ctx.param("quantiles", "0.1,0.5,0.9"),
               "frequency": freq, "last_date": str(sales["date"].max().date())}
    (out / "request.json").write_text(json.dumps(request))
    handle, n_series, n_file = None, 0, 0
    for (store, sku), group in sales.groupby(["store_id", "sku"], sort=True):
        if n_series % SERIES_PER_FILE == 0:
            if handle:
                handle.close()
            handle = open(out / f"part-{n_file:05d}.jsonl", "w")  # noqa: SIM115
            n_file += 1
        history = {c: group[c].tolist() for c in columns}
        history["date"] = group["date"].dt.strftime("%Y-%m-%d").tolist()
        handle.write(json.dumps({"store_id": store, "sku": sku, "history": history}, allow_nan=True) + "\n")
        n_series += 1
    if handle:
        handle.close()
    print(f"prepared {n_series} series in {n_file} file(s), history since {sales['date'].min().date()}")


if __name__ == "__main__":
    run_step(main)
