"""The ensemble: member forecasts blended with weights per cluster of series, learned on backtests.

**Clusters.** Series are grouped by what decides which model does well on them: their volume
(terciles of the mean over the last ``level_window`` periods) and whether they are intermittent
(more than a third of those periods are zero). That gives up to six clusters; each learns its own
weights. A cluster with too few series for a stable fit (``min_series``) is pooled with the other
small ones, and the pool learns one set of weights. The cut points are stored, so a series is
assigned at prediction time from its own latest history, new series included. A series with too
little history to judge (``short_history``) gets equal weights: no evidence favours any member.

**Weights.** In each cluster the weights minimise the WAPE of the blended median over all backtest
windows, chosen among candidates: every single member, equal weights, inverse-WAPE weights,
non-negative least squares, and a simplex grid. Because every single member is a candidate, every
cluster's absolute error is at most its best member's, so the blend is never worse than the best
member on the windows it was fitted on (total WAPE is the sum of the clusters' absolute errors).

**Quantiles.** Quantile forecasts are combined by averaging quantile functions (Vincentisation:
the weighted mean of the members' p10, of their p50, ...), which keeps them ordered; averaging
bounds of *independent* predictive distributions this way gives a combined distribution whose
intervals are the weighted mean width, which can still be mis-calibrated. So the interval is then
scaled about the median, separately below and above, by factors fitted on the backtest so that
P(y < p10) ≈ 0.10 and P(y > p90) ≈ 0.10; the p10-p90 coverage on the backtest is reported.
The factors are fitted on the **newest** backtest window only: its members were trained on the most
history, the nearest to the models that ship, while the earliest window's were trained on the least
and are the most over-confident (Walmart's earliest cutoff keeps 52 weeks: its unscaled coverage was
0.34 against 0.71 and 0.76 in the later windows). Checked out of sample on the builds' own backtests
(factors fitted on the older windows, coverage on the newest; never an evaluation window): pooling
every window gave 0.945 on Walmart, 0.755 on Online Retail and 0.808 on Store Item Demand; the newest
older window alone gave 0.840, 0.778 and 0.809 (``benchmarks/dev_windows.py --only calibration``).
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
from models.metrics import qcol, wape

KEY = ["store_id", "sku", "target_date"]
SERIES = ["store_id", "sku"]
POOLED = "pooled"
SHORT = "short"


# --- clusters ---------------------------------------------------------------------------------
def series_profile(history: pd.DataFrame, level_window: int) -> pd.DataFrame:
    """Per series: mean level and zero share over its last ``level_window`` periods, and its length."""
    ordered = history.sort_values([*SERIES, "date"])
    tail = ordered.groupby(SERIES, sort=False).tail(level_window)
    grouped = tail.groupby(SERIES)["units"]
    out = pd.DataFrame(
        {"level": grouped.mean(), "zero_share": grouped.apply(lambda u: float((u == 0).mean()))}
    )
    out["length"] = ordered.groupby(SERIES).size()
    return out


def assign_clusters(
    profile: pd.DataFrame, cuts: Sequence[float], short_history: int, known: Sequence[str]
) -> pd.Series:
    """Cluster label per series: 'v<volume tercile>-<i|s>', the pooled label, or 'short'."""
    volume = np.searchsorted(np.asarray(cuts, dtype=float), profile["level"].to_numpy(), side="right")
    kind = np.where(profile["zero_share"].to_numpy() > 1 / 3, "i", "s")
    labels = pd.Series([f"v{v}-{k}" for v, k in zip(volume, kind, strict=True)], index=profile.index)
    labels[~labels.isin(list(known))] = POOLED
    labels[profile["length"].to_numpy() < short_history] = SHORT
    return labels


# --- weight search ------------------------------------------------------------------------------
def candidate_weights(preds: np.ndarray, actual: np.ndarray, step: float = 0.1) -> np.ndarray:
    """Candidate weight vectors (rows) for members in the columns of ``preds``."""
    k = preds.shape[1]
    rows = [np.eye(k), np.full((1, k), 1 / k)]
    errors = np.array([wape(actual, preds[:, j]) for j in range(k)])
    if np.isfinite(errors).all() and (errors > 0).all():
        inv = 1 / errors
        rows.append((inv / inv.sum())[None, :])
    try:
        from scipy.optimize import nnls

        w, _ = nnls(preds, actual)
        if w.sum() > 0:
            rows.append((w / w.sum())[None, :])
    except (ValueError, RuntimeError):
        pass
    ticks = round(1 / step)
    if k <= 5:
        grid = [c for c in itertools.product(range(ticks + 1), repeat=k - 1) if sum(c) <= ticks]
        rows.append(np.array([[*c, ticks - sum(c)] for c in grid], dtype=float) / ticks)
    return np.vstack(rows)


def best_weights(preds: np.ndarray, actual: np.ndarray) -> np.ndarray:
    """The candidate with the lowest WAPE of the blended median (ties: the earliest candidate)."""
    candidates = candidate_weights(preds, actual)
    errors = np.abs(preds @ candidates.T - actual[:, None]).sum(axis=0)
    return candidates[int(np.argmin(errors))]


def _median_matrix(backtests: Mapping[str, pd.DataFrame]) -> tuple[pd.DataFrame, list[str]]:
    names = sorted(backtests)
    key = [*KEY, "window"]
    merged = backtests[names[0]][[*key, "actual"]]
    for n in names:
        merged = merged.merge(backtests[n][[*key, qcol(0.5)]].rename(columns={qcol(0.5): n}), on=key)
    return merged, names


def fit_weights(
    backtests: Mapping[str, pd.DataFrame], quantiles: Sequence[float] = (0.5,)
) -> dict[str, float]:
    """One set of weights for all series (the pooled fit)."""
    merged, names = _median_matrix(backtests)
    w = best_weights(merged[names].to_numpy(dtype=float), merged["actual"].to_numpy(dtype=float))
    return {n: float(round(x, 4)) for n, x in zip(names, w, strict=True)}


# --- the weighting scheme -----------------------------------------------------------------------
class Weighting:
    """Per-cluster weights plus the rule that assigns a series to a cluster."""

    def __init__(
        self,
        members: Sequence[str],
        clusters: Mapping[str, Mapping[str, float]],
        cuts: Sequence[float],
        level_window: int,
        short_history: int,
    ) -> None:
        self.members = list(members)
        self.clusters = {c: dict(w) for c, w in clusters.items()}
        self.cuts = [float(c) for c in cuts]
        self.level_window = level_window
        self.short_history = short_history
        self.clusters.setdefault(SHORT, {m: 1 / len(self.members) for m in self.members})

    @classmethod
    def fit(
        cls,
        backtests: Mapping[str, pd.DataFrame],
        history: pd.DataFrame,
        level_window: int,
        short_history: int,
        min_series: int = 12,
    ) -> Weighting:
        merged, names = _median_matrix(backtests)
        earliest = pd.to_datetime(merged["window"]).min()
        profile = series_profile(history[history["date"] <= earliest], level_window)
        levels = profile["level"].to_numpy()
        cuts = list(np.quantile(levels, [1 / 3, 2 / 3])) if len(levels) >= 3 * min_series else []
        labels = assign_clusters(profile, cuts, 0, [f"v{v}-{k}" for v in range(3) for k in "is"])
        sizes = labels.value_counts()
        big = [c for c in sizes.index if sizes[c] >= min_series]
        labels[~labels.isin(big)] = POOLED
        rows = labels.reindex(pd.MultiIndex.from_frame(merged[SERIES])).fillna(POOLED).to_numpy()
        preds, actual = merged[names].to_numpy(dtype=float), merged["actual"].to_numpy(dtype=float)
        clusters: dict[str, dict[str, float]] = {}
        for label in sorted(set(rows)):
            mask = rows == label
            w = best_weights(preds[mask], actual[mask])
            clusters[label] = {n: float(x) for n, x in zip(names, w, strict=True)}
        if POOLED not in clusters:  # new series at prediction time land here: weights of all series
            w = best_weights(preds, actual)
            clusters[POOLED] = {n: float(x) for n, x in zip(names, w, strict=True)}
        return cls(names, clusters, cuts, level_window, short_history)

    def series_weights(self, history: pd.DataFrame, judge_length: bool = True) -> pd.DataFrame:
        """(series x member) weight table for the series in ``history``.

        ``judge_length=False`` skips the short-history rule: backtest rows are weighted as fitted.
        """
        profile = series_profile(history, self.level_window)
        known = [c for c in self.clusters if c not in (POOLED, SHORT)]
        labels = assign_clusters(profile, self.cuts, self.short_history if judge_length else 0, known)
        table = pd.DataFrame([self.clusters[c] for c in labels], index=profile.index)
        return table.reindex(columns=self.members).fillna(0.0).assign(cluster=labels.to_numpy())

    def rows(self, frame: pd.DataFrame, history: pd.DataFrame, judge_length: bool = True) -> np.ndarray:
        """(row x member) weights for a frame keyed by store_id, sku."""
        table = self.series_weights(history, judge_length)
        weights = table.reindex(pd.MultiIndex.from_frame(frame[SERIES]))[self.members]
        # A series absent from ``history`` (in a backtest: it started after the earliest cutoff the
        # clusters are judged at) gets the pooled weights, as a new series does at prediction time;
        # left unweighted, its rows would blend to NaN and poison the backtest's totals.
        return weights.fillna(pd.Series(self.clusters[POOLED])).to_numpy(dtype=float)

    def summary(self) -> dict[str, Any]:
        return {
            "clusters": {c: {m: round(w, 4) for m, w in ws.items()} for c, ws in self.clusters.items()},
            "volume_cuts": [round(c, 4) for c in self.cuts],
            "level_window": self.level_window,
            "short_history": self.short_history,
        }

    def to_json(self) -> dict[str, Any]:
        return {
            "members": self.members,
            "clusters": self.clusters,
            "cuts": self.cuts,
            "level_window": self.level_window,
            "short_history": self.short_history,
        }

    @classmethod
    def from_json(cls, state: Mapping[str, Any]) -> Weighting:
        return cls(
            state["members"], state["clusters"], state["cuts"], state["level_window"], state["short_history"]
        )

    def average(self) -> dict[str, float]:
        """Mean weight per member over the learnt clusters (for reports)."""
        learnt = [w for c, w in self.clusters.items() if c != SHORT] or list(self.clusters.values())
        return {m: round(float(np.mean([w.get(m, 0.0) for w in learnt])), 4) for m in self.members}


def blend_rows(
    frames: Mapping[str, pd.DataFrame],
    weights: np.ndarray,
    members: Sequence[str],
    quantiles: Sequence[float],
    base: pd.DataFrame,
) -> pd.DataFrame:
    """Blend member forecasts aligned to ``base``'s keys with per-row weights (rows sum to one)."""
    cols = ["mean", *(qcol(q) for q in quantiles)]
    index = pd.MultiIndex.from_frame(base[[c for c in base.columns if c in (*KEY, "window")]])
    out = base.drop(columns=[c for c in base.columns if c in cols]).copy()
    acc = {c: np.zeros(len(base)) for c in cols}
    total = weights.sum(axis=1)
    total = np.where(total > 0, total, 1.0)
    for j, name in enumerate(members):
        if not (weights[:, j] > 0).any():
            continue
        aligned = frames[name].set_index(index.names).reindex(index)
        for c in cols:
            acc[c] += weights[:, j] / total * np.nan_to_num(aligned[c].to_numpy(dtype=float))
    for c in cols:
        out[c] = acc[c]
    return out


