"""Rejected rows written back for the user to fix, escaped so no cell can run as a formula.

The quarantine CSV is opened in a spreadsheet by the very people whose upload was refused, and it
quotes their cells, including the ``=cmd|...`` cells that were refused for being formulas. Every text
cell that a spreadsheet would evaluate (leading ``= + - @``, tab or carriage return) is written with a
leading apostrophe, OWASP's recommended neutraliser; plain numbers such as ``-5`` stay as they are.
"""

from __future__ import annotations

import csv
import math
import re
from pathlib import Path
from typing import Any

import pandas as pd

from ordernimbus.atomic import replacing

_DANGEROUS = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")


def safe_cell(value: Any) -> str:
    """The cell as text a spreadsheet shows but never evaluates."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    text = str(value)
    if text.startswith(_DANGEROUS) and not _PLAIN_NUMBER.fullmatch(text):
        return "'" + text
    return text


def write_quarantine(frame: pd.DataFrame, path: Path) -> Path:
    """Write ``frame`` (row, reasons, cells ...) as UTF-8 CSV, atomically."""
    with replacing(path) as tmp, open(tmp, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, quoting=csv.QUOTE_ALL)
        writer.writerow([safe_cell(c) for c in frame.columns])
        for values in frame.itertuples(index=False, name=None):
            writer.writerow([safe_cell(v) for v in values])
    return path
