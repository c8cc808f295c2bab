"""An uploaded file -> canonical records, every problem with its row, and the figures for the report.

The file is read once, chunk by chunk: each chunk is typed, checked, and either folded into daily
partial sums (transaction lines) or kept (daily rows). Nothing is written here; :mod:`features.ingest`
decides from the problems whether the records may enter the lake.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from features.errors import ContractError, Problem
from features.frequency import FrequencyError, detect_frequency
from features.sources.aggregate import deduplicate_daily, finish_daily, partial_daily
from features.sources.base import Progress, TabularSource, file_error, report_progress
from features.sources.convert import Converted, Converter
from features.sources.csv import CsvSource
from features.sources.excel import ExcelSource, sha256_of
from features.sources.mapping import ColumnMapping, load_mapping, resolve_mapping
from features.sources.parquet import ParquetSource
from features.sources.shopify import read_shopify
from features.validation import check_lines, line_schema

TEXT_SUFFIXES = (".csv", ".tsv", ".txt", ".gz")


@dataclass
class Parsed:
    records: pd.DataFrame  # canonical, one row per store x sku x date, no tenant column yet
    problems: pd.DataFrame  # file, row, column, message: every error found, in file order
    quarantine: pd.DataFrame  # row, reasons, then the rejected rows' cells
    facts: dict[str, Any]  # what the report shows about reading, mapping and rows
    warnings: list[str] = field(default_factory=list)
    frequency: str | None = None


def load_upload(
    path: Path,
    *,
    mapping: dict[str, str | None] | dict[str, str] | Path | None,
    progress: Progress | None,
    today: date,
    lenient: bool,
    max_bytes: int | None = None,
    prefer_date_format: str | None = None,
) -> Parsed:
    given = load_mapping(mapping)
    if path.is_dir() or path.suffix.lower() == ".json":
        return _load_shopify(path, progress, today, lenient)
    source = open_tabular(path, progress, max_bytes)
    details = source.info.details
    sheet = f"row {details.get('header_row')} of sheet {details['sheet']!r}" if "sheet" in details else None
    fields = resolve_mapping(source.name, source.columns, given, sheet)
    converter = Converter(
        source.name,
        fields,
        decimal_comma=source.info.details.get("delimiter") == ";",
        date_format=fields.options.get("date_format"),
        prefer_date_format=prefer_date_format,
    )
    collector = _Collector(source.name, lenient, source.columns)
    for chunk in source.chunks():
        converted = converter.convert(chunk)
        schema = line_schema(today, bool(converter.transactions), converter.covariates.values())
        names = fields.fields | {target: column for column, target in converter.covariates.items()}
        collector.add(converted, schema, bool(converter.transactions), names)
    try:
        parsed = collector.finish(bool(converter.transactions), fields, list(converter.dropped_covariates))
    except ContractError as exc:  # e.g. "dates are 31 days apart": day-first dates read month first
        if converter.ambiguous_dates and any(p.column == "date" for p in exc.problems):
            hint = Problem(source.name, None, "date", ambiguous_hint(str(converter.date_format)))
            raise ContractError([*exc.problems, hint], exc.total + 1) from None
        raise
    parsed.warnings += source.info.warnings
    for column, target in list(converter.covariates.items()):
        if target in parsed.records and parsed.records[target].isna().all():
            parsed.records = parsed.records.drop(columns=target)
            del converter.covariates[column]
    parsed.facts |= {
        "source": {
            "file": source.name,
            "format": source.info.format,
            "sha256": getattr(source, "sha256", None),
            "bytes": path.stat().st_size,
            **source.info.details,
            "date_format": converter.date_format or "typed dates",
            "date_format_ambiguous": converter.ambiguous_dates,
        },
        "mapping": {
            "fields": fields.fields,
            "detected": list(fields.detected),
            "covariates": sorted(converter.covariates.values()),
            "ignored_columns": [c for c in fields.others if c not in converter.covariates],
        },
        "level": "transactions" if converter.transactions else "daily",
        "level_reason": converter.transactions_reason,
    }
    parsed.facts["rows"] |= {
        "negative_quantity": converter.negative_rows,
        "cancellations": converter.cancel_rows,
    }
    parsed.warnings += _reading_warnings(fields, converter)
    return parsed


def open_tabular(path: Path, progress: Progress | None, max_bytes: int | None = None) -> TabularSource:
    """The reader for the file's format, chosen by its first bytes where they tell, else by its name."""
    name = path.name
    if not path.is_file():
        raise file_error(name, "no such file")
    with open(path, "rb") as handle:
        head = handle.read(4)
    suffix = "".join(path.suffixes[-2:]).lower()
    if suffix.endswith((".xlsx", ".xlsm", ".xls")):
        return ExcelSource(path, name, progress)
    if suffix.endswith(".parquet") or head == b"PAR1":
        return ParquetSource(path, name, progress)
    if head[:4] == b"PK\x03\x04":
        raise file_error(name, "this is a ZIP archive (or an .xlsx saved under another name): expected CSV")
    return CsvSource(path, name, progress, max_bytes=max_bytes)


