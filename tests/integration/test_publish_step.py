"""The Publish step against SQLite and the real PostgreSQL server: set, inventory and history together,
and a publish killed with SIGKILL halfway through its write leaves the previous set current and whole.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import sqlalchemy as sa
from realcuts import store_item_cut
from storecase import new_tenant, pg_schema

from inference.inventory import InventoryPolicy, recommend
from inference.store.history import read_history
from inference.store.sql import SqlForecastStore
from inference.store.tables import forecasts, inventory_recommendations
from models.naive import SeasonalNaive
from ordernimbus.settings import get_settings
from pipelines.contract import parse
from pipelines.steps import prepare, publish

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    with pg_schema("t_publish") as url:
        yield url


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def env(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[dict[str, str]]:
    """ORDERNIMBUS_* for this test's store; set in this process and handed to step subprocesses."""
    values = {"ORDERNIMBUS_HOME": str(tmp_path / "home"), "ORDERNIMBUS_INVENTORY_LEAD_TIME_DAYS": "5",
              "ORDERNIMBUS_INVENTORY_SERVICE_LEVEL": "0.9"}  # fmt: skip
    if request.param == "postgresql":
        values["ORDERNIMBUS_DATABASE_URL"] = request.getfixturevalue("pg_url")
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    yield values
    get_settings.cache_clear()


def step_base(tmp_path: Path, predictions: list[list[dict[str, Any]]], history: pd.DataFrame | None) -> Path:
    """A Publish step's /opt/ml tree: predictions as the transform writes them, history from Prepare."""
    base = tmp_path / f"publish-{time.monotonic_ns()}"
    folder = base / "processing" / "input" / "predictions"
    folder.mkdir(parents=True)
    for i, records in enumerate(predictions):
        lines = (json.dumps(r) + "\n" for r in records)
        (folder / f"part-{i:05d}.jsonl.out").write_text("".join(lines))
    hist = base / "processing" / "input" / "history"
    hist.mkdir(parents=True)
    if history is not None:
        prepare.write_history(history, 365, hist / prepare.HISTORY)
    return base


def model_records(sales: pd.DataFrame, horizon: int = 14) -> list[dict[str, Any]]:
    frame = SeasonalNaive().fit(sales, "D").predict(sales, horizon, (0.1, 0.5, 0.9))
    frame["target_date"] = frame["target_date"].dt.strftime("%Y-%m-%d")
    return list(frame.to_dict("records"))


def test_publish_writes_the_set_its_inventory_and_recent_history(env: dict[str, str], tmp_path: Path) -> None:
    tenant = new_tenant("acme")
    sales = store_item_cut(stores=2, items=4, since="2016-06-01")
    last = sales["date"].max()
    on_hand = {("1", "1"): 3.0, ("1", "2"): 10_000.0}
    stock = sales[["store_id", "sku"]].apply(tuple, axis=1).map(on_hand)
    history = sales.assign(on_hand=stock.where(sales["date"] == last))  # stock counted on the last day
    records = model_records(sales)
    base = step_base(tmp_path, [records[: 14 * 3], records[14 * 3 :]], history)
    publish.main(
        parse(["--sm-base", str(base), "--tenant", tenant, "--model_version", "3", "--run_id", "r-1"])
    )

    settings = get_settings()
    with SqlForecastStore(settings.db_url) as store:
        current = store.current_set(tenant)
        assert current is not None
        assert (current.model_version, current.rows, current.series) == (3, 8 * 14, 8)
        assert current.metadata["inventory"] == {"lead_time_days": 5, "service_level": 0.9, "review_days": 7}
        r = inventory_recommendations.c
        with store.engine.connect() as conn:
            stored = pd.DataFrame(conn.execute(sa.select(inventory_recommendations).where(
                r.tenant_id == tenant, r.forecast_set_id == current.set_id)).mappings().all())  # fmt: skip
        frame = pd.DataFrame(records)
        want = recommend(frame, InventoryPolicy(5, 0.9, 7), on_hand).set_index(["store_id", "sku"])
        got = stored.set_index(["store_id", "sku"]).loc[want.index]
        for column in ("reorder_point", "order_quantity", "lead_time_demand", "safety_stock"):
            assert got[column].to_numpy() == pytest.approx(want[column].to_numpy())
        assert got.loc[("1", "1"), "stockout_risk"]
        assert not got.loc[("1", "2"), "stockout_risk"]
        assert got.loc[("1", "2"), "order_quantity"] == 0
        assert got.loc[("1", "2"), "on_hand"] == 10_000.0
        assert got["on_hand"].isna().sum() == 6

        series = read_history(store.engine, tenant, "2", "3")
        assert len(series) == 365
        assert series[-1][0] == last.date()
        assert series[0][0] == (last - pd.Timedelta(days=364)).date()
        real = sales[(sales["store_id"] == "2") & (sales["sku"] == "3")].set_index("date")["units"]
        assert [u for _, u, _ in series] == real.loc[last - pd.Timedelta(days=364) :].tolist()


