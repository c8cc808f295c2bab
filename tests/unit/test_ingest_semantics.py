"""Upload semantics: idempotent, corrective, atomic, strict vs lenient, per-tenant, reported."""

from __future__ import annotations

import csv
import hashlib
import json
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from features.ingest import IngestResult, UploadRejectedError, ingest_file
from features.lake import SalesLake
from features.outages import Outage

TODAY = date(2024, 6, 30)
HEADER = "date,sku,store,units\n"


def hash_dir(folder: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        digest.update(str(path.relative_to(folder)).encode())
        if path.is_file():
            digest.update(path.read_bytes())
    return digest.hexdigest()


def daily_csv(
    path: Path, days: int = 10, skus: int = 3, bump: dict[tuple[int, int], float] | None = None
) -> Path:
    """A small daily file: units = day + sku (plus any bump), two stores."""
    lines = [HEADER]
    for day in range(1, days + 1):
        for sku in range(skus):
            for store in (1, 2):
                units = day + sku + (bump or {}).get((day, sku), 0)
                lines.append(f"2024-03-{day:02d},S{sku},{store},{units}\n")
    path.write_text("".join(lines))
    return path


def ingest(
    path: Path, lake: SalesLake, tmp_path: Path, tenant: str = "acme", **kwargs: object
) -> IngestResult:
    return ingest_file(path, tenant, lake, tmp_path / "reports", today=TODAY, **kwargs)  # type: ignore[arg-type]


def record(frame: pd.DataFrame, store: str, sku: str, day: str) -> dict[Any, Any]:
    """The one stored record of a key, as a dict."""
    match = frame[(frame["store_id"] == store) & (frame["sku"] == sku) & (frame["date"] == pd.Timestamp(day))]
    assert len(match) == 1
    return match.iloc[0].to_dict()


@pytest.fixture
def lake(tmp_path: Path) -> SalesLake:
    return SalesLake(tmp_path / "lake")


def test_same_file_twice_changes_nothing(lake: SalesLake, tmp_path: Path) -> None:
    path = daily_csv(tmp_path / "sales.csv")
    first = ingest(path, lake, tmp_path)
    assert (first.upsert.rows_new, first.upsert.rows_updated, first.upsert.rows_total) == (60, 0, 60)
    stored = lake.path("acme")
    before, mtime = stored.read_bytes(), stored.stat().st_mtime_ns
    second = ingest(path, lake, tmp_path)
    assert (second.upsert.rows_new, second.upsert.rows_updated, second.upsert.rows_unchanged) == (0, 0, 60)
    assert stored.read_bytes() == before
    assert stored.stat().st_mtime_ns == mtime
    assert second.report_json != first.report_json  # every upload gets its own report


def test_later_upload_corrects_earlier_days_and_adds_new_ones(lake: SalesLake, tmp_path: Path) -> None:
    ingest(daily_csv(tmp_path / "a.csv", days=10), lake, tmp_path)
    correction = daily_csv(tmp_path / "b.csv", days=12, bump={(3, 1): 100.0})
    result = ingest(correction, lake, tmp_path)
    # day 3 x sku 1 x 2 stores corrected; days 11-12 x 3 skus x 2 stores new
    assert (result.upsert.rows_updated, result.upsert.rows_new, result.upsert.rows_unchanged) == (2, 12, 58)
    stored = lake.read("acme")
    assert len(stored) == 72
    day3 = stored[(stored["sku"] == "S1") & (stored["date"] == "2024-03-03")]
    assert day3["units"].tolist() == [104.0, 104.0]


def test_failed_upload_leaves_the_lake_exactly_as_before(lake: SalesLake, tmp_path: Path) -> None:
    ingest(daily_csv(tmp_path / "a.csv"), lake, tmp_path)
    before = hash_dir(tmp_path / "lake" / "acme")
    bad = tmp_path / "bad.csv"
    bad.write_text(HEADER + "2024-03-01,S0,1,5\n2024-03-02,S0,1,oops\n")
    with pytest.raises(UploadRejectedError):
        ingest(bad, lake, tmp_path)
    assert hash_dir(tmp_path / "lake" / "acme") == before


def test_upload_whose_merge_fails_is_refused_without_a_trace(lake: SalesLake, tmp_path: Path) -> None:
    """Weekly data on top of three daily days leaves no single frequency: the lake refuses the merge."""
    ingest(daily_csv(tmp_path / "daily.csv", days=3), lake, tmp_path)
    before = hash_dir(tmp_path / "lake" / "acme")
    weekly = tmp_path / "weekly.csv"
    weeks = pd.date_range("2023-01-04", periods=12, freq="7D")
    weekly.write_text(HEADER + "".join(f"{d.date()},S0,1,5\n" for d in weeks))
    with pytest.raises(
        UploadRejectedError, match=r"mostly 7 days apart, but some are \[1, 345\] days apart"
    ) as caught:
        ingest(weekly, lake, tmp_path)
    assert hash_dir(tmp_path / "lake" / "acme") == before
    assert caught.value.report_json is not None
    assert json.loads(caught.value.report_json.read_text())["records"]["frequency"] == "W-WED"


def test_strict_mode_lists_the_first_20_problems_by_row(lake: SalesLake, tmp_path: Path) -> None:
    path = tmp_path / "many.csv"
    rows = [f"2024-03-{1 + i % 28:02d},S{i},1,{'x' if i % 3 == 0 else i}\n" for i in range(90)]
    path.write_text(HEADER + "".join(rows))
    with pytest.raises(UploadRejectedError) as caught:
        ingest(path, lake, tmp_path)
    error = caught.value
    assert error.total == 30
    assert len(error.problems) == 20
    assert [p.row for p in error.problems] == [2 + 3 * k for k in range(20)]
    assert {p.column for p in error.problems} == {"units"}
    assert "and 10 more" in str(error)
    assert not lake.exists("acme")


def test_lenient_mode_stores_good_rows_and_quarantines_the_rest(lake: SalesLake, tmp_path: Path) -> None:
    path = tmp_path / "mixed.csv"
    path.write_text(
        HEADER
        + "2024-03-01,S0,1,5\n"
        + "2024-03-02,S0,1,lots\n"  # row 3
        + "2024-03-03,\"=cmd|' /C calc'!A0\",1,5\n"  # row 4
        + "2024-03-04,S0,1,7\n"
        + "1989-12-31,S0,1,2\n"  # row 6
    )
    result = ingest(path, lake, tmp_path, lenient=True)
    assert result.upsert.rows_new == 2
    assert result.source_rows == 5
    assert result.report["rows"]["rejected"] == 3
    assert result.quarantine is not None
    assert result.quarantine.parent == result.report_json.parent
    with open(result.quarantine, newline="", encoding="utf-8") as handle:
        quarantined = list(csv.DictReader(handle))
    assert [int(r["row"]) for r in quarantined] == [3, 4, 6]
    assert "expected a number, got 'lots'" in quarantined[0]["reasons"]
    assert "formula" in quarantined[1]["reasons"]
    assert "before 1990" in quarantined[2]["reasons"]
    # the refused formula is written back neutralised, never as a live formula
    assert quarantined[1]["sku"] == "'=cmd|' /C calc'!A0"
    assert all(not v.startswith(("=", "@", "+")) for r in quarantined for v in r.values())
    assert lake.read("acme")["units"].tolist() == [5.0, 7.0]


def test_lenient_upload_with_no_good_row_is_refused(lake: SalesLake, tmp_path: Path) -> None:
    path = tmp_path / "allbad.csv"
    path.write_text(HEADER + "2024-03-01,S0,1,x\n2024-03-02,S0,1,y\n")
    with pytest.raises(UploadRejectedError, match="every row was rejected"):
        ingest(path, lake, tmp_path, lenient=True)
    assert not lake.exists("acme")


def test_tenants_are_isolated(lake: SalesLake, tmp_path: Path) -> None:
    ingest(daily_csv(tmp_path / "a.csv", days=2), lake, tmp_path, tenant="alpha")
    ingest(daily_csv(tmp_path / "b.csv", days=5), lake, tmp_path, tenant="beta")
    assert len(lake.read("alpha")) == 12
    assert len(lake.read("beta")) == 30
    assert set(lake.read("alpha")["tenant_id"]) == {"alpha"}
    assert sorted(p.name for p in (tmp_path / "reports").iterdir()) == ["alpha", "beta"]
    assert all(p.parent.name == "uploads" for p in (tmp_path / "reports" / "alpha").glob("*/*"))


def test_negative_daily_units_are_kept_and_warned(lake: SalesLake, tmp_path: Path) -> None:
    path = tmp_path / "returns.csv"
    path.write_text(HEADER + "2024-03-01,S0,1,5\n2024-03-02,S0,1,-3\n2024-03-03,S0,1,4\n")
    result = ingest(path, lake, tmp_path)
    assert lake.read("acme")["units"].tolist() == [5.0, -3.0, 4.0]
    assert result.report["checks"]["negative_units"]["records"] == 1
    assert any("negative net units" in w for w in result.report["warnings"])


def test_progress_reports_bytes_up_to_the_file_size(lake: SalesLake, tmp_path: Path) -> None:
    path = daily_csv(tmp_path / "p.csv", days=28, skus=20)
    seen: list[tuple[int, int]] = []
    ingest(path, lake, tmp_path, progress=lambda done, total: seen.append((done, total)))
    size = path.stat().st_size
    assert seen[-1] == (size, size)
    assert all(total == size for _, total in seen)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)


