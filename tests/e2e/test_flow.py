"""The whole flow on one machine: ingest -> build -> registry -> approve -> forecast -> export -> API."""

from __future__ import annotations

import csv
from pathlib import Path

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from realcuts import store_item_cut
from typer.testing import CliRunner

from features.lake import SalesLake
from ordernimbus.cli import app
from ordernimbus.service import lake_uri, run_build
from ordernimbus.settings import Settings
from pipelines.local import LocalRunner, cpu_seconds

pytestmark = pytest.mark.e2e
runner = CliRunner()
FAST = {"BoostingRounds": 15, "BacktestWindows": 2, "DeepAREpochs": 1}


def _gate_ratio(settings: Settings, tenant: str) -> float:
    from models.registry.factory import open_registry

    [version] = open_registry(settings).list_versions(tenant)
    return float(version.metrics["gate"]["wape_ratio"])


def _ingest(settings: Settings, tenant: str, sales: pd.DataFrame, tmp: Path) -> None:
    path = tmp / f"{tenant}.csv"
    sales.rename(columns={"sku": "item_id"}).to_csv(path, index=False)
    result = runner.invoke(app, ["ingest", str(path), "--tenant", tenant])
    assert result.exit_code == 0, result.output


def test_build_approve_forecast_export_and_serve(home: Settings, tmp_path: Path) -> None:
    sales = store_item_cut(stores=2, items=2, since="2016-06-01")
    _ingest(home, "acme", sales, tmp_path)

    run = run_build(home, "acme", until="2017-11-30", horizon=14, extra=FAST)
    assert run.status == "Succeeded", run.error
    assert {s.step for s in run.steps if s.status == "Skipped"} & {"Register", "RegisterGateFailed"}
    # every executed step's log ends with its CPU seconds, worker processes included
    cpu = {s.step: cpu_seconds(s.log) for s in run.steps if s.status == "Succeeded"}
    assert cpu
    assert all(v is not None and v > 0.1 for v in cpu.values()), cpu

    listing = runner.invoke(app, ["registry", "list", "--tenant", "acme"])
    assert listing.exit_code == 0, listing.output
    assert "PendingManualApproval" in listing.output
    assert "naive WAPE" in listing.output
    ratio = _gate_ratio(home, "acme")
    assert "gate ratio" in listing.output
    assert f"{ratio:.4f}" in listing.output  # the gate's own out-of-sample ratio, beside its baseline

    card = tmp_path / "card.html"
    result = runner.invoke(
        app, ["registry", "show", "--tenant", "acme", "--version", "1", "--html", str(card)]
    )
    assert result.exit_code == 0, result.output
    assert card.read_text().count("data:image/png;base64,") >= 3  # backtest plots of best/median/worst series

    result = runner.invoke(
        app, ["registry", "approve", "--tenant", "acme", "--version", "1", "--reason", "test", "--override"]
    )
    assert result.exit_code == 0, result.output

    out = tmp_path / "forecast.csv"
    result = runner.invoke(app, ["forecast", "export", "--tenant", "acme", "--out", str(out)])
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == 4 * 14  # 4 series x horizon; forecasts start after the lake's last day
    assert {r["target_date"] for r in rows} == {
        str(d.date()) for d in pd.date_range("2018-01-01", periods=14)
    }
    assert all(float(r["p10"]) <= float(r["p50"]) <= float(r["p90"]) for r in rows)

    from serving.app import create_app
    from serving.auth import ApiKeyStore

    _, key = ApiKeyStore(home.db_url).create("acme", "viewer")
    _, other = ApiKeyStore(home.db_url).create("other-co", "viewer")
    client = TestClient(create_app(home))
    mine = client.get(
        "/v1/forecasts", params={"store_id": "1", "sku": "1", "limit": 28}, headers={"X-API-Key": key}
    )
    assert mine.status_code == 200
    items = mine.json()["items"]
    assert len(items) == 14
    assert {"p10", "p50", "p90"} <= set(items[0])
    theirs = client.get("/v1/forecasts", params={"store_id": "1", "sku": "1"}, headers={"X-API-Key": other})
    assert theirs.status_code in (401, 404) or theirs.json()["items"] == []
    assert client.get("/v1/forecasts").status_code == 401
    assert client.get("/v1/forecasts", headers={"X-API-Key": key + "x"}).status_code == 401