def synthetic_records(series: int, start: int = 0, level: float = 20.0) -> list[dict[str, Any]]:
    """Handler-format rows of many series, as a large tenant's transform would produce."""
    first = date(2018, 1, 1)
    out = []
    for s in range(start, start + series):
        for h in range(1, 29):
            p50 = level + s % 13 + (h % 7)
            day = str(first + timedelta(h - 1))
            quantiles = {"p10": p50 * 0.7, "p50": p50, "p90": p50 * 1.4, "mean": p50}
            key = {"store_id": f"st-{s % 40}", "sku": f"sku-{s:05d}", "target_date": day, "horizon_day": h}
            out.append({**key, **quantiles})
    return out


@pytest.fixture(scope="module")
def big_predictions(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """6,000 series x 28 days in three transform output files, written once for both backends."""
    return step_base(
        tmp_path_factory.mktemp("big"), [synthetic_records(2000, start=i * 2000) for i in range(3)], None
    )


def test_publish_killed_halfway_leaves_the_previous_set_current_and_whole(
    env: dict[str, str], tmp_path: Path, big_predictions: Path
) -> None:
    tenant = new_tenant("crash")
    old_records = synthetic_records(300, level=5.0)
    base = step_base(tmp_path, [old_records], None)
    publish.main(parse(["--sm-base", str(base), "--tenant", tenant, "--model_version", "1"]))
    settings = get_settings()
    with SqlForecastStore(settings.db_url) as store:
        old = store.current_set(tenant)
        assert old is not None
        assert old.rows == 300 * 28

    command = [sys.executable, "-m", "pipelines.steps.publish", "--sm-base", str(big_predictions),
               "--tenant", tenant, "--model_version", "2"]  # fmt: skip
    proc = subprocess.Popen(command, cwd=ROOT, env={**os.environ, **env, "PYTHONUNBUFFERED": "1"},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    assert proc.stdout is not None
    seen = []
    for line in proc.stdout:  # the first progress line: 50,000 rows are in the open load, 118,000 to go
        seen.append(line)
        if line.startswith("loaded "):
            proc.send_signal(signal.SIGKILL)
            break
    assert proc.wait(timeout=60) == -signal.SIGKILL, (seen, proc.stderr.read() if proc.stderr else "")
    assert seen[-1].startswith("loaded 50000 forecast rows")

    with SqlForecastStore(settings.db_url) as store:
        assert store.current_set(tenant) == old
        sets = store.list_sets(tenant)
        assert [(s.model_version, s.status) for s in sets] == [(2, "writing"), (1, "complete")]
        killed = sets[0].set_id
        rows = [row for batch in store.iter_set(tenant, old.set_id) for row in batch]
        assert len(rows) == old.rows
        assert {r[1] for r in rows} == {r["sku"] for r in old_records}
        with store.engine.connect() as conn:
            f, r = forecasts.c, inventory_recommendations.c
            assert conn.execute(sa.select(sa.func.count()).where(f.forecast_set_id == killed)).scalar() == 0
            counts = sa.select(r.forecast_set_id, sa.func.count()).where(r.tenant_id == tenant)
            by_set = dict(conn.execute(counts.group_by(r.forecast_set_id)).all())
        assert by_set == {old.set_id: 300}  # the old set's advice, nothing of the killed one
        page = store.query(tenant, limit=5)
        assert page.forecast_set == old

    # Running the step again (as `pipeline resume` does) publishes the new set; the dead one is swept later.
    rerun = subprocess.run(command, cwd=ROOT, env={**os.environ, **env}, capture_output=True, text=True,
                           timeout=300, check=False)  # fmt: skip
    assert rerun.returncode == 0, rerun.stderr
    with SqlForecastStore(settings.db_url, abandoned_after=timedelta(0)) as store:
        new = store.current_set(tenant)
        assert new is not None
        assert (new.model_version, new.rows, new.series) == (2, 6000 * 28, 6000)
        assert killed in store.apply_retention(tenant)
        assert {s.status for s in store.list_sets(tenant)} == {"complete"}


def test_later_publishes_rewrite_recent_weeks_and_new_series_only(
    env: dict[str, str], tmp_path: Path
) -> None:
    tenant = new_tenant("acme")
    sales = store_item_cut(stores=1, items=3, since="2016-06-01")
    first_two = sales[sales["sku"] != "3"]
    records = model_records(first_two)
    publish.main(parse(["--sm-base", str(step_base(tmp_path, [records], first_two)), "--tenant", tenant,
                        "--model_version", "1"]))  # fmt: skip
    last = sales["date"].max()
    changed = sales.copy()
    recent_day, old_day = last - pd.Timedelta(days=10), last - pd.Timedelta(days=200)
    is_series = (changed["store_id"] == "1") & (changed["sku"] == "1")
    changed.loc[is_series & (changed["date"] == recent_day), "units"] = 999.0  # a late correction, recent
    changed.loc[is_series & (changed["date"] == old_day), "units"] = 777.0  # one beyond the refresh window
    publish.main(parse(["--sm-base", str(step_base(tmp_path, [records], changed)), "--tenant", tenant,
                        "--model_version", "2"]))  # fmt: skip
    with SqlForecastStore(get_settings().db_url) as store:
        series = dict((d, u) for d, u, _ in read_history(store.engine, tenant, "1", "1"))
        assert series[recent_day.date()] == 999.0
        assert series[old_day.date()] != 777.0  # written once; the default refresh is 56 days
        assert len(read_history(store.engine, tenant, "1", "3")) == 365  # a new series gets its whole year
        assert len(series) == 365
