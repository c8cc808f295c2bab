"""Typed parsing of cells: dates, numbers, identifiers (formula injection), and column mapping."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from features.errors import ContractError
from features.sources.cells import choose_date_format, clean_identifiers, parse_dates, parse_numbers
from features.sources.mapping import covariate_name, load_mapping, resolve_mapping


def s(*values: object) -> pd.Series:
    return pd.Series(list(values), dtype=object)


@pytest.mark.parametrize(
    ("values", "expected_format", "ambiguous"),
    [
        (["2024-01-05", "2024-12-31"], "%Y-%m-%d", False),
        (["2010-12-01 08:26:00", "2011-01-04T10:00:00+01:00"], "%Y-%m-%d", False),
        (["05.01.2024", "31.12.2024"], "%d.%m.%Y", False),
        (["01/05/2024", "12/31/2024"], "%m/%d/%Y", False),
        (["05/01/2024", "31/12/2024"], "%d/%m/%Y", False),
        (["01/05/2024", "02/03/2024"], "%m/%d/%Y", True),
        (["12/1/2010 8:26", "12/1/2010 8:28"], "%m/%d/%Y", True),
        (["20240105", "20241231"], "%Y%m%d", False),
        (["05-Jan-2024", "31-Dec-2024"], "%d-%b-%Y", False),
    ],
)
def test_date_format_is_chosen_from_the_values(
    values: list[str], expected_format: str, ambiguous: bool
) -> None:
    assert choose_date_format(pd.Series(values)) == (expected_format, ambiguous)


def test_dates_keep_the_local_date_written_and_flag_bad_and_empty_cells() -> None:
    raw = s("2024-03-01T23:30:00-05:00", "2024-03-02 00:15:00+09:00", "2024-02-30", "", None, "2024-03-03")
    dates, bad, missing = parse_dates(raw, "%Y-%m-%d")
    assert dates.dt.strftime("%Y-%m-%d").tolist()[:2] == ["2024-03-01", "2024-03-02"]
    assert dates.iloc[5] == pd.Timestamp("2024-03-03")
    assert bad.tolist() == [False, False, True, False, False, False]
    assert missing.tolist() == [False, False, False, True, True, False]
    assert str(dates.dtype) == "datetime64[ns]"


def test_dates_from_excel_objects_mixed_with_text() -> None:
    raw = s(dt.datetime(2024, 1, 1, 17, 0), dt.date(2024, 1, 2), "2024-01-03", 45000)
    dates, bad, _ = parse_dates(raw, "%Y-%m-%d")
    assert dates.iloc[:3].dt.day.tolist() == [1, 2, 3]
    assert bad.tolist() == [False, False, False, True]  # a bare number is not taken for a date


def test_numbers_plain_loose_and_bad() -> None:
    values, bad, missing = parse_numbers(s("3", " 4.5 ", "1e3", "$1,234.50", "-2", "five", "", None, "nan"))
    assert values.tolist()[:5] == [3.0, 4.5, 1000.0, 1234.5, -2.0]
    assert bad.tolist() == [False] * 5 + [True, False, False, True]
    assert missing.tolist() == [False] * 6 + [True, True, False]


@pytest.mark.parametrize(
    ("cells", "expected"),
    [
        (["1.500", "980", "2.100", "1.500,00"], [1500.0, 980.0, 2100.0, 1500.0]),  # "1.500" was 1.5
        (["1.500", "980", "2.100"], [1500.0, 980.0, 2100.0]),  # every dot groups three digits
        (["1.234.567", "2,5"], [1234567.0, 2.5]),
        (["2.5", "10.25", "1.500"], [2.5, 10.25, 1.5]),  # a semicolon file that writes decimal dots
        (["0.250", "1.500", "0.990"], [0.25, 1.5, 0.99]),  # prices: "0.250" groups no thousands
        (["1.459", "1.519"], [1.459, 1.519]),  # fuel prices: every value dotted, none under 1,000
        (["1.500", "1500"], [1.5, 1500.0]),  # a thousand written without a dot: dots are decimals
    ],
)
def test_a_semicolon_files_dots_are_read_as_its_column_writes_them(
    cells: list[str], expected: list[float]
) -> None:
    values, bad, _ = parse_numbers(pd.Series(cells, dtype=object), decimal_comma=True)
    assert values.tolist() == expected
    assert not bad.any()


def test_ids_in_scientific_notation_are_refused_as_lost_digits() -> None:
    """Excel saves an 18-digit id as 1.23457E+17 in CSV (and a float cell reads 1.234567890123457e+17):
    the id's last digits are gone, and it was stored as a series of its own."""
    raw = pd.Series(["1.23457E+17", 1.234567890123457e17, "123456789012345678", "2E5", "7"], dtype=object)
    text, problems = clean_identifiers(raw, np.arange(2, 7), "sku", "sku", required=True)
    found = pd.concat(problems, ignore_index=True)
    assert found["row"].tolist() == [2, 3]
    assert found["message"].str.contains("scientific notation").all()
    assert text.tolist()[2:] == ["123456789012345678", "2E5", "7"]  # codes such as 2E5 stay ids


