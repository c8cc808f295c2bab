"""Table of bad uploads: each is refused with an error naming the problem, and the lake stays as it was.

Every case runs against a tenant that already holds data, and the tenant's lake directory is hashed
(names and bytes of every file) before and after, so "unchanged" means byte-for-byte.
"""

from __future__ import annotations

import codecs
import gzip
import hashlib
import io
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import openpyxl
import pandas as pd
import pytest

from features.errors import ContractError
from features.ingest import UploadRejectedError, UploadTooLargeError, ingest_file
from features.lake import SalesLake
from ordernimbus.errors import OrderNimbusError, TenantError

TENANT = "acme"
TODAY = date(2024, 6, 30)
GOOD = "date,sku,store,units\n" + "".join(
    f"2024-01-{d:02d},A{s},{s},{d + s}\n" for d in range(1, 29) for s in (1, 2)
)


def hash_dir(folder: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        digest.update(str(path.relative_to(folder)).encode())
        if path.is_file():
            digest.update(path.read_bytes())
    return digest.hexdigest()


def text(name: str, body: str, encoding: str = "utf-8") -> Callable[[Path], Path]:
    def make(folder: Path) -> Path:
        path = folder / name
        path.write_bytes(body.encode(encoding))
        return path

    return make


def raw(name: str, body: bytes) -> Callable[[Path], Path]:
    def make(folder: Path) -> Path:
        path = folder / name
        path.write_bytes(body)
        return path

    return make


def _xlsx_bytes(rows: list[list[object]], as_text: bool = False) -> bytes:
    book = openpyxl.Workbook()
    sheet = book.active
    for row in rows:
        sheet.append(row)
    if as_text:  # keep '=...' as a text cell, the way a CSV import into Excel stores it
        for row in sheet.iter_rows():
            for cell in row:
                if isinstance(cell.value, str) and cell.value.startswith("="):
                    cell.data_type = "s"
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def _gzip(body: str) -> bytes:
    return gzip.compress(body.encode())


def _parquet(frame: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    return buffer.getvalue()


def _mapping_file(body: str) -> Callable[[Path], Path]:
    def make(folder: Path) -> Path:
        path = folder / "mapping.json"
        path.write_text(body)
        return path

    return make


@dataclass(frozen=True)
class Case:
    id: str
    make: Callable[[Path], Path]
    expect: str  # a phrase the error must contain
    row: int | None = None  # the file row the first problem must name
    column: str | None = None
    kwargs: dict[str, object] | None = None
    error: type[Exception] = UploadRejectedError
    tenant: str = TENANT


HEADER = "date,sku,store,units\n"
CASES = [
    Case("empty file", text("e.csv", ""), "empty"),
    Case("only blank lines", text("b.csv", "\n \n\n"), "empty"),
    Case("header only", text("h.csv", HEADER), "no data rows"),
    Case("wrong header", text("w.csv", "when,what,count\n2024-01-01,A,1\n"), "no column for 'date'"),
    Case("missing units column", text("m.csv", "date,sku\n2024-01-01,A\n"), "no column for 'units'"),
    Case("no header row", text("n.csv", "2024-01-01,A,5\n2024-01-02,A,6\n"), "looks like data"),
    Case("duplicated header", text("d.csv", "date,sku,units,units\n2024-01-01,A,1,2\n"), "twice"),
    Case("wrong delimiter", text("s.csv", "date:sku:units\n2024-01-01:A:1\n"), "single column"),
    Case(
        "unparseable date",
        text("u.csv", HEADER + "2024-01-01,A,1,5\n2024-02-31,A,1,5\n"),
        "cannot read '2024-02-31' as a date",
        row=3,
        column="date",
    ),
    Case(
        "date before 1990",
        text("o.csv", HEADER + "2024-01-01,A,1,5\n1985-06-01,A,1,5\n"),
        "date before 1990",
        row=3,
        column="date",
    ),
    Case(
        "date in the future",
        text("f.csv", HEADER + "2024-01-01,A,1,5\n2024-07-02,A,1,5\n"),
        "date in the future",
        row=3,
        column="date",
    ),
    Case(
        "text in units",
        text("t.csv", HEADER + "2024-01-01,A,1,5\n2024-01-02,A,1,five\n"),
        "expected a number, got 'five'",
        row=3,
        column="units",
    ),
    Case(
        "non-finite units",
        text("i.csv", HEADER + "2024-01-01,A,1,inf\n"),
        "not a finite number",
        row=2,
        column="units",
    ),
    Case(
        "absurd units",
        text("a.csv", HEADER + "2024-01-01,A,1,50000000\n"),
        "absurd quantity",
        row=2,
        column="units",
    ),
    Case(
        "empty units",
        text("eu.csv", HEADER + "2024-01-01,A,1,5\n2024-01-02,A,1,\n"),
        "units is empty",
        row=3,
        column="units",
    ),
    Case("empty sku", text("es.csv", HEADER + "2024-01-01,,1,5\n"), "sku is empty", row=2, column="sku"),
    Case(
        "formula in sku",
        text("fx.csv", HEADER + "2024-01-01,A,1,5\n2024-01-01,\"=cmd|' /C calc'!A0\",1,5\n"),
        "formula injection",
        row=3,
        column="sku",
    ),
    Case(
        "formula in store",
        text("fs.csv", HEADER + "2024-01-01,A,@SUM(A1:A9),5\n"),
        "formula",
        row=2,
        column="store",
    ),
    Case(
        "formula text cell in Excel",
        raw(
            "fx.xlsx",
            _xlsx_bytes(
                [["date", "sku", "units"], ["2024-01-01", '=HYPERLINK("http://x")', 1]], as_text=True
            ),
        ),
        "formula injection",
        row=2,
        column="sku",
    ),
    Case(
        "conflicting daily rows",
        text("c.csv", HEADER + "2024-01-01,A,1,5\n2024-01-01,A,1,7\n"),
        "appears with different values in rows 2, 3",
        row=2,
        column="date",
    ),
    Case(
        "negative price in a daily file",
        text("p.csv", "date,sku,units,price\n2024-01-01,A,1,-2.5\n"),
        "negative unit price",
        row=2,
        column="price",
    ),
    Case(
        "promotion flag not boolean",
        text("pr.csv", "date,sku,units,promo\n2024-01-01,A,1,maybe\n"),
        "expected 0/1 or true/false",
        row=2,
        column="promo",
    ),
    Case(
        "monthly data",
        text("mo.csv", HEADER + "".join(f"2023-{m:02d}-01,A,1,5\n" for m in range(1, 13))),
        "days apart",
    ),
    Case("binary garbage", raw("g.csv", bytes(range(256)) * 64), "binary data"),
    Case(
        "UTF-16 without byte-order mark",
        raw("u16.csv", (HEADER + "2024-01-01,A,1,5\n").encode("utf-16-le")),
        "binary data",
    ),
    Case(
        "UTF-16 with a byte-order mark but broken text",
        raw(
            "b16.csv",
            codecs.BOM_UTF16_LE + (HEADER + "2024-01-01,A,1,5\n").encode("utf-16-le") + b"\x00\xd8\x41\x00",
        ),
        "not valid utf-16",
    ),
    Case("truncated quoted field", text("q.csv", HEADER + '2024-01-01,"A,1,5\n'), "never closed"),
    Case(
        "row with extra fields",
        text("x.csv", HEADER + "2024-01-01,A,1,5\n2024-01-02,A,1,5,9\n"),
        "5 fields but the header has 4",
        row=3,
    ),
    Case(
        "gzip bomb",
        raw("bomb.csv.gz", _gzip(HEADER + "2024-01-01,A,1,5\n" * 40_000)),
        "likely decompression bomb",
        kwargs={"max_bytes": 30_000},
    ),
    Case("truncated gzip", raw("t.csv.gz", _gzip(GOOD * 20)[:300]), "truncated or corrupt"),
    Case("corrupt gzip", raw("c.csv.gz", b"\x1f\x8b\x08\x00" + os.urandom(200)), "truncated or corrupt"),
    Case("0-byte Excel", raw("z.xlsx", b""), "empty"),
    Case(
        "truncated Excel",
        raw("t.xlsx", _xlsx_bytes([["date", "sku", "units"], ["2024-01-01", "A", 1]])[:700]),
        "truncated or corrupt",
    ),
    Case("text file named .xlsx", raw("n.xlsx", GOOD.encode()), "not an Excel .xlsx workbook"),
    Case(
        "legacy .xls",
        raw("old.xls", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(500)),
        "legacy Excel 97-2003",
    ),
    Case("zip archive named .csv", raw("z.csv", b"PK\x03\x04" + bytes(60)), "ZIP archive"),
    Case(
        "truncated Parquet",
        raw("t.parquet", _parquet(pd.DataFrame({"date": ["2024-01-01"], "sku": ["A"], "units": [1]}))[:200]),
        "not a complete Parquet file",
    ),
    Case(
        "Parquet with text units",
        raw(
            "tu.parquet",
            _parquet(
                pd.DataFrame(
                    {"date": ["2024-01-01", "2024-01-02"], "sku": ["A", "A"], "units": ["1", "lots"]}
                )
            ),
        ),
        "expected a number, got 'lots'",
        row=2,
        column="units",
    ),
    Case("Shopify page that is not JSON", text("orders.json", '{"orders": [ {"id": 1, '), "not valid JSON"),
    Case("Shopify JSON of another shape", text("orders.json", '{"products": []}'), "expected Shopify orders"),
    Case(
        "Shopify order with a bad created_at",
        text(
            "orders.json",
            json.dumps(
                {
                    "orders": [
                        {
                            "id": 1,
                            "created_at": "yesterday",
                            "line_items": [{"id": 2, "sku": "A", "quantity": 1, "price": "1"}],
                        }
                    ]
                }
            ),
        ),
        "ISO 8601",
        row=1,
        column="created_at",
    ),
    Case(
        "tenant id escaping its folder",
        text("ok.csv", GOOD),
        "invalid tenant id",
        error=TenantError,
        tenant="../acme",
    ),
    Case(
        "file larger than max_bytes",
        text("big.csv", GOOD),
        "more than the limit of 100",
        kwargs={"max_bytes": 100},
        error=UploadTooLargeError,
    ),
    Case(
        "mapping names a missing column",
        text("ok.csv", GOOD),
        "no such column",
        kwargs={"mapping": {"sku": "Item"}},
    ),
    Case(
        "mapping with an unknown key",
        text("ok.csv", GOOD),
        "unknown mapping key",
        kwargs={"mapping": {"colour": "sku"}},
    ),
    Case("missing file", lambda folder: folder / "nowhere.csv", "no such file"),
]


@pytest.fixture
def lake_with_data(tmp_path: Path) -> tuple[SalesLake, Path]:
    lake = SalesLake(tmp_path / "lake")
    seed = tmp_path / "seed.csv"
    seed.write_text(GOOD)
    ingest_file(seed, TENANT, lake, tmp_path / "reports", today=TODAY)
    return lake, tmp_path / "lake" / TENANT


def test_the_table_is_big_enough() -> None:
    assert len(CASES) >= 25
    assert len({c.id for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_is_refused_and_lake_unchanged(
    case: Case, lake_with_data: tuple[SalesLake, Path], tmp_path: Path
) -> None:
    lake, tenant_lake = lake_with_data
    before = hash_dir(tenant_lake)
    (tmp_path / "in").mkdir()
    path = case.make(tmp_path / "in")
    kwargs = dict(case.kwargs or {})
    with pytest.raises(case.error) as caught:
        ingest_file(path, case.tenant, lake, tmp_path / "reports", today=TODAY, **kwargs)  # type: ignore[arg-type]
    assert case.expect in str(caught.value), str(caught.value)
    assert isinstance(caught.value, OrderNimbusError)
    if case.row is not None or case.column is not None:
        assert isinstance(caught.value, ContractError)
        first = caught.value.problems[0]
        assert first.file == path.name
        if case.row is not None:
            assert first.row == case.row
        if case.column is not None:
            assert first.column == case.column
        assert not first.message.endswith("''"), first.message  # an empty cell is named, not quoted
    assert hash_dir(tenant_lake) == before
    assert len(lake.read(TENANT)) == 56


def test_mapping_file_that_is_not_json(lake_with_data: tuple[SalesLake, Path], tmp_path: Path) -> None:
    lake, tenant_lake = lake_with_data
    before = hash_dir(tenant_lake)
    data = text("ok.csv", GOOD)(tmp_path)
    mapping = _mapping_file("{sku: StockCode")(tmp_path)
    with pytest.raises(ContractError, match="mapping file is not valid JSON") as caught:
        ingest_file(data, TENANT, lake, tmp_path / "reports", mapping=mapping, today=TODAY)
    assert caught.value.problems[0].file == "mapping.json"
    assert hash_dir(tenant_lake) == before


def test_rejected_upload_still_gets_a_report_saying_why(
    lake_with_data: tuple[SalesLake, Path], tmp_path: Path
) -> None:
    lake, _ = lake_with_data
    bad = text("bad.csv", HEADER + "2024-01-01,A,1,five\n")(tmp_path)
    with pytest.raises(UploadRejectedError) as caught:
        ingest_file(bad, TENANT, lake, tmp_path / "reports", today=TODAY)
    assert caught.value.report_json is not None
    assert caught.value.report_html is not None
    report = json.loads(caught.value.report_json.read_text())
    assert report["status"] == "rejected"
    assert report["errors"]["total"] == 1
    assert report["errors"]["first"][0]["row"] == 2
    assert report["lake"] is None
    assert "five" in caught.value.report_html.read_text()
    assert caught.value.report_json.parent.parent == tmp_path / "reports" / TENANT / "uploads"
