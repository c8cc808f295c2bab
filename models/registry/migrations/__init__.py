"""Versioned schema of the embedded (SQLite) registry: a numbered list of steps and a version table.

Why not Alembic: the registry belongs to the light core (CLI and API), whose only database
dependency is SQLAlchemy, while Alembic ships in the ``store`` extra. The schema is two tables and
two triggers; a forty-line runner applies missing steps inside the caller's ``BEGIN IMMEDIATE``
transaction, so two processes opening a fresh database at once cannot both migrate it, and a
database written by newer code is refused instead of being silently misread. Steps are frozen
history: change the schema by appending a step, never by editing one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Connection, text

from models.registry.base import RegistryError


@dataclass(frozen=True)
class Migration:
    version: int
    description: str
    statements: tuple[str, ...]


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "model versions and the audit log",
        (
            """
            CREATE TABLE registry_versions (
                tenant_id      VARCHAR(63)  NOT NULL,
                group_name     VARCHAR(75)  NOT NULL,
                version        INTEGER      NOT NULL CHECK (version >= 1),
                status         VARCHAR(32)  NOT NULL
                    CHECK (status IN ('PendingManualApproval', 'Approved', 'Rejected')),
                artifact_uri   TEXT         NOT NULL,
                metrics        JSON         NOT NULL,
                lineage        JSON         NOT NULL,
                inference_spec JSON         NOT NULL,
                gate_passed    BOOLEAN      NOT NULL,
                created_at     VARCHAR(32)  NOT NULL,
                created_by     VARCHAR(255) NOT NULL,
                approved_at    VARCHAR(32),
                decided_by     VARCHAR(255),
                reason         TEXT,
                override       BOOLEAN      NOT NULL DEFAULT 0,
                PRIMARY KEY (tenant_id, version),
                UNIQUE (group_name, version)
            )
            """,
            """
            CREATE INDEX ix_registry_versions_serving
                ON registry_versions (tenant_id, status, approved_at)
            """,
            """
            CREATE TABLE registry_audit (
                id        INTEGER      PRIMARY KEY AUTOINCREMENT,
                tenant_id VARCHAR(63)  NOT NULL,
                at        VARCHAR(32)  NOT NULL,
                actor     VARCHAR(255) NOT NULL,
                action    VARCHAR(32)  NOT NULL,
                version   INTEGER,
                detail    JSON         NOT NULL
            )
            """,
            "CREATE INDEX ix_registry_audit_tenant ON registry_audit (tenant_id, id)",
        ),
    ),
    Migration(
        2,
        "the audit log is append-only",
        (
            """
            CREATE TRIGGER registry_audit_no_update BEFORE UPDATE ON registry_audit
            BEGIN SELECT RAISE(ABORT, 'registry_audit is append-only'); END
            """,
            """
            CREATE TRIGGER registry_audit_no_delete BEFORE DELETE ON registry_audit
            BEGIN SELECT RAISE(ABORT, 'registry_audit is append-only'); END
            """,
        ),
    ),
)

LATEST = MIGRATIONS[-1].version


def current_version(conn: Connection) -> int:
    """The schema version recorded in the database (0 for a fresh one)."""
    conn.exec_driver_sql(
        "CREATE TABLE IF NOT EXISTS registry_schema ("
        " version INTEGER PRIMARY KEY, description TEXT NOT NULL, applied_at VARCHAR(32) NOT NULL)"
    )
    found = conn.execute(text("SELECT MAX(version) FROM registry_schema")).scalar()
    return int(found or 0)


def upgrade(conn: Connection, migrations: Sequence[Migration] = MIGRATIONS) -> list[int]:
    """Apply the missing steps on ``conn`` (already inside a write transaction); return them."""
    have = current_version(conn)
    known = migrations[-1].version if migrations else 0
    if have > known:
        raise RegistryError(
            f"the registry database has schema version {have}, newer than this code knows ({known}); "
            "upgrade OrderNimbus before opening it"
        )
    applied: list[int] = []
    for step in migrations:
        if step.version <= have:
            continue
        for statement in step.statements:
            conn.exec_driver_sql(statement)
        conn.execute(
            text("INSERT INTO registry_schema (version, description, applied_at) VALUES (:v, :d, :at)"),
            {"v": step.version, "d": step.description, "at": datetime.now(UTC).isoformat()},
        )
        applied.append(step.version)
    return applied
