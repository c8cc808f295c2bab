"""Accuracy and build time on the three real data sets, scored on their evaluation windows.

For each set the real build pipeline runs (validate, features, ARIMA / XGBoost / DeepAR / AutoETS
trainings in parallel, evaluate, gate, register) on the data *before* the evaluation window only;
then the registered ensemble, each member and each baseline forecast the window from that history,
and everything is scored on the same rows (WAPE on the median, MASE, mean pinball loss over
p10/p50/p90, p10-p90 coverage, M5-style revenue-weighted RMSSE).

    .venv/bin/python benchmarks/accuracy.py [--sets store_item,walmart,online_retail]
        -> benchmarks/results/accuracy.json (and a markdown table on stdout)

Evaluation windows (../shared/data/README.md): Store Item Demand the last 90 days, Walmart the last
39 weeks, Online Retail the last 28 trading days. AutoGluon-TimeSeries (medium_quality) on the same
windows, measured by the data's curators on this kind of machine: Walmart WAPE 0.113, Store Item
Demand 0.109.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DATA = ROOT.parent / "shared" / "data"
RESULTS = ROOT / "benchmarks" / "results" / "accuracy.json"
QUANTILES = (0.1, 0.5, 0.9)
AUTOGLUON = {"store_item": 0.109, "walmart": 0.113}
GOAL_SECONDS = {"store_item": 300, "walmart": 600, "online_retail": 1200}
STORE_ITEM = "store_item_demand_dev_stores_1_8.parquet"
WALMART = "walmart_weekly_dev_stores_1_22_not_3.parquet"
ONLINE_RETAIL = "online_retail.csv.gz"
DEV_FILES = {"store_item": STORE_ITEM, "walmart": WALMART, "online_retail": ONLINE_RETAIL}


def _table(path: Path) -> pd.DataFrame:
    """A set's file as a frame, Parquet or CSV (plain or compressed), column names in snake_case."""
    raw = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
    return raw.rename(columns=lambda c: str(c).strip().lower())


def _columns(raw: pd.DataFrame, path: Path, names: dict[str, tuple[str, ...]]) -> dict[str, str]:
    """Each needed column's name in ``raw``: the dev files' names or the Kaggle originals' (aliases)."""
    found = {}
    for want, aliases in names.items():
        match = next((a for a in (want, *aliases) if a in raw.columns), None)
        if match is None:
            raise SystemExit(
                f"{path}: no column {want!r} (or {', '.join(aliases)}); it has {list(raw.columns)}"
            )
        found[want] = match
    return found


def store_item(path: Path = DATA / STORE_ITEM) -> tuple[pd.DataFrame, pd.Timestamp, int, str]:
    """Daily units per store x item; evaluated on the last 90 days (2017-10-03 to 12-31 on the dev file).

    Other stores of the Kaggle set (kept back for evaluation) come in the same columns or in
    Kaggle's own (``store``, ``item``, ``sales``).
    """
    raw = _table(path)
    col = _columns(raw, path, {"date": (), "store_id": ("store",), "item_id": ("item",), "units": ("sales",)})
    sales = pd.DataFrame(
        {
            "store_id": raw[col["store_id"]].astype(str),
            "sku": raw[col["item_id"]].astype(str),
            "date": pd.to_datetime(raw[col["date"]]),
            "units": raw[col["units"]].astype(float),
        }
    )
    return sales, sales["date"].max() - pd.Timedelta(days=90), 90, "D"


def walmart(path: Path = DATA / WALMART) -> tuple[pd.DataFrame, pd.Timestamp, int, str]:
    """Weekly sales per store x department; evaluated on the last 39 weeks.

    Kaggle's own column names (``Store``, ``Dept``, ``Weekly_Sales``, ``MarkDown1``-``5``) are read too.
    """
    raw = _table(path)
    col = _columns(raw, path, {"date": (), "store_id": ("store",), "dept_id": ("dept",), "weekly_sales": ()})
    markdowns = [c for c in (f"markdown{i}" for i in range(1, 6)) if c in raw.columns]
    sales = pd.DataFrame(
        {
            "store_id": raw[col["store_id"]].astype(str),
            "sku": raw[col["dept_id"]].astype(str),
            "date": pd.to_datetime(raw[col["date"]]),
            "units": raw[col["weekly_sales"]].astype(float),
            "on_promotion": raw[markdowns].fillna(0).sum(axis=1).gt(0).astype(float),
        }
    )
    dates = sorted(sales["date"].unique())
    weekday = pd.Timestamp(dates[-1]).day_name()[:3].upper()
    return sales, pd.Timestamp(dates[-40]), 39, f"W-{weekday}"


