"""Fixtures for the API tests: a seeded two-tenant world on SQLite and on the PostgreSQL server."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from serving_world import World, build_world
from storecase import pg_schema

from serving.app import create_app


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    """A schema of its own per test module on the PostgreSQL server (skips when none answers)."""
    with pg_schema("t_srv") as url:
        yield url


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def world(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    home = tmp_path_factory.mktemp("home")
    db = f"sqlite:///{home / 'api.db'}" if request.param == "sqlite" else request.getfixturevalue("pg_url")
    built = build_world(home, db)
    yield built
    built.store.close()
    built.registry.close()


@pytest.fixture(scope="module")
def client(world: World) -> Iterator[TestClient]:
    with TestClient(create_app(world.settings), raise_server_exceptions=False) as test_client:
        yield test_client