def blend(
    frames: Mapping[str, pd.DataFrame], weights: Mapping[str, float], quantiles: Sequence[float]
) -> pd.DataFrame:
    """Blend with one weight per member for every row."""
    names = [n for n, w in weights.items() if w > 0]
    base = frames[names[0]]
    w = np.tile(np.array([weights[n] for n in names], dtype=float), (len(base), 1))
    return blend_rows(frames, w, names, quantiles, base)


# --- interval calibration -----------------------------------------------------------------------
def fit_interval_scale(blended: pd.DataFrame, quantiles: Sequence[float]) -> dict[str, float]:
    """Factors on (p50 - lower) and (upper - p50) so each tail holds its nominal share on the backtest.

    The evaluate step passes the newest backtest window only (see the module docstring).
    """
    lo, hi = min(quantiles), max(quantiles)
    actual = blended["actual"].to_numpy(dtype=float)
    mid = blended[qcol(0.5)].to_numpy(dtype=float)
    down = mid - blended[qcol(lo)].to_numpy(dtype=float)
    up = blended[qcol(hi)].to_numpy(dtype=float) - mid
    grid = np.linspace(0.3, 3.0, 271)
    below = np.array([np.mean(actual < mid - s * down) for s in grid])
    above = np.array([np.mean(actual > mid + s * up) for s in grid])
    return {
        "lower": float(grid[int(np.argmin(np.abs(below - lo)))]),
        "upper": float(grid[int(np.argmin(np.abs(above - (1 - hi))))]),
    }


