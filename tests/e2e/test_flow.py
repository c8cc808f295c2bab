"""The whole flow on one machine: ingest -> build -> registry -> approve -> forecast -> export -> API."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
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

    # a forecast longer than the approved version was trained for is refused before any step runs
    from models.registry.factory import open_registry

    open_registry(home).approve("cachey", 1, "tester", "e2e", override=True)
    runs = len(runner_.records.list("cachey"))
    longer = runner.invoke(app, ["pipeline", "run", "forecast", "--tenant", "cachey", "--horizon", "60"])
    assert longer.exit_code == 2, longer.output
    assert "trained to forecast 7 periods, not 60" in " ".join(longer.output.split())
    assert len(runner_.records.list("cachey")) == runs


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
    assert "use --horizon 5 or less" in text
    assert LocalRunner(home).records.list("newshop") == []  # no run was started
    result = runner.invoke(app, ["pipeline", "run", "build", "--tenant", "newshop", "--until", "2017-11-01"])
    assert result.exit_code == 3
    assert "no sales up to 2017-11-01" in result.output
    for day in ("notadate", "2017-13-45", "2017-02-30", "2017-12-01T00:00"):  # tracebacks, exit 1
        result = runner.invoke(app, ["pipeline", "run", "build", "--tenant", "newshop", "--until", day])
        assert result.exit_code == 2, result.output
        assert "expected a date as YYYY-MM-DD" in result.output


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
        assert "needs at least 54 days" in (step.error or "")


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


def _with_outage(tmp: Path) -> pd.DataFrame:
    """Four daily series with a weekend peak, six weeks of which never arrived (no row in any series)."""
    rng = np.random.default_rng(8)
    dates = pd.date_range("2024-01-01", periods=240, freq="D")
    level = 12 + 6 * (dates.dayofweek.to_numpy() >= 5)
    sales = pd.concat(
        [
            pd.DataFrame(
                {"store_id": f"S{j % 2}", "sku": f"K{j}", "date": dates, "units": rng.poisson(level)}
            )
            for j in range(4)
        ],
        ignore_index=True,
    )
    return sales[(sales["date"] < "2024-06-25") | (sales["date"] > "2024-08-05")]


def _build_after_outage(home: Settings, tmp_path: Path, tenant: str) -> dict[str, float]:
    """Build ``tenant`` (the outage file, marked or not), check what the build and the card record of
    the lost weeks, and return each member's WAPE on the window after them."""
    from models.registry.factory import open_registry

    run = run_build(home, tenant, horizon=14, extra=FAST)
    assert run.status == "Succeeded", run.error
    [version] = open_registry(home).list_versions(tenant)
    windows = {w["cutoff"]: w["members"] for w in version.metrics["windows"]}
    [found] = (home.runs_dir / tenant).glob("*/Validate/processing/output/sales/meta.json")
    meta = json.loads(found.read_text())
    assert int(meta["filled_rows"]) == (4 * 42 if tenant == "marked" else 0)
    # the approver sees a stretch the models read as zero sales, until it is marked
    lost = [{"first": "2024-06-25", "last": "2024-08-05", "periods": 42}]
    assert version.metrics["data"]["unmarked_gaps"] == (lost if tenant == "blind" else [])
    card = tmp_path / f"{tenant}.html"
    shown = runner.invoke(
        app, ["registry", "show", "--tenant", tenant, "--version", "1", "--html", str(card)]
    )
    assert shown.exit_code == 0, shown.output
    warned = "no record in any series (read as zero sales)</dt><dd>2024-06-25 → 2024-08-05"
    assert (warned in card.read_text()) is (tenant == "blind")
    if tenant == "marked":  # the earliest cutoff lies in the outage: scored on the days after it only
        assert sorted(windows) == ["2024-07-30", "2024-08-13"]
        assert version.metrics["data"]["outages"] == [
            {"first": "2024-06-25", "last": "2024-08-05", "store": None}
        ]
        assert "outages (filled, not scored)</dt><dd>2024-06-25 → 2024-08-05<" in card.read_text()
    return {m: s["wape"] for m, s in windows["2024-08-13"].items()}


