"""Inventory recommendations from a forecast set's quantiles: reorder point and order quantity.

Pure numpy/pandas: a frame of forecasts in, one recommendation per series out; no I/O.

The formula (all quantities in units; ``L`` lead time and ``R`` review period in days, ``α`` the
cycle service level, i.e. the probability of no stock-out while waiting for an order):

1. Forecast periods are spread over days: a period of ``P`` days (1 daily, 7 weekly) with median
   ``p50`` and upper spread ``u = p90 − p50`` becomes ``P`` days of ``p50 / P`` with spread
   ``u / √P`` (its variance split evenly over its days).
2. Lead-time demand ``D_L = Σ_{d ≤ L} p50_d``: the median forecast summed over the lead time.
3. Safety stock ``SS_L = k(α) · √(Σ_{d ≤ L} u_d²)`` with ``k(α) = z_α / z_0.9``: the p50→p90
   spread is the distance to the 90 % quantile, so scaling it by the ratio of standard normal
   quantiles interpolates it to the service level (``α = 0.9`` gives the p90 itself, ``α = 0.5``
   the median). The upper half of the interval is used because retail demand is right-skewed
   and the reorder point lives in the upper tail. Daily errors are taken as independent
   (root-sum-square); correlated errors would need more, which the card's coverage shows.
4. Reorder point ``ROP = ⌈D_L + SS_L⌉``: order when the stock on hand falls below it.
5. Order-up-to level ``S = ⌈D_{L+R} + SS_{L+R}⌉``, the same over the protection interval of a
   periodic review (lead time plus review period).
6. Order quantity: with stock on hand ``I`` known, ``⌈S − I⌉`` when ``I < ROP``, else 0; without
   it, ``S − ROP`` (what to order when the stock reaches the reorder point: the review period's
   demand plus the extra safety stock).
7. ``stockout_risk``: ``I < ROP``, i.e. the chance of running out before an order placed now
   arrives exceeds ``1 − α``; false when ``I`` is unknown.

Lead times beyond the forecast horizon extend it with the horizon's average daily median and
variance, and say so through ``extrapolated_days``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np
import pandas as pd

from ordernimbus.errors import OrderNimbusError

KEY = ["store_id", "sku"]
FORECAST_COLUMNS = ("store_id", "sku", "target_date", "horizon_day", "p50", "p90")
OUTPUT_COLUMNS = (
    "store_id",
    "sku",
    "lead_time_days",
    "service_level",
    "lead_time_demand",
    "safety_stock",
    "reorder_point",
    "order_quantity",
    "on_hand",
    "stockout_risk",
)
_Z90 = NormalDist().inv_cdf(0.9)
_EPS = 1e-9  # float noise: 3.0000000001 units must not round up to 4


class InventoryError(OrderNimbusError):
    title = "Inventory recommendation refused"


@dataclass(frozen=True)
class InventoryPolicy:
    """Lead time and review period in days; service level as the probability of no stock-out."""

    lead_time_days: int = 7
    service_level: float = 0.95
    review_days: int = 7

    def __post_init__(self) -> None:
        if isinstance(self.lead_time_days, bool) or not isinstance(self.lead_time_days, int):
            raise InventoryError(
                f"lead_time_days must be a whole number of days, got {self.lead_time_days!r}"
            )
        if not 1 <= self.lead_time_days <= 365:
            raise InventoryError(f"lead_time_days must be from 1 to 365, got {self.lead_time_days}")
        if isinstance(self.review_days, bool) or not isinstance(self.review_days, int):
            raise InventoryError(f"review_days must be a whole number of days, got {self.review_days!r}")
        if not 1 <= self.review_days <= 365:
            raise InventoryError(f"review_days must be from 1 to 365, got {self.review_days}")
        if not 0.5 <= float(self.service_level) <= 0.999:
            raise InventoryError(
                f"service_level must be from 0.5 to 0.999 (e.g. 0.95 = 95 % of cycles without a "
                f"stock-out), got {self.service_level!r}"
            )

    @property
    def k(self) -> float:
        """Multiplier of the p50→p90 spread that reaches the service-level quantile."""
        return NormalDist().inv_cdf(float(self.service_level)) / _Z90


def recommend(
    forecasts: pd.DataFrame,
    policy: InventoryPolicy,
    on_hand: Mapping[tuple[str, str], float] | None = None,
    period_days: int | None = None,
) -> pd.DataFrame:
    """One recommendation per series of ``forecasts`` (see the module docstring for the formula).

    ``forecasts`` holds whole series (every horizon day from 1 up). ``on_hand`` maps
    ``(store_id, sku)`` to the stock on hand; ``period_days`` is inferred from the target dates
    when not given.
    """
    p50, spread, keys = _matrices(forecasts)
    period = period_days if period_days is not None else infer_period_days(forecasts)
    daily50 = np.repeat(p50 / period, period, axis=1)
    daily_var = np.repeat(spread**2 / period, period, axis=1)
    lead = policy.lead_time_days
    demand_l, var_l = _over(daily50, daily_var, lead)
    demand_s, var_s = _over(daily50, daily_var, lead + policy.review_days)
    k = max(policy.k, 0.0)
    safety = k * np.sqrt(var_l)
    rop = _ceil(demand_l + safety)
    order_up_to = _ceil(demand_s + k * np.sqrt(var_s))
    stock = _on_hand(keys, on_hand)
    known = ~np.isnan(stock)
    below = known & (stock < rop)
    quantity = order_up_to - rop  # stock unknown: the quantity to order at the reorder point
    quantity[known] = 0.0
    quantity[below] = _ceil(order_up_to[below] - stock[below])
    out = keys.copy()
    out["lead_time_days"] = lead
    out["service_level"] = float(policy.service_level)
    out["lead_time_demand"] = demand_l
    out["safety_stock"] = safety
    out["reorder_point"] = rop
    out["order_quantity"] = quantity
    out["on_hand"] = np.where(known, stock, np.nan)
    out["stockout_risk"] = below
    out.attrs["extrapolated_days"] = max(0, lead + policy.review_days - daily50.shape[1])
    return out[list(OUTPUT_COLUMNS)]


def infer_period_days(forecasts: pd.DataFrame) -> int:
    """Days per forecast period from consecutive target dates (1 daily, 7 weekly); 1 if unknowable."""
    ordered = forecasts.sort_values([*KEY, "horizon_day"])
    dates = pd.to_datetime(ordered["target_date"])
    same = (ordered["store_id"].to_numpy()[1:] == ordered["store_id"].to_numpy()[:-1]) & (
        ordered["sku"].to_numpy()[1:] == ordered["sku"].to_numpy()[:-1]
    )
    steps = (dates.to_numpy()[1:] - dates.to_numpy()[:-1])[same] / np.timedelta64(1, "D")
    found = set(np.unique(steps).tolist())
    if not found:
        return 1
    if len(found) > 1 or min(found) < 1 or min(found) != int(min(found)):
        raise InventoryError(
            f"forecast periods must be evenly spaced whole days (1 daily, 7 weekly); found steps of "
            f"{sorted(found)[:5]} days"
        )
    return int(found.pop())


def _matrices(forecasts: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, pd.DataFrame]:
    """(series x horizon) matrices of p50 and p90 − p50, and the series keys in the same order."""
    absent = [c for c in FORECAST_COLUMNS if c not in forecasts.columns]
    if absent:
        raise InventoryError(f"forecasts lack column(s) {absent}; expected {list(FORECAST_COLUMNS)}")
    if forecasts.empty:
        raise InventoryError("no forecasts given: nothing to recommend")
    frame = forecasts[list(FORECAST_COLUMNS)].sort_values([*KEY, "horizon_day"], ignore_index=True)
    values = frame[["p50", "p90"]].to_numpy(dtype=float)
    if not np.isfinite(values).all() or (values[:, 1] < values[:, 0]).any():
        raise InventoryError("forecast p50/p90 must be finite with p50 <= p90")
    wide = frame.pivot(index=KEY, columns="horizon_day", values=["p50", "p90"])
    horizons = wide["p50"].columns.to_numpy()
    if horizons[0] != 1 or (np.diff(horizons) != 1).any() or wide.isna().to_numpy().any():
        bad = wide.index[wide.isna().any(axis=1)] if wide.isna().to_numpy().any() else wide.index[:1]
        raise InventoryError(
            f"series {tuple(bad[0])} does not hold every horizon day from 1 to {int(horizons.max())}: "
            "recommendations need whole series"
        )
    p50 = np.clip(wide["p50"].to_numpy(dtype=float), 0.0, None)
    spread = wide["p90"].to_numpy(dtype=float) - wide["p50"].to_numpy(dtype=float)
    keys = wide.index.to_frame(index=False)
    return p50, spread, keys


def _over(daily50: np.ndarray, daily_var: np.ndarray, days: int) -> tuple[np.ndarray, np.ndarray]:
    """Median demand and variance summed over the first ``days`` days, extending past the horizon."""
    covered = daily50.shape[1]
    take = min(days, covered)
    demand = daily50[:, :take].sum(axis=1)
    var = daily_var[:, :take].sum(axis=1)
    extra = days - take
    if extra > 0:
        demand = demand + extra * daily50.mean(axis=1)
        var = var + extra * daily_var.mean(axis=1)
    return demand, var


def _ceil(values: np.ndarray) -> np.ndarray:
    return np.ceil(np.maximum(values, 0.0) - _EPS)


def _on_hand(keys: pd.DataFrame, on_hand: Mapping[tuple[str, str], float] | None) -> np.ndarray:
    if not on_hand:
        return np.full(len(keys), np.nan)
    stock = np.array(
        [on_hand.get((s, k), np.nan) for s, k in zip(keys["store_id"], keys["sku"], strict=True)], dtype=float
    )
    if np.isinf(stock).any():
        raise InventoryError("on_hand must be a finite number of units")
    return stock
