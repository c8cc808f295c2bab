"""Which of the user's columns is the date, the SKU, the units ...: detected, or given by the user.

Detection compares normalised header names (lower case, letters and digits only) with ranked
synonym lists, so ``InvoiceDate``, ``invoice_date`` and ``Invoice Date`` all match. A mapping given
as a dict or a JSON file wins over detection for the fields it names. ``Country`` is deliberately
not a store synonym: in most exports it is the customer's country, and splitting a shop's demand by
it must be the user's decision (the Online Retail tenant passes ``{"store_id": "Country"}``).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from features.errors import ContractError, Problem
from features.sources.base import file_error

SYNONYMS: dict[str, tuple[str, ...]] = {
    "date": (
        "date",
        "ds",
        "day",
        "salesdate",
        "saledate",
        "invoicedate",
        "orderdate",
        "transactiondate",
        "createdat",
        "timestamp",
        "datetime",
        "weekdate",
        "week",
        "weekstart",
        "weekending",
    ),
    "sku": (
        "sku",
        "stockcode",
        "itemid",
        "item",
        "itemcode",
        "itemnumber",
        "productid",
        "product",
        "productcode",
        "variantsku",
        "articleid",
        "article",
        "articlenumber",
        "ean",
        "upc",
        "barcode",
        "uniqueid",
        "deptid",
        "dept",
        "department",
    ),
    "units": (
        "units",
        "unitssold",
        "qty",
        "quantity",
        "quantitysold",
        "qtysold",
        "y",
        "demand",
        "volume",
        "sold",
        "sales",
        "unitsales",
        "weeklysales",
        "dailysales",
    ),
    "store_id": (
        "storeid",
        "store",
        "storenumber",
        "storeno",
        "storecode",
        "shop",
        "shopid",
        "locationid",
        "location",
        "branch",
        "branchid",
        "outlet",
        "outletid",
        "warehouse",
        "site",
        "siteid",
    ),
    "unit_price": (
        "unitprice",
        "price",
        "sellingprice",
        "salesprice",
        "saleprice",
        "itemprice",
        "priceperunit",
    ),
    "revenue": ("revenue", "amount", "salesamount", "linetotal", "totalprice", "turnover", "netsales"),
    "channel": ("channel", "saleschannel", "sourcename"),
    "on_promotion": ("onpromotion", "onpromo", "promo", "promotion", "ispromo", "promoted"),
    "invoice": (
        "invoiceno",
        "invoice",
        "invoicenumber",
        "invoiceid",
        "orderid",
        "ordernumber",
        "orderno",
        "order",
        "transactionid",
        "receiptid",
        "receiptno",
        "receipt",
    ),
}
REQUIRED_FIELDS = ("date", "sku", "units")
OPTIONS = ("date_format",)  # mapping keys whose value is a setting, not a column
DEFAULT_STORE = "all"


def normalise(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def covariate_name(name: str) -> str:
    """A safe snake_case column name for a covariate ('Fuel Price' -> 'fuel_price')."""
    text = re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")
    return f"x_{text}" if text[:1].isdigit() else text


@dataclass(frozen=True)
class ColumnMapping:
    """Canonical field -> the user's column; the rest are covariate candidates or ignored."""

    fields: dict[str, str]
    detected: tuple[str, ...]  # fields found by header names rather than given
    options: dict[str, str] = field(default_factory=dict)
    others: tuple[str, ...] = ()

    def column(self, canonical: str) -> str | None:
        return self.fields.get(canonical)


Mapping = dict[str, str | None]  # canonical field -> the user's column; None: the file has none


def load_mapping(mapping: Mapping | dict[str, str] | Path | None) -> Mapping:
    """The user's mapping as a dict, read from JSON when it is a path; shape errors name the file."""
    if mapping is None:
        return {}
    source = "mapping"
    if isinstance(mapping, Path):
        source = mapping.name
        try:
            mapping = json.loads(mapping.read_text(encoding="utf-8-sig"))
        except FileNotFoundError:
            raise file_error(source, "the mapping file does not exist") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise file_error(source, f"the mapping file is not valid JSON ({exc})") from None
    if not isinstance(mapping, dict) or not all(
        isinstance(k, str) and ((isinstance(v, str) and v) or (v is None and k not in REQUIRED_FIELDS))
        for k, v in mapping.items()
    ):
        raise file_error(
            source,
            'expected a JSON object of canonical field -> column name, e.g. {"sku": "StockCode"}; null '
            'says the file has no such column, e.g. {"store_id": null} (not for date, sku or units)',
        )
    unknown = sorted(set(mapping) - set(SYNONYMS) - set(OPTIONS))
    if unknown:
        raise file_error(
            source, f"unknown mapping key(s) {unknown}: the keys are {sorted(SYNONYMS) + list(OPTIONS)}"
        )
    mapping = dict(mapping)
    if mapping.get("date_format") is not None:
        mapping["date_format"] = date_part(str(mapping["date_format"]), source)
    return mapping


