"""Write-then-swap and advisory locks: the two file disciplines every local writer follows.

A reader must never see half a file, so a writer fills a temporary file beside the target and
renames it over the target (``os.replace`` is atomic within a directory); an error leaves the old
file as it was and removes the temporary one. Writers of the same file on one machine take an
advisory ``flock`` on a lock file beside it. Standard library only: the API's Lambda package may
import it.
"""

from __future__ import annotations

import fcntl
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ordernimbus.errors import OrderNimbusError


class OutputPathError(OrderNimbusError):
    title = "Invalid output path"


def user_target(path: Path, example: str) -> None:
    """Refuse a file the user named that cannot be written: a folder, or one in a missing folder.

    Checked before any work, with the same words for every command that writes where it is told
    (forecast export, model cards); ``example`` is a file name to suggest inside a folder.
    """
    if path.is_dir():
        raise OutputPathError(f"{path} is a directory: give a file name (e.g. {path / example})")
    if not path.parent.is_dir():
        raise OutputPathError(f"folder {path.parent} does not exist: create it or choose another path")


@contextmanager
def replacing(path: Path, *, suffix: str = ".tmp", durable: bool = False) -> Iterator[Path]:
    """A temporary path beside ``path`` to write to; renamed over ``path`` when the block succeeds.

    ``durable`` fsyncs the new file before the rename, for data that must survive a power cut
    (the sales lake); reports and archives that can be rebuilt skip the cost.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}-", suffix=suffix)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        if durable:
            with open(tmp, "rb") as handle:
                os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_text(path: Path, text: str) -> Path:
    """``path`` holds exactly ``text`` (UTF-8) or, if writing failed, what it held before."""
    with replacing(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return path


@contextmanager
def file_lock(lock_path: Path) -> Iterator[None]:
    """Exclusive advisory lock on ``lock_path`` (created if absent) for the duration of the block."""
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "a+b") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
