"""The Forecaster protocol and the artifact manifest every saved model carries.

A model directory holds ``manifest.json`` (class, library versions, feature spec, training window,
data fingerprint) next to the model's own files. :func:`load_model` reads the manifest first and
refuses a directory whose class is not one of ours, so nothing is ever unpickled blindly.
"""

from __future__ import annotations

import importlib
import json
import platform
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar, Protocol, Self, runtime_checkable

import numpy as np
import pandas as pd

from ordernimbus.errors import OrderNimbusError

MANIFEST = "manifest.json"
FORECAST_COLUMNS = ["store_id", "sku", "target_date", "horizon_day", "mean"]
ALLOWED_CLASSES = {
    "seasonal_naive": "models.naive:SeasonalNaive",
    "arima": "models.statistical:AutoARIMAForecaster",
    "autoets": "models.statistical:AutoETSForecaster",
    "deepar": "models.deepar:DeepARForecaster",
    "xgboost": "models.xgboost:GlobalXGBoost",
    "ensemble": "models.ensemble:Ensemble",
}


class ModelError(OrderNimbusError):
    title = "Model error"


@runtime_checkable
class Forecaster(Protocol):
    """fit on a canonical sales frame; predict quantiles for the periods after a history's end."""

    # read-only: our forecasters set the name once per class (a ClassVar), which a plain ``name: str``
    # member would reject as not being an instance variable
    @property
    def name(self) -> str: ...

    def fit(self, history: pd.DataFrame, freq: str) -> Self: ...

    def predict(self, history: pd.DataFrame, horizon: int, quantiles: Sequence[float]) -> pd.DataFrame:
        """Columns: store_id, sku, target_date, horizon_day, mean and one ``pNN`` per quantile."""
        ...

    def save(self, path: Path) -> None: ...

    @classmethod
    def load(cls, path: Path) -> Self: ...


class BaseForecaster:
    """Shared manifest handling; subclasses implement ``_save_state`` / ``_load_state``."""

    name: ClassVar[str] = "base"
    # Rolling-origin backtests refit a model at every cutoff when refitting is cheap (local models
    # re-estimate coefficients of specs found once, in milliseconds); the global learners (XGBoost,
    # DeepAR) are trained once at the earliest cutoff and predict the later windows from their own
    # histories: leak-free, and it keeps the build inside its time budget. A model may decide per
    # history (XGBoost refits when the earliest cutoff leaves it too little to learn the year from).
    refit_in_backtest: bool = True
    freq: str = "D"
    trained_on: dict[str, Any]

    def __init__(self) -> None:
        self.trained_on = {}

    def _record_training(self, history: pd.DataFrame, freq: str) -> None:
        self.freq = freq
        self.trained_on = {
            "start": str(history["date"].min().date()),
            "end": str(history["date"].max().date()),
            "series": int(history.groupby(["store_id", "sku"]).ngroups),
            "rows": len(history),
        }

    def manifest(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "class": ALLOWED_CLASSES[self.name],
            "freq": self.freq,
            "trained_on": self.trained_on,
            "created_at": datetime.now(UTC).isoformat(),
            "python": platform.python_version(),
            "libraries": _library_versions(),
        }

    def save(self, path: Path) -> None:
        path.mkdir(parents=True, exist_ok=True)
        self._save_state(path)
        (path / MANIFEST).write_text(json.dumps(self.manifest(), indent=2))

    @classmethod
    def load(cls, path: Path) -> Self:
        manifest = read_manifest(path)
        if manifest["class"] != ALLOWED_CLASSES.get(cls.name):
            raise ModelError(f"{path} holds a {manifest['class']} model, not {cls.name}")
        model = cls.__new__(cls)
        BaseForecaster.__init__(model)
        model.freq = manifest["freq"]
        model.trained_on = manifest.get("trained_on", {})
        model._load_state(path)
        return model

    def _save_state(self, path: Path) -> None:
        raise NotImplementedError

    def _load_state(self, path: Path) -> None:
        raise NotImplementedError