def test_report_files_are_written_and_html_is_escaped(lake: SalesLake, tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    hostile = "<script>alert(1)</script>"
    path.write_text(
        HEADER
        + "".join(f"2024-03-{d:02d},{hostile},1,{d}\n" for d in (1, 2, 5))
        + "2024-03-04,S1,1,1\n2024-03-09,S1,1,1\n"
    )
    result = ingest(path, lake, tmp_path)
    assert result.report_json.parent == tmp_path / "reports" / "acme" / "uploads" / result.report["upload_id"]
    report = json.loads(result.report_json.read_text())
    assert report == json.loads(json.dumps(result.report, default=str))
    assert report["status"] == "accepted"
    assert report["lake"]["rows_new"] == 5
    page = result.report_html.read_text()
    assert hostile not in page
    assert "&lt;script&gt;" in page  # the hostile sku shows up, escaped, in the gaps table
    assert "accepted" in page


def test_transaction_lines_are_summed_per_day(lake: SalesLake, tmp_path: Path) -> None:
    """An invoice column makes rows transaction lines: cancellations ('C...') net off on their day."""
    path = tmp_path / "tx.csv"
    path.write_text(
        "InvoiceNo,StockCode,Quantity,InvoiceDate,UnitPrice,Country\n"
        "536365,A,6,2010-12-01 08:26:00,2.00,UK\n"
        "536366,A,4,2010-12-01 09:00:00,3.00,UK\n"
        "C536367,A,-2,2010-12-01 10:00:00,2.00,UK\n"
        "536368,A,1,2010-12-02 10:00:00,0,UK\n"
        "536369,B,3,2010-12-02 11:00:00,1.50,France\n"
    )
    result = ingest(path, lake, tmp_path, mapping={"store_id": "Country"})
    stored = lake.read("acme")
    day1 = record(stored, "UK", "A", "2010-12-01")
    assert day1["units"] == 8
    assert day1["revenue"] == pytest.approx(6 * 2 + 4 * 3 - 2 * 2)
    assert day1["unit_price"] == pytest.approx((6 * 2 + 4 * 3) / 10)
    day2 = record(stored, "UK", "A", "2010-12-02")
    assert day2["units"] == 1
    assert day2["revenue"] == 0
    assert np.isnan(day2["unit_price"])
    assert result.report["level"] == "transactions"
    assert result.report["rows"]["cancellations"] == 1
    assert result.report["records"]["series"] == 2


def test_cancellation_with_a_positive_quantity_counts_as_a_return(lake: SalesLake, tmp_path: Path) -> None:
    path = tmp_path / "tx.csv"
    path.write_text(
        "InvoiceNo,StockCode,Quantity,InvoiceDate,UnitPrice\n"
        "536365,A,6,2010-12-01 08:26:00,2.00\n"
        "C536367,A,2,2010-12-01 10:00:00,2.00\n"
    )
    ingest(path, lake, tmp_path)
    assert lake.read("acme")["units"].tolist() == [4.0]


def test_invoices_that_all_start_with_c_are_not_cancellations(lake: SalesLake, tmp_path: Path) -> None:
    path = tmp_path / "tx.csv"
    path.write_text("order_id,sku,qty,date\nC1001,A,2,2024-01-01\nC1002,A,3,2024-01-01\n")
    ingest(path, lake, tmp_path)
    assert lake.read("acme")["units"].tolist() == [5.0]


def test_c_invoices_beside_other_letters_are_sales_not_cancellations(lake: SalesLake, tmp_path: Path) -> None:
    """Counter sales C1001 beside web sales W1002: the counter sales were negated."""
    path = tmp_path / "tx.csv"
    path.write_text("date,store,sku,qty,invoice\n2024-03-01,1,A,2,C1001\n2024-03-01,1,A,3,W1002\n")
    result = ingest(path, lake, tmp_path)
    assert lake.read("acme")["units"].tolist() == [5.0]
    assert result.report["rows"]["cancellations"] == 0


def test_midnight_on_a_12_hour_clock_is_a_date_not_a_transaction(lake: SalesLake, tmp_path: Path) -> None:
    """A date "3/2/2024 12:00:00 AM" read as a time of day: a repeated row was summed, covariates dropped."""
    path = tmp_path / "ampm.csv"
    rows = [
        "3/1/2024 12:00:00 AM,1,A,1,5.5",
        "3/2/2024 12:00:00 AM,1,A,2,6.0",
        "3/2/2024 12:00:00 AM,1,A,2,6.0",
    ]
    path.write_text("date,store,sku,units,temperature\n" + "\n".join(rows) + "\n")
    result = ingest(path, lake, tmp_path)
    stored = lake.read("acme")
    assert stored["units"].tolist() == [1.0, 2.0]
    assert stored["temperature"].tolist() == [5.5, 6.0]
    assert "no times of day" in result.report["level_reason"]
    afternoon = tmp_path / "pm.csv"
    afternoon.write_text("date,store,sku,units\n3/3/2024 12:00:00 PM,1,A,1\n3/3/2024 12:00:00 PM,1,A,1\n")
    assert "times of day" in ingest(afternoon, lake, tmp_path, tenant="noon").report["level_reason"]
    assert lake.read("noon")["units"].tolist() == [2.0]  # two sales at noon


def test_daily_covariates_are_kept_and_text_columns_ignored(lake: SalesLake, tmp_path: Path) -> None:
    path = tmp_path / "w.csv"
    path.write_text(
        "Store,Dept,Date,Weekly_Sales,IsHoliday,Type,Temperature,MarkDown1\n"
        "1,1,2010-02-05,24924.5,FALSE,A,42.31,\n"
        "1,1,2010-02-12,46039.49,TRUE,A,38.51,\n"
        "1,1,2010-02-19,41595.55,FALSE,A,39.93,120.5\n"
    )
    result = ingest(path, lake, tmp_path, mapping={"sku": "Dept", "units": "Weekly_Sales"})
    stored = lake.read("acme")
    assert stored["isholiday"].tolist() == [0.0, 1.0, 0.0]
    assert stored["markdown1"].isna().tolist() == [True, True, False]
    assert "type" not in stored
    assert result.report["mapping"]["ignored_columns"] == ["Type"]
    assert result.upsert.frequency == "W-FRI"


def test_a_covariate_named_like_another_with_old_merges_like_any_other(
    lake: SalesLake, tmp_path: Path
) -> None:
    """A column "Unit Price" beside "Unit Price Old" met the merge's own "_old" suffix: every later upload of
    the tenant failed with "Operands are not aligned"."""

    def week(first: int, price: float) -> Path:
        path = tmp_path / f"days-{first}.csv"
        rows = [f"2024-03-{d:02d},1,A,{d},{price},{price + 1}\n" for d in range(first, first + 7)]
        path.write_text("date,store,sku,units,Unit Price,Unit Price Old\n" + "".join(rows))
        return path

    ingest(week(1, 2.0), lake, tmp_path)
    again = ingest(week(4, 3.0), lake, tmp_path)  # days 4-7 change price, 8-10 are new
    assert (again.upsert.rows_updated, again.upsert.rows_new, again.upsert.rows_unchanged) == (4, 3, 0)
    plain = ingest(daily_csv(tmp_path / "plain.csv", days=2, skus=1), lake, tmp_path)
    assert plain.upsert.rows_total == 10 + 4
    stored = lake.read("acme")
    assert record(stored, "1", "A", "2024-03-05")["unit_price"] == 3.0
    assert record(stored, "1", "A", "2024-03-05")["unit_price_old"] == 4.0
    assert record(stored, "1", "A", "2024-03-02")["unit_price"] == 2.0


def test_weekly_data_into_a_daily_tenant_is_named_and_days_into_a_weekly_one_refused(
    lake: SalesLake, tmp_path: Path
) -> None:
    """The merged table read as daily either way: weekly totals were stored as single days, and days
    uploaded into a weekly tenant turned it daily."""
    ingest(daily_csv(tmp_path / "daily.csv", days=20), lake, tmp_path)
    mondays = pd.date_range("2024-04-01", periods=8, freq="W-MON")
    weekly = tmp_path / "weekly.csv"
    weekly.write_text(HEADER + "".join(f"{d.date()},S0,1,70\n" for d in mondays))
    # the same dates as a stall trading on Mondays only: stored, with a warning either way round
    warned = ingest(weekly, lake, tmp_path)
    assert any("this upload's 8 dates are a week apart (W-MON)" in w for w in warned.report["warnings"])
    assert lake.frequency("acme") == "D"
    few = tmp_path / "few.csv"  # three Mondays: too few to say
    few.write_text(HEADER + "".join(f"{d.date()},S1,1,7\n" for d in mondays[:3]))
    assert not [w for w in ingest(few, lake, tmp_path).report["warnings"] if "a week apart" in w]

    ingest(weekly, lake, tmp_path, tenant="weekly")
    before = hash_dir(tmp_path / "lake" / "weekly")
    days = tmp_path / "days.csv"
    days.write_text(HEADER + "".join(f"2024-06-{d:02d},S0,1,10\n" for d in range(1, 22)))
    with pytest.raises(UploadRejectedError, match=r"weekly sales dated on Mondays; this upload has 18 date"):
        ingest(days, lake, tmp_path, tenant="weekly")
    assert hash_dir(tmp_path / "lake" / "weekly") == before
    assert lake.frequency("weekly") == "W-MON"
    friday = tmp_path / "friday.csv"
    friday.write_text(HEADER + "2024-06-07,S0,1,70\n")
    with pytest.raises(UploadRejectedError, match="first 2024-06-07, a Friday"):
        ingest(friday, lake, tmp_path, tenant="weekly")


def test_day_first_dates_are_read_as_the_tenant_wrote_them_before(lake: SalesLake, tmp_path: Path) -> None:
    """A day-first tenant's upload of 1-2 March alone read month first: 2 March overwrote 3 February."""
    february = tmp_path / "feb.csv"
    days = pd.date_range("2024-02-01", "2024-02-28")
    february.write_text("date,store,sku,units\n" + "".join(f"{d:%d/%m/%Y},1,A,10\n" for d in days))
    first = ingest(february, lake, tmp_path)
    assert first.report["source"]["date_format"] == "%d/%m/%Y"
    assert lake.date_format("acme") == "%d/%m/%Y"
    march = tmp_path / "march.csv"
    march.write_text("date,store,sku,units\n01/03/2024,1,A,11\n02/03/2024,1,A,99\n")
    later = ingest(march, lake, tmp_path)
    assert (later.upsert.rows_new, later.upsert.rows_updated) == (2, 0)
    assert not [w for w in later.report["warnings"] if "read either way" in w]
    stored = lake.read("acme")
    assert record(stored, "1", "A", "2024-02-03")["units"] == 10.0
    assert record(stored, "1", "A", "2024-03-02")["units"] == 99.0
    lake.update_outages("acme", lambda marked: [*marked, Outage.parse("2024-02-10", "2024-02-11")])
    assert lake.date_format("acme") == "%d/%m/%Y"  # marking an outage keeps it
    iso = tmp_path / "iso.csv"  # ISO dates say nothing about the order: the tenant's stays
    iso.write_text("date,store,sku,units\n2024-03-04,1,A,20\n2024-03-05,1,A,20\n")
    ingest(iso, lake, tmp_path)
    assert lake.date_format("acme") == "%d/%m/%Y"
    till = tmp_path / "till.csv"
    till.write_text("date,store,sku,units\n03/02/2024,1,A,77\n")
    ingest(till, lake, tmp_path)
    assert record(lake.read("acme"), "1", "A", "2024-02-03")["units"] == 77.0
    assert record(lake.read("acme"), "1", "A", "2024-03-02")["units"] == 99.0


def test_a_guess_between_day_and_month_first_is_not_remembered(lake: SalesLake, tmp_path: Path) -> None:
    one = tmp_path / "one.csv"
    one.write_text("date,store,sku,units\n05/03/2024,1,A,1\n")
    assert any("read either way" in w for w in ingest(one, lake, tmp_path).report["warnings"])
    assert lake.date_format("acme") is None  # a tie-break, not the tenant's habit
    two = tmp_path / "two.csv"
    two.write_text("date,store,sku,units\n06/03/2024,1,A,1\n")
    with pytest.raises(UploadRejectedError, match="read either way"):  # May 3 then June 3: a month apart
        ingest(two, lake, tmp_path)


def test_the_date_format_is_chosen_from_distinct_dates_not_the_first_rows(
    lake: SalesLake, tmp_path: Path
) -> None:
    """Sorted by date with 250 SKUs a day, the first 2,000 rows held only 1-8 March, all ambiguous:
    the file was read month first and refused as "31 days apart"."""
    path = tmp_path / "sorted.csv"
    days = pd.date_range("2024-03-01", "2024-03-31")
    path.write_text(
        "date,store,sku,units\n" + "".join(f"{d:%d/%m/%Y},1,S{s},1\n" for d in days for s in range(250))
    )
    result = ingest(path, lake, tmp_path)
    assert result.report["source"]["date_format"] == "%d/%m/%Y"
    assert lake.read("acme")["date"].max() == pd.Timestamp("2024-03-31")

    twelve = tmp_path / "twelve.csv"  # every date ambiguous: month first, and the refusal says so
    twelve.write_text("date,store,sku,units\n" + "".join(f"{d:02d}/03/2024,1,A,1\n" for d in range(1, 13)))
    with pytest.raises(UploadRejectedError, match=r'read as %m/%d/%Y \(month first\).*"%d/%m/%Y"'):
        ingest(twelve, lake, tmp_path, tenant="fresh")


def test_transactions_that_replace_stored_days_are_named(lake: SalesLake, tmp_path: Path) -> None:
    """The rest of a day's transactions sent later replaced the day's first part without a word."""
    morning, evening = tmp_path / "morning.csv", tmp_path / "evening.csv"
    morning.write_text("date,store,sku,units\n2024-03-01 09:15,1,A,2\n2024-03-01 11:40,1,A,3\n")
    evening.write_text("date,store,sku,units\n2024-03-01 14:05,1,A,1\n2024-03-01 17:30,1,A,1\n")
    assert not [w for w in ingest(morning, lake, tmp_path).report["warnings"] if "replaced" in w]
    later = ingest(evening, lake, tmp_path)
    assert any(
        "1 store x SKU x day total(s) already stored were replaced" in w for w in later.report["warnings"]
    )
    assert lake.read("acme")["units"].tolist() == [2.0]  # whole days replace: the documented semantics


def test_a_correction_without_a_column_keeps_its_stored_values(lake: SalesLake, tmp_path: Path) -> None:
    """A units-only correction of a day erased the day's stored price and temperature."""
    full = tmp_path / "full.csv"
    full.write_text(
        "date,store,sku,units,unit_price,temperature\n2024-03-01,1,A,5,2.5,11\n2024-03-02,1,A,6,2.5,12\n"
    )
    ingest(full, lake, tmp_path)
    units_only = tmp_path / "fix.csv"
    units_only.write_text("date,store,sku,units\n2024-03-02,1,A,9\n2024-03-03,1,A,4\n")
    result = ingest(units_only, lake, tmp_path)
    assert (result.upsert.rows_updated, result.upsert.rows_new) == (1, 1)
    stored = lake.read("acme")
    fixed = record(stored, "1", "A", "2024-03-02")
    assert (fixed["units"], fixed["unit_price"], fixed["temperature"]) == (9.0, 2.5, 12.0)
    assert np.isnan(record(stored, "1", "A", "2024-03-03")["temperature"])  # a new day has none
    again = ingest(units_only, lake, tmp_path)
    assert again.upsert.rows_unchanged == 2  # the same correction again changes nothing
