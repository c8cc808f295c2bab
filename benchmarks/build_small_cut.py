"""Build pipeline on a 20-series cut of Store Item Demand (stores 1-2 x items 1-10, since 2015-06-01),
trained up to 2017-10-02: wall time and the registered version's metrics.

    .venv/bin/python benchmarks/build_small_cut.py   -> benchmarks/results/build_small_cut.json
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

# benchmarks/features.py would shadow the features package: the repository root comes first.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "store_item_demand_dev_stores_1_8.parquet"
RESULTS = Path(__file__).resolve().parent / "results" / "build_small_cut.json"


def main() -> None:
    os.environ["ORDERNIMBUS_HOME"] = tempfile.mkdtemp(prefix="on-bench-")
    from features.lake import SalesLake
    from models.registry.factory import open_registry
    from ordernimbus.service import run_build
    from ordernimbus.settings import get_settings

    raw = pd.read_parquet(DATA)
    raw["date"] = pd.to_datetime(raw["date"])
    raw = raw[(raw["store_id"] <= 2) & (raw["item_id"] <= 10) & (raw["date"] >= "2015-06-01")]
    sales = pd.DataFrame(
        {
            "store_id": raw["store_id"].astype(str),
            "sku": raw["item_id"].astype(str),
            "date": raw["date"],
            "units": raw["units"].astype(float),
        }
    )
    settings = get_settings()
    SalesLake(settings.lake_dir).upsert("bench", sales, str(DATA))
    started = time.perf_counter()
    run = run_build(settings, "bench", until="2017-10-02", horizon=28)
    seconds = time.perf_counter() - started
    version = open_registry(settings).list_versions("bench")[-1]
    m = version.metrics
    result = {
        "series": 20,
        "status": run.status,
        "build_seconds": round(seconds, 1),
        "steps": {s.step: s.seconds for s in run.steps},
        "ensemble": m["ensemble"],
        "members": m["members"],
        "baselines": m["baselines"],
        "gate": m["gate"],
        "load_average": os.getloadavg(),
    }
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2))
    print(json.dumps({k: result[k] for k in ("status", "build_seconds", "ensemble", "gate")}, indent=2))


if __name__ == "__main__":
    main()
