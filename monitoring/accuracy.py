"""Realised accuracy: the forecasts that covered newly arrived days, scored against those actuals.

Metrics are the platform's (models/metrics.py): WAPE and bias of the median, pinball loss averaged
over the quantiles, p10-p90 coverage; one row per level (tenant total, store, series). Beside the
rows, each check keeps per-day sums (absolute error, actuals, points). Sums add across checks, so
the policy can compute a trailing WAPE for every day, however the actuals arrived: one day per
check, or a fortnight at once.

Pure: frames in, rows and sums out.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np
import pandas as pd

from inference.store.monitoring import ALL, AccuracyRow, Level
from models.metrics import qcol

_QUALITY_METRICS = ("MAE", "RMSE", "MeanError", "R2Score", "AbsMaxError")
FORECAST_FRAME_COLUMNS = ("store_id", "sku", "target_date", "horizon_day", "p10", "p50", "p90", "mean")


@dataclass(frozen=True)
class Scored:
    """Forecast rows joined to their actuals (column ``actual``), from one forecast set."""

    frame: pd.DataFrame
    forecast_set_id: str
    model_version: int

    @property
    def empty(self) -> bool:
        return self.frame.empty


def score(forecasts: pd.DataFrame, actuals: pd.DataFrame, forecast_set_id: str, model_version: int) -> Scored:
    """Join forecasts (``FORECAST_FRAME_COLUMNS``) to actuals (store_id, sku, date, units).

    Actuals come from a dense panel, so a day without a sale counts as 0, not as missing.
    """
    truth = actuals.rename(columns={"date": "target_date", "units": "actual"})[
        ["store_id", "sku", "target_date", "actual"]
    ]
    forecasts = forecasts.assign(target_date=pd.to_datetime(forecasts["target_date"]))
    frame = forecasts.merge(truth, on=["store_id", "sku", "target_date"], how="inner")
    return Scored(
        frame.sort_values(["store_id", "sku", "target_date"], ignore_index=True),
        forecast_set_id,
        model_version,
    )


def accuracy_rows(scored: Scored, quantiles: Sequence[float]) -> list[AccuracyRow]:
    """Rows for the total, each store and each series, over the scored days.

    The metrics are models/metrics.py's (WAPE and bias of the median, pinball averaged over the
    quantiles, lowest-to-highest quantile coverage), computed as sums per group in one pass, so
    twenty thousand series take a groupby, not twenty thousand function calls.
    """
    frame = scored.frame
    if frame.empty:
        return []
    parts = _row_terms(frame, quantiles)
    out = _rows(scored, parts.assign(_all=ALL), ["_all"], "total")
    out += _rows(scored, parts, ["store_id"], "store")
    out += _rows(scored, parts, ["store_id", "sku"], "sku")
    return out


def _row_terms(frame: pd.DataFrame, quantiles: Sequence[float]) -> pd.DataFrame:
    """Per forecast row, the terms the metrics sum or average."""
    actual = frame["actual"].to_numpy(dtype=float)
    qs = [q for q in quantiles if qcol(q) in frame.columns]
    losses = [
        np.maximum(q * (actual - frame[qcol(q)].to_numpy(dtype=float)),
                   (q - 1) * (actual - frame[qcol(q)].to_numpy(dtype=float)))
        for q in qs
    ]  # fmt: skip
    lo, hi = frame[qcol(min(qs))].to_numpy(dtype=float), frame[qcol(max(qs))].to_numpy(dtype=float)
    point = frame["p50"].to_numpy(dtype=float)
    return pd.DataFrame(
        {
            "store_id": frame["store_id"],
            "sku": frame["sku"],
            "day": frame["target_date"],
            "abs_error": np.abs(actual - point),
            "error": point - actual,
            "actual": np.abs(actual),
            "pinball": np.mean(losses, axis=0),
            "covered": ((actual >= lo) & (actual <= hi)).astype(float),
        }
    )


def _rows(scored: Scored, parts: pd.DataFrame, keys: list[str], level: Level) -> list[AccuracyRow]:
    sums = parts.groupby(keys, sort=True).agg(
        abs_error=("abs_error", "sum"),
        error=("error", "sum"),
        actual=("actual", "sum"),
        pinball=("pinball", "mean"),
        coverage=("covered", "mean"),
        n=("covered", "size"),
        start=("day", "min"),
        end=("day", "max"),
    )
    denominator = sums["actual"].where(sums["actual"] > 0)
    wape = (sums["abs_error"] / denominator).to_numpy(dtype=float)
    bias = (sums["error"] / denominator).to_numpy(dtype=float)
    pinball = sums["pinball"].to_numpy(dtype=float)
    coverage = sums["coverage"].to_numpy(dtype=float)
    starts = pd.to_datetime(sums["start"]).dt.date.tolist()
    ends = pd.to_datetime(sums["end"]).dt.date.tolist()
    counts = sums["n"].astype(int).tolist()
    return [
        AccuracyRow(
            level=level,
            store_id=store_id,
            sku=sku,
            forecast_set_id=scored.forecast_set_id,
            model_version=scored.model_version,
            start_date=starts[i],
            end_date=ends[i],
            n=counts[i],
            wape=_finite(wape[i]),
            bias=_finite(bias[i]),
            pinball=_finite(pinball[i]),
            coverage=_finite(coverage[i]),
        )
        for i, (store_id, sku) in enumerate(_keys(sums.index, level))
    ]


def _keys(index: pd.Index, level: Level) -> list[tuple[str, str]]:
    if level == "sku":
        return [(str(store), str(sku)) for store, sku in index]
    if level == "store":
        return [(str(store), ALL) for store in index]
    return [(ALL, ALL)] * len(index)


def summary(
    rows: Sequence[AccuracyRow], scored: Scored | None, quality: dict[str, float | None]
) -> dict[str, Any] | None:
    """The check's headline accuracy (its total row) for the decision and the JSON summary."""
    total = next((r for r in rows if r.level == "total"), None)
    if total is None or scored is None:
        return None
    return {
        "forecast_set_id": scored.forecast_set_id,
        "model_version": scored.model_version,
        "start": total.start_date.isoformat(),
        "end": total.end_date.isoformat(),
        "n": total.n,
        "wape": total.wape,
        "bias": total.bias,
        "pinball": total.pinball,
        "coverage": total.coverage,
        "series": sum(r.level == "sku" for r in rows),
        "evidently": quality,
    }


