"""Raw cells -> typed canonical lines, with one problem per bad cell (file row, column, value).

Conversion is where a user's data is most often wrong, so it never guesses silently: a cell that is
not a number, not a date in the file's date format, or an identifier that looks like a spreadsheet
formula becomes a problem that quotes the value. Range checks (dates before 1990, absurd units) are
declared once in :mod:`features.validation` as a pandera schema and run on the typed lines.

Formula injection: identifiers (store, sku, channel, invoice) starting with ``= + - @`` that are not
plain numbers are *rejected*, not rewritten. An identifier keys a series, and a silently altered
key would split or merge series without the user noticing; a rejected row names the cell instead.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from features.sources.base import RawChunk
from features.sources.cells import (
    as_text,
    cell_problems,
    choose_date_format,
    clean_identifiers,
    has_time_of_day,
    no_problems,
    parse_dates,
    parse_numbers,
    show,
)
from features.sources.mapping import DEFAULT_STORE, ColumnMapping, covariate_name

CANONICAL = (
    "tenant_id",
    "store_id",
    "sku",
    "date",
    "units",
    "unit_price",
    "revenue",
    "channel",
    "on_promotion",
    "invoice",
)


@dataclass
class Converted:
    lines: pd.DataFrame  # typed; rows with problems still present (their bad cells are NaN)
    problems: pd.DataFrame  # row, column, message
    blank_rows: int
    raw: pd.DataFrame  # the chunk's non-blank rows as read, aligned with ``lines``


@dataclass
class Converter:
    """Converts chunk after chunk; file-level choices are made on the first chunk and kept.

    Those choices (date format, transaction lines or daily totals, numeric covariates) are reported,
    so a user can see and override what was guessed.
    """

    name: str
    mapping: ColumnMapping
    decimal_comma: bool = False
    date_format: str | None = None
    prefer_date_format: str | None = None  # how the tenant's earlier uploads were read
    transactions: bool | None = None
    transactions_reason: str = ""
    cancel_prefix: bool = False
    negative_rows: int = 0  # rows whose quantity is negative as written (returns, corrections)
    cancel_rows: int = 0  # rows of cancellation invoices ('C' + digits)
    covariates: dict[str, str] = field(default_factory=dict)  # source column -> covariate name
    dropped_covariates: dict[str, str] = field(default_factory=dict)  # covariate name -> why
    ambiguous_dates: bool = False
    _problems: list[pd.DataFrame] = field(default_factory=list)

    def convert(self, chunk: RawChunk) -> Converted:
        frame, rows = chunk.frame, chunk.rows
        blank = _blank_rows(frame)
        if blank.any():
            frame, rows = frame.loc[~blank].reset_index(drop=True), rows[~blank]
        self._problems = []
        if self.transactions is None:
            self._first_chunk(frame)
        lines = pd.DataFrame({"_row": rows})
        col = self.mapping.column
        lines["store_id"] = (
            self._identifier(frame[c], rows, "store_id", c, True) if (c := col("store_id")) else DEFAULT_STORE
        )
        lines["sku"] = self._identifier(frame[col("sku")], rows, "sku", str(col("sku")), True)
        lines["date"] = self._dates(frame[col("date")], rows, str(col("date")))
        lines["units"] = self._number(frame[col("units")], rows, str(col("units")), required=True)
        self.negative_rows += int((lines["units"] < 0).sum())
        for name in ("unit_price", "revenue"):
            if c := col(name):
                lines[name] = self._number(frame[c], rows, c, required=False)
        for name in ("channel", "invoice"):
            if c := col(name):
                lines[name] = self._identifier(frame[c], rows, name, c, False)
        if c := col("on_promotion"):
            lines["on_promotion"] = self._flag(frame[c], rows, c)
        covariates = {  # one concat: a file with 300 covariates printed pandas' fragmentation warning
            target: self._covariate(frame[source], rows, source, target)
            for source, target in list(self.covariates.items())
        }
        if covariates:
            lines = pd.concat([lines, pd.DataFrame(covariates, index=lines.index)], axis=1)
        if self.transactions and "invoice" in lines:
            self._net_cancellations(lines)
        problems = pd.concat(self._problems, ignore_index=True) if self._problems else no_problems()
        return Converted(lines, problems, int(blank.sum()), frame)

    # -- file-level choices --------------------------------------------------------------------

    def _first_chunk(self, frame: pd.DataFrame) -> None:
        raw_dates = frame[self.mapping.fields["date"]]
        has_time = has_time_of_day(raw_dates)
        if self.date_format is None and not pd.api.types.is_datetime64_any_dtype(raw_dates):
            self.date_format, self.ambiguous_dates = choose_date_format(raw_dates, self.prefer_date_format)
        if "invoice" in self.mapping.fields:
            self.transactions = True
            self.transactions_reason = f"column {self.mapping.fields['invoice']!r} identifies transactions"
            invoices = as_text(frame[self.mapping.fields["invoice"]]).dropna()
            self.cancel_prefix = _cancels_by_prefix(invoices)
        elif has_time:
            self.transactions = True
            self.transactions_reason = "dates carry times of day, so rows are individual transactions"
        else:
            self.transactions = False
            self.transactions_reason = "one row per store, SKU and date (no invoice column, no times of day)"
            self._detect_covariates(frame)

    def _detect_covariates(self, frame: pd.DataFrame) -> None:
        """Unmapped columns whose every value in the first rows is a number, a boolean or empty.

        Empty counts: markdowns that start late in a file sorted by date are empty in its first
        rows. A candidate that stays empty throughout is dropped at the end.
        """
        names = set(CANONICAL)
        for column in self.mapping.others:
            target = covariate_name(column)
            if column.startswith("_unnamed_") or not target or target in names:
                continue
            bad = parse_numbers(frame[column], self.decimal_comma, booleans=True)[1]
            if not bad.any():
                self.covariates[column] = target
                names.add(target)

    # -- cells -------------------------------------------------------------------------------

    def _report(self, mask: np.ndarray, rows: np.ndarray, column: str, values: Any, message: str) -> None:
        self._problems += cell_problems(mask, rows, column, values, message)

    def _identifier(
        self, raw: pd.Series, rows: np.ndarray, field_name: str, column: str, required: bool
    ) -> pd.Series:
        text, problems = clean_identifiers(raw, rows, column, field_name, required)
        self._problems += problems
        return text

    def _dates(self, raw: pd.Series, rows: np.ndarray, column: str) -> pd.Series:
        dates, bad, missing = parse_dates(raw, self.date_format)
        self._report(missing, rows, column, raw, "date is empty{}")
        expected = self.date_format or "a date"
        self._report(
            bad,
            rows,
            column,
            raw,
            f"cannot read {{}} as a date (expected {expected}, the format of this file's first rows)",
        )
        return dates

    def _number(self, raw: pd.Series, rows: np.ndarray, column: str, required: bool) -> pd.Series:
        values, bad, missing = parse_numbers(raw, self.decimal_comma)
        if required:
            self._report(missing, rows, column, raw, "units is empty{}")
        self._report(bad, rows, column, raw, "expected a number, got {}")
        return values

    def _flag(self, raw: pd.Series, rows: np.ndarray, column: str) -> pd.Series:
        values, bad, _ = parse_numbers(raw, self.decimal_comma, booleans=True)
        bad |= (values.notna() & ~values.isin([0.0, 1.0])).to_numpy()
        self._report(bad, rows, column, raw, "expected 0/1 or true/false, got {}")
        return values.mask(bad)

    def _covariate(self, raw: pd.Series, rows: np.ndarray, source: str, target: str) -> pd.Series:
        values, bad, _ = parse_numbers(raw, self.decimal_comma, booleans=True)
        if bad.any():
            first = int(np.flatnonzero(bad)[0])
            self.dropped_covariates[target] = (
                f"column {source!r} looked numeric in the first rows but row {rows[first]} has "
                f"{show(raw.iloc[first])}; not used as a covariate"
            )
            del self.covariates[source]
        return values

    def _net_cancellations(self, lines: pd.DataFrame) -> None:
        """Online Retail's convention: an invoice 'C<digits>' cancels, so its quantity counts negative."""
        invoice = lines["invoice"].fillna("")
        cancel = invoice.str.match(r"^[Cc]\d") if self.cancel_prefix else pd.Series(False, index=lines.index)
        lines["_cancel"] = cancel.to_numpy()
        self.cancel_rows += int(cancel.sum())
        lines.loc[cancel, "units"] = -lines.loc[cancel, "units"].abs()


def _blank_rows(frame: pd.DataFrame) -> np.ndarray:
    empty = np.ones(len(frame), dtype=bool)
    for column in frame.columns:
        cells = frame[column]
        if cells.dtype == object:
            empty &= (cells.isna() | (cells.astype(str).str.strip() == "")).to_numpy()
        else:
            empty &= cells.isna().to_numpy()
        if not empty.any():
            break
    return empty


def _cancels_by_prefix(invoices: pd.Series) -> bool:
    """Whether invoices follow Online Retail's convention: numbers, and "C" + a number cancelling.

    Only where the other invoices are plain numbers (nine in ten: Online Retail also has a few
    "A" adjustments): a shop numbering counter sales C1001 and web sales W1002 had every counter
    sale negated as a cancellation.
    """
    prefixed = invoices.str.match(r"^[Cc]\d+$")
    others = invoices[~prefixed]
    return bool(prefixed.any() and len(others) and others.str.fullmatch(r"\d+").mean() >= 0.9)