def read_manifest(path: Path) -> dict[str, Any]:
    file = path / MANIFEST
    if not file.exists():
        raise ModelError(f"{path} is not a model directory: {MANIFEST} is missing")
    manifest: dict[str, Any] = json.loads(file.read_text())
    if manifest.get("class") not in ALLOWED_CLASSES.values():
        raise ModelError(f"{file}: unknown model class {manifest.get('class')!r}; refusing to load")
    return manifest


def load_model(path: Path) -> Forecaster:
    """Load any of our models from its directory, dispatching on the manifest's class."""
    module_name, _, class_name = read_manifest(path)["class"].partition(":")
    cls = getattr(importlib.import_module(module_name), class_name)
    model: Forecaster = cls.load(path)
    return model


def _library_versions() -> dict[str, str]:
    from importlib import metadata

    out = {}
    for dist in ("pandas", "numpy", "xgboost-cpu", "statsforecast", "gluonts", "torch"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return out


RECORD_MULTIPLE = 3.0  # no forecast leaves this many times a series' largest period on record
TINY = 1e-9  # below this a forecast is zero (AutoETS' multiplicative forms decay to 1e-256)


def clean_quantiles(frame: pd.DataFrame, quantiles: Sequence[float], history: pd.DataFrame) -> pd.DataFrame:
    """Every model's last word on a forecast, decided per series from its own history.

    Quantile columns are sorted per row (no crossing); every value, the mean included, stays within
    ``RECORD_MULTIPLE`` times the largest period the series ever had, in either direction; and a
    series that never sold below zero is never forecast below zero (nor one of returns only above
    it). The mean stays where a distribution with those quantiles, inside those limits, could put it
    (``_mean_range``). Per series, not per tenant: one
    return anywhere used to lift the zero floor off every product, and the floor then depended on
    which series shared a batch. The bound is what XGBoost's scaled trees needed first (p90s of ten
    million beside departments selling ten thousand a week); AutoETS' multiplicative-error forms,
    refitted on a longer history, put 98 of Walmart's 1,604 series past it (intervals of ±4e12).
    """
    from models.metrics import qcol

    units = history["units"].to_numpy(dtype=float)
    stats = (
        pd.DataFrame({"store_id": history["store_id"], "sku": history["sku"], "units": units})
        .assign(size=np.abs(units))
        .groupby(["store_id", "sku"], sort=False)
        .agg(low=("units", "min"), high=("units", "max"), size=("size", "max"))
        .fillna(0.0)
    )
    keys = pd.MultiIndex.from_arrays([frame["store_id"].to_numpy(), frame["sku"].to_numpy()])
    stats = stats.reindex(keys, fill_value=0.0)
    size = RECORD_MULTIPLE * stats["size"].to_numpy()
    floor = np.where(stats["low"].to_numpy() >= 0, 0.0, -size)[:, None]
    bound = np.where(stats["high"].to_numpy() <= 0, 0.0, size)[:, None]
    levels = sorted(float(q) for q in quantiles)
    cols = [qcol(q) for q in levels]
    values = np.sort(frame[cols].to_numpy(dtype=float), axis=1)
    values = np.clip(values, floor, bound)
    low, high = _mean_range(values, levels, floor[:, 0], bound[:, 0])
    mean = np.clip(frame["mean"].to_numpy(dtype=float), low, high)
    values[np.abs(values) < TINY] = 0.0
    mean[np.abs(mean) < TINY] = 0.0
    frame[cols] = values
    frame["mean"] = mean
    return frame


def _mean_range(
    values: np.ndarray, levels: Sequence[float], floor: np.ndarray, ceiling: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The least and greatest mean of any distribution with these quantiles inside [floor, ceiling].

    The quantile function is non-decreasing, so between two forecast levels it sits at or above the
    lower quantile and at or below the upper one, and outside them at the floor or ceiling at worst.
    Members are blended quantile by quantile and their means separately, so a blend's mean could leave
    its own quantiles behind: a product whose medians said 3 a day got a mean of 0 beside a member
    that expected nothing. The mean is kept where the quantiles allow it.
    """
    edges = np.array([0.0, *levels, 1.0])
    widths = np.diff(edges)
    below = widths[:-1]  # the probability under each level down to the previous one: at most its value
    above = widths[1:]  # the probability above each level up to the next one: at least its value
    low = floor * edges[1] + values @ above
    high = values @ below + ceiling * (1.0 - edges[-2])
    return low, high