def test_a_marked_outage_is_filled_for_training_and_the_build_recovers(
    home: Settings, tmp_path: Path
) -> None:
    """Unmarked, the lost six weeks teach every member a collapse that never happened."""
    sales = _with_outage(tmp_path)
    path = tmp_path / "shop.csv"
    sales.to_csv(path, index=False)
    for tenant in ("blind", "marked"):
        result = runner.invoke(app, ["ingest", str(path), "--tenant", tenant])
        assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "ordernimbus outage add 2024-06-25 2024-08-05 --tenant marked" in text  # ingest says how

    result = runner.invoke(app, ["outage", "add", "2024-06-25", "2024-08-05", "--tenant", "marked"])
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "marked outage 2024-06-25 to 2024-08-05 for tenant marked: 42 days; 4 series" in text
    again = runner.invoke(app, ["outage", "add", "2024-06-25", "2024-08-05", "--tenant", "marked"])
    assert again.exit_code == 0
    assert "already marked" in again.output
    listing = runner.invoke(app, ["outage", "list", "--tenant", "marked", "--json"])
    assert listing.exit_code == 0, listing.output
    [row] = json.loads(listing.output)
    assert (row["first"], row["last"], row["store"], row["series"], row["records"]) == (
        "2024-06-25",
        "2024-08-05",
        None,
        4,
        0,
    )
    assert SalesLake(home.lake_dir).outages("blind") == []  # one tenant's mark is its own
    bad = runner.invoke(
        app, ["outage", "add", "2024-06-25", "2024-08-05", "--tenant", "marked", "--store", "S7"]
    )
    assert bad.exit_code == 2
    assert "has no store 'S7'" in bad.output
    assert runner.invoke(app, ["outage", "list", "--tenant", "nobody"]).exit_code == 3

    # each member's WAPE on the window after the outage, which both builds score
    after = {tenant: _build_after_outage(home, tmp_path, tenant) for tenant in ("blind", "marked")}
    # the global members learnt a collapse from the lost weeks; filled, they forecast the demand
    for member in ("xgboost", "deepar"):
        assert after["marked"][member] < 0.5 * after["blind"][member], after

    removed = runner.invoke(app, ["outage", "remove", "2024-06-25", "2024-08-05", "--tenant", "marked"])
    assert removed.exit_code == 0, removed.output
    assert SalesLake(home.lake_dir).outages("marked") == []
    gone = runner.invoke(app, ["outage", "remove", "2024-06-25", "2024-08-05", "--tenant", "marked"])
    assert gone.exit_code == 3
    assert "has no outage" in gone.output


def test_a_tenant_that_sold_nothing_builds_with_strict_json_and_a_tied_gate(
    home: Settings, tmp_path: Path
) -> None:
    """Every WAPE is 0 / 0. evaluation.json used to carry NaN tokens (SageMaker's condition step
    parses strict JSON) and the gate ratio came out 0.0: a pass whatever the forecast."""
    from models.registry.factory import open_registry

    dates = pd.date_range("2024-01-01", periods=120, freq="D")
    sales = pd.concat(
        [pd.DataFrame({"store_id": "A", "sku": f"k{j}", "date": dates, "units": 0}) for j in range(3)],
        ignore_index=True,
    )
    path = tmp_path / "nothing.csv"
    sales.to_csv(path, index=False)
    assert runner.invoke(app, ["ingest", str(path), "--tenant", "nothing"]).exit_code == 0
    run = run_build(home, "nothing", horizon=14, extra=FAST)
    assert run.status == "Succeeded", run.error

    [found] = (home.runs_dir / "nothing").glob("*/Evaluate/processing/output/evaluation/evaluation.json")

    def refuse(token: str) -> None:
        raise AssertionError(f"{token} in evaluation.json")

    evaluation = json.loads(found.read_text(), parse_constant=refuse)
    assert evaluation["ensemble"]["wape"] is None
    gate = evaluation["gate"]
    assert (gate["ensemble_value"], gate["best_baseline_value"]) == (None, None)
    assert gate["wape_ratio"] == 1.0  # zeros forecast exactly, beside exact baselines: a tie
    assert gate["passed"] is True
    [version] = open_registry(home).list_versions("nothing")
    assert version.gate_passed
    listing = runner.invoke(app, ["registry", "list", "--tenant", "nothing"])
    assert listing.exit_code == 0, listing.output
    assert "None" not in listing.output
