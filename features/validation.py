"""Value checks on typed lines (pandera) and the quality report of an upload.

The line schema holds the rules that make a value an *error*: dates before 1990 or after tomorrow,
non-finite or absurd units (beyond the contract's ``MAX_UNITS``), negative prices in daily files.
Everything else a retailer's data commonly shows (negative net units of a day or week, gaps,
repeated rows, outliers, stale data) is real or at least plausible, so it is a *warning* in the
report and never blocks an upload: Walmart's weekly sales are negative when returns exceed sales.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pandera.pandas as pa

from features.contract import MAX_UNITS, SERIES_KEY
from features.frequency import base, period, period_unit

MIN_DATE = pd.Timestamp("1990-01-01")
OUTLIER_Z = 8.0  # robust z-score (median / MAD) beyond which a value is listed as an outlier
STALE_AFTER_DAYS = {"D": 7, "W": 14}
EXAMPLES = 10
# Consecutive periods with no record in any series that read as an outage or a missing export rather
# than a slow spell: a week of days, two weeks.
TENANT_GAP = {"D": 7, "W": 2}
TEMPLATES = Path(__file__).parent / "templates"


def _finite(series: pd.Series) -> pd.Series:
    return pd.Series(np.isfinite(series.to_numpy(dtype=float)), index=series.index)


def line_schema(today: date, transactions: bool, covariates: Iterable[str] = ()) -> pa.DataFrameSchema:
    """The error rules for typed lines; ``transactions`` allows negative prices (bad-debt adjustments)."""
    latest = pd.Timestamp(today) + pd.Timedelta(days=1)
    finite = pa.Check(_finite, error="not a finite number")
    price_checks = [finite] if transactions else [finite, pa.Check.ge(0, error="negative unit price")]
    columns = {
        "date": pa.Column(
            "datetime64[ns]",
            [
                pa.Check.ge(MIN_DATE, error="date before 1990-01-01"),
                pa.Check.le(latest, error=f"date in the future (after tomorrow, {latest.date()})"),
            ],
            nullable=True,
        ),
        "units": pa.Column(
            float,
            [
                finite,
                pa.Check(
                    lambda s: (s.abs() <= MAX_UNITS) | ~_finite(s),
                    error=f"absurd quantity: more than {MAX_UNITS:,.0f} units",
                ),
            ],
            nullable=True,
        ),
        "unit_price": pa.Column(float, price_checks, nullable=True, required=False),
        "revenue": pa.Column(float, [finite], nullable=True, required=False),
    }
    for name in covariates:
        columns[name] = pa.Column(float, [finite], nullable=True, required=False)
    return pa.DataFrameSchema(columns, strict=False, coerce=False)


def check_lines(lines: pd.DataFrame, schema: pa.DataFrameSchema) -> pd.DataFrame:
    """Problems (row, column, message) of ``lines`` against ``schema``; rows are the file's rows."""
    try:
        schema.validate(lines, lazy=True)
    except pa.errors.SchemaErrors as exc:
        cases = exc.failure_cases.dropna(subset=["index"])
        rows = lines["_row"].to_numpy()[lines.index.get_indexer(cases["index"].astype(np.int64))]
        messages = [
            f"{check}: got {_value(v)}"
            for check, v in zip(cases["check"], cases["failure_case"], strict=True)
        ]
        return pd.DataFrame(
            {"row": rows, "column": cases["column"].astype(str).to_numpy(), "message": messages}
        )
    return pd.DataFrame(
        {
            "row": pd.Series(dtype=np.int64),
            "column": pd.Series(dtype=object),
            "message": pd.Series(dtype=object),
        }
    )


def _value(value: Any) -> str:
    if isinstance(value, pd.Timestamp):
        return value.date().isoformat()
    return repr(value)


# -- the quality report on the canonical records ----------------------------------------------


def quality_checks(
    records: pd.DataFrame, frequency: str, today: date, tenant: str = "TENANT"
) -> tuple[dict[str, Any], list[str]]:
    """Figures and warnings about the records an upload would store (never errors); ``tenant`` goes
    into the commands the warnings suggest."""
    warnings: list[str] = []
    checks: dict[str, Any] = {
        "negative_units": _negative(records, warnings),
        "gaps": _gaps(records, frequency, warnings, tenant),
        "stale": _stale(records, frequency, today, warnings),
        "outliers": _outliers(records, warnings),
        "completeness": {
            c: round(float(records[c].notna().mean()), 4)
            for c in records.columns
            if not c.startswith("_") and len(records)
        },
    }
    return checks, warnings


def _examples(frame: pd.DataFrame, columns: list[str]) -> list[dict[str, Any]]:
    out = frame[columns].head(EXAMPLES).copy()
    if "date" in out:
        out["date"] = out["date"].dt.date.astype(str)
    return [
        {str(k): (v.item() if isinstance(v, np.generic) else v) for k, v in row.items()}
        for row in out.to_dict(orient="records")
    ]


def _negative(records: pd.DataFrame, warnings: list[str]) -> dict[str, Any]:
    negative = records[records["units"] < 0]
    if len(negative):
        warnings.append(
            f"{len(negative):,} record(s) have negative net units (returns exceeding sales); kept as they are"
        )
    worst = negative.sort_values("units")
    return {"records": len(negative), "examples": _examples(worst, [*SERIES_KEY, "date", "units"])}


