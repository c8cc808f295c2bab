"""The features pipeline step writes through the store; `ordernimbus features show` reads it back."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from realcuts import store_item_cut
from typer.testing import CliRunner

from features.store.factory import open_feature_store
from ordernimbus.cli import app
from ordernimbus.settings import Settings
from pipelines.steps import features as features_step
from pipelines.steps._io import run_step


def run_features_step(base: Path, sales: pd.DataFrame, tenant: str = "acme") -> dict[str, object]:
    folder = base / "processing" / "input" / "sales"
    folder.mkdir(parents=True, exist_ok=True)
    sales.assign(tenant_id=tenant).to_parquet(folder / "sales.parquet", index=False)
    (folder / "meta.json").write_text(json.dumps({"frequency": "D", "fingerprint": "test"}))
    run_step(features_step.main, ["--sm-base", str(base), "--tenant", tenant])
    out: dict[str, object] = json.loads(
        (base / "processing/output/features/materialization.json").read_text()
    )
    return out


def test_step_materialises_then_updates_only_the_new_tail(home: Settings, tmp_path: Path) -> None:
    sales = store_item_cut(stores=2, items=2, since="2017-01-01")
    first = run_features_step(tmp_path / "run1", sales[sales["date"] <= "2017-12-20"])
    assert first["mode"] == "full"
    assert first["records"] == len(sales[sales["date"] <= "2017-12-20"])
    second = run_features_step(tmp_path / "run2", sales)
    assert (second["mode"], second["since"], second["records"]) == ("incremental", "2017-12-21", 4 * 11)
    store = open_feature_store(home)
    record = store.latest("acme", "sales-daily", "2", "1")
    assert record is not None
    assert record["event_time"] == "2017-12-31T00:00:00Z"
    day = sales[(sales["store_id"] == "2") & (sales["sku"] == "1") & (sales["date"] == "2017-12-30")]
    assert record["lag_1"] == day["units"].item()


def test_cli_prints_the_latest_online_record(home: Settings, tmp_path: Path) -> None:
    sales = store_item_cut(stores=2, items=2, since="2017-06-01")
    run_features_step(tmp_path / "run", sales)
    runner = CliRunner()
    shown = runner.invoke(app, ["features", "show", "--tenant", "acme", "--sku", "1", "--store", "2"])
    assert shown.exit_code == 0, shown.output
    assert "store 2 · sku 1 · 2017-12-31" in shown.output
    assert "roll_mean_28" in shown.output
    assert "lag_364" in shown.output
    both = runner.invoke(app, ["features", "show", "--tenant", "acme", "--sku", "1", "--json"])
    records = json.loads(both.output)
    assert [(r["store_id"], r["event_time"]) for r in records] == [
        ("1", "2017-12-31T00:00:00Z"),
        ("2", "2017-12-31T00:00:00Z"),
    ]
    expected = sales[(sales["store_id"] == "1") & (sales["sku"] == "1") & (sales["date"] == "2017-12-24")]
    assert records[0]["lag_7"] == expected["units"].item()


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--tenant", "acme", "--sku", "404"], 3, "no feature record for sku '404'"),
        (["--tenant", "acme", "--sku", "1", "--store", "9"], 3, "in store '9'"),
        (["--tenant", "other", "--sku", "1"], 3, "tenant other has no feature record"),
        (["--tenant", "Not A Tenant", "--sku", "1"], 2, "invalid tenant id"),
    ],
)
def test_cli_errors(home: Settings, tmp_path: Path, args: list[str], code: int, message: str) -> None:
    run_features_step(tmp_path / "run", store_item_cut(stores=1, items=1, since="2017-12-01"))
    result = CliRunner().invoke(app, ["features", "show", *args])
    assert result.exit_code == code
    assert message in " ".join(result.output.split())


def test_help_names_the_command() -> None:
    result = CliRunner().invoke(app, ["features", "show", "--help"])
    assert result.exit_code == 0
    assert "--sku" in result.output
    assert "--store" in result.output
