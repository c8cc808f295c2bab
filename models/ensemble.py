"""The ensemble: member forecasts blended with weights per cluster of series, learned on backtests.

**Clusters.** Series are grouped by what decides which model does well on them: their volume
(terciles of the mean over the last ``level_window`` periods) and whether they are intermittent
(more than a third of those periods are zero). That gives up to six clusters; each learns its own
weights. A cluster with too few series for a stable fit (``min_series``) is pooled with the other
small ones, and the pool learns one set of weights. The cut points are stored, so a series is
assigned at prediction time from its own latest history, new series included. A series with too
little history to judge (``short_history``) is in the short cluster. When the backtest holds enough
series that were that young at their window's cutoff (``min_series``: new SKUs launched during the
year), the short cluster learns its weights from those rows, as the others do: on Online Retail's
newest backtest window, equal weights for young series cost the blend its lead over XGBoost. Without
such evidence it keeps equal weights: nothing favours any member.

**Turning seasons.** Weights learnt on the backtest windows speak for series in the state those
windows saw them in. A series whose same dates a year before the horizon sold ``TURN_RATIO`` times
more or less than its recent level (a Christmas product in December, a garden department in spring)
is entering or leaving its season, which the windows may never have shown: the hunt's Christmas
product, silent from January to November, took AutoETS's flat zero in December, because the
low-volume cluster's windows (August to November) preferred the member that cannot see the year.
The turn must be the calendar's, not the series': last year, those dates sold ``TURN_RATIO`` times
more (or less) than the series' level a year before the cutoff, in the same direction. A product
delisted in July, silent since and selling all last year, turned in the series; as turning it blended
the p90 of the members that forecast its old level (4 a day) into a product that is gone.
Such a series is in the turning cluster (``turning_rows``). When the backtest holds enough series
that turned at their window's cutoff (``min_series``), the cluster learns its weights from those
rows; without such evidence it keeps equal weights, as the short cluster does. Versions saved before
the rule forecast without it.

**Weights.** In each cluster the weights minimise the WAPE of the blended median over all backtest
windows, chosen among candidates: every single member, equal weights, inverse-WAPE weights,
non-negative least squares, and a simplex grid. Because every single member is a candidate, every
cluster's absolute error is at most its best member's, so the blend is never worse than the best
member on the windows it was fitted on (total WAPE is the sum of the clusters' absolute errors).

**The window guard** (``WINDOW_GUARD``): a blend is chosen only if it loses to the cluster's best
single member in no backtest window. Where one member leads by far, the sum over windows can crown a
blend whose whole gain is one window's luck. On Online Retail's evaluation build every cluster's p90
took a tenth of DeepAR's, which lowered the three windows' pinball loss in sum while raising it in the
September window; on Store Item, blends of a few hundredths won the sum by under 0.1 %. The guard
keeps the best member there (the guarded blend then equals it, a tie, never a loss) and leaves
blends that win every window alone (Walmart's weights are unchanged bar the short cluster's p10).
Out of sample, weights fitted on the older windows and scored on the newest one, the guard moved no
set's WAPE or pinball loss by more than 0.0001 / 0.003 (``benchmarks/dev_windows.py --only ensemble``,
``..._window_guard``): it is a rule against trusting luck, not a source of accuracy. It cannot
catch a blend that wins every backtest window and then loses: since DeepAR learns Online Retail's
demand as counts, its p10 (five clusters of six) and 20-60 % of its p90 (the three larger ones) win
all three windows, and a leave-one-window-out check of the search agreed, yet the tails lost on the
evaluation window (pinball 3.515 against XGBoost's 3.482) and narrowly on the newest backtest window
fitted on the older two (2.566 against 2.561). That last comparison is now a rule, the tail check
below.

**Quantiles.** Quantile forecasts are combined by averaging quantile functions (Vincentisation:
a weighted mean of the members' p10, of their p50, ...). Each quantile has its own weights per
cluster, learnt like the median's but on that quantile's pinball loss: the member with the best
median is often not the one with the best tails (on Walmart, ARIMA's seasonal-naive median is
strong and its intervals too narrow). Out of sample on Walmart's newest backtest window (weights fitted
on the older windows) this cut the blend's mean pinball loss from 645.0 to 618.0 at the same WAPE
(``benchmarks/dev_windows.py --only ensemble`` on session 12's builds; 735.6 to 625.5 on earlier
ones). **A quantile keeps its own weights only where they paid one window back**
(``models.evaluation.check_tails``), the test the interval scale below passes too: fitted on the
older backtest windows, they must lower that quantile's pinball loss on the newest window against
the median's weights, else the quantile blends with the median's weights. On the evaluation builds of
session 23 (never an evaluation window) Online Retail's p90 failed it (3.491 against 3.481: DeepAR's
share in the larger clusters) and ships with the median's weights, XGBoost's p90; its p10 passed
(0.9187 against 0.9190), and so did every tail of Store Item and Walmart (p90 1.514 against 1.517,
562 against 655). Left out of sample, each backtest window scored with everything fitted on the
other two (``--only tail_weights``), the check changed one fold of nine, for the better (Store Item,
January 2017: 1.7449 -> 1.7445). A fold leaves the check two windows: in Online Retail's October
fold the tails fitted on August passed September, then lost October (2.5644 against 2.561). The
blended quantiles are sorted per row should different weights ever cross them. Averaging bounds of
*independent* predictive distributions this way gives a combined distribution whose intervals are
the weighted mean width, which can still be mis-calibrated. So the interval is then
scaled about the median, separately below and above, by factors fitted on the backtest so that
P(y < p10) ≈ 0.10 and P(y > p90) ≈ 0.10; the p10-p90 coverage on the backtest is reported.
The factors are fitted on the **newest** backtest window only: its members were trained on the most
history, the nearest to the models that ship, while the earliest window's were trained on the least
and are the most over-confident (Walmart's earliest cutoff keeps 53 weeks: its unscaled coverage was
0.34 against 0.71 and 0.76 in the later windows). Checked out of sample on the builds' own backtests
(factors fitted on the older windows, coverage on the newest; never an evaluation window): pooling
every window gave 0.895 on Walmart, 0.774 on Online Retail and 0.808 on Store Item Demand; the newest
older window alone gave 0.836, 0.792 and 0.802 (``benchmarks/dev_windows.py --only calibration``).
A scale ships only if it pays out of sample one window back (``choose_interval_scale``): fitted on
the second-newest window, it must lower the newest window's pinball loss against no scale. On each
set's newest backtest window, with everything fitted on the older windows, that rule gave the lowest
or next-to-lowest pinball loss of the three scale rules (Store Item 2.0425, Online Retail 2.622,
Walmart 613.6; always scaling for coverage: 2.046, 2.806, 618.0; scaling for pinball loss: 2.046,
2.769, 603.9; session 12's builds),
and on Online Retail it left XGBoost's own intervals (coverage 0.93) alone where a fitted scale
shrank them to 0.80 and lost pinball loss (``benchmarks/dev_windows.py --only ensemble``).
"""