def online_retail(
    tmp: Path, path: Path = DATA / ONLINE_RETAIL
) -> tuple[pd.DataFrame, pd.Timestamp, int, str]:
    """Ingested through the product's own ingest (store = Country), then series with enough history."""
    from features.ingest import ingest_file
    from features.lake import SalesLake

    lake = SalesLake(tmp / "or-lake")
    ingest_file(
        path,
        "bench",
        lake,
        tmp / "or-reports",
        mapping={"store_id": "Country"},
        lenient=True,
    )
    sales = lake.read("bench").drop(columns=["tenant_id"])
    trading = sorted(sales["date"].unique())
    until = pd.Timestamp(trading[-29])
    before = sales[sales["date"] <= until]
    stats = before.groupby(["store_id", "sku"]).agg(
        first=("date", "min"), days=("units", lambda u: int((u > 0).sum()))
    )
    keep = stats[(stats["first"] <= until - pd.Timedelta(days=180)) & (stats["days"] >= 40)].index
    sales = sales.set_index(["store_id", "sku"]).loc[keep].reset_index()
    return sales, until, int((pd.Timestamp(trading[-1]) - until).days), "D"


def score_window(
    pred: pd.DataFrame,
    sales: pd.DataFrame,
    *,
    until: pd.Timestamp,
    horizon: int,
    freq: str,
    scale: pd.Series,
    rmsse: tuple[pd.Series, pd.Series],
    trading: set[pd.Timestamp] | None,
) -> dict[str, float]:
    from models.backtest import actuals_after
    from models.evaluation import _weighted_rmsse
    from models.metrics import score

    truth = actuals_after(sales, until, horizon, freq)
    if trading is not None:
        truth = truth[truth["target_date"].isin(trading)]
    joined = truth.merge(pred, on=["store_id", "sku", "target_date"], how="left")
    joined[[c for c in joined.columns if c.startswith("p") or c == "mean"]] = joined[
        [c for c in joined.columns if c.startswith("p") or c == "mean"]
    ].fillna(0.0)
    out = score(joined, QUANTILES, scale)
    out["rmsse_weighted"] = _weighted_rmsse(joined, *rmsse)
    out |= mean_scores(joined)
    return {k: round(float(v), 4) for k, v in out.items()}


def mean_scores(joined: pd.DataFrame) -> dict[str, float]:
    """The ``mean`` column's own scores: every other figure reads the quantiles, and an API user
    ordering stock reads the mean (XGBoost's once ran 29 % above the truth beside seasonal products).
    RMSE, the proper score of a mean, and bias as the share of total units."""
    actual = joined["actual"].to_numpy(dtype=float)
    error = joined["mean"].to_numpy(dtype=float) - actual
    total = float(np.abs(actual).sum())
    return {
        "mean_rmse": float(np.sqrt(np.mean(error**2))) if len(error) else float("nan"),
        "mean_bias": float(error.sum() / total) if total > 0 else float("nan"),
    }