class _Collector:
    """Keeps the good lines (or their daily sums), the problems and the rejected rows of every chunk."""

    def __init__(self, name: str, lenient: bool, columns: list[str]) -> None:
        self.name, self.lenient, self.columns = name, lenient, columns
        self.problems: list[pd.DataFrame] = []
        self.quarantine: list[pd.DataFrame] = []
        self.kept: list[pd.DataFrame] = []
        self.hashes: list[np.ndarray] = []
        self.rows = self.blank = self.negative_price = 0

    def add(self, converted: Converted, schema: Any, transactions: bool, names: dict[str, str]) -> None:
        """Fold one chunk in; ``names`` turns canonical column names back into the user's."""
        lines = converted.lines
        checked = check_lines(lines, schema)
        checked["column"] = [names.get(c, c) for c in checked["column"]]
        problems = pd.concat([converted.problems, checked], ignore_index=True)
        bad = np.isin(lines["_row"].to_numpy(), problems["row"].to_numpy())
        self.rows += len(lines)
        self.blank += converted.blank_rows
        self.hashes.append(pd.util.hash_pandas_object(converted.raw, index=False).to_numpy())
        if len(problems):
            self.problems.append(problems)
            if self.lenient:
                self.quarantine.append(
                    _rejected_rows(converted.raw.loc[bad], lines.loc[bad, "_row"], problems)
                )
        good = lines.loc[~bad]
        if transactions:
            if "unit_price" in good:
                self.negative_price += int((good["unit_price"] < 0).sum())
            self.kept.append(partial_daily(good))
        else:
            self.kept.append(good)

    def finish(self, transactions: bool, fields: ColumnMapping, dropped: list[str]) -> Parsed:
        duplicates_dropped = 0
        if transactions:
            records = finish_daily(self.kept)
        else:
            lines = pd.concat(self.kept, ignore_index=True) if self.kept else pd.DataFrame()
            lines = lines.drop(columns=[c for c in dropped if c in lines])
            records, duplicates_dropped, conflicts = (
                deduplicate_daily(lines) if len(lines) else (lines, 0, None)
            )
            if conflicts is not None and len(conflicts):
                self._conflicts(conflicts, fields)
        records = records.drop(columns=[c for c in records.columns if c.startswith("_")])
        if "channel" in records:
            records["channel"] = records["channel"].astype(object)
        hashes = np.concatenate(self.hashes) if self.hashes else np.empty(0, dtype=np.uint64)
        problems = _sorted(self.problems, self.name)
        facts = {
            "rows": {
                "source": self.rows,
                "blank": self.blank,
                "rejected": int(problems["row"].nunique()),
                "accepted": self.rows - int(problems["row"].nunique()),
                "duplicate_rows": int(len(hashes) - len(np.unique(hashes))),
                "duplicates_dropped": duplicates_dropped,
                "negative_price": self.negative_price,
            }
        }
        parsed = Parsed(records, problems, _merge_quarantine(self.quarantine, self.columns), facts)
        parsed.frequency = _frequency(self.name, records)
        if duplicates_dropped:
            parsed.warnings.append(
                f"{duplicates_dropped:,} row(s) repeat an earlier row exactly and were counted once"
            )
        if self.negative_price:
            parsed.warnings.append(
                f"{self.negative_price:,} line(s) have a negative unit price (adjustments): kept in revenue, "
                "left out of the day's unit price"
            )
        return parsed

    def _conflicts(self, conflicts: pd.DataFrame, fields: ColumnMapping) -> None:
        key = ["store_id", "sku", "date"]
        rows: dict[Any, list[int]] = conflicts.groupby(key, sort=False)["_row"].agg(list).to_dict()
        others = [rows[k] for k in zip(*(conflicts[c] for c in key), strict=True)]
        hint = (
            "map an invoice/order column if these are transaction lines, or a store column if they are stores"
        )
        messages = [
            f"store {s!r}, sku {k!r}, date {d.date()} appears with different values in rows "
            f"{', '.join(map(str, o[:5]))}{' ...' if len(o) > 5 else ''}: {hint}"
            for s, k, d, o in zip(
                conflicts["store_id"], conflicts["sku"], conflicts["date"], others, strict=True
            )
        ]
        frame = pd.DataFrame(
            {"row": conflicts["_row"].to_numpy(), "column": fields.fields["date"], "message": messages}
        )
        self.problems.append(frame)
        if self.lenient:
            cells = pd.DataFrame(
                {
                    column: conflicts[name].astype(str).to_numpy()
                    for name, column in fields.fields.items()
                    if name in conflicts
                }
            )
            self.quarantine.append(_rejected_rows(cells, conflicts["_row"], frame))