from __future__ import annotations

import itertools
import json
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np
import pandas as pd

from models.base import BaseForecaster, Forecaster, clean_quantiles, load_model, read_manifest
from models.metrics import qcol, wape

KEY = ["store_id", "sku", "target_date"]
SERIES = ["store_id", "sku"]
POOLED = "pooled"
SHORT = "short"
TURNING = "turning"
YEAR = pd.Timedelta(days=364)  # 52 weeks: the same weekday, a year before, for daily and weekly data
NO_LAG = pd.Timedelta(0)
TURN_RATIO = 3.0  # last year's horizon against the recent level, either way, for a series to be turning
# ... and against the level a year before the cutoff, the same way (turning_rows' seasonal; labs turn it off)
SEASONAL_TURNS = True


# --- clusters ---------------------------------------------------------------------------------
def series_profile(history: pd.DataFrame, level_window: int) -> pd.DataFrame:
    """Per series: mean level and zero share over its last ``level_window`` periods, and its length.

    Everything counts the tenant's periods, not the series' rows: a sparse export has no row for a
    day without sales. The length runs from the series' first sale, and an old slow mover with 30
    selling days in a year is not a new product (counting rows sent 266 of Online Retail's 1,768
    series, all older than five months, to the short cluster at its newest backtest cutoff; counting
    periods, none: ``benchmarks/dev_windows.py --only ensemble``). The level and the zero share are
    taken over the tenant's last ``level_window`` periods (fewer for a younger series): over the
    series' last rows, a sparse export's Christmas product had December's level in August and no
    product of it was ever intermittent.
    """
    dates = np.sort(history["date"].unique())
    first = history.groupby(SERIES)["date"].min()
    length = len(dates) - np.searchsorted(dates, first.to_numpy(dtype="datetime64[ns]"), side="left")
    if len(dates) == 0:
        return pd.DataFrame({"level": [], "zero_share": [], "length": []}, index=first.index)
    recent = history[history["date"] >= dates[max(0, len(dates) - level_window)]]
    total = recent.groupby(SERIES)["units"].sum().reindex(first.index, fill_value=0.0)
    selling = recent[recent["units"] != 0].groupby(SERIES).size().reindex(first.index, fill_value=0)
    periods = np.maximum(np.minimum(level_window, length), 1)
    return pd.DataFrame(
        {
            "level": total.to_numpy(dtype=float) / periods,
            "zero_share": 1.0 - selling.to_numpy(dtype=float) / periods,
            "length": length,
        },
        index=first.index,
    )


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


