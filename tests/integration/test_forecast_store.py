"""The forecast store port, run against SQLite (a temp file) and the real PostgreSQL server.

PostgreSQL runs in a schema created for this session and dropped after it; every test also uses
its own tenant ids, so nothing here depends on what else is in the database.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from inference.store.base import (
    FORECAST_COLUMNS,
    ForecastDataError,
    ForecastSetNotFoundError,
    ForecastStoreError,
    InvalidCursorError,
)
from inference.store.factory import open_forecast_store
from inference.store.migrations import HEAD_REVISION, MIGRATIONS_DIR, current_revision, migrate
from inference.store.sql import SqlForecastStore
from inference.store.tables import forecasts, store_metadata
from ordernimbus.errors import OrderNimbusError
from ordernimbus.settings import Settings

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
PG_URL = os.environ.get("ORDERNIMBUS_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
FIRST_DAY = date(2025, 3, 3)


# -- fixtures --------------------------------------------------------------------------------


def _pg_admin() -> Any:
    import psycopg

    try:
        return psycopg.connect(PG_URL.replace("+psycopg", ""), autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        pytest.skip(f"PostgreSQL not reachable at {PG_URL} ({exc}); set ORDERNIMBUS_TEST_POSTGRES_URL")


def _fresh_pg_schema() -> tuple[str, str]:
    schema = f"t_store_{uuid.uuid4().hex[:10]}"
    with _pg_admin() as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    return f"{PG_URL}?options=-csearch_path%3D{schema}", schema


def _drop_pg_schema(schema: str) -> None:
    with _pg_admin() as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    url, schema = _fresh_pg_schema()
    yield url
    _drop_pg_schema(schema)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture
def store(url: str) -> Iterator[SqlForecastStore]:
    with SqlForecastStore(url, keep_sets=3) as opened:
        yield opened


def _tenant(label: str = "t") -> str:
    return f"{label}-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def tenant() -> str:
    return _tenant("acme")


def series_rows(n_series: int, days: int = 28, level: float = 10.0, stores: int = 3) -> list[tuple[Any, ...]]:
    """Realistic-shaped rows: weekly pattern, widening intervals, ids as the contract has them."""
    rows = []
    for s in range(n_series):
        store_id, sku = f"store-{s % stores}", f"sku-{s:04d}"
        for d in range(days):
            p50 = level + s + (3.0 if (FIRST_DAY + timedelta(d)).weekday() >= 5 else 0.0)
            spread = 1.0 + 0.1 * d
            rows.append(
                (
                    store_id,
                    sku,
                    FIRST_DAY + timedelta(d),
                    d + 1,
                    p50 - spread,
                    p50,
                    p50 + 2 * spread,
                    p50 + 0.3,
                )
            )
    return rows


def chunked(rows: list[tuple[Any, ...]], size: int) -> Iterator[list[tuple[Any, ...]]]:
    for i in range(0, len(rows), size):
        yield rows[i : i + size]


def read_all(store: SqlForecastStore, tenant: str, limit: int = 100, **filters: Any) -> list[Any]:
    out, cursor = [], None
    while True:
        page = store.query(tenant, limit=limit, cursor=cursor, **filters)
        out.extend(page.rows)
        cursor = page.next_cursor
        if cursor is None:
            return out


def as_tuples(rows: list[Any]) -> list[tuple[Any, ...]]:
    return [tuple(getattr(r, c) for c in FORECAST_COLUMNS) for r in rows]


# -- round trip and pagination ---------------------------------------------------------------


def test_round_trip_returns_every_value_and_set_summary(store: SqlForecastStore, tenant: str) -> None:
    rows = series_rows(5)
    published = store.write_set(tenant, 7, chunked(rows, 40), metadata={"run_id": "r-1", "wape": 0.31})
    assert (published.status, published.is_current, published.model_version) == ("complete", True, 7)
    assert (published.rows, published.series) == (140, 5)
    assert (published.start_date, published.end_date) == (FIRST_DAY, FIRST_DAY + timedelta(27))
    assert published.metadata == {"run_id": "r-1", "wape": 0.31}
    assert published.generated_at.tzinfo is not None
    assert published.completed_at is not None
    assert store.current_set(tenant) == published

    got = read_all(store, tenant, limit=1000)
    assert as_tuples(got) == sorted(rows, key=lambda r: (r[0], r[1], r[2]))
    assert {(r.tenant_id, r.model_version, r.forecast_set_id) for r in got} == {(tenant, 7, published.set_id)}
    assert {r.generated_at for r in got} == {published.generated_at}


@pytest.mark.parametrize("limit", [1, 7, 100, 1000])
def test_pagination_covers_every_row_exactly_once_in_key_order(
    store: SqlForecastStore, tenant: str, limit: int
) -> None:
    rows = series_rows(9, days=14)
    store.write_set(tenant, 1, chunked(rows, 50))
    keys = [(r.store_id, r.sku, r.target_date) for r in read_all(store, tenant, limit=limit)]
    assert keys == sorted((r[0], r[1], r[2]) for r in rows)
    page = store.query(tenant, limit=limit)
    assert len(page.rows) == min(limit, len(rows))
    assert (page.next_cursor is None) == (limit >= len(rows))


def test_filters_match_a_python_oracle_across_pages(store: SqlForecastStore, tenant: str) -> None:
    rows = series_rows(8)
    store.write_set(tenant, 1, [rows])
    start, end = FIRST_DAY + timedelta(5), FIRST_DAY + timedelta(11)
    cases: list[dict[str, Any]] = [
        {"store_id": "store-1"},
        {"sku": "sku-0004"},
        {"start": start, "end": end},
        {"store_id": "store-2", "start": start},
        {"store_id": "store-0", "sku": "sku-0003", "end": end},
        {"store_id": "no-such-store"},
    ]
    for filters in cases:
        expected = [
            r for r in rows
            if r[0] == filters.get("store_id", r[0]) and r[1] == filters.get("sku", r[1])
            and filters.get("start", r[2]) <= r[2] <= filters.get("end", r[2])
        ]  # fmt: skip
        got = as_tuples(read_all(store, tenant, limit=6, **filters))
        assert got == sorted(expected, key=lambda r: (r[0], r[1], r[2])), filters


def test_cursor_pins_its_set_when_a_newer_set_is_published(store: SqlForecastStore, tenant: str) -> None:
    old_rows = series_rows(4, level=10)
    old = store.write_set(tenant, 1, [old_rows])
    first = store.query(tenant, limit=50)
    new = store.write_set(tenant, 2, [series_rows(4, level=500)])
    rest = read_all_from(store, tenant, first.next_cursor)
    assert {r.forecast_set_id for r in first.rows + rest} == {old.set_id}
    assert len(first.rows) + len(rest) == len(old_rows)
    assert store.query(tenant, limit=5).forecast_set.set_id == new.set_id  # type: ignore[union-attr]


def read_all_from(store: SqlForecastStore, tenant: str, cursor: str | None) -> list[Any]:
    out = []
    while cursor is not None:
        page = store.query(tenant, limit=50, cursor=cursor)
        out.extend(page.rows)
        cursor = page.next_cursor
    return out


# -- cursors, parameters, tenant isolation ---------------------------------------------------


def test_cursor_is_refused_for_another_tenant_set_or_filter(store: SqlForecastStore, tenant: str) -> None:
    other = _tenant("other")
    store.write_set(tenant, 1, [series_rows(3)])
    other_set = store.write_set(other, 1, [series_rows(3)])
    cursor = store.query(tenant, limit=5).next_cursor
    assert cursor is not None
    with pytest.raises(InvalidCursorError, match="tenant") as err:
        store.query(other, limit=5, cursor=cursor)
    assert err.value.status == 400
    assert isinstance(err.value, OrderNimbusError)
    with pytest.raises(InvalidCursorError, match="other filters"):
        store.query(tenant, limit=5, cursor=cursor, store_id="store-1")
    mine = store.current_set(tenant)
    assert mine is not None
    second = store.write_set(tenant, 2, [series_rows(3)])
    with pytest.raises(InvalidCursorError, match=mine.set_id):
        store.query(tenant, limit=5, cursor=cursor, set_id=second.set_id)
    for garbage in ["x", "!!!", cursor[:-6], cursor[::-1], "e30", "a" * 5000]:
        with pytest.raises(InvalidCursorError, match="malformed"):
            store.query(tenant, limit=5, cursor=garbage)
    assert other_set.set_id != mine.set_id


def test_tenants_never_see_each_other(store: SqlForecastStore) -> None:
    a, b, empty = _tenant("a"), _tenant("b"), _tenant("c")
    set_a = store.write_set(a, 1, [series_rows(3, level=1)])
    set_b = store.write_set(b, 4, [series_rows(2, level=900)])
    assert {r.tenant_id for r in read_all(store, a)} == {a}
    assert {r.forecast_set_id for r in read_all(store, b)} == {set_b.set_id}
    assert len(read_all(store, a)) == 84
    assert len(read_all(store, b)) == 56
    assert [s.set_id for s in store.list_sets(a)] == [set_a.set_id]
    with pytest.raises(ForecastSetNotFoundError) as err:
        store.query(b, set_id=set_a.set_id)
    assert err.value.status == 404
    assert store.current_set(empty) is None
    assert store.list_sets(empty) == []
    with pytest.raises(ForecastSetNotFoundError, match="no complete forecast set yet"):
        store.query(empty)
    with pytest.raises(OrderNimbusError, match="invalid tenant"):
        store.query("../a")


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"limit": 0}, "limit"),
        ({"limit": 1001}, "limit"),
        ({"limit": True}, "limit"),
        ({"start": date(2025, 3, 9), "end": date(2025, 3, 8)}, "start"),
    ],
)
def test_bad_query_parameters_are_named(
    store: SqlForecastStore, tenant: str, kwargs: Any, match: str
) -> None:
    store.write_set(tenant, 1, [series_rows(1)])
    with pytest.raises(ForecastStoreError, match=match):
        store.query(tenant, **kwargs)


# -- atomicity, bad input, crashes -----------------------------------------------------------


def test_writer_that_raises_midway_leaves_previous_set_current(store: SqlForecastStore, tenant: str) -> None:
    old_rows = series_rows(4)
    old = store.write_set(tenant, 1, [old_rows])

    def failing_chunks() -> Iterator[list[tuple[Any, ...]]]:
        yield series_rows(4, level=50)
        yield [("store-x", *r[1:]) for r in series_rows(2, level=60)[:10]]
        raise RuntimeError("model server went away")

    with pytest.raises(RuntimeError, match="went away"):
        store.write_set(tenant, 2, failing_chunks())
    assert store.current_set(tenant) == old
    assert as_tuples(read_all(store, tenant, limit=1000)) == sorted(old_rows, key=lambda r: r[:3])
    assert [s.set_id for s in store.list_sets(tenant)] == [old.set_id]
    with store.engine.connect() as conn:
        count = conn.execute(
            sa.select(sa.func.count()).select_from(forecasts).where(forecasts.c.tenant_id == tenant)
        ).scalar_one()
    assert count == len(old_rows)


@pytest.mark.parametrize(
    ("bad", "match"),
    [
        (("store-1", "sku", date(2025, 3, 3), 1, 1.0, 2.0), "row 31: expected 8 values"),
        (("store-1", "", date(2025, 3, 3), 1, 1.0, 2.0, 3.0, 2.0), "row 31, column 'sku'"),
        ((7, "sku", date(2025, 3, 3), 1, 1.0, 2.0, 3.0, 2.0), "row 31, column 'store_id'"),
        (("store-1", "sku", "2025-03-03", 1, 1.0, 2.0, 3.0, 2.0), "row 31, column 'target_date'"),
        (("store-1", "sku", date(2025, 3, 3), 0, 1.0, 2.0, 3.0, 2.0), "row 31, column 'horizon_day'"),
        (("store-1", "sku", date(2025, 3, 3), 1.5, 1.0, 2.0, 3.0, 2.0), "row 31, column 'horizon_day'"),
        (("store-1", "sku", date(2025, 3, 3), 1, "1", 2.0, 3.0, 2.0), "row 31, column 'p10'"),
        (("store-1", "sku", date(2025, 3, 3), 1, 1.0, float("nan"), 3.0, 2.0), "row 31: .*finite"),
        (("store-1", "sku", date(2025, 3, 3), 1, 1.0, 2.0, float("inf"), 2.0), "row 31: .*finite"),
        (("store-1", "sku", date(2025, 3, 3), 1, 3.0, 2.0, 4.0, 2.0), "row 31: quantiles"),
    ],
)
def test_bad_rows_are_named_and_nothing_is_published(
    store: SqlForecastStore, tenant: str, bad: tuple[Any, ...], match: str
) -> None:
    old = store.write_set(tenant, 1, [series_rows(1)])
    with pytest.raises(ForecastDataError, match=match):
        store.write_set(tenant, 2, [series_rows(2)[:20], [*series_rows(2, level=3)[20:30], bad]])
    assert store.current_set(tenant) == old
    assert [s.set_id for s in store.list_sets(tenant)] == [old.set_id]


def test_duplicate_rows_and_empty_sets_are_refused(store: SqlForecastStore, tenant: str) -> None:
    old = store.write_set(tenant, 1, [series_rows(2)])
    rows = series_rows(2)
    with pytest.raises(ForecastStoreError, match="may appear once"):
        store.write_set(tenant, 2, [rows, rows[5:6]])
    with pytest.raises(ForecastStoreError, match="empty set"):
        store.write_set(tenant, 2, [[], []])
    with pytest.raises(ForecastStoreError, match="model_version"):
        store.write_set(tenant, 0, [rows])
    with pytest.raises(ForecastStoreError, match="JSON"):
        store.write_set(tenant, 2, [rows], metadata={"when": object()})
    assert store.current_set(tenant) == old
    assert len(store.list_sets(tenant)) == 1


def test_numpy_and_pandas_scalars_are_accepted(store: SqlForecastStore, tenant: str) -> None:
    np = pytest.importorskip("numpy")
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame(series_rows(2), columns=list(FORECAST_COLUMNS))
    frame["target_date"] = pd.to_datetime(frame["target_date"])
    frame["horizon_day"] = frame["horizon_day"].astype(np.int32)
    rows = [tuple(r) for r in frame.to_numpy(dtype=object)]
    assert type(rows[0][2]) is pd.Timestamp
    published = store.write_set(tenant, 1, [rows])
    got = read_all(store, tenant, limit=1000)
    assert published.rows == 56
    assert as_tuples(got) == series_rows(2)


def test_crashed_writer_leaves_previous_set_and_is_swept(url: str, tenant: str) -> None:
    """A process killed mid-load (no chance to clean up) must not disturb readers."""
    with SqlForecastStore(url, keep_sets=3) as store:
        old = store.write_set(tenant, 1, [series_rows(3)])
    script = f"""
