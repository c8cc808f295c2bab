"""The three shared data sets ingest whole; report figures and stored values match DuckDB on the raw files."""

from __future__ import annotations

import time
from datetime import date
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from features.ingest import ingest_file
from features.lake import SalesLake

DATA = Path("/work/shared/data")
RETAIL = DATA / "online_retail.csv.gz"
DEMAND = DATA / "store_item_demand_dev_stores_1_8.parquet"
WALMART = DATA / "walmart_weekly_dev_stores_1_22_not_3.parquet"
TODAY = date(2026, 1, 1)

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not DATA.exists(), reason="shared data sets not present in /work/shared/data"),
]


def test_online_retail(tmp_path: Path) -> None:
    lake = SalesLake(tmp_path / "lake")
    started = time.monotonic()
    result = ingest_file(
        RETAIL, "retail", lake, tmp_path / "reports", mapping={"store_id": "Country"}, today=TODAY
    )
    seconds = time.monotonic() - started
    db = duckdb.connect()
    db.execute(f"create table t as select * from read_csv('{RETAIL}', all_varchar=true, header=true)")
    row = db.execute("""
        select count(*),
               (select count(*) from (select distinct * from t)),
               count(*) filter (where cast(Quantity as integer) < 0),
               count(*) filter (where InvoiceNo like 'C%'),
               count(distinct (trim(Country), trim(StockCode))),
               count(distinct (trim(Country), trim(StockCode), cast(InvoiceDate as date))),
               min(cast(InvoiceDate as date)), max(cast(InvoiceDate as date))
        from t""").fetchone()
    assert row is not None
    rows, distinct_rows, negative, cancelled, series, keys, first, last = row
    report = result.report
    assert result.source_rows == rows == 541_909
    assert report["rows"]["duplicate_rows"] == rows - distinct_rows
    assert report["rows"]["negative_quantity"] == negative
    assert report["rows"]["cancellations"] == cancelled
    assert report["rows"]["rejected"] == 0
    assert report["records"]["series"] == series
    assert report["records"]["count"] == keys == result.upsert.rows_total
    assert (report["records"]["date_min"], report["records"]["date_max"]) == (str(first), str(last))
    assert report["records"]["frequency"] == "D"
    assert report["level"] == "transactions"

    expected = db.execute("""
        select trim(Country) as store_id, trim(StockCode) as sku,
               cast(cast(InvoiceDate as date) as timestamp) as date,
               sum(cast(Quantity as double)) as units,
               sum(cast(Quantity as double) * cast(UnitPrice as double)) as revenue,
               sum(cast(Quantity as double) * cast(UnitPrice as double))
                 filter (where cast(Quantity as double) > 0 and cast(UnitPrice as double) > 0)
               / sum(cast(Quantity as double))
                 filter (where cast(Quantity as double) > 0 and cast(UnitPrice as double) > 0) as unit_price
        from t group by all order by 1, 2, 3""").df()
    stored = lake.read("retail")[["store_id", "sku", "date", "units", "revenue", "unit_price"]]
    pd.testing.assert_frame_equal(stored, expected, check_dtype=False, rtol=1e-9)
    assert seconds < 30, f"ingest took {seconds:.1f} s"


def test_online_retail_twice_is_a_no_op(tmp_path: Path) -> None:
    lake = SalesLake(tmp_path / "lake")
    mapping = {"store_id": "Country"}
    ingest_file(RETAIL, "retail", lake, tmp_path / "reports", mapping=mapping, today=TODAY)
    before = lake.path("retail").read_bytes()
    again = ingest_file(RETAIL, "retail", lake, tmp_path / "reports", mapping=mapping, today=TODAY)
    assert (again.upsert.rows_new, again.upsert.rows_updated) == (0, 0)
    assert again.upsert.rows_unchanged == again.upsert.rows_total == 310_015
    assert lake.path("retail").read_bytes() == before


def test_store_item_demand(tmp_path: Path) -> None:
    lake = SalesLake(tmp_path / "lake")
    result = ingest_file(DEMAND, "demo", lake, tmp_path / "reports", today=TODAY)
    row = duckdb.execute(f"""
        select count(*), count(distinct (store_id, item_id)), min(date), max(date), sum(units)
        from read_parquet('{DEMAND}')""").fetchone()
    assert row is not None
    rows, series, first, last, total = row
    report = result.report
    assert result.source_rows == rows == result.upsert.rows_total
    assert report["mapping"]["fields"]["sku"] == "item_id"
    assert report["records"]["series"] == series
    assert (report["records"]["date_min"], report["records"]["date_max"]) == (str(first), str(last))
    assert report["records"]["frequency"] == result.upsert.frequency == "D"
    assert report["rows"]["duplicate_rows"] == 0
    stored = lake.read("demo")
    assert stored["units"].sum() == total
    assert sorted(stored["sku"].unique(), key=int) == [str(i) for i in range(1, 51)]


def test_walmart_weekly(tmp_path: Path) -> None:
    lake = SalesLake(tmp_path / "lake")
    mapping = {"sku": "dept_id", "units": "weekly_sales"}
    result = ingest_file(WALMART, "walmart", lake, tmp_path / "reports", mapping=mapping, today=TODAY)
    row = duckdb.execute(f"""
        select count(*), count(distinct (store_id, dept_id)), count(*) filter (where weekly_sales < 0),
               min(date), max(date), count(*) filter (where is_holiday), count(markdown1)
        from read_parquet('{WALMART}')""").fetchone()
    assert row is not None
    rows, series, negative, first, last, holidays, markdowns = row
    report = result.report
    assert result.source_rows == rows == result.upsert.rows_total
    assert result.upsert.frequency == report["records"]["frequency"] == "W-FRI"
    assert report["records"]["series"] == series
    assert (report["records"]["date_min"], report["records"]["date_max"]) == (str(first), str(last))
    assert report["rows"]["negative_quantity"] == report["checks"]["negative_units"]["records"] == negative
    assert report["rows"]["rejected"] == 0
    assert set(report["mapping"]["covariates"]) == {
        "is_holiday",
        "store_size",
        "temperature",
        "fuel_price",
        "cpi",
        "unemployment",
        *(f"markdown{i}" for i in range(1, 6)),
    }
    assert report["mapping"]["ignored_columns"] == ["store_type"]
    stored = lake.read("walmart")
    assert stored["is_holiday"].sum() == holidays
    assert stored["markdown1"].notna().sum() == markdowns
    assert (stored["units"] < 0).sum() == negative
