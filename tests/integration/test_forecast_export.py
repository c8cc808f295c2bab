"""Forecast set exports (CSV and Parquet) against SQLite and the real PostgreSQL server."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
from storecase import new_tenant, pg_schema, series_rows, sqlite_url

from inference.store.base import ForecastSetNotFoundError, ForecastStoreError
from inference.store.export import EXPORT_COLUMNS, export_set
from inference.store.sql import SqlForecastStore
from ordernimbus.atomic import OutputPathError

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    with pg_schema("t_export") as url:
        yield url


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SqlForecastStore]:
    url = sqlite_url(tmp_path) if request.param == "sqlite" else request.getfixturevalue("pg_url")
    with SqlForecastStore(url, keep_sets=3) as opened:
        yield opened


def test_csv_and_parquet_hold_every_row_of_the_current_set(store: SqlForecastStore, tmp_path: Path) -> None:
    tenant = new_tenant("acme")
    rows = series_rows(40)
    written = store.write_set(tenant, 4, [rows[:500], rows[500:]], metadata={"pipeline_run_id": "r-9"})
    seen: list[tuple[int, int]] = []
    as_csv = export_set(store, tenant, tmp_path / "f.csv", "csv", batch_rows=300,
                        progress=lambda done, total: seen.append((done, total)))  # fmt: skip
    assert as_csv.rows == len(rows) == written.rows
    assert seen == [(300, 1120), (600, 1120), (900, 1120), (1120, 1120)]
    with open(tmp_path / "f.csv", newline="") as handle:
        table = list(csv.reader(handle))
    assert tuple(table[0]) == EXPORT_COLUMNS
    ordered = sorted(rows, key=lambda r: (r[0], r[1], r[2]))
    assert [(r[0], r[1], r[2], int(r[3])) for r in table[1:]] == [
        (o[0], o[1], o[2].isoformat(), o[3]) for o in ordered
    ]
    assert [float(r[5]) for r in table[1:]] == [o[5] for o in ordered]
    assert {(r[8], r[9]) for r in table[1:]} == {("4", written.set_id)}

    as_parquet = export_set(store, tenant, tmp_path / "f.parquet", "parquet", batch_rows=300)
    assert as_parquet.rows == len(rows)
    frame = pd.read_parquet(tmp_path / "f.parquet")
    assert tuple(frame.columns) == EXPORT_COLUMNS
    assert frame["p90"].tolist() == [o[6] for o in ordered]
    schema = pq.read_schema(tmp_path / "f.parquet")
    assert str(schema.field("target_date").type) == "date32[day]"
    assert str(schema.field("generated_at").type) == "timestamp[us, tz=UTC]"
    meta = json.loads(schema.metadata[b"ordernimbus.forecast_set"])
    assert meta["set_id"] == written.set_id
    assert meta["metadata"] == {"pipeline_run_id": "r-9"}


def test_an_older_set_by_id_and_formula_like_ids_are_neutralised(
    store: SqlForecastStore, tmp_path: Path
) -> None:
    tenant = new_tenant("acme")
    old = store.write_set(tenant, 1, [[("=HYPERLINK(1)", "-5", *series_rows(1)[0][2:])]])
    store.write_set(tenant, 2, [series_rows(2)])
    result = export_set(store, tenant, tmp_path / "old.csv", set_id=old.set_id)
    assert result.forecast_set.set_id == old.set_id
    lines = list(csv.reader(open(tmp_path / "old.csv", newline="")))  # noqa: SIM115
    assert lines[1][:2] == ["'=HYPERLINK(1)", "'-5"]
    frame = pd.read_parquet(
        export_set(store, tenant, tmp_path / "old.parquet", "parquet", set_id=old.set_id).path
    )
    assert frame["store_id"].tolist() == ["=HYPERLINK(1)"]  # typed data, no spreadsheet escaping


def test_refusals_leave_the_previous_file_untouched(store: SqlForecastStore, tmp_path: Path) -> None:
    tenant = new_tenant("acme")
    target = tmp_path / "forecast.csv"
    target.write_text("last good export\n")
    with pytest.raises(ForecastSetNotFoundError, match="has no forecast set yet"):
        export_set(store, tenant, target)
    store.write_set(tenant, 1, [series_rows(30)])
    with pytest.raises(ForecastSetNotFoundError, match="no complete forecast set 'nope'"):
        export_set(store, tenant, target, set_id="nope")
    with pytest.raises(ForecastStoreError, match="format 'xlsx' is not supported"):
        export_set(store, tenant, target, "xlsx")
    with pytest.raises(OutputPathError, match="is a directory"):
        export_set(store, tenant, tmp_path)
    with pytest.raises(OutputPathError, match="does not exist"):
        export_set(store, tenant, tmp_path / "missing" / "f.csv")

    def interrupt(done: int, total: int) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        export_set(store, tenant, target, batch_rows=100, progress=interrupt)
    assert target.read_text() == "last good export\n"
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []  # no temp file left


def test_tenants_cannot_export_each_others_sets(store: SqlForecastStore, tmp_path: Path) -> None:
    mine, theirs = new_tenant("acme"), new_tenant("globex")
    other = store.write_set(theirs, 1, [series_rows(2)])
    store.write_set(mine, 1, [series_rows(1)])
    with pytest.raises(ForecastSetNotFoundError):
        export_set(store, mine, tmp_path / "x.csv", set_id=other.set_id)
    assert not (tmp_path / "x.csv").exists()