def run_set(
    name: str,
    sales: pd.DataFrame,
    *,
    until: pd.Timestamp,
    horizon: int,
    freq: str,
    tmp: Path,
    extra: dict[str, Any],
) -> dict[str, Any]:
    tenant = name.replace("_", "-")
    os.environ["ORDERNIMBUS_HOME"] = str(tmp / f"home-{name}")
    from features.frequency import season_length
    from features.lake import SalesLake
    from models.base import load_model
    from models.evaluation import _rmsse_setup
    from models.metrics import naive_scale
    from models.naive import SeasonalNaive
    from models.statistical import AutoETSForecaster
    from ordernimbus.service import run_build
    from ordernimbus.settings import get_settings
    from pipelines.local import cpu_seconds

    get_settings.cache_clear()
    settings = get_settings()
    SalesLake(settings.lake_dir).upsert(tenant, sales, name)
    started = time.perf_counter()
    run = run_build(settings, tenant, until=str(until.date()), horizon=horizon, extra=extra)
    build_seconds = time.perf_counter() - started
    if run.status != "Succeeded":
        return {"status": run.status, "error": str(run.error)[-2000:]}
    model_dir = next(
        p.parent for p in (settings.runs_dir / tenant).rglob("ensemble.json") if "Evaluate" in str(p)
    )
    ensemble = load_model(model_dir)
    history = sales[sales["date"] <= until]
    trading = (
        set(pd.to_datetime(sales.loc[sales["date"] > until, "date"].unique()))
        if name == "online_retail"
        else None
    )
    scale = naive_scale(history, season_length(freq))
    rmsse = _rmsse_setup(history, horizon)
    results: dict[str, dict[str, float]] = {}
    timing: dict[str, float] = {}

    def judge(label: str, model: Any, fit: bool) -> None:
        t = time.perf_counter()
        if fit:
            model.fit(history, freq)
        pred = model.predict(history, horizon, QUANTILES)
        timing[f"{label}_predict"] = round(time.perf_counter() - t, 2)
        results[label] = score_window(
            pred, sales, until=until, horizon=horizon, freq=freq, scale=scale, rmsse=rmsse, trading=trading
        )

    judge("ensemble", ensemble, fit=False)
    for member in ensemble.members:  # AutoETS as shipped (its forms searched at the earliest cutoff)
        label = f"{member}_member" if member == "autoets" else member
        judge(label, ensemble.member(member), fit=False)
    judge("seasonal_naive", SeasonalNaive(), fit=True)
    if (horizon <= 364 and freq == "D") or freq.startswith("W"):
        judge("seasonal_naive_year", SeasonalNaive(yearly=True), fit=True)
    judge("autoets", AutoETSForecaster(), fit=True)
    baselines = ["seasonal_naive", "seasonal_naive_year", "autoets"]
    best_base = min((b for b in baselines if b in results), key=lambda b: results[b]["wape"])
    members = [f"{m}_member" if m == "autoets" else m for m in ensemble.members]
    rivals = [x for x in [*members, *baselines] if x in results]
    matched = {  # metric -> the models the ensemble does not beat on it (ties included)
        m: [x for x in rivals if results[x][m] <= results["ensemble"][m]]
        for m in ("wape", "mase", "pinball")
        if any(results[x][m] <= results["ensemble"][m] for x in rivals)
    }
    return {
        "status": run.status,
        "series": int(sales.groupby(["store_id", "sku"]).ngroups),
        "frequency": freq,
        "horizon": horizon,
        "train_until": str(until.date()),
        "build_seconds": round(build_seconds, 1),
        "goal_seconds": GOAL_SECONDS[name],
        "steps": {s.step: s.seconds for s in run.steps},
        # CPU seconds per step do not depend on what ran beside it: what a build needs of a machine
        "cpu_seconds": {s.step: cpu_seconds(s.log) for s in run.steps},
        "scores": results,
        "best_baseline": best_base,
        "improvement_vs_best_baseline": round(
            1 - results["ensemble"]["wape"] / results[best_base]["wape"], 4
        ),
        # strictly: an ensemble that is its best member (weight 1) ties it and does not beat it
        "beats_every_member_and_baseline": not matched,
        "not_beaten_on": matched,
        "autogluon_wape": AUTOGLUON.get(name),
        "weights": ensemble.weights,
        "gate": json.loads(next((settings.runs_dir / tenant).rglob("evaluation.json")).read_text())["gate"],
        "timing": timing,
        "load_average": os.getloadavg(),
    }


def machine_seconds(series: int = 20) -> float:
    """Seconds of a fixed CPU workload: the build's own searches on a fixed Store Item cut, one process.

    Build times here come from machines whose cores differ by up to 2x between sessions for the same
    code. This figure, measured beside every accuracy run, says how fast the cores were: AutoARIMA's
    order search (MSTL, Python-bound scipy optimiser) and AutoETS's form search (C++-bound) on the
    first ``series`` Store Item series up to the earliest backtest cutoff.
    """
    from models.statistical import AutoARIMAForecaster, AutoETSForecaster

    sales, _, _, freq = store_item()
    keys = sales[["store_id", "sku"]].drop_duplicates().sort_values(["store_id", "sku"]).head(series)
    history = sales.merge(keys)
    history = history[history["date"] <= pd.Timestamp("2017-01-05")]
    started = time.perf_counter()
    for model in (AutoARIMAForecaster(n_jobs=1), AutoETSForecaster(n_jobs=1)):
        model.fit(history, freq)
    return round(time.perf_counter() - started, 1)


