"""How long one monitoring check takes for every Online Retail series (goal: under 60 s).

Setup (not timed): the whole ``online_retail.csv.gz`` is ingested with ``{"store_id": "Country"}``
(19,839 store x SKU series); the tenant's lake is cut before the data set's evaluation window (its
last 28 trading days); a weekly seasonal naive model is fitted on that history, its backtest WAPE
measured on the two 28-day windows before the cut, registered and approved in the local registry,
and its 28-day forecasts written to the forecast store, as the forecast pipeline would. (The build
pipeline would take far longer than the check on two cores and changes nothing the check does.)
Then the evaluation window's actuals are upserted: the newly arrived data.

Timed: ``run_check`` for the tenant, cold (Evidently imported inside the timing): read the lake,
score every forecast that covered the new days, write the accuracy rows and sales history,
Evidently drift on the dense panel of every series, the policy, the decision, and the reports
(summary JSON plus Evidently's two HTML pages); then, on a copy of the same state, the check without
the HTML pages (Evidently already imported by then). Automatic retraining is off for the tenant so the
timing is the check alone; the rules that fired are shown.

    .venv/bin/python benchmarks/monitor_check.py [--data PATH]

Results go to benchmarks/results/monitor_check.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime
from itertools import pairwise
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DEFAULT_DATA = ROOT.parent / "shared" / "data" / "online_retail.csv.gz"
RESULTS = ROOT / "benchmarks" / "results" / "monitor_check.json"
GOAL_SECONDS = 60.0
TENANT = "retail"
HORIZON = 28
QUANTILES = (0.1, 0.5, 0.9)


def peak_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def setup(data: Path, settings: Any) -> dict[str, Any]:
    import pandas as pd

    from features.ingest import ingest_file
    from features.lake import SalesLake
    from inference.store.factory import open_forecast_store
    from models.registry.factory import open_registry

    staging = SalesLake(settings.home / "staging")
    ingest_file(data, TENANT, staging, settings.reports_dir, mapping={"store_id": "Country"})
    sales = staging.read(TENANT)
    days = pd.DatetimeIndex(sorted(sales["date"].unique()))
    evaluation = days[-28:]
    cut = days[days < evaluation[0]][-1]
    history, arrived = sales[sales["date"] <= cut], sales[sales["date"] > cut]
    lake = SalesLake(settings.lake_dir)
    lake.upsert(TENANT, history, "history")
    freq = lake.frequency(TENANT)

    backtest = _backtest_wape(history, cut, freq)
    registry = open_registry(settings)
    metrics = {"ensemble": {"wape": round(backtest, 5)}, "horizon": HORIZON, "frequency": freq}
    lineage = {"data_start": str(history["date"].min().date()), "data_end": str(cut.date()), "model": "naive"}
    version = registry.register(TENANT, (settings.home / "naive").as_uri(), metrics, lineage, True)
    registry.approve(TENANT, version.version, "benchmark", "weekly seasonal naive as the served model")
    forecast = _naive(history, freq, HORIZON)
    with open_forecast_store(settings) as store:
        written = store.write_set(TENANT, version.version, _chunks(forecast))
    lake.upsert(TENANT, arrived, "evaluation window")
    return {
        "series": int(sales.groupby(["store_id", "sku"]).ngroups),
        "daily_records": len(sales),
        "trained_through": str(cut.date()),
        "arrived": f"{arrived['date'].min().date()}..{arrived['date'].max().date()}",
        "arrived_records": len(arrived),
        "forecast_rows": written.rows,
        "backtest_wape": round(backtest, 4),
    }


def _naive(history: Any, freq: str, horizon: int) -> Any:
    from models.naive import SeasonalNaive

    return SeasonalNaive().fit(history, freq).predict(history, horizon, QUANTILES)


def _backtest_wape(history: Any, cut: Any, freq: str) -> float:
    import pandas as pd

    errors = totals = 0.0
    for back in (2 * HORIZON, HORIZON):
        origin = cut - pd.Timedelta(days=back)
        past = history[history["date"] <= origin]
        pred = _naive(past, freq, HORIZON)
        window = history[
            (history["date"] > origin) & (history["date"] <= origin + pd.Timedelta(days=HORIZON))
        ]
        truth = window.rename(columns={"date": "target_date"})[["store_id", "sku", "target_date", "units"]]
        joined = pred.merge(truth, on=["store_id", "sku", "target_date"], how="left").fillna({"units": 0.0})
        errors += float((joined["units"] - joined["p50"]).abs().sum())
        totals += float(joined["units"].abs().sum())
    return errors / totals


def _chunks(forecast: Any) -> list[list[tuple[Any, ...]]]:
    columns = ["store_id", "sku", "target_date", "horizon_day", "p10", "p50", "p90", "mean"]
    frame = forecast.assign(target_date=forecast["target_date"].dt.date)[columns]
    rows = list(frame.itertuples(index=False, name=None))
    return [rows[i : i + 50_000] for i in range(0, len(rows), 50_000)]


def timed_check(settings: Any, html: bool) -> dict[str, Any]:
    from monitoring.check import run_check

    marks: list[tuple[str, float]] = []
    started = time.perf_counter()
    outcome = run_check(
        settings,
        TENANT,
        now=datetime.now(UTC),
        html=html,
        progress=lambda message: marks.append((message, time.perf_counter())),
    )
    seconds = time.perf_counter() - started
    stamps = [("start", started), *marks, ("done", started + seconds)]
    phases = {a[0][:60]: round(b[1] - a[1], 2) for a, b in pairwise(stamps)}
    summary = outcome.summary
    drift = summary.get("drift", {})
    accuracy = summary.get("accuracy") or {}
    return {
        "seconds": round(seconds, 2),
        "phases": phases,
        "decision": {"retrain": summary["retrain"], "action": summary["action"],
                     "rules_fired": [r["rule"] for r in summary["reasons"] if r["fired"]],
                     "reasons": {r["rule"]: r["detail"] for r in summary["reasons"]}},
        "scored": {k: accuracy.get(k) for k in ("start", "end", "n", "series", "wape", "bias", "coverage")},
        "drift": {"windows": drift.get("windows"), "share": drift.get("share"),
                  "drifted": drift.get("drifted"), "psi": drift.get("psi"),
                  "rows_per_window": drift.get("n_current"),
                  "methods": {c["column"]: c["method"] for c in drift.get("columns", [])}},
        "reports": sorted(p.name for p in outcome.report_dir.iterdir()) if outcome.report_dir else [],
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    args = parser.parse_args()
    if not args.data.exists():
        raise SystemExit(f"{args.data} not found: pass --data with the path to online_retail.csv.gz")
    with tempfile.TemporaryDirectory(prefix="monitor-bench-") as tmp:
        os.environ["ORDERNIMBUS_HOME"] = str(Path(tmp) / "home")
        os.environ["ORDERNIMBUS_TENANT_RETRAIN_POLICIES"] = json.dumps({TENANT: {"automatic": False}})
        from ordernimbus.settings import get_settings

        settings = get_settings()
        began = time.perf_counter()
        prepared = setup(args.data, settings)
        print(f"setup in {time.perf_counter() - began:.1f} s: {json.dumps(prepared)}", flush=True)
        twin = Path(tmp) / "twin"  # the same state, for a second cold check without HTML
        shutil.copytree(settings.home, twin)
        with_html = timed_check(settings, html=True)
        print(f"check with HTML reports: {with_html['seconds']} s", flush=True)
        without_html = timed_check(get_settings(home=twin), html=False)
        print(f"check without HTML: {without_html['seconds']} s", flush=True)
    result = {
        "benchmark": "monitor_check",
        "data": args.data.name,
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(),
                    "load_average_1m": round(os.getloadavg()[0], 2)},
        **prepared,
        "check": with_html,
        "check_without_html": without_html,
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "goal_seconds": GOAL_SECONDS,
        "meets_goal": with_html["seconds"] < GOAL_SECONDS,
    }  # fmt: skip
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2, default=str) + "\n")
    print(json.dumps(result, indent=2, default=str))
    print(f"written to {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
