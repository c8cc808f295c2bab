"""Feature computation and feature-store writes on the three shared data sets: time and peak memory.

For each data set a child process (so each peak RSS is its own: VmHWM of the child) reads the
canonical sales, then measures:

* ``compute``: :func:`features.engineering.build_features` over every series (the acceptance figure:
  under 30 s and 4 GB for Online Retail and Store Item Demand), wall time and this process's CPU
  time: on a machine shared with other jobs (the load average is recorded) the wall time grows
  with the queue for the two cores, the CPU time much less;
* ``store_full``: a first materialisation into an empty embedded store (offline Parquet + online SQLite);
* ``store_append``: the next period arriving (materialise all but the last period, then all):
  only the tail is recomputed, one period written;
* ``store_correct``: one period in the middle corrected: the ``lookback`` periods after it rewritten.

Online Retail is ingested first from ``online_retail.csv.gz`` with ``{"store_id": "Country"}`` (series
are StockCode x Country, daily); Store Item Demand and Walmart (weekly, with its covariates) are
mapped from their Parquet files as the ingest tests do.

    .venv/bin/python benchmarks/features.py [--data DIR] [--only retail|demand|walmart]

Results go to benchmarks/results/features.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DEFAULT_DATA = ROOT.parent / "shared" / "data"
RESULTS = ROOT / "benchmarks" / "results" / "features.json"
GOAL_SECONDS = 30.0
GOAL_RSS_MB = 4096.0
SETS = ("retail", "demand", "walmart")


def peak_rss_mb() -> float:
    """This process's own peak resident set (VmHWM), not inherited across exec like ru_maxrss."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def prepare(name: str, data: Path, out: Path) -> tuple[Path, str]:
    """The data set's canonical sales as Parquet, and its frequency."""
    import pandas as pd

    from features.frequency import detect_frequency

    if name == "retail":
        from features.ingest import ingest_file
        from features.lake import SalesLake

        lake = SalesLake(out / "lake")
        ingest_file(
            data / "online_retail.csv.gz", "retail", lake, out / "reports", mapping={"store_id": "Country"}
        )
        sales = lake.read("retail")
    elif name == "demand":
        raw = pd.read_parquet(data / "store_item_demand_dev_stores_1_8.parquet")
        sales = pd.DataFrame(
            {
                "store_id": raw["store_id"].astype(str),
                "sku": raw["item_id"].astype(str),
                "date": pd.to_datetime(raw["date"]),
                "units": raw["units"].astype(float),
            }
        )
    else:
        raw = pd.read_parquet(data / "walmart_weekly_dev_stores_1_22_not_3.parquet")
        sales = raw.rename(columns={"dept_id": "sku", "weekly_sales": "units"}).drop(columns=["store_type"])
        sales = sales.assign(
            store_id=sales["store_id"].astype(str),
            sku=sales["sku"].astype(str),
            date=pd.to_datetime(sales["date"]),
            is_holiday=sales["is_holiday"].astype(float),
        )
    path = out / f"{name}.parquet"
    sales.to_parquet(path, index=False)
    return path, detect_frequency(sales)


def measure(name: str, path: Path, freq: str) -> dict[str, object]:
    """Runs in the child: compute, then the store figures."""
    import pandas as pd

    from features.engineering import FeatureSpec, build_features
    from features.frequency import pandas_alias
    from features.store.local import LocalFeatureStore
    from features.store.materialize import materialize

    sales = pd.read_parquet(path)
    spec = FeatureSpec.for_freq(freq)
    started, cpu = time.perf_counter(), time.process_time()
    feats = build_features(sales, spec)
    compute, compute_cpu = time.perf_counter() - started, time.process_time() - cpu
    rss_compute = peak_rss_mb()
    result: dict[str, object] = {
        "data_set": name,
        "frequency": freq,
        "sales_rows": len(sales),
        "series": int(sales.groupby(["store_id", "sku"]).ngroups),
        "feature_rows": len(feats),
        "feature_columns": feats.shape[1],
        "compute_seconds": round(compute, 2),
        "compute_cpu_seconds": round(compute_cpu, 2),
        "load_average_1m": round(os.getloadavg()[0], 1),
        "compute_rows_per_second": round(len(feats) / compute),
        "peak_rss_mb_after_compute": round(rss_compute, 1),
        "meets_goal": compute < GOAL_SECONDS and rss_compute < GOAL_RSS_MB,
    }
    del feats
    last = sales["date"].max()
    with tempfile.TemporaryDirectory(prefix="features-bench-") as tmp:
        store = LocalFeatureStore(Path(tmp) / "offline", Path(tmp) / "online.db", Path(tmp) / "locks")
        full = materialize(store, "bench", sales[sales["date"] < last], freq)
        append = materialize(store, "bench", sales, freq)
        middle = sorted(sales["date"].unique())[len(sales["date"].unique()) // 2]
        corrected = sales.copy()
        corrected.loc[corrected["date"] == middle, "units"] += 1
        correct = materialize(store, "bench", corrected, freq)
    result.update(
        {
            "store_full_seconds": full.seconds,
            "store_full_records": full.records,
            "store_partitions": full.partitions,
            "store_append_seconds": append.seconds,
            "store_append_records": append.records,
            "store_correct_seconds": correct.seconds,
            "store_correct_records": correct.records,
            "store_correct_window": f"{correct.since}..{correct.until}",
            "lookback_periods": spec.lookback,
            "period": pandas_alias(freq),
            "peak_rss_mb": round(peak_rss_mb(), 1),
        }
    )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--only", choices=SETS)
    parser.add_argument("--child", nargs=3, metavar=("NAME", "PATH", "FREQ"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.child[0], Path(args.child[1]), args.child[2])))
        return
    if not args.data.exists():
        raise SystemExit(f"{args.data} not found: pass --data with the folder holding the shared data sets")
    previous = json.loads(RESULTS.read_text())["results"] if RESULTS.exists() and args.only else []
    results = [r for r in previous if r.get("data_set") != args.only]
    with tempfile.TemporaryDirectory(prefix="features-bench-data-") as tmp:
        for name in [args.only] if args.only else SETS:
            print(f"{name}: preparing canonical sales ...", flush=True)
            path, freq = prepare(name, args.data, Path(tmp))
            print(f"{name}: measuring ({freq}) ...", flush=True)
            child = subprocess.run(
                [sys.executable, __file__, "--child", name, str(path), freq],
                capture_output=True,
                text=True,
                check=True,
            )
            result = json.loads(child.stdout.strip().splitlines()[-1])
            print(json.dumps(result, indent=1), flush=True)
            results.append(result)
    report = {
        "benchmark": "features",
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "load_average_1m": round(os.getloadavg()[0], 1),
        },
        "goal_seconds": GOAL_SECONDS,
        "goal_rss_mb": GOAL_RSS_MB,
        "results": results,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    print(f"written to {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
