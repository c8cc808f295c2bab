"""Evaluate step: blend the members, score them and the baselines on the same windows, write evaluation.json.

Inputs ``model-<m>`` / ``backtest-<m>`` are ensemble members; ``baseline-<b>`` are backtests of
baselines that are scored beside them (AutoETS is both, from the same training step). Its ``model``
output is the ensemble directory (members, weights, interval scale, backtest) that registration
packages as the version's model.tar.gz.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pandas as pd

from features.outages import from_records
from models.ensemble import Ensemble
from models.evaluation import evaluate
from pipelines.contract import StepContext
from pipelines.steps._io import quantiles_arg, read_sales, run_step, strict_json


def _names(ctx: StepContext, prefix: str) -> list[str]:
    return sorted(p.name.removeprefix(prefix) for p in (ctx.base / "processing" / "input").glob(f"{prefix}*"))


def _read_json(folder: Path, name: str) -> dict[str, Any]:
    path = folder / name
    return json.loads(path.read_text()) if path.exists() else {}


def main(ctx: StepContext) -> None:
    horizon = int(ctx.param("horizon", "28"))
    quantiles = quantiles_arg(ctx.param("quantiles", "0.1,0.5,0.9"))
    ratio = float(ctx.param("gate_max_wape_ratio", "1.0"))
    sales, meta = read_sales(ctx.input("sales"))
    members = _names(ctx, "model-")
    baselines = _names(ctx, "baseline-")
    backtests = {m: pd.read_parquet(ctx.input(f"backtest-{m}") / "backtest.parquet") for m in members}
    extra = {b: pd.read_parquet(ctx.input(f"baseline-{b}") / "backtest.parquet") for b in baselines}
    outages = from_records(meta.get("outages", []))  # their periods have no truth to score
    result = evaluate(sales, meta["frequency"], horizon, quantiles, backtests, ratio, extra, outages)
    folders = {
        **{m: ctx.input(f"backtest-{m}") for m in members},
        **{b: ctx.input(f"baseline-{b}") for b in baselines},
    }
    result.metrics["data"]["unmarked_gaps"] = meta.get("unmarked_gaps", [])  # read as zero sales
    result.metrics["timing"] = {n: _read_json(f, "timing.json") for n, f in folders.items()}
    result.metrics["details"] = {n: _read_json(f, "details.json") for n, f in folders.items()}
    (ctx.output("evaluation") / "evaluation.json").write_text(strict_json(result.metrics))
    # the members' directories are copied as their steps saved them, not loaded and written again
    ensemble = Ensemble(
        {m: ctx.input(f"model-{m}") for m in members}, result.weighting, result.interval_scale
    )
    ensemble.freq = meta["frequency"]
    ensemble.trained_on = {
        "start": meta["start"],
        "end": meta["end"],
        "series": int(meta["series"]),
        "rows": int(meta["rows"]),
        "fingerprint": meta["fingerprint"],
    }
    out = ctx.output("model")
    ensemble.save(out)
    # the artifact's backtest contract (read by the model card): one row per series x date x window x model
    result.backtest.rename(columns={"target_date": "date"}).to_parquet(out / "backtest.parquet", index=False)
    shutil.copy(ctx.input("sales") / "meta.json", out / "data_meta.json")
    if "xgboost" in members and (ctx.input("model-xgboost") / "explain.json").exists():
        shutil.copy(ctx.input("model-xgboost") / "explain.json", out / "explain.json")
    gate = result.metrics["gate"]
    verdict = "passed" if gate["passed"] else "FAILED"
    print(
        f"ensemble WAPE {gate['ensemble_value']:.4f} vs {gate['best_baseline']} "
        f"{gate['best_baseline_value']:.4f} over window(s) {', '.join(gate['windows'])} "
        f"(ratio {gate['wape_ratio']:.3f}, gate {verdict}); "
        f"weights {result.weights}"
    )


if __name__ == "__main__":
    run_step(main)