_TIME_DIRECTIVE = re.compile(r"[T ]*%[HIMSfpzZ].*$")


def date_part(fmt: str, source: str = "mapping") -> str:
    """The date part of a ``date_format`` option, checked: ingest keeps only the date of each cell.

    "%d/%m/%Y %H:%M" refused every "01/03/2025 10:15" (the time is cut off before parsing), and
    "%Q" failed with a traceback.
    """
    day = _TIME_DIRECTIVE.sub("", fmt)
    sample = datetime(2024, 11, 28)
    try:
        readable = day and datetime.strptime(sample.strftime(day), day) == sample
    except ValueError as exc:
        raise file_error(source, f"date_format {fmt!r} is not a date format ({exc}); e.g. %d/%m/%Y") from None
    if not readable:
        raise file_error(
            source, f"date_format {fmt!r} does not name a day, a month and a year; e.g. %d/%m/%Y or %Y-%m-%d"
        )
    return day


def resolve_mapping(name: str, columns: list[str], given: Mapping, where: str | None = None) -> ColumnMapping:
    """Given fields first, then detection for the rest; missing required fields are one clear error.

    A field given as None is not detected: Shopify's order export has a "Location" column, blank
    on online orders, that detection took for the store and every online order was refused.
    """
    fields = {k: v for k, v in given.items() if k in SYNONYMS and v is not None}
    absent = {k for k, v in given.items() if v is None}
    problems = [
        Problem(
            name,
            None,
            column,
            f"the mapping names column {column!r} for {key!r}, but the file has no such "
            f"column; its columns are {columns}",
        )
        for key, column in fields.items()
        if column not in columns
    ]
    by_norm: dict[str, str] = {}
    for column in columns:
        by_norm.setdefault(normalise(column), column)
    taken = set(fields.values())
    detected: list[str] = []
    for canonical, synonyms in SYNONYMS.items():
        if canonical in fields or canonical in absent:
            continue
        match = next((by_norm[s] for s in synonyms if s in by_norm and by_norm[s] not in taken), None)
        if match is not None:
            fields[canonical] = match
            taken.add(match)
            detected.append(canonical)
    twice = {c for c in fields.values() if list(fields.values()).count(c) > 1}
    problems += [
        Problem(name, None, c, f"column {c!r} is mapped to more than one field") for c in sorted(twice)
    ]
    for canonical in REQUIRED_FIELDS:
        if canonical not in fields:
            problems.append(Problem(name, 1, None, _missing(canonical, columns, where)))
    if problems:
        raise ContractError(problems)
    others = tuple(c for c in columns if c not in taken)
    options = {k: v for k, v in given.items() if k in OPTIONS and v is not None}
    return ColumnMapping(fields, tuple(detected), options, others)


def _missing(canonical: str, columns: list[str], where: str | None = None) -> str:
    dated = [
        c for c in columns if re.fullmatch(r"\d{4}-\d{1,2}-\d{1,2}|\d{1,2}[/.]\d{1,2}[/.]\d{2,4}", c.strip())
    ]
    hint = ""
    if len(dated) >= 2:
        hint = (
            f" {len(dated)} column names are dates ({dated[0]!r}...): a wide layout, one column per day. "
            "OrderNimbus reads one row per store, SKU and date: unpivot the table (date, sku, units)."
        )
    elif where is not None:  # a workbook: the header is the first non-empty row of the sheet read
        hint = (
            f" The header was read from {where}: if the sales table starts lower (a title above it) or "
            "on another sheet, put it at the top of the first visible sheet."
        )
    elif len(columns) == 1:
        hint = " The file has a single column: is the delimiter one of comma, semicolon, tab or '|'?"
    elif any(re.fullmatch(r"[-+0-9.,/: T]*\d[-+0-9.,/: T]*", c) for c in columns):
        hint = (
            " The first row looks like data (a header is text such as 'date'): the file needs a header row."
        )
    examples = ", ".join(SYNONYMS[canonical][:5])
    return (
        f"no column for {canonical!r} (looked for headers such as {examples}); the file's columns are "
        f"{columns}. Rename the column or pass a mapping such as {{{canonical!r}: '<your column>'}}.{hint}"
    )
