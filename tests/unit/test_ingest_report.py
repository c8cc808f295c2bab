"""The quality report's checks: gaps, staleness, outliers, negatives, completeness, line errors."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest

from features.validation import check_lines, line_schema, quality_checks, render_html

TODAY = date(2024, 6, 30)


def records(rows: list[tuple[str, str, str, float]]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["store_id", "sku", "date", "units"])
    frame["date"] = pd.to_datetime(frame["date"])
    return frame


def test_gaps_count_missing_periods_per_series_at_the_data_frequency() -> None:
    daily = records(
        [
            ("1", "A", "2024-06-01", 1),
            ("1", "A", "2024-06-05", 2),
            ("1", "B", "2024-06-01", 1),
            ("1", "B", "2024-06-02", 1),
        ]
    )
    checks, warnings = quality_checks(daily, "D", TODAY)
    assert checks["gaps"]["series_with_gaps"] == 1
    assert checks["gaps"]["missing_periods"] == 3  # 2, 3 and 4 June
    assert checks["gaps"]["examples"][0] == {
        "store_id": "1",
        "sku": "A",
        "first": "2024-06-01",
        "last": "2024-06-05",
        "periods": 2,
        "missing": 3,
    }
    weekly = records([("1", "A", d, 1) for d in ("2024-05-03", "2024-05-10", "2024-05-31")])
    checks, _ = quality_checks(weekly, "W-FRI", TODAY)
    assert checks["gaps"]["missing_periods"] == 2
    assert any("gaps" in w for w in warnings)


def test_a_stretch_missing_from_every_series_is_named_as_a_possible_outage() -> None:
    """Three weeks with no record anywhere read as zero demand: the report says where, so the
    retailer can upload them. A shop closed on Sundays (one day at a time) is not flagged."""
    days = pd.date_range("2024-01-01", "2024-06-29", freq="D")

    def shop(dates: pd.DatetimeIndex) -> pd.DataFrame:
        rows = [("1", sku, d, 3.0) for sku in ("A", "B") for d in dates]
        return pd.DataFrame(rows, columns=["store_id", "sku", "date", "units"])

    checks, warnings = quality_checks(shop(days[(days < "2024-03-04") | (days > "2024-03-24")]), "D", TODAY)
    assert checks["gaps"]["tenant_wide"] == [{"first": "2024-03-04", "last": "2024-03-24", "periods": 21}]
    assert any("any record for 21 days in a row (2024-03-04 to 2024-03-24" in w for w in warnings)
    base = {"upload_id": "u1", "tenant_id": "acme", "file": "x.csv", "created_at": "now", "mode": "strict"}
    outcome = {"status": "accepted", "errors": {"total": 0, "first": []}, "lake": None, "quarantine": None}
    html = render_html({**base, **outcome, "checks": checks, "warnings": warnings})
    assert "the longest 21 periods (2024-03-04 to 2024-03-24)" in html
    checks, warnings = quality_checks(shop(days[days.dayofweek != 6]), "D", TODAY)
    assert checks["gaps"]["series_with_gaps"] == 2  # every Sunday, in both series
    assert checks["gaps"]["tenant_wide"] == []
    assert not any("no series has any record" in w for w in warnings)
    weekly = records([("1", "A", d, 1) for d in ("2024-05-03", "2024-05-10", "2024-05-31")])
    checks, _ = quality_checks(weekly, "W-FRI", TODAY)
    assert checks["gaps"]["tenant_wide"] == [{"first": "2024-05-17", "last": "2024-05-24", "periods": 2}]


def test_staleness_depends_on_frequency() -> None:
    recent = records([("1", "A", "2024-06-20", 1), ("1", "A", "2024-06-21", 1)])
    daily, warnings = quality_checks(recent, "D", TODAY)
    assert daily["stale"] == {"latest_date": "2024-06-21", "days_old": 9, "stale": True, "limit_days": 7}
    assert any("stale" in w for w in warnings)
    weekly, warnings = quality_checks(recent, "W-FRI", TODAY)
    assert weekly["stale"]["stale"] is False
    assert not any("stale" in w for w in warnings)


def test_outliers_are_robust_and_spare_intermittent_series() -> None:
    rng = np.random.default_rng(7)
    days = pd.date_range("2024-01-01", periods=60).strftime("%Y-%m-%d")
    steady = [("1", "A", d, float(v)) for d, v in zip(days, rng.normal(50, 3, 60).round(), strict=True)]
    steady[30] = ("1", "A", days[30], 500.0)
    sparse = [("1", "B", d, float(i % 9 == 0)) for i, d in enumerate(days)]
    checks, warnings = quality_checks(records(steady + sparse), "D", TODAY)
    assert checks["outliers"]["count"] == 1
    assert checks["outliers"]["examples"][0]["date"] == days[30]
    assert checks["outliers"]["examples"][0]["sku"] == "A"
    # the warning names the value, where and what is usual there: the members would learn it as demand
    (outlier,) = [w for w in warnings if "robust deviations" in w]
    assert f"the largest 500 for store 1, SKU A on {days[30]} (median 50)" in outlier
    assert "forecasts learn them as demand" in outlier


def test_negative_units_and_completeness() -> None:
    frame = records([("1", "A", "2024-06-01", -4), ("1", "A", "2024-06-02", 3)]).assign(
        unit_price=[np.nan, 2.0]
    )
    checks, warnings = quality_checks(frame, "D", TODAY)
    assert checks["negative_units"]["records"] == 1
    assert checks["negative_units"]["examples"][0]["units"] == -4
    assert checks["completeness"]["unit_price"] == 0.5
    assert any("negative net units" in w for w in warnings)


def test_line_schema_errors_carry_file_rows() -> None:
    lines = pd.DataFrame(
        {
            "_row": [10, 11, 12, 13, 14],
            "date": pd.to_datetime(["2024-01-01", "1989-12-31", "2024-07-02", "2024-07-01", "NaT"]),
            "units": [1.0, 2.0, 3.0, np.inf, 2e7],
            "unit_price": [1.0, -1.0, 1.0, 1.0, 1.0],
        }
    )
    daily = check_lines(lines, line_schema(TODAY, transactions=False))
    found = sorted(zip(daily["row"], daily["column"], daily["message"], strict=True))
    assert [(r, c) for r, c, _ in found] == [
        (11, "date"),
        (11, "unit_price"),
        (12, "date"),
        (13, "units"),
        (14, "units"),
    ]
    assert "tomorrow, 2024-07-01" in found[2][2]  # tomorrow itself (row 13) is allowed
    assert "got 2024-07-02" in found[2][2]
    transactions = check_lines(lines, line_schema(TODAY, transactions=True))
    assert "unit_price" not in set(transactions["column"])  # adjustments may have negative prices


@pytest.mark.parametrize("status", ["accepted", "rejected"])
def test_html_renders_both_outcomes_and_escapes(status: str) -> None:
    report = {
        "upload_id": "u1",
        "tenant_id": "acme",
        "file": "<b>x</b>.csv",
        "created_at": "now",
        "mode": "strict",
        "status": status,
        "errors": {
            "total": 1,
            "first": [
                {"file": "f", "row": 2, "column": "sku", "message": "value '<img src=x onerror=alert(1)>'"}
            ],
        },
        "warnings": ["<i>w</i>"],
        "lake": None,
        "quarantine": None,
    }
    page = render_html(report)
    assert "<img" not in page
    assert "<b>x</b>" not in page
    assert "<i>w</i>" not in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page
    assert status in page
