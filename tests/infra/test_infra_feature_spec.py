"""The deployed feature group schema must carry every feature the daily FeatureSpec computes."""

from __future__ import annotations

import pandas as pd

from features.engineering import FeatureSpec, calendar_features
from infra.feature_spec import EVENT_TIME, RECORD_IDENTIFIER, SALES_FEATURES

# Feature Store: at most 2500 features per group, names of letters, digits, '_' and '-' up to 64 characters.
MAX_FEATURES = 2500


def test_names_are_unique_and_valid_for_feature_store() -> None:
    names = [name for name, _ in SALES_FEATURES]
    assert len(names) == len(set(names)) <= MAX_FEATURES
    assert all(name.replace("_", "").isalnum() and len(name) <= 64 for name in names)
    assert {RECORD_IDENTIFIER, EVENT_TIME} <= set(names)
    assert dict(SALES_FEATURES)[EVENT_TIME] in {"String", "Fractional"}  # Feature Store's rule for event time


def test_daily_feature_spec_is_covered() -> None:
    spec = FeatureSpec.for_freq("D")
    calendar = calendar_features(pd.date_range("2024-01-01", periods=3, freq="D"), spec)
    expected = {*spec.target_features, *calendar.columns}
    declared = dict(SALES_FEATURES)
    assert expected - set(declared) == set(), "add these to infra/feature_spec.py (append only)"
    assert all(declared[name] == "Integral" for name in calendar.columns)
    assert all(declared[name] == "Fractional" for name in spec.target_features)
