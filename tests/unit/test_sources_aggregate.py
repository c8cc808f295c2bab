"""Daily aggregation of transaction lines, checked against a DuckDB SQL oracle."""

from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd
import pytest

from features.sources.aggregate import deduplicate_daily, finish_daily, partial_daily


@pytest.fixture
def lines() -> pd.DataFrame:
    rng = np.random.default_rng(20240601)  # seed logged for reproduction
    n = 5_000
    frame = pd.DataFrame(
        {
            "_row": np.arange(2, n + 2),
            "store_id": rng.choice(["UK", "France", "EIRE"], n),
            "sku": rng.choice([f"S{i}" for i in range(40)], n),
            "date": pd.Timestamp("2011-01-01") + pd.to_timedelta(rng.integers(0, 30, n), unit="D"),
            "units": rng.integers(-5, 20, n).astype(float),
            "unit_price": np.round(
                rng.choice([0.0, 0.85, 1.25, 2.95, -3.0], n, p=[0.05, 0.4, 0.3, 0.2, 0.05]), 2
            ),
            "channel": rng.choice(["web", "pos"], n, p=[0.9, 0.1]),
            "on_promotion": rng.choice([0.0, 1.0], n),
        }
    )
    frame.loc[rng.choice(n, 50, replace=False), "unit_price"] = np.nan
    return frame


ORACLE = """
select store_id, sku, date,
       sum(units) as units,
       sum(units * unit_price) as revenue,
       sum(units * unit_price) filter (where units > 0 and unit_price > 0)
         / sum(units) filter (where units > 0 and unit_price > 0) as unit_price,
       case when min(channel) = max(channel) then min(channel) else 'mixed' end as channel,
       max(on_promotion) as on_promotion
from lines group by all order by store_id, sku, date
"""


def test_chunked_sums_equal_sql_on_the_whole(lines: pd.DataFrame) -> None:
    partials = [partial_daily(lines.iloc[start : start + 800]) for start in range(0, len(lines), 800)]
    daily = finish_daily(partials)
    con = duckdb.connect()  # its own connection: the module-level default is shared across tests
    con.register("lines", lines)
    relation = con.sql(ORACLE)
    assert relation is not None
    expected = relation.df()
    assert len(daily) == len(expected)
    got = daily[expected.columns].reset_index(drop=True)
    pd.testing.assert_frame_equal(got, expected, check_dtype=False, atol=1e-9)


def test_days_with_only_returns_have_no_price_but_keep_revenue() -> None:
    frame = pd.DataFrame(
        {
            "store_id": ["all"] * 2,
            "sku": ["A"] * 2,
            "date": pd.to_datetime(["2024-01-01"] * 2),
            "units": [-2.0, -1.0],
            "unit_price": [3.0, 3.0],
        }
    )
    daily = finish_daily([partial_daily(frame)])
    assert daily["units"].tolist() == [-3.0]
    assert daily["revenue"].tolist() == [-9.0]
    assert daily["unit_price"].isna().all()


def test_without_prices_there_is_no_revenue_column() -> None:
    frame = pd.DataFrame(
        {"store_id": ["all"], "sku": ["A"], "date": pd.to_datetime(["2024-01-01"]), "units": [2.0]}
    )
    daily = finish_daily([partial_daily(frame)])
    assert list(daily.columns) == ["store_id", "sku", "date", "units"]


def test_daily_rows_repeated_exactly_are_kept_once_and_contradictions_found() -> None:
    frame = pd.DataFrame(
        {
            "_row": [2, 3, 4, 5, 6],
            "store_id": ["1"] * 5,
            "sku": ["A", "A", "B", "B", "C"],
            "date": pd.to_datetime(["2024-01-01"] * 5),
            "units": [5.0, 5.0, 1.0, 2.0, 9.0],
        }
    )
    records, repeated, conflicts = deduplicate_daily(frame)
    assert repeated == 1
    assert records["sku"].tolist() == ["A", "C"]
    assert conflicts["_row"].tolist() == [4, 5]
    assert conflicts["first_row"].tolist() == [4, 4]
