"""Write-then-swap: a failed write leaves the old file and no temporary behind."""

from __future__ import annotations

from pathlib import Path

import pytest

from ordernimbus.atomic import file_lock, replacing, write_text


def test_a_failed_write_leaves_the_old_file_whole_and_no_temporary(tmp_path: Path) -> None:
    target = write_text(tmp_path / "report.json", '{"old": true}')
    with pytest.raises(RuntimeError, match="halfway"):
        _write_then_fail(target)
    assert target.read_text(encoding="utf-8") == '{"old": true}'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.json"]
    write_text(target, '{"new": true}')
    assert target.read_text(encoding="utf-8") == '{"new": true}'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.json"]


def test_file_lock_creates_its_folder_and_is_reentrant_after_release(tmp_path: Path) -> None:
    lock = tmp_path / "tenant" / ".lock"
    with file_lock(lock):
        assert lock.exists()
    with file_lock(lock):  # released: a second holder gets it at once
        pass


def _write_then_fail(target: Path) -> None:
    with replacing(target, durable=True) as tmp:
        tmp.write_text('{"half', encoding="utf-8")
        raise RuntimeError("disk full halfway")