import os, sys
from datetime import date
from inference.store.sql import SqlForecastStore
store = SqlForecastStore({url!r})
def chunks():
    yield [("store-9", f"sku-{{i}}", date(2025, 3, 3), 1, 1.0, 2.0, 3.0, 2.0) for i in range(500)]
    sys.stdout.flush()
    os._exit(17)
store.write_set({tenant!r}, 2, chunks())
"""
    proc = subprocess.run(
        [sys.executable, "-c", script], check=False, cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 17, proc.stderr
    with SqlForecastStore(url, keep_sets=3) as store:
        assert store.current_set(tenant) == old
        assert {r.store_id for r in read_all(store, tenant, limit=1000)} == {"store-0", "store-1", "store-2"}
        assert [s.status for s in store.list_sets(tenant)] == ["writing", "complete"]
        assert store.apply_retention(tenant) == []  # younger than an hour: maybe still running
        store.abandoned_after = timedelta(0)
        assert len(store.apply_retention(tenant)) == 1
        assert [s.set_id for s in store.list_sets(tenant)] == [old.set_id]


# -- retention -------------------------------------------------------------------------------


def test_retention_keeps_newest_sets_and_deletes_their_rows(url: str, tenant: str) -> None:
    with SqlForecastStore(url, keep_sets=2) as store:
        ids = [store.write_set(tenant, v, [series_rows(2, level=v)]).set_id for v in range(1, 5)]
        sets = store.list_sets(tenant)
        assert [s.set_id for s in sets] == ids[:1:-1]
        assert [s.is_current for s in sets] == [True, False]
        with store.engine.connect() as conn:
            kept = conn.execute(
                sa.select(forecasts.c.forecast_set_id).where(forecasts.c.tenant_id == tenant).distinct()
            ).scalars()
            assert set(kept) == set(ids[2:])
        # An old set still readable by id until retention removes it.
        assert {r.forecast_set_id for r in store.query(tenant, set_id=ids[2]).rows} == {ids[2]}


def test_retention_never_deletes_the_current_set(url: str, tenant: str) -> None:
    from inference.store.tables import forecast_sets

    with SqlForecastStore(url, keep_sets=2) as store:
        store.write_set(tenant, 1, [series_rows(1)])
        current = store.write_set(tenant, 2, [series_rows(1)])
        newer_but_not_current = store.write_set(tenant, 3, [series_rows(1)])
        # Point current back at an older set, as a rollback would, and age it.
        with store.engine.begin() as conn:
            conn.execute(
                sa.text("UPDATE current_sets SET set_id = :s WHERE tenant_id = :t"),
                {"s": current.set_id, "t": tenant},
            )
            conn.execute(
                forecast_sets.update()
                .where(forecast_sets.c.set_id == current.set_id)
                .values(completed_at=current.generated_at - timedelta(days=30))
            )
        store.keep_sets = 1
        assert current.set_id not in store.apply_retention(tenant)
        assert {s.set_id for s in store.list_sets(tenant)} == {current.set_id, newer_but_not_current.set_id}
        assert store.current_set(tenant).set_id == current.set_id  # type: ignore[union-attr]


# -- concurrency -----------------------------------------------------------------------------


def test_readers_during_a_write_see_old_or_new_never_a_mix(url: str, tenant: str) -> None:
    with SqlForecastStore(url, keep_sets=3) as store:
        old_rows = series_rows(6, level=10)
        new_rows = series_rows(8, level=1000)
        old = store.write_set(tenant, 1, [old_rows])
        loading, release = threading.Event(), threading.Event()
        result: dict[str, Any] = {}

        def slow_chunks() -> Iterator[list[tuple[Any, ...]]]:
            yield new_rows[:100]
            loading.set()
            assert release.wait(30)
            yield new_rows[100:]

        def writer() -> None:
            result["set"] = store.write_set(tenant, 2, slow_chunks())

        thread = threading.Thread(target=writer)
        thread.start()
        assert loading.wait(30)
        snapshot = read_all(store, tenant, limit=40)  # mid-load: only the old set
        assert {r.forecast_set_id for r in snapshot} == {old.set_id}
        assert len(snapshot) == len(old_rows)
        release.set()
        seen = set()
        while thread.is_alive() or not seen or result.get("set") is None:
            page_rows = read_all(store, tenant, limit=1000)
            ids = {r.forecast_set_id for r in page_rows}
            assert len(ids) == 1, "a read mixed two sets"
            (set_id,) = ids
            assert len(page_rows) == (len(old_rows) if set_id == old.set_id else len(new_rows))
            seen.add(set_id)
            if not thread.is_alive() and result.get("set") is not None and result["set"].set_id in seen:
                break
            time.sleep(0.005)
        thread.join(30)
        assert store.current_set(tenant).set_id == result["set"].set_id  # type: ignore[union-attr]


# -- schema and migrations -------------------------------------------------------------------


def test_head_revision_constant_matches_the_migration_scripts() -> None:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    assert ScriptDirectory.from_config(config).get_heads() == [HEAD_REVISION]


def test_migrated_schema_matches_the_query_tables(store: SqlForecastStore) -> None:
    migrate(store.engine)  # idempotent: a second run is a no-op
    assert current_revision(store.engine) == HEAD_REVISION
    inspector = sa.inspect(store.engine)
    for table in store_metadata.sorted_tables:
        columns = {c["name"]: c for c in inspector.get_columns(table.name)}
        assert set(columns) == set(table.c.keys()), table.name
        for column in table.c:
            assert columns[column.name]["nullable"] == column.nullable, (table.name, column.name)
    pk = inspector.get_pk_constraint("forecasts")["constrained_columns"]
    assert pk == ["tenant_id", "forecast_set_id", "store_id", "sku", "target_date"]
    indexes = {ix["name"]: ix["column_names"] for ix in inspector.get_indexes("forecasts")}
    assert indexes["ix_forecasts_sku"] == ["tenant_id", "forecast_set_id", "sku", "store_id", "target_date"]


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_two_processes_migrating_a_fresh_database_at_once(backend: str, tmp_path: Path) -> None:
    schema = None
    if backend == "sqlite":
        target = f"sqlite:///{tmp_path / 'fresh.db'}"
    else:
        target, schema = _fresh_pg_schema()
    try:
        script = (
            "import sys, time; from inference.store.sql import SqlForecastStore\n"
            "time.sleep(max(0.0, float(sys.argv[2]) - time.time()))\n"
            "SqlForecastStore(sys.argv[1]).close()\n"
        )
        go = str(time.time() + 2.0)
        procs = [
            subprocess.Popen(
                [sys.executable, "-c", script, target, go], cwd=ROOT, stderr=subprocess.PIPE, text=True
            )
            for _ in range(2)
        ]
        errors = [p.communicate(timeout=60)[1] for p in procs]
        assert [p.returncode for p in procs] == [0, 0], errors
        with SqlForecastStore(target) as store:
            assert current_revision(store.engine) == HEAD_REVISION
    finally:
        if schema:
            _drop_pg_schema(schema)


def test_unsupported_urls_are_refused_with_the_expected_form(tmp_path: Path) -> None:
    with pytest.raises(ForecastStoreError, match="postgresql\\+psycopg"):
        SqlForecastStore("mysql://u@h/db")
    with pytest.raises(ForecastStoreError, match="psycopg"):
        SqlForecastStore("postgresql+psycopg2://u@h/db")
    with pytest.raises(ForecastStoreError, match="keep_sets"):
        SqlForecastStore(f"sqlite:///{tmp_path / 'x.db'}", keep_sets=0)


def test_factory_uses_the_settings_database_and_retention(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home", forecast_sets_kept=2)
    with open_forecast_store(settings) as store:
        assert store.keep_sets == 2
        assert store.dialect == "sqlite"
        store.write_set("acme", 1, [series_rows(1)])
    assert (tmp_path / "home" / "ordernimbus.db").is_file()


def test_store_modules_import_without_pandas_or_numpy() -> None:
    code = (
        "import sys, inference.store.sql, inference.store.factory\n"
        "heavy = sorted(m for m in ('pandas', 'numpy', 'pyarrow', 'alembic') if m in sys.modules)\n"
        "print(','.join(heavy))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_a_database_migrated_by_a_newer_release_is_left_alone(tmp_path: Path) -> None:
    from inference.store.migrations import VERSION_TABLE

    url = f"sqlite:///{tmp_path / 'newer.db'}"
    with SqlForecastStore(url) as store:
        store.write_set("acme", 1, [series_rows(1)])
        with store.engine.begin() as conn:
            conn.execute(sa.text(f"UPDATE {VERSION_TABLE} SET version_num = '9999_future'"))
    with SqlForecastStore(url) as reopened:
        assert current_revision(reopened.engine) == "9999_future"
        assert len(read_all(reopened, "acme")) == 28