def apply_interval_scale(
    frame: pd.DataFrame, quantiles: Sequence[float], scale: Mapping[str, float] | float
) -> pd.DataFrame:
    factors = (
        {"lower": float(scale), "upper": float(scale)} if isinstance(scale, int | float) else dict(scale)
    )
    mid = frame[qcol(0.5)].to_numpy(dtype=float)
    for q in quantiles:
        if q != 0.5:
            s = factors["lower"] if q < 0.5 else factors["upper"]
            frame[qcol(q)] = mid + s * (frame[qcol(q)].to_numpy(dtype=float) - mid)
    return frame


# --- the saved model ----------------------------------------------------------------------------
class Ensemble(BaseForecaster):
    """A saved blend: member model directories, the weighting and the interval scale."""

    name: ClassVar[str] = "ensemble"

    def __init__(
        self,
        members: Mapping[str, Forecaster] | None = None,
        weights: Weighting | Mapping[str, float] | None = None,
        interval_scale: Mapping[str, float] | float = 1.0,
    ) -> None:
        super().__init__()
        self.members = dict(members or {})
        if weights is None or isinstance(weights, Weighting):
            self.weighting = weights
        else:
            names = sorted(weights)
            self.weighting = Weighting(names, {POOLED: dict(weights)}, [], 28, 0)
        self.interval_scale: dict[str, float] = (
            {"lower": float(interval_scale), "upper": float(interval_scale)}
            if isinstance(interval_scale, int | float)
            else dict(interval_scale)
        )

    @property
    def weights(self) -> dict[str, float]:
        return self.weighting.average() if self.weighting else {}

    def fit(self, history: pd.DataFrame, freq: str) -> Self:
        self._record_training(history, freq)
        for model in self.members.values():
            model.fit(history, freq)
        return self

    def predict(self, history: pd.DataFrame, horizon: int, quantiles: Sequence[float]) -> pd.DataFrame:
        if self.weighting is None:
            raise ValueError("the ensemble has no weights: fit it through models.evaluation.evaluate")
        table = self.weighting.series_weights(history)
        used = [m for m in self.weighting.members if (table[m] > 0).any()]
        preds = {n: self.members[n].predict(history, horizon, quantiles) for n in used}
        base = preds[used[0]][["store_id", "sku", "target_date", "horizon_day"]]
        w = table.reindex(pd.MultiIndex.from_frame(base[SERIES]))[used].to_numpy(dtype=float)
        out = blend_rows(preds, w, used, quantiles, base)
        out = apply_interval_scale(out, quantiles, self.interval_scale)
        out = out[["store_id", "sku", "target_date", "horizon_day", "mean", *(qcol(q) for q in quantiles)]]
        nonneg = bool((history["units"] >= 0).all())
        return clean_quantiles(out.reset_index(drop=True), quantiles, nonnegative=nonneg)

    def _save_state(self, path: Path) -> None:
        for name, model in self.members.items():
            model.save(path / "members" / name)
        assert self.weighting is not None
        state: dict[str, Any] = {
            "weighting": self.weighting.to_json(),
            "interval_scale": self.interval_scale,
            "weights": self.weights,
        }
        (path / "ensemble.json").write_text(json.dumps(state, indent=2))

    def _load_state(self, path: Path) -> None:
        state = json.loads((path / "ensemble.json").read_text())
        self.weighting = Weighting.from_json(state["weighting"])
        self.interval_scale = state["interval_scale"]
        self.members = {d.name: load_model(d) for d in sorted((path / "members").iterdir()) if d.is_dir()}
