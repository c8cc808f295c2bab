"""Parsing one column of cells: identifiers, dates, numbers; each distinct value once.

Every function returns the typed values together with masks of unreadable and of empty cells, so
the caller can report each bad cell with its row and value. Formula injection: identifiers
starting with ``= + - @`` that are not plain numbers are *refused* (see :func:`clean_identifiers`).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import numpy as np
import pandas as pd

FORMULA_START = ("=", "+", "-", "@")
NUMBER = r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?"
MAX_ID_LENGTH = 128
# Tried in order on the first rows; the one that parses most values wins, earlier wins a tie
# (so an all-ambiguous 01/02/2020 file is read month-first, and the report says so).
DATE_FORMATS = (
    "%Y-%m-%d",
    "%Y/%m/%d",
    "%Y%m%d",
    "%d.%m.%Y",
    "%m/%d/%Y",
    "%d/%m/%Y",
    "%d-%m-%Y",
    "%m-%d-%Y",
    "%d.%m.%y",
    "%m/%d/%y",
    "%d/%m/%y",
    "%d-%b-%Y",
    "%d-%b-%y",
)
_DATE_AND_TIME = (  # a date token, then optionally a time, AM/PM and a UTC offset
    r"^\s*(\S+?)(?:[T ]+(\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?)\s*([AaPp][Mm])?"
    r"\s*(?:Z|[+-]\d{2}:?\d{2})?)?\s*$"
)
_TRUE = frozenset({"true", "yes", "y", "t"})
_FALSE = frozenset({"false", "no", "n", "f"})


def cell_problems(
    mask: np.ndarray, rows: np.ndarray, column: str, values: Any, message: str
) -> list[pd.DataFrame]:
    """Problems for the cells in ``mask``; ``message`` has one ``{}`` for the quoted value."""
    index = np.flatnonzero(mask)
    if len(index) == 0:
        return []
    shown = [show(v) for v in np.asarray(values, dtype=object)[index]]
    return [
        pd.DataFrame({"row": rows[index], "column": column, "message": [message.format(v) for v in shown]})
    ]


def clean_identifiers(
    raw: pd.Series, rows: np.ndarray, column: str, field_name: str, required: bool
) -> tuple[pd.Series, list[pd.DataFrame]]:
    """Identifiers as text, with empty, formula-like, control-character and over-long values refused.

    The checks run once per distinct value (a file has far fewer SKUs than rows).
    """
    codes, uniques = pd.factorize(raw, use_na_sentinel=True)
    text = as_text(pd.Series(uniques, dtype=object))
    present = text.fillna("").astype(str)
    formula = (present.str.startswith(FORMULA_START) & ~present.str.fullmatch(NUMBER)).to_numpy()
    control = present.str.contains(r"[\x00-\x1f\x7f]", regex=True).to_numpy() & ~formula
    # A long numeric id that went through a spreadsheet as a number: "1.23457E+17" (Excel's CSV)
    # or 1.234567890123457e+17 (a float cell) has lost its last digits and names another series.
    lost = present.str.fullmatch(r"[+-]?\d(?:\.\d+)?[eE]\+\d+").to_numpy() & ~formula & ~control
    long = (present.str.len() > MAX_ID_LENGTH).to_numpy() & ~formula & ~control & ~lost

    def per_row(mask: np.ndarray, missing_value: bool = False) -> np.ndarray:
        return np.append(mask, missing_value)[codes]  # code -1 (a missing cell) takes the appended value

    values = per_row(text.to_numpy(dtype=object), np.nan)  # type: ignore[arg-type]
    problems = (
        cell_problems(
            per_row(text.isna().to_numpy(), True), rows, column, values, f"{field_name} is empty{{}}"
        )
        if required
        else []
    )
    problems += cell_problems(
        per_row(formula),
        rows,
        column,
        values,
        "value {} looks like a spreadsheet formula (starts with = + - or @); rejected to prevent formula "
        "injection: remove the leading character",
    )
    problems += cell_problems(per_row(control), rows, column, values, "value {} contains control characters")
    problems += cell_problems(
        per_row(lost),
        rows,
        column,
        values,
        "value {} is a number in scientific notation: the id's last digits are lost; format the column "
        "as text in the spreadsheet and export again",
    )
    problems += cell_problems(
        per_row(long), rows, column, values, f"value {{}} is longer than {MAX_ID_LENGTH} characters"
    )
    refused = per_row(formula | control | long | lost)
    return pd.Series(np.where(refused, np.nan, values), index=raw.index, dtype=object), problems


def choose_date_format(raw: pd.Series, prefer: str | None = None) -> tuple[str, bool]:
    """The format that reads most of the first (up to 2,000) distinct date tokens; and whether it
    was a tie between day-first and month-first.

    Distinct tokens, not the first rows: a file sorted by date with 250 SKUs a day showed only
    1-8 March in its first 2,000 rows, all ambiguous, and was read month-first. ``prefer`` (the
    format the tenant's earlier uploads were read with) breaks such a tie: a day-first tenant's
    upload of 1 March alone was read as 3 January and overwrote it.
    """
    tokens = date_tokens(as_text(raw).dropna().drop_duplicates().head(2000))[0].dropna().drop_duplicates()
    if tokens.empty:
        return DATE_FORMATS[0], False
    scores = [int(pd.to_datetime(tokens, format=f, errors="coerce").notna().sum()) for f in DATE_FORMATS]
    best = max(scores)
    winners = [f for f, s in zip(DATE_FORMATS, scores, strict=True) if s == best]
    if prefer in winners:
        return str(prefer), False
    swapped = {f.replace("%d", "%_").replace("%m", "%d").replace("%_", "%m") for f in winners}
    ambiguous = best > 0 and any(f in winners for f in swapped - set(winners[:1]))
    return winners[0], ambiguous


def parse_dates(raw: pd.Series, date_format: str | None) -> tuple[pd.Series, np.ndarray, np.ndarray]:
    """Dates at midnight (datetime64[ns]) with masks of unparseable and of empty cells.

    Text keeps only its date part: a time and a UTC offset after it are dropped, so
    '2011-03-01T23:30:00-05:00' is 1 March, the local date of the shop that wrote it. Each distinct
    value is parsed once.
    """
    if pd.api.types.is_datetime64_any_dtype(raw):
        values = raw.dt.tz_localize(None) if getattr(raw.dt, "tz", None) is not None else raw
        values = values.dt.normalize().astype("datetime64[ns]")
        return values, np.zeros(len(raw), dtype=bool), values.isna().to_numpy()
    codes, uniques = pd.factorize(raw, use_na_sentinel=True)
    dates, bad, missing = _parse_distinct_dates(pd.Series(uniques, dtype=object), date_format)
    values = np.append(dates.to_numpy(dtype="datetime64[ns]"), np.datetime64("NaT", "ns"))[codes]
    return (
        pd.Series(values, index=raw.index, dtype="datetime64[ns]"),
        np.append(bad, False)[codes],
        np.append(missing, True)[codes],
    )


def _parse_distinct_dates(
    raw: pd.Series, date_format: str | None
) -> tuple[pd.Series, np.ndarray, np.ndarray]:
    out = pd.Series(pd.NaT, index=raw.index, dtype="datetime64[ns]")
    is_obj_date = raw.map(lambda v: isinstance(v, datetime | date)).to_numpy(dtype=bool)
    if is_obj_date.any():
        out.loc[is_obj_date] = pd.to_datetime(raw[is_obj_date].map(_naive)).dt.normalize().to_numpy()
    text = as_text(raw.mask(is_obj_date))
    missing = text.isna().to_numpy() & ~is_obj_date
    tokens = date_tokens(text)[0]
    parsed = pd.to_datetime(tokens, format=date_format or DATE_FORMATS[0], errors="coerce")
    use = ~is_obj_date
    out.loc[use] = parsed[use].to_numpy()
    bad = out.isna().to_numpy() & ~missing
    return out, bad, missing


def parse_numbers(
    raw: pd.Series, decimal_comma: bool = False, booleans: bool = False
) -> tuple[pd.Series, np.ndarray, np.ndarray]:
    """Floats with masks of unreadable and of empty cells.

    Beyond plain numbers it reads currency signs, thousands separators and, in semicolon files,
    decimal commas ('1.234,50'); with ``booleans`` also true/false/yes/no. The literal text 'nan' is
    unreadable rather than missing: a user who typed it meant something we cannot know.
    """
    if pd.api.types.is_bool_dtype(raw):
        values = raw.astype(float)
        return values, np.zeros(len(raw), dtype=bool), values.isna().to_numpy()
    if pd.api.types.is_numeric_dtype(raw):
        values = raw.astype(float)
        return values, np.zeros(len(raw), dtype=bool), values.isna().to_numpy()
    source = raw if pd.api.types.infer_dtype(raw, skipna=True) == "string" else as_text(raw)
    values = pd.to_numeric(source, errors="coerce").astype(float)
    if decimal_comma and _dots_group_thousands(source):
        values[source.astype(str).str.contains(".", regex=False).to_numpy()] = np.nan  # read below
    unread = values.isna().to_numpy()
    missing = np.zeros(len(raw), dtype=bool)
    if unread.any():  # only the few cells that are empty or not plain numbers are looked at again
        text = as_text(source[unread])
        missing[unread] = text.isna().to_numpy()
        failed = text.notna()
        if failed.any():
            retry = _loose_numbers(text[failed], decimal_comma, booleans)
            values.loc[text[failed].index] = retry.to_numpy()
    failed_cells = values.isna().to_numpy() & ~missing
    return values, failed_cells, missing


def _dots_group_thousands(source: pd.Series) -> bool:
    """Whether a semicolon file's column writes thousands as "1.500", so "1.500" is 1500, not 1.5.

    Semicolon files come from decimal-comma locales, but some write decimal dots; the column
    decides. A decimal comma anywhere ("1.500,00", "2,5") makes every dot a thousands separator.
    Without one, dots group thousands only where every dotted value is a thousands group ("1.500",
    "2.100", never "0.250" or "2.5") and the values written without a dot are all under 1,000:
    "1.500" beside "980" is 1500 (it was 1.5 beside "1.500,00" read as 1500), while a column of
    prices "0.250", "1.500" or of fuel prices "1.459", "1.519" only keeps its decimal dots.
    """
    text = source.dropna().astype(str).str.replace(r"[\s\u00a0$£€¥]", "", regex=True)
    if text.str.contains(r"\d,\d", regex=True).any():
        return True
    dotted = text.str.contains(".", regex=False)
    plain = text[~dotted & text.str.fullmatch(r"[+-]?\d+")]
    return (
        bool(dotted.any())
        and bool(text[dotted].str.fullmatch(r"[+-]?[1-9]\d{0,2}(?:\.\d{3})+").all())
        and len(plain) > 0
        and bool((plain.str.lstrip("+-").str.len() <= 3).all())
    )


def _loose_numbers(text: pd.Series, decimal_comma: bool, booleans: bool) -> pd.Series:
    cleaned = text.str.replace(r"[\s\u00a0$£€¥]", "", regex=True)
    if decimal_comma:
        pattern = r"[+-]?\d{1,3}(?:\.\d{3})*(?:,\d+)?|[+-]?\d+,\d+"
        fixed = cleaned.where(cleaned.str.fullmatch(pattern)).str.replace(".", "", regex=False)
        fixed = fixed.str.replace(",", ".", regex=False)
    else:
        pattern = r"[+-]?\d{1,3}(?:,\d{3})+(?:\.\d+)?"
        fixed = cleaned.where(cleaned.str.fullmatch(pattern)).str.replace(",", "", regex=False)
    plain = cleaned.str.fullmatch(NUMBER).fillna(False).to_numpy(dtype=bool)
    fixed = pd.Series(
        np.where(fixed.isna().to_numpy() & plain, cleaned, fixed), index=text.index, dtype=object
    )
    values = pd.to_numeric(fixed, errors="coerce").astype(float)
    if booleans:
        lower = text.str.lower()
        values = values.fillna(lower.map(lambda v: 1.0 if v in _TRUE else 0.0 if v in _FALSE else np.nan))
    return values


def as_text(raw: pd.Series) -> pd.Series:
    """Cells as stripped text, ``NaN`` for empty; integral floats lose their '.0' (Excel ids)."""
    if pd.api.types.is_integer_dtype(raw) or pd.api.types.is_bool_dtype(raw):
        text = raw.astype(str)
    elif pd.api.types.is_float_dtype(raw):
        text = raw.map(_cell_text)
    elif pd.api.types.infer_dtype(raw, skipna=True) in ("string", "empty"):
        text = raw
    else:
        text = raw.map(_cell_text)
    text = text.astype(object).str.strip()
    return text.where(text.notna() & (text != ""))


def _cell_text(value: Any) -> Any:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return np.nan
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, bytes):  # Parquet BYTE_ARRAY text from older Spark/Hive writers, else "b'A'"
        return value.decode("utf-8", errors="replace")
    return str(value)


def date_tokens(text: pd.Series) -> tuple[pd.Series, pd.Series]:
    parts = text.str.extract(_DATE_AND_TIME, expand=True)
    return parts[0], parts[1]


def has_time_of_day(raw: pd.Series) -> bool:
    if pd.api.types.is_datetime64_any_dtype(raw):
        return bool((raw.dropna() != raw.dropna().dt.normalize()).any())
    sample = raw.dropna().head(2000)
    if pd.api.types.infer_dtype(sample, skipna=True) not in ("string", "empty"):
        stamps = [v for v in sample if isinstance(v, datetime)]
        return any(v.time() != datetime.min.time() for v in stamps)
    parts = as_text(sample).str.extract(_DATE_AND_TIME, expand=True)
    times, half = parts[1], parts[2].fillna("").str.upper()
    # midnight is 00:00 on a 24-hour clock and 12:00 AM on a 12-hour one ("3/1/2025 12:00:00 AM"
    # read as a time of day turned a daily file into transactions: repeated rows were summed)
    midnight = times.str.fullmatch(r"0{1,2}:00(?::00(?:\.0+)?)?") & (half != "PM")
    midnight |= times.str.fullmatch(r"12:00(?::00(?:\.0+)?)?") & (half == "AM")
    return bool((times.notna() & ~midnight.fillna(False).astype(bool)).any())


def _naive(value: Any) -> Any:
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value.replace(tzinfo=None)
    return value


def show(value: Any) -> str:
    """A cell for a message: quoted, cut short; nothing for an empty one ("units is empty", not "...''")."""
    if value is None or (isinstance(value, float) and np.isnan(value)) or not str(value).strip():
        return ""
    text = str(value)
    return repr(text if len(text) <= 60 else text[:57] + "...")


def no_problems() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "row": pd.Series(dtype=np.int64),
            "column": pd.Series(dtype=object),
            "message": pd.Series(dtype=object),
        }
    )
