"""The ensemble: a weighted blend of member forecasts, learned on their backtests.

Weights live on the simplex and are chosen by a grid search minimising the backtest WAPE of the
blended median; the grid contains every single member, so the blend is never worse than its best
member on the windows it was fitted on. Quantiles are combined by averaging quantile functions
(Vincentisation: the weighted mean of each member's p10, p50, p90), which keeps them ordered; the
interval is then scaled about the median by one factor fitted on the backtest so that the p10-p90
coverage matches its nominal 80% (members' intervals are often too narrow or too wide).
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np
import pandas as pd

from models.base import BaseForecaster, Forecaster, clean_quantiles, load_model
from models.metrics import coverage, qcol, wape

KEY = ["store_id", "sku", "target_date"]


def blend(frames: Mapping[str, pd.DataFrame], weights: Mapping[str, float], quantiles: Sequence[float]) -> pd.DataFrame:
    """Weighted average of member forecasts aligned on (store_id, sku, target_date)."""
    cols = ["mean", *(qcol(q) for q in quantiles)]
    names = [n for n, w in weights.items() if w > 0]
    base = frames[names[0]].set_index(KEY)
    out = base.drop(columns=[c for c in base.columns if c in cols]).copy()
    total = sum(weights[n] for n in names)
    acc = {c: np.zeros(len(base)) for c in cols}
    for name in names:
        aligned = frames[name].set_index(KEY).reindex(base.index)
        for c in cols:
            acc[c] += weights[name] / total * aligned[c].to_numpy(dtype=float)
    for c in cols:
        out[c] = acc[c]
    return out.reset_index()


def fit_weights(backtests: Mapping[str, pd.DataFrame], quantiles: Sequence[float], step: float = 0.05) -> dict[str, float]:
    """Simplex grid search on the blended median's WAPE over all backtest windows."""
    names = sorted(backtests)
    if len(names) == 1:
        return {names[0]: 1.0}
    key = [*KEY, "window"]
    merged = backtests[names[0]][[*key, "actual"]]
    medians = []
    for n in names:
        merged = merged.merge(backtests[n][[*key, qcol(0.5)]].rename(columns={qcol(0.5): n}), on=key)
        medians.append(n)
    actual = merged["actual"].to_numpy(dtype=float)
    preds = merged[medians].to_numpy(dtype=float)
    ticks = int(round(1 / step))
    best, best_w = np.inf, None
    for combo in itertools.product(range(ticks + 1), repeat=len(names) - 1):
        if sum(combo) > ticks:
            continue
        w = np.array([*combo, ticks - sum(combo)], dtype=float) / ticks
        err = wape(actual, preds @ w)
        if err < best - 1e-12:
            best, best_w = err, w
    assert best_w is not None
    return {n: float(round(w, 4)) for n, w in zip(names, best_w, strict=True)}


def fit_interval_scale(blended: pd.DataFrame, quantiles: Sequence[float], target: float | None = None) -> float:
    """Factor on (p90 - p50) and (p50 - p10) that makes backtest coverage hit the nominal level."""
    lo, hi = min(quantiles), max(quantiles)
    target = target if target is not None else hi - lo
    actual = blended["actual"].to_numpy(dtype=float)
    mid = blended[qcol(0.5)].to_numpy(dtype=float)
    down = mid - blended[qcol(lo)].to_numpy(dtype=float)
    up = blended[qcol(hi)].to_numpy(dtype=float) - mid
    grid = np.linspace(0.3, 3.0, 271)
    covs = np.array([coverage(actual, mid - s * down, mid + s * up) for s in grid])
    return float(grid[int(np.argmin(np.abs(covs - target)))])


def apply_interval_scale(frame: pd.DataFrame, quantiles: Sequence[float], scale: float) -> pd.DataFrame:
    mid = frame[qcol(0.5)].to_numpy(dtype=float)
    for q in quantiles:
        if q != 0.5:
            frame[qcol(q)] = mid + scale * (frame[qcol(q)].to_numpy(dtype=float) - mid)
    return frame


class Ensemble(BaseForecaster):
    """A saved blend: member model directories plus weights and the interval scale."""

    name: ClassVar[str] = "ensemble"

    def __init__(self, members: Mapping[str, Forecaster] | None = None, weights: Mapping[str, float] | None = None,
                 interval_scale: float = 1.0) -> None:
        super().__init__()
        self.members = dict(members or {})
        self.weights = dict(weights or {})
        self.interval_scale = interval_scale

    def fit(self, history: pd.DataFrame, freq: str) -> Self:
        self._record_training(history, freq)
        for name, model in self.members.items():
            if self.weights.get(name, 0) > 0:
                model.fit(history, freq)
        return self

    def predict(self, history: pd.DataFrame, horizon: int, quantiles: Sequence[float]) -> pd.DataFrame:
        preds = {n: m.predict(history, horizon, quantiles) for n, m in self.members.items() if self.weights.get(n, 0) > 0}
        out = blend(preds, self.weights, quantiles)
        out = apply_interval_scale(out, quantiles, self.interval_scale)
        out = out[["store_id", "sku", "target_date", "horizon_day", "mean", *(qcol(q) for q in quantiles)]]
        nonneg = bool((history["units"] >= 0).all())
        return clean_quantiles(out, quantiles, nonnegative=nonneg)

    def _save_state(self, path: Path) -> None:
        for name, model in self.members.items():
            model.save(path / "members" / name)
        state: dict[str, Any] = {"weights": self.weights, "interval_scale": self.interval_scale}
        (path / "ensemble.json").write_text(json.dumps(state, indent=2))

    def _load_state(self, path: Path) -> None:
        state = json.loads((path / "ensemble.json").read_text())
        self.weights, self.interval_scale = state["weights"], state["interval_scale"]
        self.members = {d.name: load_model(d) for d in sorted((path / "members").iterdir()) if d.is_dir()}