def table(results: dict[str, Any]) -> str:
    """Markdown: every model's scores per set, with the wall time of the step that trained it."""
    lines = [
        "| set | model | WAPE | MASE | pinball | p10-p90 coverage (below p10 / above p90) "
        "| RMSSE (rev.-weighted) | mean: RMSE (bias) | train step |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, res in results.items():
        if "scores" not in res:
            lines.append(f"| {name} | {res.get('status')} | | | | | | | |")
            continue
        steps = res.get("steps", {})
        for model, s in res["scores"].items():
            label = f"**{model}**" if model == "ensemble" else model
            step = "Evaluate" if model == "ensemble" else f"Train-{model.removesuffix('_member')}"
            seconds, cpu = steps.get(step), res.get("cpu_seconds", {}).get(step)
            wall = (f"{seconds:.0f} s" if seconds else "") + (f" ({cpu:.0f} CPU s)" if cpu else "")
            tails = f" ({s['below_lower']:.2f} / {s['above_upper']:.2f})" if "below_lower" in s else ""
            mean = f"{s['mean_rmse']:.4g} ({s['mean_bias']:+.1%})" if "mean_rmse" in s else ""
            lines.append(
                f"| {name} | {label} | {s['wape']:.3f} | {s.get('mase', float('nan')):.3f} | "
                f"{s['pinball']:.3f} | {s['coverage']:.2f}{tails} | {s['rmsse_weighted']:.3f} | {mean} "
                f"| {wall} |"
            )
        if res.get("autogluon_wape"):
            lines.append(f"| {name} | AutoGluon (data README) | {res['autogluon_wape']:.3f} | | | | | | |")
        cpu = sum(v for v in res.get("cpu_seconds", {}).values() if v)
        build = f"{res['build_seconds']:.0f} s (goal {res['goal_seconds']} s)" + (
            f", {cpu:.0f} CPU s" if cpu else ""
        )
        if res.get("machine_seconds"):
            build += f", reference workload {res['machine_seconds']:.1f} s"
        lines.append(f"| {name} | *whole build* | | | | | | | {build} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", default="store_item,walmart,online_retail")
    parser.add_argument("--deepar-epochs", type=int, default=12)
    parser.add_argument("--table", action="store_true", help="print the table of the saved results and stop")
    parser.add_argument(
        "--machine", action="store_true", help="time the reference workload (see machine_seconds) and stop"
    )
    parser.add_argument(
        "--keep-runs",
        type=Path,
        help="copy each set's build (runs, models, backtests) here for dev_windows.py",
    )
    files = parser.add_argument_group(
        "other data", "the same sets' held-back stores: same columns as the dev files, or Kaggle's own"
    )
    files.add_argument("--store-item", type=Path, default=DATA / STORE_ITEM, metavar="FILE")
    files.add_argument("--walmart", type=Path, default=DATA / WALMART, metavar="FILE")
    files.add_argument("--online-retail", type=Path, default=DATA / ONLINE_RETAIL, metavar="FILE")
    parser.add_argument(
        "--out",
        type=Path,
        help=f"results file (default {RESULTS.relative_to(ROOT)}; accuracy-other.json beside it "
        "when a set's file is not the dev file, so the README's figures are never overwritten)",
    )
    args = parser.parse_args()
    if args.table:
        print(table(json.loads((args.out or RESULTS).read_text())["sets"]))
        return
    if args.machine:
        print(json.dumps({"machine_seconds": machine_seconds()}))
        return
    paths = {"store_item": args.store_item, "walmart": args.walmart, "online_retail": args.online_retail}
    names = args.sets.split(",")
    if unknown := [n for n in names if n not in paths]:
        parser.error(f"unknown set {', '.join(unknown)}; expected some of {', '.join(paths)}")
    if missing := [str(paths[n]) for n in names if not paths[n].is_file()]:
        parser.error(f"no such file: {', '.join(missing)}")
    dev = all(paths[n] == DATA / default for n, default in DEV_FILES.items() if n in names)
    out = args.out or (RESULTS if dev else RESULTS.with_name("accuracy-other.json"))
    extra = {"DeepAREpochs": args.deepar_epochs, "BacktestWindows": 3}
    previous = json.loads(out.read_text()) if out.exists() else {}
    results: dict[str, Any] = dict(previous.get("sets", {}))
    with tempfile.TemporaryDirectory(prefix="on-accuracy-") as folder:
        tmp = Path(folder)
        for name in names:
            path = paths[name]
            sales, until, horizon, freq = (
                online_retail(tmp, path)
                if name == "online_retail"
                else {"store_item": store_item, "walmart": walmart}[name](path)
            )
            print(
                f"{name} ({path.name}): {sales.groupby(['store_id', 'sku']).ngroups} series, "
                f"train until {until.date()}, horizon {horizon}",
                flush=True,
            )
            reference = machine_seconds()  # the cores' speed, just before this set's build
            results[name] = run_set(
                name, sales, until=until, horizon=horizon, freq=freq, tmp=tmp, extra=extra
            )
            results[name]["machine_seconds"] = reference
            results[name]["data"] = path.name
            if path != DATA / DEV_FILES[name]:  # AutoGluon was measured on the dev files only
                results[name]["autogluon_wape"] = None
            print(json.dumps({k: v for k, v in results[name].items() if k != "steps"}, indent=1), flush=True)
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(json.dumps({"sets": results, "cpu_count": os.cpu_count()}, indent=2))
            if args.keep_runs:  # the build's step inputs are symlinks, so copy their targets
                shutil.copytree(tmp / f"home-{name}", args.keep_runs / f"home-{name}", symlinks=False)
    print(table(results))


if __name__ == "__main__":
    main()
