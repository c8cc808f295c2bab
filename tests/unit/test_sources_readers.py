"""Readers: delimiters, encodings, gzip, Excel and Parquet all give the same records, streamed."""

from __future__ import annotations

import codecs
import datetime as dt
import gzip
from pathlib import Path

import numpy as np
import openpyxl
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from features.errors import ContractError
from features.ingest import ingest_file
from features.lake import SalesLake
from features.sources.csv import CsvSource, sniff_delimiter
from features.sources.excel import ExcelSource
from features.sources.parquet import ParquetSource

TODAY = dt.date(2024, 6, 30)
ROWS = [
    ("2024-01-01", "café-1", "1", "3"),
    ("2024-01-02", "café-1", "1", "4"),
    ("2024-01-02", "Bär €", "2", "5"),
]


def _body(delimiter: str = ",") -> str:
    return "\n".join(delimiter.join(r) for r in [("date", "sku", "store", "units"), *ROWS]) + "\n"


def _stored(path: Path, tmp_path: Path, **kwargs: object) -> pd.DataFrame:
    lake = SalesLake(tmp_path / "lake")
    ingest_file(path, "acme", lake, tmp_path / "reports", today=TODAY, **kwargs)  # type: ignore[arg-type]
    return lake.read("acme")[["store_id", "sku", "date", "units"]]


EXPECTED = pd.DataFrame(
    {
        "store_id": ["1", "1", "2"],
        "sku": ["café-1", "café-1", "Bär €"],
        "date": pd.to_datetime(["2024-01-01", "2024-01-02", "2024-01-02"]),
        "units": [3.0, 4.0, 5.0],
    }
).sort_values(["store_id", "sku", "date"], ignore_index=True)


