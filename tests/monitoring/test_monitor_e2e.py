"""Issue 9 acceptance on real data: unchanged actuals keep the model, a department's shift retrains it.

Store Item Demand (2 stores x 10 items, 20 real series) is trained up to 2017-09-30, approved and
forecast. Two weeks of the real later actuals arrive unchanged: no rule fires. The next two weeks
arrive with an injected change on a "department" (items 1-3): their price cut by 20 % and their
demand up 40 %. The check must see it (drift of the units index and the price, PSI, accuracy),
start the build pipeline, register a new pending version, and record both decisions.

The real set has no prices, so every item carries a fixed list price (2.0 + 0.5 x item) from the
start: a price column whose only change is the injected one.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
from realcuts import store_item_cut
from typer.testing import CliRunner

from inference.store.history import read_history
from inference.store.monitoring import Decision, MonitoringStore
from models.registry.factory import open_registry
from monitoring.check import run_check
from monitoring.trigger import LocalTrigger
from ordernimbus.cli import app
from ordernimbus.service import run_build, run_forecast
from ordernimbus.settings import Settings
from pipelines.definition import build_pipeline

pytestmark = pytest.mark.e2e
runner = CliRunner()
_DECLARED = {p.name for p in build_pipeline().parameters}
# Small training budgets (the decisions, not the models, are under test); DeepAR only where declared.
FAST = {"BoostingRounds": 15, "BacktestWindows": 2} | (
    {"DeepAREpochs": 1} if "DeepAREpochs" in _DECLARED else {}
)
TENANT = "shop-e2e"
TRAIN_END = pd.Timestamp("2017-09-30")
DEPARTMENT = ("1", "2", "3")


def _sales() -> pd.DataFrame:
    sales = store_item_cut(stores=2, items=10, since="2016-06-01")
    return sales.assign(unit_price=2.0 + 0.5 * sales["sku"].astype(int))


def _ingest(frame: pd.DataFrame, tmp: Path, name: str) -> None:
    path = tmp / f"{name}.csv"
    frame.rename(columns={"sku": "item_id"}).to_csv(path, index=False)
    result = runner.invoke(app, ["ingest", str(path), "--tenant", TENANT])
    assert result.exit_code == 0, result.output


def _weeks(sales: pd.DataFrame, first: int, last: int) -> pd.DataFrame:
    days = sales["date"] - TRAIN_END
    return sales[(days >= pd.Timedelta(days=first)) & (days <= pd.Timedelta(days=last))]


def test_unchanged_actuals_keep_the_model_and_a_department_shift_retrains_it(
    home: Settings, tmp_path: Path
) -> None:
    sales = _sales()
    _ingest(sales[sales["date"] <= TRAIN_END], tmp_path, "history")
    first = run_build(home, TENANT, horizon=14, extra=FAST)
    assert first.status == "Succeeded", first.error
    approved = runner.invoke(
        app, ["registry", "approve", "--tenant", TENANT, "--version", "1", "--reason", "e2e", "--override"]
    )
    assert approved.exit_code == 0, approved.output  # approval runs the forecast pipeline: 2017-10-01..14

    store = MonitoringStore(home.db_url)
    calm = _unchanged_weeks_change_nothing(home, store, sales, tmp_path)
    decision, run_id = _a_department_shift_retrains(home, store, sales, tmp_path)

    recorded = store.decisions(TENANT)
    assert [d.check_id for d in recorded] == [decision.check_id, calm.check_id]
    assert (recorded[0].action, recorded[0].run_id) == ("started", run_id)
    wapes = [r.wape for r in store.accuracy_series(TENANT)]
    assert len(wapes) == 2
    assert None not in wapes
    assert wapes[1] > wapes[0]

    page = tmp_path / "overview.html"
    shown = runner.invoke(app, ["monitor", "report", "--tenant", TENANT, "--html", "--out", str(page)])
    assert shown.exit_code == 0, shown.output
    text = page.read_text()
    assert "data:image/png;base64," in text
    assert "units_index" in text
    assert run_id in text

    # another tenant sees none of it
    assert store.decisions("other-shop") == []
    assert runner.invoke(app, ["monitor", "report", "--tenant", "other-shop"]).exit_code == 3


def _unchanged_weeks_change_nothing(
    home: Settings, store: MonitoringStore, sales: pd.DataFrame, tmp_path: Path
) -> Decision:
    _ingest(_weeks(sales, 1, 14), tmp_path, "weeks-1-2")
    # store 2's till was down for three days: those days are not scored, though rows arrived
    lost = ["outage", "add", "2017-10-05", "2017-10-07", "--tenant", TENANT, "--store", "2"]
    assert runner.invoke(app, lost).exit_code == 0
    checked = runner.invoke(app, ["monitor", "check", "--tenant", TENANT])
    assert checked.exit_code == 0, checked.output
    assert "no retraining" in checked.output, checked.output

    calm = store.last_decision(TENANT)
    assert calm is not None
    assert (calm.retrain, calm.action, calm.run_id) == (False, "none", None)
    assert not [r for r in calm.reasons if r["fired"]], calm.reasons
    assert {r["rule"] for r in calm.reasons} == {"accuracy", "drift_share", "psi", "schedule", "manual"}
    assert calm.actuals_through == date(2017, 10, 14)
    assert calm.details["drift"]["windows"]["alignment"] == "year-over-year"
    assert calm.details["drift"]["drifted"] == []

    rows = store.accuracy_of_check(TENANT, calm.check_id)
    assert [sum(r.level == level for r in rows) for level in ("total", "store", "sku")] == [1, 2, 20]
    total = next(r for r in rows if r.level == "total")
    assert (total.start_date, total.end_date, total.n) == (
        date(2017, 10, 1),
        date(2017, 10, 14),
        20 * 14 - 10 * 3,
    )
    assert total.wape is not None
    assert 0.05 < total.wape < 0.3
    history = read_history(store.engine, TENANT, "1", "1", start=date(2017, 10, 1), end=date(2017, 10, 14))
    real = _weeks(sales, 1, 14).query("store_id == '1' and sku == '1'")["units"].tolist()
    assert [units for _, units, _ in history] == real

    folder = home.reports_dir / TENANT / "monitor" / calm.check_id
    assert {p.name for p in folder.iterdir()} >= {"summary.json", "drift.html", "accuracy.html"}
    summary = json.loads((folder / "summary.json").read_text())
    assert (summary["check_id"], summary["action"]) == (calm.check_id, "none")
    return calm


def _a_department_shift_retrains(
    home: Settings, store: MonitoringStore, sales: pd.DataFrame, tmp_path: Path
) -> tuple[Decision, str]:
    forecast = run_forecast(home, TENANT)  # the daily forecast, now covering 2017-10-15..28
    assert forecast.status == "Succeeded", forecast.error
    later = _weeks(sales, 15, 28).copy()
    dept = later["sku"].isin(DEPARTMENT)
    later.loc[dept, "units"] = (later.loc[dept, "units"] * 1.4).round()  # demand up 40 %
    later.loc[dept, "unit_price"] = later.loc[dept, "unit_price"] * 0.8  # price cut by 20 %
    _ingest(later, tmp_path, "weeks-3-4")

    two_days_later = datetime.now(UTC) + timedelta(days=2)  # past the 24 h cool-down after the first build
    outcome = run_check(home, TENANT, now=two_days_later, trigger=LocalTrigger(home, extra=FAST))
    decision = outcome.decision
    fired = {r["rule"] for r in decision.reasons if r["fired"]}
    assert decision.retrain is True
    assert {"psi", "accuracy"} <= fired, decision.reasons
    assert {"units_index", "unit_price"} <= set(decision.details["drift"]["drifted"])
    assert decision.action == "started", decision.details
    assert outcome.run is not None
    assert outcome.run.status == "Succeeded"
    assert decision.run_id == outcome.run.run_id

    versions = open_registry(home).list_versions(TENANT)
    assert [v.version for v in versions] == [1, 2]
    assert versions[1].status == "PendingManualApproval"
    assert versions[1].created_by == f"pipeline:{outcome.run.run_id}"
    assert versions[1].lineage["data_end"] == "2017-10-28"  # retrained on everything, the shift included
    return decision, outcome.run.run_id
