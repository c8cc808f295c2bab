"""What only the SQLite backend has: its migrations, its URL rules and its append-only audit table."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect

from models.registry.base import RegistryError
from models.registry.local import LocalRegistry, audit_table, versions_table
from models.registry.migrations import LATEST, MIGRATIONS


def _url(path: Path) -> str:
    return f"sqlite:///{path}"


def test_fresh_database_is_migrated_to_the_latest_schema_once(tmp_path: Path) -> None:
    db = tmp_path / "nested" / "registry.db"
    LocalRegistry(_url(db)).close()
    LocalRegistry(_url(db)).close()  # reopening applies nothing twice
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT version, description FROM registry_schema ORDER BY version").fetchall()
        mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
    assert [r[0] for r in rows] == [m.version for m in MIGRATIONS] == list(range(1, LATEST + 1))
    assert mode == "wal"


def test_migrated_schema_matches_the_tables_the_code_queries(tmp_path: Path) -> None:
    db = tmp_path / "registry.db"
    LocalRegistry(_url(db)).close()
    inspector = inspect(create_engine(_url(db)))
    for table in (versions_table, audit_table):
        assert [c["name"] for c in inspector.get_columns(table.name)] == [c.name for c in table.columns]
    assert inspector.get_pk_constraint("registry_versions")["constrained_columns"] == ["tenant_id", "version"]


def test_audit_rows_cannot_be_changed_or_deleted(tmp_path: Path) -> None:
    db = tmp_path / "registry.db"
    registry = LocalRegistry(_url(db))
    registry.register("acme", "s3://b/m.tar.gz", {}, {}, True)
    registry.close()
    with sqlite3.connect(db) as conn:
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            conn.execute("UPDATE registry_audit SET actor = 'someone else'")
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            conn.execute("DELETE FROM registry_audit")
    assert LocalRegistry(_url(db)).audit_log("acme")[0].actor == "pipeline"


def test_database_from_newer_code_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "registry.db"
    LocalRegistry(_url(db)).close()
    with sqlite3.connect(db) as conn:
        conn.execute("INSERT INTO registry_schema VALUES (?, 'from the future', '2030-01-01')", (LATEST + 1,))
    with pytest.raises(RegistryError, match=f"schema version {LATEST + 1}"):
        LocalRegistry(_url(db))


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("sqlite://", "database file"),
        ("sqlite:///:memory:", "database file"),
        ("postgresql+psycopg://postgres@127.0.0.1/test", "needs sqlite"),
    ],
)
def test_urls_the_local_registry_cannot_share_are_refused(url: str, message: str) -> None:
    with pytest.raises(RegistryError, match=message):
        LocalRegistry(url)


def test_non_integer_version_is_a_clear_error(tmp_path: Path) -> None:
    registry = LocalRegistry(_url(tmp_path / "registry.db"))
    with pytest.raises(RegistryError, match="integer"):
        registry.get("acme", "1")  # type: ignore[arg-type]


def test_gate_passed_must_be_a_real_bool(tmp_path: Path) -> None:
    registry = LocalRegistry(_url(tmp_path / "registry.db"))
    with pytest.raises(RegistryError, match="gate_passed"):
        registry.register("acme", "s3://b/m", {}, {}, 1)  # type: ignore[arg-type]
