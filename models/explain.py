"""SHAP explanations of the XGBoost member: the top demand drivers globally and per series.

TreeExplainer computes exact SHAP values for tree ensembles. It explains the member's *mean*
booster (one output) on the rows the model predicts from at the end of the training data: every
series × horizon step. Importance is the mean absolute SHAP value, so it is in units of the scaled
target (demand divided by the series' recent level) and comparable across series of any volume.

Raw feature names are model-internal (``tlag_364`` is the target period's value a year earlier);
:func:`describe` gives each a label an approver or a buyer can read. The result is written as
``explain.json`` beside the model: ``{"global": [...], "per_sku": {"<store>|<sku>": [...]}}`` with
``{"feature", "label", "importance"}`` entries, most important first.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pandas as pd

TOP = 8
_LABELS = {
    "h": "steps ahead",
    "log_level": "recent sales level",
    "store_code": "store",
    "sku_code": "product",
    "day_of_week": "day of week",
    "day_of_month": "day of month",
    "day_of_year": "day of year",
    "week_of_year": "week of year",
    "month": "month",
    "is_holiday": "holiday",
    "is_month_start": "start of month",
    "unit_price": "price",
    "relative_price": "price vs recent average",
    "price_change": "price change",
    "promo_price_cut": "price cut (promotion)",
    "on_promotion": "promotion",
    "zero_share": "share of zero-sales periods",
}


def describe(feature: str) -> str:
    """A readable label for a model feature name."""
    name = feature
    target = False
    if name.startswith("t_"):
        name, target = name[2:], True
    elif name.startswith("tlag_"):
        return f"sales {name[5:]} periods before the target period"
    if match := re.fullmatch(r"lag_(\d+)", name):
        return f"sales {match.group(1)} periods before the forecast origin"
    if match := re.fullmatch(r"roll_(mean|std|min|max)_(\d+)", name):
        return f"{match.group(1)} of sales over the last {match.group(2)} periods"
    label = _LABELS.get(name, name.replace("_", " "))
    return f"{label} (target period)" if target else label


def _entries(features: list[str], importance: np.ndarray, top: int = TOP) -> list[dict[str, Any]]:
    order = np.argsort(-importance)[:top]
    return [
        {"feature": features[i], "label": describe(features[i]), "importance": round(float(importance[i]), 5)}
        for i in order
        if importance[i] > 0
    ]


def explain_xgboost(
    model: Any, history: pd.DataFrame, max_rows: int = 20_000, seed: int = 7
) -> dict[str, Any]:
    """SHAP top drivers of a fitted :class:`models.xgboost.GlobalXGBoost` on ``history``'s last origin."""
    import shap

    X, meta = model.forecast_rows(history, model.horizon)
    if len(X) > max_rows:  # a seeded sample keeps the cost bounded; per-series means stay unbiased
        pick = np.sort(np.random.default_rng(seed).choice(len(X), max_rows, replace=False))
        X, meta = X.iloc[pick], meta.iloc[pick]
    values = np.abs(shap.TreeExplainer(model.boosters["mean"]).shap_values(X.to_numpy(dtype=np.float32)))
    features = list(X.columns)
    keys = (meta["store_id"].astype(str) + "|" + meta["sku"].astype(str)).to_numpy()
    frame = pd.DataFrame(values, columns=features)
    per_series = frame.groupby(keys, sort=True).mean()
    return {
        "model": "xgboost",
        "method": "shap.TreeExplainer on the mean booster; mean |SHAP| over series x horizon rows",
        "rows": len(X),
        "global": _entries(features, values.mean(axis=0)),
        "per_sku": {str(k): _entries(features, row.to_numpy()) for k, row in per_series.iterrows()},
    }