def _gaps(records: pd.DataFrame, frequency: str, warnings: list[str], tenant: str) -> dict[str, Any]:
    spans = records.groupby(list(SERIES_KEY), sort=False)["date"].agg(["min", "max", "size"])
    expected = (spans["max"] - spans["min"]).dt.days // period(frequency).days + 1
    spans["missing"] = (expected - spans["size"]).clip(lower=0)
    with_gaps = spans[spans["missing"] > 0].sort_values("missing", ascending=False)
    total = int(spans["missing"].sum())
    if len(with_gaps):
        warnings.append(
            f"{len(with_gaps):,} of {len(spans):,} series have gaps ({total:,} missing periods between their "
            "first and last date); forecasting reads a missing period as zero sales"
        )
    examples = with_gaps.reset_index().rename(columns={"min": "first", "max": "last", "size": "periods"})
    for column in ("first", "last"):
        examples[column] = examples[column].dt.date.astype(str)
    everywhere = tenant_wide_gaps(records, frequency)
    if everywhere:
        longest = max(everywhere, key=lambda g: g["periods"])
        unit = period_unit(frequency)
        warnings.append(
            f"no series has any record for {longest['periods']:,} {unit} in a row ({longest['first']} to "
            f"{longest['last']}; {len(everywhere)} such stretch(es)): if that was an outage or a missing "
            "export rather than a closure, forecasting learns it as zero demand; upload that period's sales, "
            "or mark it so that builds fill it from the weeks before: ordernimbus outage add "
            f"{longest['first']} {longest['last']} --tenant {tenant}"
        )
    return {
        "series_with_gaps": len(with_gaps),
        "missing_periods": total,
        "examples": _examples(examples, [*SERIES_KEY, "first", "last", "periods", "missing"]),
        "tenant_wide": everywhere[:EXAMPLES],
    }


def tenant_wide_gaps(records: pd.DataFrame, frequency: str) -> list[dict[str, Any]]:
    """Stretches of ``TENANT_GAP`` periods or more in which no series has a record, longest first.

    A series' own gaps are usually days it sold nothing; the same dates missing from every series
    at once are a shop-wide closure or, more often, data that never arrived. The three-month outage
    of ``benchmarks/dev_windows.py --only young_tenants`` failed its gate by 2.2x against AutoETS.
    """
    step = period(frequency)
    dates = pd.DatetimeIndex(records["date"].drop_duplicates()).sort_values()
    if len(dates) < 2:
        return []
    missing = ((dates[1:] - dates[:-1]) // step - 1).to_numpy()
    stretches = [
        {
            "first": str((dates[i] + step).date()),
            "last": str((dates[i + 1] - step).date()),
            "periods": int(n),
        }
        for i, n in enumerate(missing)
        if n >= TENANT_GAP[base(frequency)]
    ]
    return sorted(stretches, key=lambda g: -g["periods"])


def _stale(records: pd.DataFrame, frequency: str, today: date, warnings: list[str]) -> dict[str, Any]:
    latest = records["date"].max().date()
    age = (today - latest).days
    limit = STALE_AFTER_DAYS[base(frequency)]
    stale = age > limit
    if stale:
        warnings.append(
            f"the latest date is {latest.isoformat()}, {age:,} days before {today.isoformat()}: the data is "
            f"stale (more than {limit} days old); forecasts start after the latest date"
        )
    return {"latest_date": latest.isoformat(), "days_old": age, "stale": stale, "limit_days": limit}


def _outliers(records: pd.DataFrame, warnings: list[str]) -> dict[str, Any]:
    """Hampel rule per series: |units - median| / (1.4826 MAD) above ``OUTLIER_Z``.

    The scale has a floor of one unit, so intermittent series (mostly zero or one) do not flag
    every sale as an outlier.
    """
    groups = records.groupby(list(SERIES_KEY), sort=False)["units"]
    median = groups.transform("median")
    deviation = (records["units"] - median).abs()
    mad = deviation.groupby([records[k] for k in SERIES_KEY], sort=False).transform("median")
    score: pd.Series = deviation / np.maximum(1.4826 * mad, 1.0)
    flagged = records.assign(score=score.round(1), median=median).loc[score > OUTLIER_Z]
    flagged = flagged.sort_values(by="score", ascending=False)
    if len(flagged):
        top = flagged.iloc[0]
        # Named, since the members learn these values as demand: a one-off bulk order five days before
        # the end put its product's forecast at 225 a day where it sold 10 (dev_windows one_off_order).
        warnings.append(
            f"{len(flagged):,} value(s) lie more than {OUTLIER_Z:g} robust deviations from their series' "
            f"median, the largest {top['units']:g} for store {top['store_id']}, SKU {top['sku']} on "
            f"{pd.Timestamp(top['date']).date()} (median {top['median']:g}); forecasts learn them as demand, "
            "so correct a one-off order or a typo and upload again"
        )
    return {
        "count": len(flagged),
        "threshold": OUTLIER_Z,
        "examples": _examples(flagged, [*SERIES_KEY, "date", "units", "score"]),
    }


# -- rendering ------------------------------------------------------------------------------


def render_html(report: dict[str, Any]) -> str:
    """The report as one self-contained HTML page; every value is HTML-escaped by the template engine."""
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True, undefined=jinja2.StrictUndefined
    )
    return env.get_template("upload_report.html").render(report=report)