def test_booleans_only_when_asked() -> None:
    assert parse_numbers(s("TRUE", "no"), booleans=True)[0].tolist() == [1.0, 0.0]
    assert parse_numbers(s("TRUE", "no"))[1].tolist() == [True, True]
    values, bad, _ = parse_numbers(pd.Series([True, False, None], dtype=object), booleans=True)
    assert values.tolist()[:2] == [1.0, 0.0]
    assert not bad.any()


def test_identifiers_refuse_formulas_but_not_negative_numbers() -> None:
    raw = s(
        "A-1", "=cmd|' /C calc'!A0", "+1+2", "@SUM(A1)", "-5", " -ABC", "tab\tin", "x" * 129, 17, 3.0, None
    )
    rows = np.arange(2, 2 + len(raw))
    text, problems = clean_identifiers(raw, rows, "sku", "sku", required=True)
    found = pd.concat(problems, ignore_index=True).set_index("row")["message"]
    assert text.tolist()[:1] == ["A-1"]
    assert text.iloc[4] == "-5"
    assert text.iloc[8] == "17"
    assert text.iloc[9] == "3"
    assert sorted(found.index) == [3, 4, 5, 7, 8, 9, 12]
    assert all("formula injection" in found[r] for r in (3, 4, 5, 7))
    assert "control characters" in found[8]
    assert "longer than 128" in found[9]
    assert found[12] == "sku is empty"
    assert text.take([1, 2, 3, 5, 6, 7, 10]).isna().all()


# -- mapping -----------------------------------------------------------------------------------


def test_detection_on_the_shared_data_headers() -> None:
    retail = resolve_mapping(
        "r",
        [
            "InvoiceNo",
            "StockCode",
            "Description",
            "Quantity",
            "InvoiceDate",
            "UnitPrice",
            "CustomerID",
            "Country",
        ],
        {},
    )
    assert retail.fields == {
        "date": "InvoiceDate",
        "sku": "StockCode",
        "units": "Quantity",
        "unit_price": "UnitPrice",
        "invoice": "InvoiceNo",
    }
    assert "Country" in retail.others  # a customer's country is not a store unless the user says so
    walmart = resolve_mapping("w", ["store_id", "dept_id", "date", "weekly_sales", "is_holiday"], {})
    assert (walmart.fields["sku"], walmart.fields["units"]) == ("dept_id", "weekly_sales")
    demand = resolve_mapping("d", ["date", "store_id", "item_id", "units"], {})
    assert demand.fields == {"date": "date", "sku": "item_id", "units": "units", "store_id": "store_id"}