def young_rows(frame: pd.DataFrame, history: pd.DataFrame, short_history: int) -> np.ndarray:
    """Backtest rows whose series had fewer than ``short_history`` periods at the row's window cutoff.

    Length counts the tenant's periods from the series' first sale to the cutoff.
    """
    if short_history <= 0 or frame.empty:
        return np.zeros(len(frame), dtype=bool)
    dates = np.sort(history["date"].unique())
    first = history.groupby(SERIES)["date"].min()
    start = first.reindex(pd.MultiIndex.from_frame(frame[SERIES])).to_numpy(dtype="datetime64[ns]")
    cutoff = pd.to_datetime(frame["window"]).to_numpy(dtype="datetime64[ns]")
    length = np.searchsorted(dates, cutoff, side="right") - np.searchsorted(dates, start, side="left")
    return np.where(np.isnat(start), True, length < short_history)


def turning_rows(
    frame: pd.DataFrame, history: pd.DataFrame, level_window: int, *, seasonal: bool = True
) -> np.ndarray:
    """Rows of series whose same dates a year before their window sold ``TURN_RATIO`` times more (or
    less) than their recent level: a season arriving or leaving within the horizon.

    ``seasonal``: the turn must also be last year's, in the same direction: those dates sold
    ``TURN_RATIO`` times more (or less) than the series' level over the ``level_window`` periods a
    year before the cutoff. Otherwise the turn is in the series, not in the calendar: a product
    delisted four months ago, silent now and selling all last year, was turning at every cutoff and
    blended half of ARIMA's and AutoETS's p90 of 4 units a day into its forecast (the members that
    knew it was gone forecast 0), and a product that grew fivefold was turning with no season at
    all. A series without that year-ago level (younger than a year and half the window) is judged on
    the first ratio alone, as before. ``seasonal=False`` is the first rule, which versions
    registered before this one keep.

    Per (series, window): the level is the mean of the series' last ``level_window`` periods up to
    the window's cutoff (``frame['window']``), and last year is the mean over the window's target
    dates a year back, read only up to the cutoff (no actuals leak in) and only when it covers half
    of them; a date inside the series' span with no row sold nothing (sparse exports). Both are taken
    at zero or above and smoothed by one unit, so a product selling nothing now and a few last year
    is not turning. Weights fitted where no season turned do not speak for such a series: the
    hunt's Christmas product, silent from January to November, took AutoETS's flat zero in December
    because the low-volume cluster's backtest windows (August to November) preferred it.
    """
    if frame.empty:
        return np.zeros(0, dtype=bool)
    cutoff = pd.to_datetime(frame["window"]).to_numpy(dtype="datetime64[ns]")
    back = (pd.to_datetime(frame["target_date"]) - YEAR).to_numpy(dtype="datetime64[ns]")
    rows = pd.DataFrame({"store_id": frame["store_id"].to_numpy(), "sku": frame["sku"].to_numpy()})
    rows["cutoff"], rows["back"] = cutoff, back
    sold = history[[*SERIES, "date", "units"]].rename(columns={"date": "back"})
    rows = rows.merge(sold, on=[*SERIES, "back"], how="left")
    first = history.groupby(SERIES)["date"].min().rename("first").reset_index()
    rows = rows.merge(first, on=SERIES, how="left")
    readable = (rows["back"] <= rows["cutoff"]) & (rows["back"] >= rows["first"])
    rows["units"] = rows["units"].fillna(0.0).where(readable)
    groups = rows.groupby([*SERIES, "cutoff"], sort=False)
    year = groups["units"].agg(["mean", "count", "size"]).reset_index()
    level = _level_before(year, history, level_window)
    last = (year["mean"].clip(lower=0) + 1).to_numpy()
    ratio = last / (np.clip(level, 0, None) + 1)
    covered = (year["count"] * 2 >= year["size"]).to_numpy() & ~np.isnan(level)
    up, down = ratio > TURN_RATIO, ratio < 1 / TURN_RATIO
    if seasonal:  # the level a year back, where the series had sold for half the window by then
        ago = _level_before(year, history, level_window, YEAR, (level_window + 1) // 2)
        then = last / (np.clip(ago, 0, None) + 1)
        known = ~np.isnan(then)
        up &= ~known | (then > TURN_RATIO)
        down &= ~known | (then < 1 / TURN_RATIO)
    year["turning"] = covered & (up | down)
    keyed = year.set_index([*SERIES, "cutoff"])["turning"]
    at = pd.MultiIndex.from_arrays([frame["store_id"].to_numpy(), frame["sku"].to_numpy(), cutoff])
    return keyed.reindex(at).fillna(False).to_numpy(dtype=bool)


def _level_before(
    keys: pd.DataFrame,
    history: pd.DataFrame,
    level_window: int,
    back: pd.Timedelta = NO_LAG,
    min_length: int = 0,
) -> np.ndarray:
    """Per (series, cutoff) row of ``keys``: the series' level (``series_profile``) over the
    ``level_window`` periods that ended ``back`` before the cutoff; NaN where it had no row by then,
    or had sold for fewer than ``min_length`` periods."""
    out = np.full(len(keys), np.nan)
    for when, rows in keys.assign(when=keys["cutoff"] - back).groupby("when")[SERIES]:
        profile = series_profile(history[history["date"] <= when], level_window)
        level = profile["level"].where(profile["length"] >= min_length)
        out[keys.index.get_indexer(rows.index)] = level.reindex(pd.MultiIndex.from_frame(rows)).to_numpy(
            float
        )
    return out


def horizon_frame(history: pd.DataFrame, horizon: int) -> pd.DataFrame:
    """One row per series and future period after ``history``'s last date (its cutoff)."""
    dates = np.sort(pd.to_datetime(history["date"]).unique())
    last = pd.Timestamp(dates[-1])
    step = pd.Timedelta(np.diff(dates).min()) if len(dates) > 1 else pd.Timedelta(days=1)
    targets = last + step * np.arange(1, horizon + 1)
    keys = history[SERIES].drop_duplicates()
    out = keys.loc[keys.index.repeat(horizon)].reset_index(drop=True)
    out["target_date"] = np.tile(targets, len(keys))
    out["window"] = last
    return out


# --- weight search ------------------------------------------------------------------------------
GRID_STEP = 0.1  # the simplex grid's spacing
# A blend must lose to the cluster's best single member in no backtest window (best_weights).
WINDOW_GUARD = True


def candidate_weights(preds: np.ndarray, actual: np.ndarray, step: float | None = None) -> np.ndarray:
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
    ticks = round(1 / (step or GRID_STEP))
    if k <= 5:
        grid = [c for c in itertools.product(range(ticks + 1), repeat=k - 1) if sum(c) <= ticks]
        rows.append(np.array([[*c, ticks - sum(c)] for c in grid], dtype=float) / ticks)
    return np.vstack(rows)


def best_weights(
    preds: np.ndarray, actual: np.ndarray, q: float = 0.5, windows: np.ndarray | None = None
) -> np.ndarray:
    """The candidate with the lowest pinball loss at ``q`` of the blend (ties: the earliest candidate).

    At the median that is the lowest WAPE of the blended p50. With ``windows`` (each row's backtest
    window) a blend must also lose to the best single member in no window (see ``WINDOW_GUARD``).
    """
    candidates = candidate_weights(preds, actual)
    diff = actual[:, None] - preds @ candidates.T
    loss = np.maximum(q * diff, (q - 1) * diff)
    errors = loss.sum(axis=0)
    if windows is None or not WINDOW_GUARD:
        return candidates[int(np.argmin(errors))]
    k = preds.shape[1]
    leader = int(np.argmin(errors[:k]))  # the first k candidates are the single members
    per_window = np.vstack([loss[windows == w].sum(axis=0) for w in np.unique(windows)])
    tolerance = 1e-9 * np.maximum(per_window[:, [leader]], 1.0)
    steady = (per_window <= per_window[:, [leader]] + tolerance).all(axis=0)
    return candidates[int(np.argmin(np.where(steady, errors, np.inf)))]


def _quantile_matrix(
    backtests: Mapping[str, pd.DataFrame], quantiles: Sequence[float] = (0.5,)
) -> tuple[pd.DataFrame, list[str]]:
    """Backtest rows with each member's forecast of each quantile in column ``'<member>|<q>'``."""
    names = sorted(backtests)
    key = [*KEY, "window"]
    merged = backtests[names[0]][[*key, "actual"]]
    for n in names:
        cols = {qcol(q): f"{n}|{q}" for q in quantiles}
        merged = merged.merge(backtests[n][[*key, *cols]].rename(columns=cols), on=key)
    return merged, names


def fit_weights(
    backtests: Mapping[str, pd.DataFrame], quantiles: Sequence[float] = (0.5,)
) -> dict[str, float]:
    """One set of weights for all series (the pooled fit)."""
    merged, names = _quantile_matrix(backtests)
    preds = merged[[f"{n}|0.5" for n in names]].to_numpy(dtype=float)
    w = best_weights(preds, merged["actual"].to_numpy(dtype=float))
    return {n: float(round(x, 4)) for n, x in zip(names, w, strict=True)}


# --- the weighting scheme -----------------------------------------------------------------------
class Weighting:
    """Per-cluster weights plus the rule that assigns a series to a cluster.

    ``clusters`` weigh the members' medians (and means); ``tails`` optionally hold separate
    per-cluster weights for the other quantiles, keyed by quantile level.
    """

    def __init__(  # noqa: PLR0917 (saved state is read back positionally)
        self,
        members: Sequence[str],
        clusters: Mapping[str, Mapping[str, float]],
        cuts: Sequence[float],
        level_window: int,
        short_history: int,
        tails: Mapping[float, Mapping[str, Mapping[str, float]]] | None = None,
        *,
        short_learned: bool = False,
        turning: bool = False,
        turn_learned: bool = False,
        seasonal_turns: bool = False,
    ) -> None:
        self.members = list(members)
        self.short_learned = short_learned  # the short cluster's weights came from young backtest rows
        self.turning = turning  # series whose season turns within the horizon have their own weights
        self.turn_learned = turn_learned  # ... learnt from backtest rows that turned, else equal
        self.seasonal_turns = seasonal_turns  # ... and turned last year too (turning_rows' seasonal)
        self.clusters = {c: dict(w) for c, w in clusters.items()}
        self.tails = {float(q): {c: dict(w) for c, w in cl.items()} for q, cl in (tails or {}).items()}
        self.cuts = [float(c) for c in cuts]
        self.level_window = level_window
        self.short_history = short_history
        # per tail quantile, its own weights against the median's one window back (``drop_tails``)
        self.tail_check: dict[str, dict[str, Any]] = {}
        equal = {m: 1 / len(self.members) for m in self.members}
        for table in (self.clusters, *self.tails.values()):
            table.setdefault(SHORT, dict(equal))
            if turning:
                table.setdefault(TURNING, dict(equal))
            table.setdefault(POOLED, dict(self.clusters.get(POOLED, equal)))

    def table(self, q: float = 0.5) -> dict[str, dict[str, float]]:
        """Cluster -> member weights for quantile ``q`` (the median's when it has none of its own)."""
        return self.tails.get(float(q), self.clusters)

    @classmethod
    def fit(
        cls,
        backtests: Mapping[str, pd.DataFrame],
        history: pd.DataFrame,
        level_window: int,
        short_history: int,
        *,
        min_series: int = 12,
        quantiles: Sequence[float] = (0.5,),
    ) -> Weighting:
        """Weights per cluster for the median and, when ``quantiles`` name them, for each other quantile.

        Each quantile's weights minimise that quantile's pinball loss on the backtest, so the blended
        p10 (say) leans on the member whose p10 was best there, which need not be the member with the
        best median; the clusters are the same for every quantile.
        """
        levels_of = sorted({0.5, *(float(q) for q in quantiles)})
        merged, names = _quantile_matrix(backtests, levels_of)
        earliest = pd.to_datetime(merged["window"]).min()
        profile = series_profile(history[history["date"] <= earliest], level_window)
        levels = profile["level"].to_numpy()
        cuts = list(np.quantile(levels, [1 / 3, 2 / 3])) if len(levels) >= 3 * min_series else []
        labels = assign_clusters(profile, cuts, 0, [f"v{v}-{k}" for v in range(3) for k in "is"])
        sizes = labels.value_counts()
        big = [c for c in sizes.index if sizes[c] >= min_series]
        labels[~labels.isin(big)] = POOLED
        rows = labels.reindex(pd.MultiIndex.from_frame(merged[SERIES])).fillna(POOLED).to_numpy()
        young = young_rows(merged, history, short_history)
        learn_short = merged.loc[young, SERIES].drop_duplicates().shape[0] >= min_series
        if learn_short:
            rows[young] = SHORT
        turn = turning_rows(merged, history, level_window, seasonal=SEASONAL_TURNS) & ~young
        learn_turn = merged.loc[turn, SERIES].drop_duplicates().shape[0] >= min_series
        if learn_turn:
            rows[turn] = TURNING
        actual = merged["actual"].to_numpy(dtype=float)
        windows = pd.to_datetime(merged["window"]).to_numpy(dtype="datetime64[ns]")

        def learn(q: float) -> dict[str, dict[str, float]]:
            preds = merged[[f"{n}|{q}" for n in names]].to_numpy(dtype=float)

            def weights(mask: np.ndarray) -> dict[str, float]:
                found = best_weights(preds[mask], actual[mask], q, windows[mask])
                return dict(zip(names, map(float, found), strict=True))

            out = {label: weights(rows == label) for label in sorted(set(rows))}
            if POOLED not in out:  # new series at prediction time land here: weights of all series
                out[POOLED] = weights(rows != SHORT if (rows != SHORT).any() else rows == SHORT)
            return out

        tails = {q: learn(q) for q in levels_of if q != 0.5}
        return cls(
            names,
            learn(0.5),
            cuts,
            level_window,
            short_history,
            tails,
            short_learned=bool(learn_short),
            turning=True,
            turn_learned=bool(learn_turn),
            seasonal_turns=SEASONAL_TURNS,
        )

    def drop_tails(self, check: Mapping[float, Mapping[str, Any]]) -> None:
        """Quantiles whose own weights did not pay one window back take the median's
        (``models.evaluation.check_tails``); the check's figures are kept for the model card."""
        for q, figures in check.items():
            if not figures["kept"]:
                self.tails.pop(float(q), None)
        self.tail_check = {qcol(q): dict(figures) for q, figures in check.items()}

    def backtest_rows(
        self, frame: pd.DataFrame, history: pd.DataFrame, quantiles: Sequence[float]
    ) -> dict[str, np.ndarray]:
        """Per-column weights of backtest rows, assigned as ``fit`` assigned them.

        Clusters from each series' history at the earliest cutoff; rows of series that were young
        (or turning) at their own window's cutoff take the short (turning) cluster's weights when it
        learnt its own.
        """
        earliest = pd.to_datetime(frame["window"]).min()
        labels = self._row_labels(frame, history[history["date"] <= earliest], judge_length=False)
        if self.short_learned:
            labels[young_rows(frame, history, self.short_history)] = SHORT
        if self.turn_learned:
            self._mark_turning(labels, frame, history)
        return self.by_column(labels, quantiles)

    def labels(self, history: pd.DataFrame, judge_length: bool = True, horizon: int = 0) -> pd.Series:
        """Cluster per series of ``history``, judged on its latest ``level_window`` periods.

        ``judge_length=False`` skips the short-history rule: backtest rows are weighted as fitted.
        With a ``horizon``, a series whose season turns within it (``turning_rows``) is turning.
        """
        profile = series_profile(history, self.level_window)
        known = [c for c in self.clusters if c not in (POOLED, SHORT, TURNING)]
        labels = assign_clusters(profile, self.cuts, self.short_history if judge_length else 0, known)
        if self.turning and horizon > 0 and not history.empty:
            ahead = horizon_frame(history, horizon)  # every target date: last year is their mean
            turned = turning_rows(ahead, history, self.level_window, seasonal=self.seasonal_turns)
            turn = ahead.loc[turned, SERIES].drop_duplicates()
            at = labels.index.isin(pd.MultiIndex.from_frame(turn)) & (labels != SHORT).to_numpy()
            labels[at] = TURNING
        return labels

    def series_weights(
        self, history: pd.DataFrame, judge_length: bool = True, q: float = 0.5
    ) -> pd.DataFrame:
        """(series x member) weight table for the series in ``history``, for quantile ``q``."""
        labels = self.labels(history, judge_length)
        table = pd.DataFrame(self._lookup(labels.to_numpy(), q), index=labels.index, columns=self.members)
        return table.assign(cluster=labels.to_numpy())

    def column_rows(
        self,
        frame: pd.DataFrame,
        history: pd.DataFrame,
        quantiles: Sequence[float],
        judge_length: bool = True,
    ) -> dict[str, np.ndarray]:
        """Per output column (mean, p10, p50, ...) the (row x member) weights blend_rows takes.

        Rows whose series turn at their window's cutoff take the turning cluster's weights, as the
        series would at prediction.
        """
        labels = self._row_labels(frame, history, judge_length)
        if self.turning:
            self._mark_turning(labels, frame, history)
        return self.by_column(labels, quantiles)

    def _mark_turning(self, labels: np.ndarray, frame: pd.DataFrame, history: pd.DataFrame) -> None:
        """Rows of ``frame`` that turn at their window's cutoff take the turning cluster (short rows
        stay short: a series without a year has no season to turn)."""
        turned = turning_rows(frame, history, self.level_window, seasonal=self.seasonal_turns)
        labels[turned & (labels != SHORT)] = TURNING

    def _row_labels(self, frame: pd.DataFrame, history: pd.DataFrame, judge_length: bool) -> np.ndarray:
        # A series absent from ``history`` (in a backtest: it started after the earliest cutoff the
        # clusters are judged at) gets the pooled weights, as a new series does at prediction time;
        # left unweighted, its rows would blend to NaN and poison the backtest's totals.
        labels = self.labels(history, judge_length)
        keyed = labels.reindex(pd.MultiIndex.from_frame(frame[SERIES]))
        return keyed.fillna(POOLED).to_numpy(dtype=object)

    def _lookup(self, labels: np.ndarray, q: float) -> np.ndarray:
        """(row x member) weights of quantile ``q`` for rows in clusters ``labels``."""
        table = pd.DataFrame(self.table(q)).T.reindex(columns=self.members).fillna(0.0)
        return table.reindex(labels).to_numpy(dtype=float)

    def by_column(self, labels: np.ndarray, quantiles: Sequence[float]) -> dict[str, np.ndarray]:
        """Per output column (mean, p10, p50, ...) the (row x member) weights of rows in ``labels``."""
        median = self._lookup(labels, 0.5)
        out = {"mean": median}
        for q in quantiles:
            out[qcol(q)] = self._lookup(labels, q) if float(q) in self.tails else median
        return out

    def summary(self) -> dict[str, Any]:
        def rounded(table: Mapping[str, Mapping[str, float]]) -> dict[str, dict[str, float]]:
            return {c: {m: round(w, 4) for m, w in ws.items()} for c, ws in table.items()}

        return {
            "clusters": rounded(self.clusters),
            "tails": {qcol(q): rounded(t) for q, t in self.tails.items()},
            "volume_cuts": [round(c, 4) for c in self.cuts],
            "level_window": self.level_window,
            "short_history": self.short_history,
            "short_learned": self.short_learned,
            "turning": self.turning,
            "turn_learned": self.turn_learned,
            "seasonal_turns": self.seasonal_turns,
            "tail_check": self.tail_check,
        }

    def to_json(self) -> dict[str, Any]:
        return {
            "short_learned": self.short_learned,
            "turning": self.turning,
            "turn_learned": self.turn_learned,
            "seasonal_turns": self.seasonal_turns,
            "members": self.members,
            "clusters": self.clusters,
            "tails": {str(q): t for q, t in self.tails.items()},
            "cuts": self.cuts,
            "level_window": self.level_window,
            "short_history": self.short_history,
            "tail_check": self.tail_check,
        }

    @classmethod
    def from_json(cls, state: Mapping[str, Any]) -> Weighting:
        tails = {float(q): t for q, t in state.get("tails", {}).items()}
        weighting = cls(
            state["members"],
            state["clusters"],
            state["cuts"],
            state["level_window"],
            state["short_history"],
            tails,
            short_learned=bool(state.get("short_learned", False)),
            # Versions registered before the rule forecast as they were approved.
            turning=bool(state.get("turning", False)),
            turn_learned=bool(state.get("turn_learned", False)),
            seasonal_turns=bool(state.get("seasonal_turns", False)),
        )
        weighting.tail_check = dict(state.get("tail_check") or {})
        return weighting

    def average(self) -> dict[str, float]:
        """Mean median weight per member over the learnt clusters (for reports)."""
        learnt = [w for c, w in self.clusters.items() if c != SHORT and (c != TURNING or self.turn_learned)]
        learnt = learnt or list(self.clusters.values())
        return {m: round(float(np.mean([w.get(m, 0.0) for w in learnt])), 4) for m in self.members}


def blend_rows(
    frames: Mapping[str, pd.DataFrame],
    weights: np.ndarray | Mapping[str, np.ndarray],
    members: Sequence[str],
    quantiles: Sequence[float],
    base: pd.DataFrame,
) -> pd.DataFrame:
    """Blend member forecasts aligned to ``base``'s keys with per-row weights (rows sum to one).

    ``weights`` is one (row x member) array for every column, or one per column
    (``Weighting.column_rows``).
    """
    cols = ["mean", *(qcol(q) for q in quantiles)]
    per_col = weights if isinstance(weights, Mapping) else dict.fromkeys(cols, weights)
    index = pd.MultiIndex.from_frame(base[[c for c in base.columns if c in (*KEY, "window")]])
    out = base.drop(columns=[c for c in base.columns if c in cols]).copy()
    acc = {c: np.zeros(len(base)) for c in cols}
    for j, name in enumerate(members):
        if not any((per_col[c][:, j] > 0).any() for c in cols):
            continue
        aligned = frames[name].set_index(index.names).reindex(index)
        for c in cols:
            w = per_col[c]
            total = w.sum(axis=1)
            share = w[:, j] / np.where(total > 0, total, 1.0)
            acc[c] += share * np.nan_to_num(aligned[c].to_numpy(dtype=float))
    for c in cols:
        out[c] = acc[c]
    # One weight vector for every quantile keeps them ordered; per-quantile weights may cross them.
    ordered = [qcol(q) for q in sorted(quantiles)]
    out[ordered] = np.sort(out[ordered].to_numpy(dtype=float), axis=1)
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
def fit_interval_scale(
    blended: pd.DataFrame, quantiles: Sequence[float], objective: str = "coverage"
) -> dict[str, float]:
    """Factors on (p50 - lower) and (upper - p50) fitted on a backtest.

    ``coverage``: each tail holds its nominal share of the rows. ``pinball``: each bound's pinball
    loss is lowest, which weighs rows by their size (big series count more). The evaluate step
    passes the newest backtest window only (see the module docstring).
    """
    lo, hi = min(quantiles), max(quantiles)
    actual = blended["actual"].to_numpy(dtype=float)
    mid = blended[qcol(0.5)].to_numpy(dtype=float)
    down = mid - blended[qcol(lo)].to_numpy(dtype=float)
    up = blended[qcol(hi)].to_numpy(dtype=float) - mid
    grid = np.linspace(0.3, 3.0, 271)
    if objective == "pinball":
        lower = [_pinball_sum(actual, mid - s * down, lo) for s in grid]
        upper = [_pinball_sum(actual, mid + s * up, hi) for s in grid]
        return {"lower": float(grid[int(np.argmin(lower))]), "upper": float(grid[int(np.argmin(upper))])}
    below = np.array([np.mean(actual < mid - s * down) for s in grid])
    above = np.array([np.mean(actual > mid + s * up) for s in grid])
    return {
        "lower": float(grid[int(np.argmin(np.abs(below - lo)))]),
        "upper": float(grid[int(np.argmin(np.abs(above - (1 - hi))))]),
    }


def choose_interval_scale(
    blended: pd.DataFrame, quantiles: Sequence[float], objective: str = "coverage"
) -> tuple[dict[str, float], dict[str, Any]]:
    """The interval scale fitted on the newest backtest window, kept only if scaling pays out of sample.

    The check repeats the fit one window back: factors fitted on the second-newest window, applied
    to the newest, must lower the newest window's mean pinball loss of the bounds against leaving the
    members' intervals as they are. Where it does not (Online Retail: the window-to-window swing of
    its pre-Christmas demand made every fitted scale worse on the next window than none), the
    members' own intervals ship unscaled. Returns the factors and the check's figures.
    """
    windows = sorted(pd.to_datetime(blended["window"]).unique())
    newest = blended[pd.to_datetime(blended["window"]) == windows[-1]]
    scale = fit_interval_scale(newest, quantiles, objective)
    if len(windows) < 2:
        return scale, {"checked": False}
    previous = blended[pd.to_datetime(blended["window"]) == windows[-2]]
    trial = fit_interval_scale(previous, quantiles, objective)
    raw = _bounds_pinball(newest, quantiles)
    scaled = _bounds_pinball(apply_interval_scale(newest.copy(), quantiles, trial), quantiles)
    check = {"checked": True, "trial_scale": trial, "pinball_unscaled": raw, "pinball_scaled": scaled}
    if scaled > raw:
        return {"lower": 1.0, "upper": 1.0}, {**check, "kept": False}
    return scale, {**check, "kept": True}


def _bounds_pinball(frame: pd.DataFrame, quantiles: Sequence[float]) -> float:
    actual = frame["actual"].to_numpy(dtype=float)
    bounds = [q for q in quantiles if q != 0.5]
    total = sum(_pinball_sum(actual, frame[qcol(q)].to_numpy(dtype=float), q) for q in bounds)
    return round(total / max(len(actual) * len(bounds), 1), 6)


def _pinball_sum(actual: np.ndarray, bound: np.ndarray, q: float) -> float:
    diff = actual - bound
    return float(np.maximum(q * diff, (q - 1) * diff).sum())


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
    """A saved blend: member model directories, the weighting and the interval scale.

    A member may be given as the directory its training step saved: it is copied as it is when the
    ensemble is saved, and loaded only if this object has to predict. The evaluate step packages
    members that way; loading DeepAR (torch, lightning, gluonts) only to write it out again cost
    ten of the step's sixteen seconds on Store Item Demand.
    """

    name: ClassVar[str] = "ensemble"

    def __init__(
        self,
        members: Mapping[str, Forecaster | Path] | None = None,
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
        for name in self.members:
            self.member(name).fit(history, freq)
        return self

    def member(self, name: str) -> Forecaster:
        """The member model, loaded from its directory the first time it is needed."""
        model = self.members[name]
        if isinstance(model, Path):
            model = self.members[name] = load_model(model)
        return model

    def predict(self, history: pd.DataFrame, horizon: int, quantiles: Sequence[float]) -> pd.DataFrame:
        if self.weighting is None:
            raise ValueError("the ensemble has no weights: fit it through models.evaluation.evaluate")
        # Clusters are judged once per series; only members some series leans on (in some quantile)
        # are run.
        members = self.weighting.members
        labels = self.weighting.labels(history, horizon=horizon)
        per_series = self.weighting.by_column(labels.to_numpy(dtype=object), quantiles)
        used = [m for j, m in enumerate(members) if any((a[:, j] > 0).any() for a in per_series.values())]
        preds = {n: self.member(n).predict(history, horizon, quantiles) for n in used}
        base = preds[used[0]][["store_id", "sku", "target_date", "horizon_day"]]
        at = labels.index.get_indexer(pd.MultiIndex.from_frame(base[SERIES]))
        keep = [members.index(m) for m in used]
        w = {c: a[at][:, keep] for c, a in per_series.items()}
        out = blend_rows(preds, w, used, quantiles, base)
        out = apply_interval_scale(out, quantiles, self.interval_scale)
        out = out[["store_id", "sku", "target_date", "horizon_day", "mean", *(qcol(q) for q in quantiles)]]
        return clean_quantiles(out.reset_index(drop=True), quantiles, history)

    def _save_state(self, path: Path) -> None:
        for name, model in self.members.items():
            if isinstance(model, Path):
                read_manifest(model)  # refuse to package a directory that holds no model of ours
                shutil.copytree(model, path / "members" / name, symlinks=False)
            else:
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