def test_second_run_is_served_from_cache_and_resume_skips_finished_steps(
    home: Settings, tmp_path: Path
) -> None:
    sales = store_item_cut(stores=1, items=2, since="2016-06-01")
    SalesLake(home.lake_dir).upsert("cachey", sales, "cut")
    first = run_build(home, "cachey", horizon=7, extra=FAST)
    second = run_build(home, "cachey", horizon=7, extra=FAST)
    assert first.status == second.status == "Succeeded"
    cached = {s.step for s in second.steps if s.cached_from == first.run_id}
    assert {"Validate", "Features", "Train-xgboost", "Evaluate"} <= cached
    assert (
        second.step("Register").cached_from is None or second.step("RegisterGateFailed").cached_from is None
    )

    # a forecast run with a broken model location fails at Transform; fixing it and resuming keeps Prepare
    runner_ = LocalRunner(home)
    bad = runner_.start(
        "forecast",
        "cachey",
        {
            "InputDataUri": (home.lake_dir / "cachey").as_uri(),
            "ModelDataUri": str(tmp_path / "missing.tar.gz"),
            "ModelVersion": 1,
            "Horizon": 7,
        },
    )
    assert bad.status == "Failed"
    assert bad.step("Transform").status == "Failed"
    assert bad.step("Prepare").status == "Succeeded"
    prepare_log = Path(bad.step("Prepare").log or "").read_text()
    assert "transformed" not in Path(bad.step("Transform").log or "").read_text()
    resumed = runner_.resume(bad.run_id, "cachey")
    assert resumed.step("Prepare").status == "Succeeded"
    assert Path(resumed.step("Prepare").log or "").read_text() == prepare_log  # not re-run


def test_tenant_input_is_validated_before_any_path_is_built(home: Settings) -> None:
    result = runner.invoke(app, ["pipeline", "run", "build", "--tenant", "../evil"])
    assert result.exit_code == 2
    assert "invalid tenant id" in result.output
    result = runner.invoke(app, ["pipeline", "run", "build", "--tenant", "nobody"])
    assert result.exit_code == 3
    assert "no sales data" in result.output


def test_a_history_too_short_for_the_horizon_is_refused_before_any_step(
    home: Settings, tmp_path: Path
) -> None:
    """30 days cannot backtest 28 over three windows: every training step used to fail on a NaT."""
    sales = store_item_cut(stores=1, items=2, since="2017-12-02")
    _ingest(home, "newshop", sales, tmp_path)
    result = runner.invoke(app, ["pipeline", "run", "build", "--tenant", "newshop", "--horizon", "28"])
    assert result.exit_code == 2, result.output
    text = " ".join(result.output.split())
    assert "tenant 'newshop' has 30 days of sales (2017-12-02 to 2017-12-31)" in text
    assert "use --horizon 17 or less" in text
    assert LocalRunner(home).records.list("newshop") == []  # no run was started
    result = runner.invoke(app, ["pipeline", "run", "build", "--tenant", "newshop", "--until", "2017-11-01"])
    assert result.exit_code == 3
    assert "no sales up to 2017-11-01" in result.output


def test_a_step_that_refuses_its_input_is_not_retried(home: Settings, tmp_path: Path) -> None:
    """The SageMaker path has no pre-check: the training steps refuse the short history themselves,
    exit 2 and are not retried (each used to take three attempts with backoff)."""
    sales = store_item_cut(stores=1, items=1, since="2017-12-02")
    _ingest(home, "tooshort", sales, tmp_path)
    params = {"InputDataUri": lake_uri(home, "tooshort"), "Horizon": 28, **FAST, "BacktestWindows": 3}
    run = LocalRunner(home).start("build", "tooshort", params)
    assert run.status == "Failed"
    refused = [s for s in run.steps if s.step.startswith("Train-") and s.status == "Failed"]
    assert refused
    for step in refused:
        assert step.attempts == 1
        assert "needs at least 41 days" in (step.error or "")


def test_ingest_reports_a_weekly_file_in_weeks(home: Settings, tmp_path: Path) -> None:
    daily = store_item_cut(stores=1, items=2, since="2016-01-01")
    weekly = (
        daily.set_index("date").groupby(["store_id", "sku"])["units"].resample("W-SUN").sum().reset_index()
    )
    path = tmp_path / "weekly.csv"
    weekly.to_csv(path, index=False)
    result = runner.invoke(app, ["ingest", str(path), "--tenant", "weekly"])
    assert result.exit_code == 0, result.output
    assert f"{len(weekly)} weekly rows" in result.output
    assert "frequency W-SUN" in result.output
    # the report's warnings reach the terminal too: data ending in 2017 is stale
    assert "warning: the latest date is 2017-" in " ".join(result.output.split())