def test_given_mapping_wins_and_takes_the_column_out_of_detection() -> None:
    fields = resolve_mapping("f", ["Date", "sku", "item", "Qty"], {"sku": "item", "store_id": "sku"})
    assert fields.fields == {"sku": "item", "store_id": "sku", "date": "Date", "units": "Qty"}
    assert fields.detected == ("date", "units")


def test_mapping_file_and_options(tmp_path: Path) -> None:
    path = tmp_path / "m.json"
    path.write_text(json.dumps({"store_id": "Country", "date_format": "%d/%m/%Y"}), encoding="utf-8-sig")
    given = load_mapping(path)
    fields = resolve_mapping("f", ["InvoiceDate", "StockCode", "Quantity", "Country"], given)
    assert fields.fields["store_id"] == "Country"
    assert fields.options == {"date_format": "%d/%m/%Y"}


@pytest.mark.parametrize(
    ("mapping", "message"),
    [
        ({"sku": "Nope"}, "no such column"),
        ({"sku": "a", "units": "a"}, "mapped to more than one field"),
        ({"qty": "a"}, "unknown mapping key"),
        ({"sku": 3}, "expected a JSON object"),
    ],
)
def test_bad_mappings_are_named(mapping: dict[str, str], message: str) -> None:
    with pytest.raises(ContractError, match=message):
        resolve_mapping("f", ["a", "date", "units"], load_mapping(mapping))


def test_the_date_format_option_keeps_its_date_part_and_refuses_what_is_no_date() -> None:
    """The option read "%d/%m/%Y %H:%M" refused every "01/03/2025 10:15" (ingest cuts times off
    before parsing), and "%Q" failed with a traceback."""
    assert load_mapping({"date_format": "%d/%m/%Y %H:%M"})["date_format"] == "%d/%m/%Y"
    assert load_mapping({"date_format": "%Y-%m-%dT%H:%M:%S%z"})["date_format"] == "%Y-%m-%d"
    assert load_mapping({"date_format": "%m/%d/%y %I:%M %p"})["date_format"] == "%m/%d/%y"
    with pytest.raises(ContractError, match="'%Q' is not a date format"):
        load_mapping({"date_format": "%Q"})
    for partial in ("%d/%m", "%H:%M"):
        with pytest.raises(ContractError, match="does not name a day, a month and a year"):
            load_mapping({"date_format": partial})


def test_a_field_mapped_to_null_is_not_detected() -> None:
    """Shopify's order export: "Location" is blank on online orders; {"store_id": null} says the file
    has no store column, where detection took it for one and refused every online order."""
    columns = ["Created at", "Lineitem sku", "Lineitem quantity", "Location"]
    given = load_mapping({"date": "Created at", "sku": "Lineitem sku", "units": "Lineitem quantity"})
    assert resolve_mapping("orders.csv", columns, given).fields["store_id"] == "Location"
    off = load_mapping({**given, "store_id": None})
    mapping = resolve_mapping("orders.csv", columns, off)
    assert "store_id" not in mapping.fields
    assert "Location" in mapping.others
    with pytest.raises(ContractError, match="not for date, sku or units"):
        load_mapping({"sku": None})


def test_a_missing_column_names_the_likely_cause() -> None:
    """A wide table (dates as columns) and a workbook's title row were told to check the delimiter."""
    with pytest.raises(ContractError, match="a wide layout, one column per day"):
        resolve_mapping("wide.csv", ["sku", "store", "2025-03-01", "2025-03-02"], {})
    with pytest.raises(ContractError, match="read from row 1 of sheet 'Summary'"):
        resolve_mapping("book.xlsx", ["Total", "55"], {}, "row 1 of sheet 'Summary'")
    with pytest.raises(ContractError, match="is the delimiter one of"):
        resolve_mapping("one.csv", ["date;sku;units"], {})


def test_covariate_names_are_safe_identifiers() -> None:
    assert covariate_name("Fuel Price ($)") == "fuel_price"
    assert covariate_name("2nd markdown") == "x_2nd_markdown"
