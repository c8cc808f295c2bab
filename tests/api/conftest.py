"""Fixtures for the API tests: a seeded two-tenant world on SQLite and on the PostgreSQL server."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from serving_world import World, build_world

from serving.app import create_app

PG_URL = os.environ.get("ORDERNIMBUS_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def _pg_admin() -> Any:
    import psycopg

    try:
        return psycopg.connect(PG_URL.replace("+psycopg", ""), autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        pytest.skip(f"PostgreSQL not reachable at {PG_URL} ({exc}); set ORDERNIMBUS_TEST_POSTGRES_URL")


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    schema = f"t_srv_{uuid.uuid4().hex[:10]}"
    with _pg_admin() as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    yield f"{PG_URL}?options=-csearch_path%3D{schema}"
    with _pg_admin() as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


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
