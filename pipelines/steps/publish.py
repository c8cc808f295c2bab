"""Publish step: load the transform's predictions into the forecast store as one atomic set."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date
from typing import Any

from inference.store.factory import open_forecast_store
from ordernimbus.settings import get_settings
from ordernimbus.tenancy import validate_tenant
from pipelines.contract import StepContext
from pipelines.steps._io import run_step

CHUNK = 50_000


def rows(folder: Any) -> Iterator[list[tuple[Any, ...]]]:
    chunk: list[tuple[Any, ...]] = []
    for file in sorted(folder.glob("*.out")):
        with open(file) as handle:
            for line in handle:
                if not line.strip():
                    continue
                r = json.loads(line)
                chunk.append((r["store_id"], r["sku"], date.fromisoformat(r["target_date"]), int(r["horizon_day"]),
                              float(r["p10"]), float(r["p50"]), float(r["p90"]), float(r["mean"])))
                if len(chunk) >= CHUNK:
                    yield chunk
                    chunk = []
    if chunk:
        yield chunk


def main(ctx: StepContext) -> None:
    tenant = validate_tenant(ctx.param("tenant"))
    version = int(ctx.param("model_version"))
    store = open_forecast_store(get_settings())
    run_id = ctx.param("run_id", "manual")
    fset = store.write_set(tenant, version, rows(ctx.input("predictions")), metadata={"pipeline_run_id": run_id})
    print(f"published forecast set {fset.set_id}: {fset.rows} rows, {fset.series} series, "
          f"{fset.start_date}..{fset.end_date}, model version {version}")


if __name__ == "__main__":
    run_step(main)