def _rejected_rows(raw: pd.DataFrame, rows: pd.Series, problems: pd.DataFrame) -> pd.DataFrame:
    reasons = (
        (problems["column"].astype(str) + ": " + problems["message"]).groupby(problems["row"]).agg("; ".join)
    )
    out = raw.reset_index(drop=True).astype(object)
    out.insert(0, "reasons", reasons.reindex(rows.to_numpy()).to_numpy())
    out.insert(0, "row", rows.to_numpy())
    return out


def _merge_quarantine(frames: list[pd.DataFrame], columns: list[str]) -> pd.DataFrame:
    if not frames:
        return pd.DataFrame(columns=["row", "reasons", *columns])
    merged = pd.concat(frames, ignore_index=True).reindex(columns=["row", "reasons", *columns])
    return merged.drop_duplicates("row", keep="first").sort_values("row", kind="stable", ignore_index=True)


def _sorted(frames: list[pd.DataFrame], name: str) -> pd.DataFrame:
    if not frames:
        return pd.DataFrame({"file": [], "row": pd.Series(dtype=np.int64), "column": [], "message": []})
    problems = pd.concat(frames, ignore_index=True).sort_values("row", kind="stable", ignore_index=True)
    if "file" not in problems:
        problems.insert(0, "file", name)
    problems["file"] = problems["file"].fillna(name)
    return problems[["file", "row", "column", "message"]]


def _frequency(name: str, records: pd.DataFrame) -> str | None:
    if records.empty:
        return None
    try:
        return detect_frequency(records)
    except FrequencyError as exc:
        raise file_error(name, str(exc), column="date") from None


def ambiguous_hint(date_format: str) -> str:
    """What to do when day-first and month-first both read every date (the warning, and the hint
    beside a refusal that month-first reading caused)."""
    return (
        f"dates such as 01/02 read either way; read as {date_format} (month first). If that "
        'is wrong, pass {"date_format": "%d/%m/%Y"} in the mapping'
    )


def _reading_warnings(fields: ColumnMapping, converter: Converter) -> list[str]:
    warnings = list(converter.dropped_covariates.values())
    if converter.ambiguous_dates:
        warnings.append(ambiguous_hint(str(converter.date_format)))
    if "store_id" not in fields.fields:
        warnings.append("no store column: every row belongs to store 'all'")
    return warnings


# -- Shopify ----------------------------------------------------------------------------------


def _load_shopify(path: Path, progress: Progress | None, today: date, lenient: bool) -> Parsed:
    total = sum(f.stat().st_size for f in ([*path.glob("*.json")] if path.is_dir() else [path]))
    events, found, counts = read_shopify(path)
    report_progress(progress, total, total)
    problems = pd.DataFrame(
        [(p.file, p.row, p.column, p.message) for p in found], columns=["file", "row", "column", "message"]
    )
    raw = events.drop(columns=["_row"])
    collector = _Collector(path.name, lenient, list(raw.columns))
    converted = Converted(events, problems, 0, raw)
    names = {
        "date": "created_at",
        "units": "line_items.quantity",
        "unit_price": "line_items.price",
        "revenue": "line_items.price",
    }
    collector.add(converted, line_schema(today, True), True, names)
    parsed = collector.finish(True, ColumnMapping({"date": "created_at"}, ()), [])
    parsed.facts |= {
        "source": {
            "file": path.name,
            "format": "shopify",
            "bytes": total,
            "sha256": sha256_of(path) if path.is_file() else None,
            **counts,
        },
        "mapping": {
            "fields": {
                "date": "created_at (shop's local date)",
                "sku": "line_items.sku",
                "units": "line_items.quantity - refund_line_items.quantity",
                "store_id": "location_id",
                "unit_price": "line_items.price",
                "revenue": "price x quantity - total_discount",
                "channel": "source_name",
            },
            "detected": [],
            "covariates": [],
            "ignored_columns": [],
        },
        "level": "transactions",
        "level_reason": "Shopify orders; refunds net on the refund's date",
    }
    parsed.facts["rows"] |= {
        "negative_quantity": int((events["units"] < 0).sum()),
        "cancellations": int((events["kind"] == "cancel").sum()),
    }
    return parsed


def problems_to_error(problems: pd.DataFrame, limit: int) -> ContractError:
    """The ContractError listing the first ``limit`` problems (by file row) and the total."""
    first = [
        Problem(
            str(r.file),
            int(r.row) if pd.notna(r.row) else None,  # type: ignore[arg-type]
            None if pd.isna(r.column) else str(r.column),
            str(r.message),
        )
        for r in problems.head(limit).itertuples(index=False)
    ]
    return ContractError(first, total=len(problems))
