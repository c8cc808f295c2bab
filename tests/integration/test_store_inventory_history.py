"""Inventory recommendations written with their forecast set, the sales history, and set streaming.

Same tests against SQLite (a temp file) and the real PostgreSQL server (a fresh schema).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import sqlalchemy as sa
from storecase import new_tenant, pg_schema, series_rows, sqlite_url

from inference.inventory import InventoryPolicy, recommend
from inference.store.base import FORECAST_COLUMNS, ForecastDataError, ForecastSetNotFoundError
from inference.store.history import read_history, upsert_history
from inference.store.sql import SqlForecastStore
from inference.store.tables import inventory_recommendations, sales_history

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    with pg_schema("t_inv") as url:
        yield url


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SqlForecastStore]:
    url = sqlite_url(tmp_path) if request.param == "sqlite" else request.getfixturevalue("pg_url")
    with SqlForecastStore(url, keep_sets=2) as opened:
        yield opened


def inventory_rows(rows: list[tuple[Any, ...]], **policy: Any) -> list[tuple[Any, ...]]:
    frame = pd.DataFrame(rows, columns=list(FORECAST_COLUMNS))
    advice = recommend(frame, InventoryPolicy(**policy))
    return list(advice.itertuples(index=False, name=None))


def stored_inventory(
    store: SqlForecastStore, tenant: str, set_id: str
) -> dict[tuple[str, str], dict[str, Any]]:
    r = inventory_recommendations.c
    with store.engine.connect() as conn:
        rows = conn.execute(
            sa.select(inventory_recommendations).where(r.tenant_id == tenant, r.forecast_set_id == set_id)
        ).mappings()
        return {(row["store_id"], row["sku"]): dict(row) for row in rows}


def test_inventory_is_written_with_its_set_and_retired_with_it(store: SqlForecastStore) -> None:
    tenant = new_tenant("acme")
    rows = series_rows(5)
    advice = inventory_rows(rows, lead_time_days=7, service_level=0.95, review_days=7)
    first = store.write_set(tenant, 1, [rows[:70], rows[70:]], inventory=[advice[:2], advice[2:]])
    got = stored_inventory(store, tenant, first.set_id)
    assert len(got) == 5
    want = {(a[0], a[1]): a for a in advice}
    for key, row in got.items():
        assert row["reorder_point"] == want[key][6]
        assert row["order_quantity"] == want[key][7]
        assert row["lead_time_days"] == 7
        assert row["service_level"] == 0.95
        assert row["on_hand"] is None
        assert row["stockout_risk"] is False
    second = store.write_set(
        tenant, 2, [series_rows(5, level=50)], inventory=[inventory_rows(series_rows(5, level=50))]
    )
    third = store.write_set(tenant, 3, [rows])  # a set may come without advice
    assert (
        stored_inventory(store, tenant, first.set_id) == {}
    )  # retention (keep 2) removed set 1 and its advice
    assert len(stored_inventory(store, tenant, second.set_id)) == 5
    assert stored_inventory(store, tenant, third.set_id) == {}


def test_advice_for_a_series_the_set_does_not_forecast_is_refused(store: SqlForecastStore) -> None:
    tenant = new_tenant("acme")
    old = store.write_set(tenant, 1, [series_rows(2)], inventory=[inventory_rows(series_rows(2))])
    stray = inventory_rows(series_rows(3))  # sku-0002 is not in the new set
    with pytest.raises(
        ForecastDataError, match=r"inventory row 3: series \('store-2', 'sku-0002'\) is not forecast"
    ):
        store.write_set(tenant, 2, [series_rows(2, level=99)], inventory=[stray])
    assert store.current_set(tenant) == old
    assert [s.set_id for s in store.list_sets(tenant)] == [old.set_id]
    r = inventory_recommendations.c
    with store.engine.connect() as conn:
        ids = set(conn.execute(sa.select(r.forecast_set_id).where(r.tenant_id == tenant)).scalars())
    assert ids == {old.set_id}


@pytest.mark.parametrize(
    ("column", "value", "match"),
    [
        (6, float("nan"), "column 'reorder_point': expected a finite number"),
        (7, -1.0, "column 'order_quantity': must be >= 0"),
        (2, 0, "column 'lead_time_days': expected a whole number >= 1"),
        (3, 1.5, "column 'service_level': must be between 0 and 1"),
        (9, "yes", "column 'stockout_risk': expected True or False"),
        (4, "12", "column 'lead_time_demand': expected a number"),
    ],
)
def test_bad_advice_values_are_named(store: SqlForecastStore, column: int, value: Any, match: str) -> None:
    tenant = new_tenant("acme")
    advice = inventory_rows(series_rows(2))
    bad = list(advice[1])
    bad[column] = value
    with pytest.raises(ForecastDataError, match=f"inventory row 2, {match}"):
        store.write_set(tenant, 1, [series_rows(2)], inventory=[[advice[0], tuple(bad)]])
    assert store.current_set(tenant) is None
    assert store.list_sets(tenant) == []


def test_duplicate_advice_for_one_series_is_refused(store: SqlForecastStore) -> None:
    tenant = new_tenant("acme")
    advice = inventory_rows(series_rows(2))
    with pytest.raises(ForecastDataError, match="has a recommendation already"):
        store.write_set(tenant, 1, [series_rows(2)], inventory=[advice, advice[:1]])
    assert store.list_sets(tenant) == []


def test_iter_set_streams_every_row_in_key_order_from_one_set(store: SqlForecastStore) -> None:
    tenant = new_tenant("acme")
    rows = series_rows(7)
    written = store.write_set(tenant, 1, [rows])
    store.write_set(tenant, 2, [series_rows(3, level=500)])
    batches = list(store.iter_set(tenant, written.set_id, batch_rows=50))
    assert [len(b) for b in batches] == [50, 50, 50, 46]
    assert [row for batch in batches for row in batch] == sorted(rows, key=lambda r: (r[0], r[1], r[2]))
    with pytest.raises(ForecastSetNotFoundError):
        list(store.iter_set(new_tenant("other"), written.set_id))


def history(
    days: int, level: float = 5.0, stores: int = 2, skus: int = 2, start: date = date(2024, 1, 1)
) -> list[tuple[Any, ...]]:
    return [
        (f"s{s}", f"k{k}", start + timedelta(d), level + d % 7, 2.5 if d % 2 else None)
        for s in range(stores)
        for k in range(skus)
        for d in range(days)
    ]


def test_history_upsert_overwrites_days_and_keeps_a_rolling_window(store: SqlForecastStore) -> None:
    tenant, other = new_tenant("acme"), new_tenant("globex")
    first = upsert_history(store.engine, tenant, [history(30)[:50], history(30)[50:]])
    assert (first.rows, first.deleted) == (120, 0)
    upsert_history(store.engine, other, [history(30, level=1000)])
    # A later run: ten more days, a corrected day, and the window moves on by ten days.
    later = history(40, level=6.0)
    result = upsert_history(store.engine, tenant, [later], keep_since=date(2024, 1, 11))
    assert result.deleted == 4 * 10
    series = read_history(store.engine, tenant, "s1", "k0")
    assert [d for d, _, _ in series] == [date(2024, 1, 1) + timedelta(d) for d in range(10, 40)]
    assert series[0][1] == 6.0 + 10 % 7
    assert series[0][2] is None
    assert series[1][2] == 2.5
    part = read_history(store.engine, tenant, "s1", "k0", start=date(2024, 1, 20), end=date(2024, 1, 21))
    assert len(part) == 2
    theirs = read_history(store.engine, other, "s1", "k0")
    assert len(theirs) == 30
    assert theirs[0][1] == 1000.0


def test_history_refuses_bad_rows_and_keeps_what_was_there(store: SqlForecastStore) -> None:
    tenant = new_tenant("acme")
    upsert_history(store.engine, tenant, [history(5)])
    with pytest.raises(ForecastDataError, match="key\\(s\\) appear more than once"):
        upsert_history(store.engine, tenant, [history(3, level=99), history(3, level=99)[:1]])
    bad = history(3, level=99)
    bad[4] = ("s0", "k1", date(2024, 1, 2), float("inf"), None)
    with pytest.raises(ForecastDataError, match="history row 5, column 'units': expected a finite number"):
        upsert_history(store.engine, tenant, [bad])
    with pytest.raises(ForecastDataError, match="column 'unit_price': must be >= 0"):
        upsert_history(store.engine, tenant, [[("s0", "k0", date(2024, 1, 1), 1.0, -2.0)]])
    h = sales_history.c
    with store.engine.connect() as conn:
        units = conn.execute(sa.select(h.units).where(h.tenant_id == tenant)).scalars().all()
    assert len(units) == 20
    assert max(units) < 99
