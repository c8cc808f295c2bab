"""Shared parameter declarations: identifiers are 1-128 printable characters.

Control characters are refused at the edge (422) rather than passed on: PostgreSQL cannot store
NUL in text at all, and no store, SKU, job or key id legitimately contains one.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import Path, Query
from pydantic import AfterValidator, BeforeValidator

from ordernimbus.text import ISO_DAY, control_free

PRINTABLE = r"^[^\x00-\x1f\x7f]+$"
ID_QUERY = Query(min_length=1, max_length=128, pattern=PRINTABLE)
ID_PATH = Path(min_length=1, max_length=128, pattern=PRINTABLE)


def _iso_date(value: object) -> object:
    """Only YYYY-MM-DD: pydantic would also read ``0``, ``1700000000`` or ``"1700000000"`` as a Unix
    timestamp, in a query string or a JSON body."""
    if isinstance(value, date):
        return value
    if not isinstance(value, str) or not ISO_DAY.fullmatch(value):
        raise ValueError("expected a date as YYYY-MM-DD")
    return value


IsoDate = Annotated[date, BeforeValidator(_iso_date)]


def _label(value: str) -> str:
    """A name: no control characters, valid UTF-8 (a NUL in a key's name answered 500 on PostgreSQL)."""
    if not control_free(value):
        raise ValueError("expected text without control characters")
    return value


def _note(value: str) -> str:
    """Free text such as an approval's reason: tabs and line breaks allowed, other controls not."""
    if not control_free(value, breaks=True):
        raise ValueError("expected text without control characters other than tabs and line breaks")
    return value


Label = Annotated[str, AfterValidator(_label)]
Note = Annotated[str, AfterValidator(_note)]
