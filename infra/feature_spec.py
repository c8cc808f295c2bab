"""The SageMaker Feature Store schema of the daily sales feature group, declared once for infra.

SageMaker cannot change a feature group's definitions after creation except by appending features,
so this list is the deployed contract. It mirrors the daily ``features.engineering.FeatureSpec``
(lags 1-28 and 364; mean/std/min/max over 7, 28 and 91 days; intermittency; calendar; known-future
covariates) and MUST be kept in sync with it and with the feature group spec the store adapter in
``features/store`` writes; ``tests/infra/test_infra_feature_spec.py`` compares the names.
It is a literal here so that synthesizing infrastructure does not import pandas.

Types are Feature Store's three: ``String``, ``Integral`` and ``Fractional``.
"""

from __future__ import annotations

from typing import Final, Literal

FeatureType = Literal["String", "Integral", "Fractional"]

RECORD_IDENTIFIER: Final = "record_id"  # "<tenant_id>#<store_id>#<sku>#<date>"
EVENT_TIME: Final = "event_time"  # ISO-8601 UTC string, when the row was computed

LAGS: Final = (*range(1, 29), 364)
WINDOWS: Final = (7, 28, 91)
STATS: Final = ("mean", "std", "min", "max")
CALENDAR: Final = (
    "month",
    "week_of_year",
    "day_of_week",
    "day_of_month",
    "day_of_year",
    "is_month_start",
    "is_holiday",
    # appended with the issue-4 calendar (pay days, retail events, distance to public holidays)
    "is_month_end",
    "is_payday",
    "is_event",
    "days_to_holiday",
    "days_since_holiday",
)

_KEYS: tuple[tuple[str, FeatureType], ...] = (
    (RECORD_IDENTIFIER, "String"),
    (EVENT_TIME, "String"),
    ("tenant_id", "String"),
    ("store_id", "String"),
    ("sku", "String"),
    ("date", "String"),
    ("feature_spec_version", "String"),  # FeatureSpec.version of the producing code
    ("units", "Fractional"),
)
_TARGET: tuple[tuple[str, FeatureType], ...] = (
    *((f"lag_{lag}", "Fractional") for lag in LAGS),
    *((f"roll_{stat}_{window}", "Fractional") for window in WINDOWS for stat in STATS),
    ("periods_since_sale", "Fractional"),
    ("zero_run", "Fractional"),
    ("zero_share", "Fractional"),
)
_COVARIATES: tuple[tuple[str, FeatureType], ...] = (
    *((name, "Integral") for name in CALENDAR),
    ("unit_price", "Fractional"),
    ("on_promotion", "Fractional"),
)

SALES_FEATURES: Final[tuple[tuple[str, FeatureType], ...]] = (*_KEYS, *_TARGET, *_COVARIATES)
