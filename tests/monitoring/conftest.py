"""Fixtures of the monitoring tests: a store URL on SQLite and on the real PostgreSQL server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from storecase import pg_schema


@pytest.fixture(scope="session")
def monitor_pg_url() -> Iterator[str]:
    """A schema of its own for this session, dropped afterwards (skips when no server answers)."""
    with pg_schema("t_monitor") as url:
        yield url


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    return str(request.getfixturevalue("monitor_pg_url"))
