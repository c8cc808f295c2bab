"""Engines for the store's databases, configured once for what the store relies on.

SQLite: WAL (readers never wait for the writer), a busy timeout, and transactions that SQLAlchemy
begins itself. pysqlite would otherwise start a transaction only at the first INSERT, so a reader's
two SELECTs could straddle a writer's commit; with an explicit BEGIN they share one snapshot.
Writers pass ``sqlite_begin="IMMEDIATE"`` to take the write lock up front. PostgreSQL: psycopg 3
only (the COPY path uses it), with pre-ping because Lambda freezes idle connections.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine, make_url

from inference.store.base import ForecastStoreError


def create_engine_for(url: str) -> Engine:
    """An engine configured for the store: WAL + real transactions on SQLite, pre-ping on PostgreSQL."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(parsed, connect_args={"timeout": 30})
        _configure_sqlite(engine)
        return engine
    if backend == "postgresql":
        if parsed.drivername == "postgresql":
            parsed = parsed.set(drivername="postgresql+psycopg")
        if parsed.get_driver_name() != "psycopg":
            raise ForecastStoreError(
                f"database URL driver {parsed.drivername!r} is not supported: use postgresql+psycopg://"
            )
        return sa.create_engine(parsed, pool_pre_ping=True, pool_size=2, max_overflow=4)
    raise ForecastStoreError(
        f"database URL scheme {parsed.drivername!r} is not supported: expected sqlite:///<path> "
        "or postgresql+psycopg://user@host/db"
    )


def _configure_sqlite(engine: Engine) -> None:
    """Hand transaction control to SQLAlchemy (pysqlite's implicit BEGIN is too late for snapshots)."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        for pragma in (
            "busy_timeout=30000",
            "journal_mode=WAL",
            "synchronous=NORMAL",
            "foreign_keys=ON",
            "cache_size=-65536",
        ):
            cur.execute(f"PRAGMA {pragma}")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # Writers take the write lock up front; a deferred reader that later writes could fail.
        mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
        conn.exec_driver_sql(f"BEGIN {mode}")
