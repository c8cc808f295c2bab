"""Free text that reaches a store or a terminal: no control characters, valid UTF-8.

One rule for every door: the API (key names, approval reasons, cursors) and the CLI (the same
names and reasons) refuse the same text. A NUL cannot be stored in PostgreSQL text at all, an
unpaired surrogate cannot be encoded by any driver, and escape sequences in an approval reason
were written raw to the terminal of whoever read the audit log.
"""

from __future__ import annotations

import re
from datetime import date

# A date as users must write it wherever one is typed (--until, outages, API dates): pandas and
# pydantic alone read "01/03/2025" month first, "2025" as 1 January and 1700000000 as a Unix time.
ISO_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_CONTROL_BUT_BREAKS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def control_free(text: str, *, breaks: bool = False) -> bool:
    """No control characters (tabs and line breaks allowed with ``breaks``) and encodable as UTF-8."""
    if (_CONTROL_BUT_BREAKS if breaks else _CONTROL).search(text):
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # an unpaired surrogate, which JSON's \ud800 escapes can carry
        return False
    return True


def iso_day(text: str) -> date | None:
    """``text`` as a calendar day if it is exactly YYYY-MM-DD and a real day (not 2017-02-30)."""
    if not ISO_DAY.fullmatch(text.strip()):
        return None
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        return None
