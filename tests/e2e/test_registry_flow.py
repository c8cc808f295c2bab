"""A small real build, twice: compare, approve, audit, the forecast set with its inventory advice and
history, exports in both formats, and the model card shot in headless Chromium with its plots.

One module-scoped world (two builds of a small Store Item Demand cut, then the forecast pipeline)
serves every test, so the real pipelines run once.
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import sqlalchemy as sa
from realcuts import store_item_cut
from typer.testing import CliRunner

from features.lake import SalesLake
from inference.store.factory import open_forecast_store
from inference.store.history import read_history
from inference.store.tables import inventory_recommendations
from models.registry.factory import open_registry
from ordernimbus.cli import app
from ordernimbus.service import run_build
from ordernimbus.settings import Settings, get_settings

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()
FAST = {"BoostingRounds": 15, "BacktestWindows": 2, "DeepAREpochs": 1}
TENANT = "acme"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """Two registered versions (trained up to 2017-11-30, then on all data); v2 approved and forecast."""
    home = tmp_path_factory.mktemp("home")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ORDERNIMBUS_HOME", str(home))
        get_settings.cache_clear()
        settings = get_settings()
        sales = store_item_cut(stores=1, items=3, since="2016-06-01")
        SalesLake(settings.lake_dir).upsert(TENANT, sales, "cut")
        for until in ("2017-11-30", None):
            run = run_build(settings, TENANT, until=until, horizon=14, extra=FAST)
            assert run.status == "Succeeded", run.error
        yield settings
        get_settings.cache_clear()


def cli(*args: str) -> Any:
    return runner.invoke(app, list(args))


def test_compare_shows_both_versions_side_by_side(world: Settings) -> None:
    result = cli("registry", "compare", "--tenant", TENANT, "1", "2", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    registry = open_registry(world)
    one, two = registry.get(TENANT, 1), registry.get(TENANT, 2)
    rows = {(r["kind"], r["model"], r["metric"]): r for r in report["metrics"]}
    wape = rows[("ensemble", "ensemble", "wape")]
    assert wape["a"] == pytest.approx(one.metrics["ensemble"]["wape"])
    assert wape["b"] == pytest.approx(two.metrics["ensemble"]["wape"])
    assert wape["delta"] == pytest.approx(wape["b"] - wape["a"])
    assert ("baseline", "seasonal_naive", "wape") in rows
    assert report["data"]["a"]["end"] == "2017-11-30"
    assert report["data"]["b"]["end"] == "2017-12-31"
    assert report["lineage"]["data_fingerprint"]["same"] is False

    table = cli("registry", "compare", "--tenant", TENANT, "1", "2")
    assert table.exit_code == 0, table.output
    assert "version 1" in table.output
    assert "seasonal_naive" in table.output
    assert "data_end: 2017-11-30 -> 2017-12-31" in table.output
    missing = cli("registry", "compare", "--tenant", TENANT, "1", "9")
    assert missing.exit_code == 3
    assert "no model version 9" in missing.output
    bad = cli("registry", "compare", "--tenant", "../x", "1", "2")
    assert bad.exit_code == 2


def test_approval_forecasts_and_every_change_is_audited(world: Settings, tmp_path: Path) -> None:
    registry = open_registry(world)
    two = registry.get(TENANT, 2)
    args = ["registry", "approve", "--tenant", TENANT, "--version", "2", "--reason", "fresher data",
            "--actor", "alice@acme.example"] + ([] if two.gate_passed else ["--override"])  # fmt: skip
    approved = cli(*args)
    assert approved.exit_code == 0, approved.output
    rejected = cli("registry", "reject", "--tenant", TENANT, "--version", "1", "--reason", "older window",
                   "--actor", "bob@acme.example")  # fmt: skip
    assert rejected.exit_code == 0, rejected.output
    assert cli("registry", "reject", "--tenant", TENANT, "--version", "1", "--reason", "again").exit_code == 4

    audit = cli("registry", "audit", "--tenant", TENANT, "--json")
    assert audit.exit_code == 0, audit.output
    entries = [json.loads(line) for line in audit.output.splitlines()]
    want = [("register", 1), ("register", 2), ("approve", 2), ("reject", 1)]
    assert [(e["action"], e["version"]) for e in entries] == want
    assert entries[2]["actor"] == "alice@acme.example"
    assert entries[2]["detail"]["reason"] == "fresher data"
    assert entries[3]["detail"]["from_status"] == "PendingManualApproval"
    one_only = cli("registry", "audit", "--tenant", TENANT, "--version", "1")
    assert one_only.exit_code == 0
    assert "older window" in one_only.output
    assert "fresher data" not in one_only.output


def test_forecast_set_carries_inventory_advice_and_history(world: Settings) -> None:
    with open_forecast_store(world) as store:
        current = store.current_set(TENANT)
        assert current is not None
        assert (current.model_version, current.series, current.rows) == (2, 3, 3 * 14)
        assert current.metadata["inventory"]["service_level"] == world.inventory_service_level
        r = inventory_recommendations.c
        with store.engine.connect() as conn:
            advice = pd.DataFrame(conn.execute(sa.select(inventory_recommendations).where(
                r.tenant_id == TENANT, r.forecast_set_id == current.set_id)).mappings().all())  # fmt: skip
        assert sorted(advice["sku"]) == ["1", "2", "3"]
        columns = ["store_id", "sku", "target_date", "h", "p10", "p50", "p90", "mean"]
        week = pd.DataFrame(
            [r for batch in store.iter_set(TENANT, current.set_id) for r in batch], columns=columns
        )
        lead = week[week["h"] <= world.inventory_lead_time_days].groupby("sku")["p50"].sum()
        assert advice.set_index("sku")["lead_time_demand"].to_numpy() == pytest.approx(lead.to_numpy())
        assert (advice["reorder_point"] >= advice["lead_time_demand"]).all()
        assert (advice["order_quantity"] > 0).all()
        history = read_history(store.engine, TENANT, "1", "2")
        assert len(history) == world.sales_history_days
        assert str(history[-1][0]) == "2017-12-31"


def test_exports_in_csv_and_parquet_hold_the_same_set(world: Settings, tmp_path: Path) -> None:
    as_csv, as_parquet = tmp_path / "forecast.csv", tmp_path / "forecast.parquet"
    first = cli("forecast", "export", "--tenant", TENANT, "--out", str(as_csv))
    assert first.exit_code == 0, first.output
    second = cli("forecast", "export", "--tenant", TENANT, "--out", str(as_parquet))
    assert second.exit_code == 0, second.output
    assert "(parquet)" in second.output
    rows = list(csv.DictReader(as_csv.open()))
    frame = pd.read_parquet(as_parquet)
    assert len(rows) == len(frame) == 3 * 14
    assert list(frame.columns) == list(rows[0].keys())
    assert [float(r["p50"]) for r in rows] == pytest.approx(frame["p50"].tolist())
    assert {r["target_date"] for r in rows} == {str(d) for d in frame["target_date"]}
    assert frame["model_version"].unique().tolist() == [2]
    unknown = cli("forecast", "export", "--tenant", TENANT, "--out", str(tmp_path / "x.csv"), "-f", "xlsx")
    assert unknown.exit_code == 2
    assert "xlsx" in unknown.output
    assert not (tmp_path / "x.csv").exists()


@pytest.mark.skipif(not Path("/usr/bin/chromium").is_file(), reason="/usr/bin/chromium is not installed")
def test_model_card_of_the_real_build_renders_with_visible_plots(world: Settings, tmp_path: Path) -> None:
    page = tmp_path / "card.html"
    shown = cli("registry", "show", "--tenant", TENANT, "--version", "2", "--html", str(page))
    assert shown.exit_code == 0, shown.output
    html = page.read_text()
    assert html.count("data:image/png;base64,") >= 3  # best / median / worst backtest series
    for section in ('id="gate"', 'id="metrics"', 'id="coverage"', 'id="lineage"', "2016-06-01", "2017-12-31"):
        assert section in html
    shot = tmp_path / "card.png"
    command = [
        sys.executable,
        str(ROOT / "scripts" / "screenshot_card.py"),
        str(page),
        str(shot),
        "--height",
        "3200",
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=180, check=False)
    assert result.returncode == 0, result.stderr
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        from screenshot_card import plot_pixels
    finally:
        sys.path.remove(str(ROOT / "scripts"))
    pixels = plot_pixels(shot)
    assert pixels["backtest_blue"] > 2000, pixels  # the p50 lines of three plots, drawn and in view
    assert f"backtest_blue {pixels['backtest_blue']}" in result.stdout