def daily_sums(scored: Scored) -> dict[str, dict[str, float]]:
    """Per scored day: sum of absolute median errors, sum of actuals, points (JSON-ready)."""
    frame = scored.frame
    if frame.empty:
        return {}
    err = (frame["actual"] - frame["p50"]).abs()
    grouped = pd.DataFrame({"day": frame["target_date"], "abs_error": err, "actual": frame["actual"].abs()})
    sums = grouped.groupby("day").agg(
        abs_error=("abs_error", "sum"), actual=("actual", "sum"), n=("actual", "size")
    )
    return {
        _iso(day): {"abs_error": float(r.abs_error), "actual": float(r.actual), "n": int(r.n)}
        for day, r in sums.iterrows()
    }


def merge_daily(sums: Iterable[Mapping[str, Mapping[str, float]]]) -> dict[str, dict[str, float]]:
    """Per-day sums of several checks, oldest first: a later check's sums for a day replace earlier ones."""
    merged: dict[str, dict[str, float]] = {}
    for one in sums:
        merged.update({day: dict(values) for day, values in one.items()})
    return dict(sorted(merged.items()))


def trailing_wape(daily: Mapping[str, Mapping[str, float]], window_days: int) -> dict[str, float]:
    """For each day with sums: WAPE of the scored days among the ``window_days`` calendar days to it."""
    days = sorted(daily)
    out: dict[str, float] = {}
    for day in days:
        end = date.fromisoformat(day)
        inside = [d for d in days if 0 <= (end - date.fromisoformat(d)).days < window_days]
        actual = sum(daily[d]["actual"] for d in inside)
        if actual > 0:
            out[day] = sum(daily[d]["abs_error"] for d in inside) / actual
    return out


def _iso(value: object) -> str:
    return pd.Timestamp(value).date().isoformat()  # type: ignore[arg-type]


def _finite(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None


def evidently_quality(scored: Scored) -> tuple[dict[str, float | None], Any]:
    """Evidently's regression quality of the median against the actuals (MAE, RMSE, R², ...).

    Returns the headline values and the snapshot (for the HTML report). MAPE is left out of the
    values: it is infinite as soon as one scored day sold nothing, which retail days often do.
    """
    from evidently import DataDefinition, Dataset, Regression, Report
    from evidently.presets import RegressionPreset

    frame = scored.frame[["actual", "p50"]].astype(float)
    definition = DataDefinition(
        numerical_columns=["actual", "p50"], regression=[Regression(target="actual", prediction="p50")]
    )
    with warnings.catch_warnings():  # its dummy-model metrics fit on an empty frame warn about R² each time
        warnings.simplefilter("ignore", category=UserWarning)
        snapshot = Report([RegressionPreset()]).run(
            Dataset.from_pandas(frame, data_definition=definition), None
        )
    values: dict[str, float | None] = {}
    for metric in snapshot.dict()["metrics"]:
        name = metric["config"].get("type", "").rsplit(":", 1)[-1]
        value = metric["value"]
        headline = value.get("mean") if isinstance(value, dict) else value
        if name in _QUALITY_METRICS and isinstance(headline, int | float):
            values[name] = _finite(float(headline))
    return values, snapshot
