"""Free text that reaches a store or a terminal: no control characters, valid UTF-8.

One rule for every door: the API (key names, approval reasons, cursors) and the CLI (the same
names and reasons) refuse the same text. A NUL cannot be stored in PostgreSQL text at all, an
unpaired surrogate cannot be encoded by any driver, and escape sequences in an approval reason
were written raw to the terminal of whoever read the audit log.
"""

from __future__ import annotations

import re

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
