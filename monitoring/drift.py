"""Data drift between the training window and the latest weeks: Evidently per column, PSI on the target.

Columns compared (those a tenant's data has): the units distribution twice, as raw units (the mix
of series: a new best seller shows here) and as ``units_index``, each series' units over its own
level just before the window (see monitoring/windows.py: a level shift of one department shows
here, while in raw units it hides inside the spread between big and small series);
``unit_price``; ``zero_sale`` (the zero share); ``on_promotion``; the calendar mix
(``day_of_week`` for daily data, ``month``). Evidently picks each column's test by type and
sample size (K-S / chi-square / Z-test up to 1,000 rows, Wasserstein / Jensen-Shannon distance
above) and reports the share of drifted columns.

PSI of the target is computed here on ``units_index`` with ten reference-quantile bins. Under no
drift, n·m/(n+m)·PSI is approximately chi-square with bins-1 degrees of freedom, so a sample of a
few hundred values shows a PSI around 0.1 by chance alone. :attr:`Psi.floor` is that noise level
(99th percentile); the policy counts a PSI only above both its threshold and the floor. With the
thousands of rows of a real tenant the floor is far below 0.1 and the rule is the plain PSI > 0.1.

Pure: frames in, a :class:`DriftResult` (and Evidently's snapshot, for the HTML report) out.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import chi2

from features.frequency import base

NUMERICAL = ("units", "units_index", "unit_price")
CATEGORICAL = ("zero_sale", "on_promotion", "day_of_week", "month")
PSI_BINS = 10
PSI_CONFIDENCE = 0.99
_EPSILON = 1e-4  # share given to an empty bin, so the log stays finite


@dataclass(frozen=True)
class ColumnDrift:
    column: str
    kind: str  # "numerical" | "categorical"
    method: str
    score: float
    threshold: float
    drifted: bool


@dataclass(frozen=True)
class Psi:
    value: float
    floor: float
    bins: int
    n_reference: int
    n_current: int
    column: str

    def exceeds(self, threshold: float) -> bool:
        return self.value > max(threshold, self.floor)


@dataclass(frozen=True)
class DriftResult:
    columns: list[ColumnDrift]
    share: float
    psi: Psi
    n_reference: int
    n_current: int
    skipped: dict[str, str] = field(default_factory=dict)
    snapshot: Any = None  # Evidently's snapshot, for the HTML report; not part of the summary

    @property
    def drifted(self) -> list[str]:
        return [c.column for c in self.columns if c.drifted]

    def as_dict(self) -> dict[str, Any]:
        return {
            "share": round(self.share, 4),
            "drifted": self.drifted,
            "columns": [
                {**vars(c), "score": _round(c.score), "threshold": _round(c.threshold)} for c in self.columns
            ],
            "skipped": self.skipped,
            "psi": {k: _round(v) if isinstance(v, float) else v for k, v in vars(self.psi).items()},
            "n_reference": self.n_reference,
            "n_current": self.n_current,
        }


Levels = tuple[pd.Series, pd.Series]  # (reference, current): mean units per series before each window


def series_level(panel: pd.DataFrame) -> pd.Series:
    """Mean units per series over a (level window's) dense panel; series that sold nothing drop out."""
    level = panel.groupby(["store_id", "sku"])["units"].mean()
    return level[level > 0].rename("_level")


def drift_frames(
    reference: pd.DataFrame, current: pd.DataFrame, freq: str, levels: Levels
) -> tuple[pd.DataFrame, pd.DataFrame, list[str], list[str], dict[str, str]]:
    """The compared columns of both windows (from :func:`monitoring.windows.dense_panel` frames)."""
    frames = [_columns(frame, level, freq) for frame, level in zip((reference, current), levels, strict=True)]
    numerical: list[str] = []
    categorical: list[str] = []
    skipped: dict[str, str] = {}
    for column in (*NUMERICAL, *CATEGORICAL):
        present = [column in f.columns and f[column].notna().any() for f in frames]
        if not all(present):
            where = (
                "either window"
                if not any(present)
                else ("the reference" if not present[0] else "the current")
            )
            skipped[column] = f"no values in {where}"
            continue
        (numerical if column in NUMERICAL else categorical).append(column)
    keep = numerical + categorical
    return frames[0][keep], frames[1][keep], numerical, categorical, skipped


def _columns(panel: pd.DataFrame, level: pd.Series, freq: str) -> pd.DataFrame:
    out = pd.DataFrame(index=panel.index)
    out["units"] = panel["units"].astype(float)
    joined = panel[["store_id", "sku"]].join(level.rename("_level"), on=["store_id", "sku"])["_level"]
    out["units_index"] = (panel["units"] / joined).astype(float)
    if "unit_price" in panel.columns:
        out["unit_price"] = panel["unit_price"].astype(float)
    out["zero_sale"] = np.where(panel["units"] == 0, "yes", "no")
    if "on_promotion" in panel.columns:
        out["on_promotion"] = panel["on_promotion"].map({1.0: "yes", 0.0: "no"})
    dates = pd.DatetimeIndex(panel["date"])
    if base(freq) == "D":
        out["day_of_week"] = dates.day_name().str[:3]
    out["month"] = dates.month.astype(str)
    return out


def population_stability(
    reference: np.ndarray, current: np.ndarray, bins: int = PSI_BINS
) -> tuple[float, int]:
    """PSI over the reference's quantile bins (ties merge bins); returns (psi, bins used)."""
    reference = reference[np.isfinite(reference)]
    current = current[np.isfinite(current)]
    if len(reference) == 0 or len(current) == 0:
        return float("nan"), 0
    edges = np.unique(np.quantile(reference, np.linspace(0, 1, bins + 1)))[1:-1]
    used = len(edges) + 1
    ref_share = np.bincount(np.searchsorted(edges, reference, side="right"), minlength=used) / len(reference)
    cur_share = np.bincount(np.searchsorted(edges, current, side="right"), minlength=used) / len(current)
    ref_share = np.clip(ref_share, _EPSILON, None)
    cur_share = np.clip(cur_share, _EPSILON, None)
    return float(np.sum((cur_share - ref_share) * np.log(cur_share / ref_share))), used


def psi_floor(bins: int, n_reference: int, n_current: int, confidence: float = PSI_CONFIDENCE) -> float:
    """The PSI that sampling noise alone exceeds with probability 1 - confidence."""
    if bins < 2 or n_reference == 0 or n_current == 0:
        return 0.0
    return float(chi2.ppf(confidence, bins - 1) * (1 / n_reference + 1 / n_current))


def target_psi(reference: pd.DataFrame, current: pd.DataFrame) -> Psi:
    """PSI of ``units_index`` (raw ``units`` if no series has a reference level)."""
    column = "units_index" if "units_index" in reference.columns else "units"
    ref = reference[column].to_numpy(dtype=float)
    cur = current[column].to_numpy(dtype=float)
    ref, cur = ref[np.isfinite(ref)], cur[np.isfinite(cur)]
    value, used = population_stability(ref, cur)
    return Psi(value, psi_floor(used, len(ref), len(cur)), used, len(ref), len(cur), column)


def detect_drift(
    reference_panel: pd.DataFrame,
    current_panel: pd.DataFrame,
    freq: str,
    levels: Levels,
    drift_share: float = 0.5,
) -> DriftResult:
    """Per-column Evidently tests, the share of drifted columns, and PSI of the target.

    ``drift_share`` is the tenant policy's threshold, so Evidently's report states the same rule.
    """
    reference, current, numerical, categorical, skipped = drift_frames(
        reference_panel, current_panel, freq, levels
    )
    columns, snapshot = _evidently(reference, current, numerical, categorical, drift_share)
    share = sum(c.drifted for c in columns) / len(columns) if columns else 0.0
    return DriftResult(
        columns=columns,
        share=share,
        psi=target_psi(reference, current),
        n_reference=len(reference),
        n_current=len(current),
        skipped=skipped,
        snapshot=snapshot,
    )


def _evidently(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    numerical: list[str],
    categorical: list[str],
    drift_share: float,
) -> tuple[list[ColumnDrift], Any]:
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    definition = DataDefinition(numerical_columns=numerical, categorical_columns=categorical)
    report = Report(
        [DataDriftPreset(columns=numerical + categorical, drift_share=drift_share)], include_tests=True
    )
    snapshot = report.run(
        Dataset.from_pandas(current, data_definition=definition),
        Dataset.from_pandas(reference, data_definition=definition),
    )
    result = snapshot.dict()
    failed = {
        t["metric_config"]["metric_id"]: str(t["status"]).rsplit(".", 1)[-1] == "FAIL"
        for t in result["tests"]
    }
    out = []
    for metric in result["metrics"]:
        config = metric["config"]
        if not config.get("type", "").endswith(":ValueDrift"):
            continue
        column = config["column"]
        out.append(
            ColumnDrift(
                column=column,
                kind="numerical" if column in numerical else "categorical",
                method=str(config["method"]),
                score=float(metric["value"]),
                threshold=float(config["threshold"]),
                drifted=failed.get(metric["id"], False),
            )
        )
    return out, snapshot


def _round(value: float) -> float | None:
    return round(value, 5) if np.isfinite(value) else None
