"""Database URLs for tests: a temp SQLite file, or a fresh schema on the real PostgreSQL server.

The one copy of the PostgreSQL test setup (store, API and monitoring tests build their ``pg_url``
fixtures on :func:`pg_schema`). Import as ``from storecase import ...`` (tests/ is on the path
through conftest.py). PostgreSQL tests skip with a clear reason when no server answers.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest

PG_URL = os.environ.get("ORDERNIMBUS_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
FIRST_DAY = date(2025, 3, 3)


def pg_admin() -> Any:
    import psycopg

    try:
        return psycopg.connect(PG_URL.replace("+psycopg", ""), autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        pytest.skip(f"PostgreSQL not reachable at {PG_URL} ({exc}); set ORDERNIMBUS_TEST_POSTGRES_URL")


@contextmanager
def pg_schema(label: str = "t_case") -> Iterator[str]:
    """A URL whose search_path is a schema created now and dropped afterwards."""
    schema = f"{label}_{uuid.uuid4().hex[:10]}"
    with pg_admin() as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    try:
        yield f"{PG_URL}?options=-csearch_path%3D{schema}"
    finally:
        with pg_admin() as conn:
            conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


def sqlite_url(tmp_path: Path, name: str = "store.db") -> str:
    return f"sqlite:///{tmp_path / name}"


def new_tenant(label: str = "t") -> str:
    return f"{label}-{uuid.uuid4().hex[:10]}"


def series_rows(n_series: int, days: int = 28, level: float = 10.0, stores: int = 3) -> list[tuple[Any, ...]]:
    """Forecast tuples of realistic shape: weekly pattern, intervals widening with the horizon."""
    rows = []
    for s in range(n_series):
        store_id, sku = f"store-{s % stores}", f"sku-{s:04d}"
        for d in range(days):
            p50 = level + s + (3.0 if (FIRST_DAY + timedelta(d)).weekday() >= 5 else 0.0)
            spread = 1.0 + 0.1 * d
            rows.append(
                (store_id, sku, FIRST_DAY + timedelta(d), d + 1, p50 - spread, p50, p50 + 2 * spread, p50)
            )
    return rows
