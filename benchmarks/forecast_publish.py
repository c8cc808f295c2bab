"""The forecast pipeline's heavy steps, timed: batch transform (1 vs N workers) and publishing.

1. Transform: a real global XGBoost trained on the Store Item Demand dev file (400 series, up to
   the evaluation window), then the Transform step's ``run_files`` over the Prepare step's real
   JSON Lines input, once with one worker and once with one per core. Same outputs, checked.
2. Publish: ``--series`` series x 28 days of predictions in the transform's output format, with
   ``--history-days`` of actuals per series, through the Publish step's code (history upsert,
   forecast rows, inventory recommendations, atomic publish) into SQLite and PostgreSQL; then the
   set exported as CSV and as Parquet.

    .venv/bin/python benchmarks/forecast_publish.py [--series 20000] [--history-days 365] [--skip-transform]

Results: benchmarks/results/forecast_publish.json. Wall-clock figures on a shared machine: the
1-minute load average is recorded beside them.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import date, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import pandas as pd  # noqa: E402

from inference.inventory import InventoryPolicy  # noqa: E402
from inference.store.export import export_set  # noqa: E402
from inference.store.history import upsert_history  # noqa: E402
from inference.store.sql import SqlForecastStore  # noqa: E402
from pipelines.steps import publish  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "forecast_publish.json"
DATA = ROOT.parent / "shared" / "data" / "store_item_demand_dev_stores_1_8.parquet"
DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
REFRESH_DAYS = 56  # settings.sales_history_refresh_days


def bench_transform(tmp: Path, workers: int, copies: int) -> dict[str, Any]:
    from models.xgboost import GlobalXGBoost
    from pipelines.contract import parse
    from pipelines.steps import prepare

    raw = pd.read_parquet(DATA)
    sales = pd.DataFrame({"store_id": raw["store_id"].astype(str), "sku": raw["item_id"].astype(str),
                          "date": pd.to_datetime(raw["date"]),
                          "units": raw["units"].astype(float)})  # fmt: skip
    sales = sales[(sales["date"] >= "2016-01-01") & (sales["date"] <= "2017-10-02")]
    model_dir = tmp / "model"
    t0 = time.perf_counter()
    GlobalXGBoost(horizon=28, n_estimators=50, max_origins=10).fit(sales, "D").save(model_dir)
    fit_s = time.perf_counter() - t0
    base = tmp / "prepare"
    (base / "processing" / "input" / "raw").mkdir(parents=True)
    # ``copies`` of the 400 real series under other SKU codes: a larger tenant of the same shape
    tenant = pd.concat([sales.assign(sku=sales["sku"] + f"-{c}") for c in range(copies)], ignore_index=True)
    tenant.assign(tenant_id="bench").to_parquet(base / "processing" / "input" / "raw" / "sales.parquet")
    prepare.main(parse(["--sm-base", str(base), "--tenant", "bench", "--horizon", "28"]))
    step = tmp / "transform"
    (step / "processing" / "input").mkdir(parents=True)
    (step / "processing" / "input" / "model").symlink_to(model_dir)
    (step / "processing" / "input" / "batch").symlink_to(base / "processing" / "output" / "batch")
    runs = {}
    outputs = {}
    for n in sorted({1, workers}):
        out = step / "processing" / "output" / "predictions"
        if out.exists():
            shutil.rmtree(out)
        t0 = time.perf_counter()  # the step as the pipeline runs it: its own process, fork-started workers
        subprocess.run([sys.executable, "-m", "pipelines.steps.transform", "--sm-base", str(step),
                        "--workers", str(n)], cwd=ROOT, check=True,
                       env={**os.environ, "ORDERNIMBUS_HOME": str(tmp / "home")})  # fmt: skip
        runs[n] = time.perf_counter() - t0
        frames = [
            pd.read_json(f, lines=True, dtype={"store_id": str, "sku": str})
            for f in sorted(out.glob("*.out"))
        ]
        outputs[n] = pd.concat(frames).sort_values(["store_id", "sku", "horizon_day"], ignore_index=True)
    series = int(outputs[1][["store_id", "sku"]].drop_duplicates().shape[0])
    same = all(
        outputs[n][["store_id", "sku", "horizon_day"]].equals(outputs[1][["store_id", "sku", "horizon_day"]])
        and float(
            (outputs[n][["p10", "p50", "p90", "mean"]] - outputs[1][["p10", "p50", "p90", "mean"]])
            .abs()
            .max()
            .max()
        )
        < 1e-6
        for n in outputs
    )
    return {"series": series, "fit_seconds": round(fit_s, 1), "same_forecasts_1e-6": same,
            "seconds_by_workers": {str(n): round(s, 2) for n, s in runs.items()},
            "series_per_second_by_workers": {str(n): round(series / s, 1) for n, s in runs.items()},
            "speedup": round(runs[1] / runs[max(runs)], 2)}  # fmt: skip


def make_predictions(folder: Path, series: int, per_file: int = 2000) -> None:
    folder.mkdir(parents=True)
    first = date(2018, 1, 1)
    days = [str(first + timedelta(d)) for d in range(28)]
    for start in range(0, series, per_file):
        lines = []
        for s in range(start, min(series, start + per_file)):
            level = 1 + (s * 7919) % 90
            for h, day in enumerate(days, start=1):
                p50 = level * (1.25 if h % 7 in (5, 6) else 1.0)
                lines.append(json.dumps({"store_id": f"store-{s % 50:03d}", "sku": f"sku-{s:06d}",
                                         "target_date": day, "horizon_day": h, "p10": p50 * 0.6, "p50": p50,
                                         "p90": p50 * 1.5, "mean": p50 * 1.03}))  # fmt: skip
        (folder / f"part-{start // per_file:05d}.jsonl.out").write_text("\n".join(lines) + "\n")


def make_history(series: int, days: int) -> pd.DataFrame:
    last = pd.Timestamp("2017-12-31")
    dates = pd.date_range(end=last, periods=days, freq="D")
    index = pd.MultiIndex.from_product([range(series), dates], names=["s", "date"]).to_frame(index=False)
    return pd.DataFrame({"store_id": "store-" + (index["s"] % 50).map("{:03d}".format),
                         "sku": "sku-" + index["s"].map("{:06d}".format), "date": index["date"],
                         "units": (index["s"] % 17 + index["date"].dt.dayofweek).astype(float),
                         "unit_price": 2.5})  # fmt: skip


def bench_publish(url: str, backend: str, folder: Path, history: pd.DataFrame, series: int) -> dict[str, Any]:
    tenant = f"bench-{uuid.uuid4().hex[:6]}"
    policy = InventoryPolicy(7, 0.95, 7)
    with SqlForecastStore(url, keep_sets=3) as store:
        t0 = time.perf_counter()
        written = upsert_history(store.engine, tenant, publish._history_chunks(history))
        history_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        advice: list[tuple[Any, ...]] = []
        chunks = publish.forecast_chunks(folder, policy, {}, advice)
        fs = store.write_set(tenant, 1, chunks, inventory=publish._after(advice))
        set_s = time.perf_counter() - t0
        assert fs.series == len(advice) == series
        t0 = time.perf_counter()  # the next run: only the refresh window is rewritten
        refresh = publish._to_refresh(store, tenant, history, REFRESH_DAYS)
        again = upsert_history(store.engine, tenant, publish._history_chunks(refresh))
        history_again_s = time.perf_counter() - t0
        exports = {}
        with tempfile.TemporaryDirectory() as tmp:
            for fmt in ("csv", "parquet"):
                t0 = time.perf_counter()
                result = export_set(store, tenant, Path(tmp) / f"set.{fmt}", fmt)
                exports[fmt] = {"seconds": round(time.perf_counter() - t0, 2), "rows": result.rows,
                                "bytes": result.path.stat().st_size}  # fmt: skip
    return {"backend": backend, "history_rows": written.rows, "history_upsert_seconds": round(history_s, 2),
            "next_run_history_seconds": round(history_again_s, 2), "next_run_history_rows": again.rows,
            "forecast_rows": fs.rows, "inventory_rows": len(advice),
            "set_with_inventory_seconds (parse + advice + load + publish)": round(set_s, 2),
            "export": exports}  # fmt: skip


def pg_url(base: str) -> tuple[str, str] | None:
    try:
        import psycopg

        schema = f"bench_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(base.replace("+psycopg", ""), autocommit=True, connect_timeout=3) as conn:
            conn.execute(f"CREATE SCHEMA {schema}")
    except Exception as exc:  # no server: say so and go on with SQLite
        print(f"postgresql: skipped ({exc})")
        return None
    return f"{base}?options=-csearch_path%3D{schema}", schema


def publish_part(tmp: Path, series: int, history_days: int, postgres_url: str) -> dict[str, Any]:
    folder = tmp / "predictions"
    make_predictions(folder, series)
    history = make_history(series, history_days)
    part: dict[str, Any] = {"series": series, "history_days": history_days, "results": []}
    part["results"].append(bench_publish(f"sqlite:///{tmp}/bench.db", "sqlite", folder, history, series))
    print(json.dumps(part["results"][-1]))
    pg = pg_url(postgres_url)
    if pg is not None:
        url, schema = pg
        try:
            part["results"].append(bench_publish(url, "postgresql", folder, history, series))
        finally:
            import psycopg

            with psycopg.connect(postgres_url.replace("+psycopg", ""), autocommit=True) as conn:
                conn.execute(f"DROP SCHEMA {schema} CASCADE")
        print(json.dumps(part["results"][-1]))
    return part


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=int, default=20_000)
    parser.add_argument("--history-days", type=int, default=365)
    parser.add_argument("--skip-transform", action="store_true")
    parser.add_argument("--skip-publish", action="store_true")
    parser.add_argument("--copies", type=int, default=10, help="transform: copies of the 400 real series")
    parser.add_argument("--postgres-url", default=os.environ.get("ORDERNIMBUS_TEST_POSTGRES_URL", DEFAULT_PG))
    args = parser.parse_args()
    # A part that is skipped keeps its figures from the last run (each part says when it ran).
    doc: dict[str, Any] = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    doc["benchmark"] = "forecast_publish"
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        if not args.skip_transform:
            machine = _machine()
            doc["transform"] = {**bench_transform(tmp, len(os.sched_getaffinity(0)), args.copies),
                                "machine": {**machine, "load_average_1m_after": _load()}}  # fmt: skip
            print(json.dumps(doc["transform"]))
        if not args.skip_publish:
            machine = _machine()
            part = publish_part(tmp, args.series, args.history_days, args.postgres_url)
            doc["publish"] = {**part, "machine": {**machine, "load_average_1m_after": _load()}}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"wrote {RESULTS.relative_to(ROOT)}")


def _load() -> float:
    return round(os.getloadavg()[0], 2)


def _machine() -> dict[str, Any]:
    return {"python": platform.python_version(), "cpus": len(os.sched_getaffinity(0)),
            "load_average_1m": _load(), "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}  # fmt: skip


if __name__ == "__main__":
    main()