@pytest.mark.parametrize("delimiter", [",", ";", "\t", "|"])
def test_any_delimiter(delimiter: str, tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    path.write_text(_body(delimiter), encoding="utf-8")
    pd.testing.assert_frame_equal(_stored(path, tmp_path), EXPECTED)


@pytest.mark.parametrize(
    ("encoding", "bom"),
    [
        ("utf-8", b""),
        ("utf-8", codecs.BOM_UTF8),
        ("cp1252", b""),
        ("latin-1", b""),
        ("utf-16-le", codecs.BOM_UTF16_LE),
    ],
)
def test_encodings_with_and_without_bom(encoding: str, bom: bytes, tmp_path: Path) -> None:
    body = _body().replace("€", "E") if encoding == "latin-1" else _body()
    path = tmp_path / "e.csv"
    path.write_bytes(bom + body.encode(encoding))
    expected = (
        EXPECTED.assign(sku=EXPECTED["sku"].str.replace("€", "E")) if encoding == "latin-1" else EXPECTED
    )
    pd.testing.assert_frame_equal(_stored(path, tmp_path), expected)


def test_latin1_byte_far_beyond_the_sample_is_still_decoded(tmp_path: Path) -> None:
    """The encoding is decided on the whole file, not its first kilobytes."""
    lines = (
        ["date,sku,units"]
        + [f"2024-01-{1 + i % 28:02d},A{i},1" for i in range(30_000)]
        + ["2024-01-01,Müller,2"]
    )
    path = tmp_path / "late.csv"
    path.write_bytes("\n".join(lines).encode("cp1252"))
    source = CsvSource(path, path.name, None)
    assert path.stat().st_size > 300_000
    assert source.encoding == "cp1252"
    assert "Müller" in set(_stored(path, tmp_path)["sku"])


def test_gzip_gives_the_same_records_and_counts_compressed_bytes(tmp_path: Path) -> None:
    path = tmp_path / "d.csv.gz"
    path.write_bytes(gzip.compress(_body().encode()))
    seen: list[tuple[int, int]] = []
    pd.testing.assert_frame_equal(
        _stored(path, tmp_path, progress=lambda d, t: seen.append((d, t))), EXPECTED
    )
    assert seen[-1] == (path.stat().st_size, path.stat().st_size)


def test_csv_is_read_in_chunks_with_file_row_numbers(tmp_path: Path) -> None:
    path = tmp_path / "big.csv"
    path.write_text("date,sku,units\n" + "".join(f"2024-01-01,S{i},{i}\n" for i in range(2_500)))
    seen: list[int] = []
    source = CsvSource(path, path.name, lambda done, total: seen.append(done), chunk_rows=1_000)
    chunks = list(source.chunks())
    assert [len(c.frame) for c in chunks] == [1_000, 1_000, 500]
    assert chunks[1].rows[0] == 1_002  # header is row 1, first data row is row 2
    assert chunks[2].frame.iloc[0].tolist() == ["2024-01-01", "S2000", "2000"]
    assert len(seen) == 4
    assert seen[-1] == path.stat().st_size


def test_blank_lines_are_skipped_but_rows_keep_their_numbers(tmp_path: Path) -> None:
    from features.ingest import UploadRejectedError

    path = tmp_path / "blank.csv"
    path.write_text("date,sku,units\n2024-01-01,A,1\n\n,,\n2024-01-02,A,x\n")
    with pytest.raises(UploadRejectedError) as caught:
        _stored(path, tmp_path)
    assert caught.value.problems[0].row == 5


def test_sniffer_prefers_the_delimiter_that_splits_consistently() -> None:
    assert sniff_delimiter('date;sku;name\n2024-01-01;A;"Smith, J"\n') == ";"
    assert sniff_delimiter("date,sku\n2024-01-01,A\n") == ","
    assert sniff_delimiter("only\none\n") == ","


def test_semicolon_file_with_decimal_commas(tmp_path: Path) -> None:
    path = tmp_path / "eu.csv"
    path.write_text("Datum;Artikel;Menge;Preis\n01.02.2024;A;3;1.234,50\n02.02.2024;A;2,5;9,99\n")
    lake = SalesLake(tmp_path / "lake")
    result = ingest_file(
        path,
        "acme",
        lake,
        tmp_path / "r",
        today=TODAY,
        mapping={"date": "Datum", "sku": "Artikel", "units": "Menge", "unit_price": "Preis"},
    )
    stored = lake.read("acme")
    assert stored["date"].dt.strftime("%Y-%m-%d").tolist() == ["2024-02-01", "2024-02-02"]
    assert stored["units"].tolist() == [3.0, 2.5]
    assert stored["unit_price"].tolist() == [1234.5, 9.99]
    assert result.report["source"]["date_format"] == "%d.%m.%Y"


def _workbook(path: Path, rows: list[list[object]]) -> Path:
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "Sales"
    for row in rows:
        sheet.append(row)
    book.save(path)
    return path


def test_excel_with_title_rows_dates_and_numeric_ids(tmp_path: Path) -> None:
    path = _workbook(
        tmp_path / "s.xlsx",
        [
            [],
            ["Date", "Item ID", "Store", "Qty", "Price"],
            [dt.datetime(2024, 1, 1), 1001, 1.0, 3, 2.5],
            [dt.datetime(2024, 1, 2, 15, 30), 1001, 1.0, 4, 2.5],
            ["2024-01-03", "1001", "1", 5, "2.50"],
        ],
    )
    source = ExcelSource(path, path.name, None)
    assert source.columns == ["Date", "Item ID", "Store", "Qty", "Price"]
    assert source.info.details == {"sheet": "Sales", "header_row": 2}
    assert next(iter(source.chunks())).rows.tolist() == [3, 4, 5]
    stored = _stored(path, tmp_path)
    assert stored["sku"].unique().tolist() == ["1001"]
    assert stored["store_id"].unique().tolist() == ["1"]
    assert stored["units"].tolist() == [
        3.0,
        4.0,
        5.0,
    ]  # one line per day: a time of day makes it transactions


def test_excel_chunks_and_progress(tmp_path: Path) -> None:
    rows: list[list[object]] = [["date", "sku", "units"]]
    rows += [[dt.datetime(2024, 1, 1 + i % 28), f"S{i}", i] for i in range(120)]
    path = _workbook(tmp_path / "c.xlsx", rows)
    seen: list[int] = []
    chunks = list(ExcelSource(path, path.name, lambda d, t: seen.append(d), chunk_rows=50).chunks())
    assert [len(c.frame) for c in chunks] == [50, 50, 20]
    assert chunks[2].rows[-1] == 121
    assert seen[-1] == path.stat().st_size


def test_parquet_dates_of_every_kind(tmp_path: Path) -> None:
    frame = pd.DataFrame(
        {
            "date": [dt.date(2024, 1, 1), dt.date(2024, 1, 2)],
            "ts": pd.to_datetime(["2024-01-01 23:30", "2024-01-02 00:10"]).tz_localize("America/New_York"),
            "text": ["2024-01-01", "2024-01-02"],
            "sku": [1, 1],
            "units": np.array([3, 4], dtype=np.int32),
            "promo": [True, False],
        }
    )
    path = tmp_path / "p.parquet"
    frame.to_parquet(path, index=False)
    chunk = next(iter(ParquetSource(path, path.name, None).chunks()))
    assert chunk.rows.tolist() == [1, 2]
    for column in ("date", "ts", "text"):
        lake = SalesLake(tmp_path / column)
        ingest_file(path, "acme", lake, tmp_path / "r", today=TODAY, mapping={"date": column})
        stored = lake.read("acme")
        # a zoned timestamp keeps its local (wall clock) date, not the UTC one
        assert stored["date"].dt.strftime("%Y-%m-%d").tolist() == ["2024-01-01", "2024-01-02"], column
        assert stored["on_promotion"].tolist() == [1.0, 0.0]


def test_covariate_empty_in_the_first_chunk_is_kept_and_an_empty_one_dropped(tmp_path: Path) -> None:
    """Walmart-like: markdowns start late in a file sorted by date (the first 100,000-row chunk has none)."""
    weeks = pd.date_range("2010-02-05", periods=130, freq="7D").strftime("%Y-%m-%d")
    depts = 1_000
    frame = pd.DataFrame(
        {
            "date": np.repeat(weeks, depts),
            "store": 1,
            "dept": np.tile(np.arange(depts), len(weeks)),
            "weekly_sales": 100.0,
        }
    )
    late = frame.index >= 110_000
    frame["markdown1"] = np.where(late, "2.5", "")
    frame["unused"] = ""
    path = tmp_path / "w.csv"
    frame.to_csv(path, index=False)
    lake = SalesLake(tmp_path / "lake")
    result = ingest_file(path, "acme", lake, tmp_path / "r", today=TODAY)
    stored = lake.read("acme")
    assert stored["markdown1"].notna().sum() == late.sum() == 20_000
    assert "unused" not in stored
    assert result.report["mapping"]["covariates"] == ["markdown1"]
    assert result.report["mapping"]["ignored_columns"] == ["unused"]


@pytest.mark.parametrize("stray_row", [2, 9])
def test_utf8_file_with_one_stray_cp1252_byte_is_refused_naming_its_row(
    stray_row: int, tmp_path: Path
) -> None:
    """Read as cp1252, every 'Köln' would become 'KÃ¶ln', a new series beside last week's clean upload.

    A genuine cp1252 file, even one with a byte pair that happens to be valid UTF-8, is still read.
    """
    rows = [f"2024-03-{day:02d},Köln,Café-Crème,{day},ok".encode() for day in range(1, 9)]
    rows[stray_row - 2] = rows[stray_row - 2].replace(b"ok", b"size S \x96 M")
    path = tmp_path / "stray.csv"
    path.write_bytes(b"date,store,sku,units,description\n" + b"\n".join(rows) + b"\n")
    with pytest.raises(ContractError) as caught:
        _stored(path, tmp_path)
    problem = caught.value.problems[0]
    assert (problem.file, problem.row) == ("stray.csv", stray_row)
    assert "0x96" in problem.message
    assert "re-save the file as UTF-8" in problem.message

    genuine = tmp_path / "genuine.csv"  # 'É' then a closing quote is C9 94, valid UTF-8 ('ɔ') by chance
    genuine.write_bytes(
        "date,store,sku,units\n2024-03-01,Köln,CAFÉ”,1\n2024-03-01,Köln,Müller,2\n".encode("cp1252")
    )
    assert CsvSource(genuine, genuine.name, None).encoding == "cp1252"
    assert set(_stored(genuine, tmp_path / "g")["sku"]) == {"CAFÉ”", "Müller"}
    # the same chance pair ten times ('É®' reads as 'ɮ') beside one bad byte: one character, not ten
    repeated = tmp_path / "repeated.csv"
    lines = [f"2024-03-{d:02d},1,NESCAFÉ® GOLD,{d}" for d in range(1, 11)] + ["2024-03-11,1,MÜNCHEN,1"]
    repeated.write_bytes(("date,store,sku,units\n" + "\n".join(lines) + "\n").encode("cp1252"))
    assert CsvSource(repeated, repeated.name, None).encoding == "cp1252"


@pytest.mark.parametrize("rows", [3, 30_000])
def test_classic_mac_line_endings(rows: int, tmp_path: Path) -> None:
    """CR alone ends a line in old Mac exports; the larger file also ends its sample mid-file."""
    path = tmp_path / "mac.csv"
    lines = ["date,sku,store,units"] + [",".join(ROWS[i % 3]) for i in range(rows)]
    path.write_bytes("\r".join(lines).encode() + b"\r")
    source = CsvSource(path, path.name, None)
    assert source.columns == ["date", "sku", "store", "units"]
    assert sum(len(c.frame) for c in source.chunks()) == rows
    if rows == 3:
        pd.testing.assert_frame_equal(_stored(path, tmp_path), EXPECTED)


def test_excel_reads_the_first_visible_sheet_and_says_which(tmp_path: Path) -> None:
    book = openpyxl.Workbook()
    old = book.active
    old.title, old.sheet_state = "old", "hidden"
    old.append(["date", "store", "sku", "units"])
    old.append([dt.datetime(2024, 1, 1), "9", "Z", 999])
    data = book.create_sheet("Data")
    data.append(["date", "store", "sku", "units"])
    for day in (1, 2, 3):
        data.append([dt.datetime(2024, 3, day), "1", "A", day])
    book.create_sheet("Notes").append(["written by hand"])
    path = tmp_path / "hidden.xlsx"
    book.save(path)
    source = ExcelSource(path, path.name, None)
    assert source.info.details["sheet"] == "Data"
    assert source.info.warnings == [
        "the workbook has 2 visible sheets; read only the first, 'Data' (not 'Notes'): move the sales sheet "
        "first if that is wrong"
    ]
    lake = SalesLake(tmp_path / "lake")
    result = ingest_file(path, "acme", lake, tmp_path / "reports", today=TODAY)
    assert result.report["source"]["sheet"] == "Data"
    assert source.info.warnings[0] in result.report["warnings"]  # the report and the CLI say it too
    stored = lake.read("acme")
    assert stored[["store_id", "sku", "units"]].values.tolist() == [
        ["1", "A", 1.0],
        ["1", "A", 2.0],
        ["1", "A", 3.0],
    ]


def _far_dates(kind: str, path: Path) -> Path:
    if kind == "xlsx":
        return _workbook(
            path.with_suffix(".xlsx"),
            [
                ["date", "sku", "units"],
                [dt.datetime(2024, 1, 1), "A", 1],
                [dt.datetime(9999, 12, 31), "A", 2],
            ],
        )
    dates = (
        pa.array(np.array(["2024-01-01", "2500-01-01"], dtype="datetime64[ms]"))
        if kind == "timestamp[ms]"
        else pa.array([dt.date(2024, 1, 1), dt.date(9999, 12, 31)], pa.date32())
    )
    pq.write_table(
        pa.table({"date": dates, "sku": ["A", "A"], "units": [1.0, 2.0]}), path.with_suffix(".parquet")
    )
    return path.with_suffix(".parquet")


@pytest.mark.parametrize(
    ("kind", "row", "shown"),
    [("xlsx", 3, "'9999-12-31'"), ("timestamp[ms]", 2, "'2500-01-01'"), ("date32", 2, "'9999-12-31'")],
)
def test_typed_dates_pandas_cannot_hold_are_refused_like_csv_text(
    kind: str, row: int, shown: str, tmp_path: Path
) -> None:
    """Excel's open-end 9999-12-31 and Parquet dates past 2262 overflowed in the converter (a 500)."""
    path = _far_dates(kind, tmp_path / "far")
    with pytest.raises(ContractError) as caught:
        _stored(path, tmp_path)
    problem = caught.value.problems[0]
    assert (problem.row, problem.column) == (row, "date")
    assert problem.message.startswith(f"cannot read {shown} as a date")
    stored = _stored(path, tmp_path, lenient=True)
    assert stored["date"].tolist() == [pd.Timestamp("2024-01-01")]


@pytest.mark.parametrize("column", ["sku", "tags"])
def test_parquet_list_column_is_refused_naming_it(column: str, tmp_path: Path) -> None:
    """A list per cell cannot key a series; even an unused one cannot be hashed for duplicate counts."""
    table: dict[str, object] = {"date": [dt.date(2024, 1, 1)] * 2, "sku": ["A", "B"], "units": [1.0, 2.0]}
    table[column] = pa.array([["A", "B"], ["C"]])
    path = tmp_path / "nested.parquet"
    pq.write_table(pa.table(table), path)
    with pytest.raises(ContractError) as caught:
        _stored(path, tmp_path)
    problem = caught.value.problems[0]
    assert (problem.file, problem.column) == ("nested.parquet", column)
    assert "expected one text, number or date per cell" in problem.message


def test_parquet_text_stored_as_bytes_is_read_as_text(tmp_path: Path) -> None:
    """Older Spark and Hive writers store strings as BYTE_ARRAY without a UTF-8 annotation: ids
    arrived as "b'A'" and formed series of their own."""
    table = pa.table(
        {
            "date": [dt.date(2024, 3, 1), dt.date(2024, 3, 2)],
            "store": pa.array([b"1", b"1"], pa.binary()),
            "sku": pa.array([b"A", "Köln".encode()], pa.binary()),
            "units": [1.0, 2.0],
        }
    )
    pq.write_table(table, tmp_path / "spark.parquet")
    lake = SalesLake(tmp_path / "lake")
    ingest_file(tmp_path / "spark.parquet", "acme", lake, tmp_path / "reports", today=TODAY)
    assert lake.read("acme")[["store_id", "sku"]].values.tolist() == [["1", "A"], ["1", "Köln"]]


def test_excels_sep_line_names_the_delimiter_and_rows_keep_their_numbers(tmp_path: Path) -> None:
    """The "sep=;" first line was read as the header: "the file's columns are ['sep=;']"."""
    path = tmp_path / "excel.csv"
    path.write_text("sep=;\ndate;store;sku;units\n2024-03-01;1;A;1,5\n2024-03-02;1;A;x\n")
    source = CsvSource(path, path.name, None)
    assert (source.delimiter, source.columns) == (";", ["date", "store", "sku", "units"])
    with pytest.raises(ContractError) as caught:
        ingest_file(path, "acme", SalesLake(tmp_path / "lake"), tmp_path / "reports", today=TODAY)
    assert [(p.row, p.column) for p in caught.value.problems] == [(4, "units")]  # line 4 of the file
    tabbed = tmp_path / "tabbed.csv"
    tabbed.write_text("sep=\t\ndate\tstore\tsku\tunits\n2024-03-01\t1\tA\t2\n")
    assert CsvSource(tabbed, tabbed.name, None).delimiter == "\t"
    path.write_text("sep=;\ndate;store;sku;units\n2024-03-01;1;A;1,5\n")
    lake = SalesLake(tmp_path / "lake")
    ingest_file(path, "acme", lake, tmp_path / "reports", today=TODAY)
    assert lake.read("acme")["units"].tolist() == [1.5]
