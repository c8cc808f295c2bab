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
from models.metrics import bias, coverage, pinball, qcol, wape

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
    """Rows for the total, each store and each series, over the scored days."""
    frame = scored.frame
    if frame.empty:
        return []
    out = [_row(scored, frame, ("total", ALL, ALL), quantiles)]
    for store_id, part in frame.groupby("store_id", sort=True):
        out.append(_row(scored, part, ("store", str(store_id), ALL), quantiles))
    for (store, sku), part in frame.groupby(["store_id", "sku"], sort=True):
        out.append(_row(scored, part, ("sku", str(store), str(sku)), quantiles))
    return out


def _row(
    scored: Scored, part: pd.DataFrame, key: tuple[Level, str, str], quantiles: Sequence[float]
) -> AccuracyRow:
    metrics = _metrics(part, quantiles)
    return AccuracyRow(
        level=key[0],
        store_id=key[1],
        sku=key[2],
        forecast_set_id=scored.forecast_set_id,
        model_version=scored.model_version,
        start_date=pd.Timestamp(part["target_date"].min()).date(),
        end_date=pd.Timestamp(part["target_date"].max()).date(),
        n=len(part),
        wape=metrics["wape"],
        bias=metrics["bias"],
        pinball=metrics["pinball"],
        coverage=metrics["coverage"],
    )


def _metrics(part: pd.DataFrame, quantiles: Sequence[float]) -> dict[str, float | None]:
    actual = part["actual"].to_numpy(dtype=float)
    point = part["p50"].to_numpy(dtype=float)
    qs = [q for q in quantiles if qcol(q) in part.columns]
    lo, hi = qcol(min(qs)), qcol(max(qs))
    return {
        "wape": _finite(wape(actual, point)),
        "bias": _finite(bias(actual, point)),
        "pinball": _finite(
            float(np.mean([pinball(actual, part[qcol(q)].to_numpy(dtype=float), q) for q in qs]))
        ),
        "coverage": _finite(coverage(actual, part[lo].to_numpy(dtype=float), part[hi].to_numpy(dtype=float))),
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
