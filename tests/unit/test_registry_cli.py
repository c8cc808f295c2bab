"""``ordernimbus registry compare | audit | show --card-json`` on the embedded registry (fast, no build)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from models.registry.factory import open_registry
from ordernimbus.cli import app
from ordernimbus.settings import Settings

runner = CliRunner()


def metrics(wape: float, end: str, passed: bool = True) -> dict[str, Any]:
    naive = {"wape": 0.30, "mase": 1.0, "smape": 0.4, "pinball": 2.0, "coverage": 0.6}
    return {
        "quantiles": [0.1, 0.5, 0.9],
        "ensemble": {"wape": wape, "mase": 0.8, "smape": 0.3, "pinball": 1.5, "coverage": 0.78},
        "members": {"xgboost": {"wape": wape + 0.01}, "arima": {"wape": wape + 0.04}},
        "baselines": {"seasonal_naive": naive},
        "gate": {
            "passed": passed,
            "metric": "wape",
            "best_baseline": "seasonal_naive",
            "best_baseline_value": 0.3,
            "ensemble_value": wape,
            "max_ratio": 1.0,
        },
        "data": {"start": "2016-01-01", "end": end, "series": 20, "rows": 14_000},
    }


@pytest.fixture
def registry(home: Settings) -> Any:
    reg = open_registry(home)
    reg.register("acme", "file:///nowhere/1.tar.gz", metrics(0.25, "2017-11-30"), {"data_end": "2017-11-30",
                 "pipeline_run_id": "r1"}, True)  # fmt: skip
    reg.register("acme", "file:///nowhere/2.tar.gz", metrics(0.21, "2017-12-31"), {"data_end": "2017-12-31",
                 "pipeline_run_id": "r2"}, True)  # fmt: skip
    reg.register("globex", "file:///nowhere/g.tar.gz", metrics(0.5, "2017-12-31", passed=False), {}, False)
    return reg


def test_compare_as_json_and_as_a_table(registry: Any) -> None:
    result = runner.invoke(app, ["registry", "compare", "--tenant", "acme", "1", "2", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    rows = {(r["kind"], r["model"], r["metric"]): r for r in report["metrics"]}
    assert rows[("ensemble", "ensemble", "wape")]["a"] == 0.25
    assert rows[("ensemble", "ensemble", "wape")]["b"] == 0.21
    assert rows[("ensemble", "ensemble", "wape")]["delta"] == pytest.approx(-0.04)
    assert rows[("ensemble", "ensemble", "wape")]["b_better"] is True
    assert rows[("member", "arima", "wape")]["b"] == pytest.approx(0.25)
    assert rows[("member", "arima", "mase")]["a"] is None  # not scored: shown as missing, never invented
    assert report["lineage"]["pipeline_run_id"] == {"a": "r1", "b": "r2", "same": False}

    table = runner.invoke(app, ["registry", "compare", "--tenant", "acme", "1", "2"])
    assert table.exit_code == 0, table.output
    assert "-0.0400" in table.output
    assert "v2 gate passed" in table.output
    assert "data_end: 2017-11-30 -> 2017-12-31" in table.output


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--tenant", "acme", "1", "7"], 3, "no model version 7"),
        (
            ["--tenant", "globex", "1", "2"],
            3,
            "no model version 2",
        ),  # another tenant's versions are not visible
        (["--tenant", "Bad_Tenant", "1", "2"], 2, "tenant"),
        (["--tenant", "acme", "1", "two"], 2, "version_b"),
    ],
)
def test_compare_exit_codes(registry: Any, args: list[str], code: int, message: str) -> None:
    result = runner.invoke(app, ["registry", "compare", *args])
    assert result.exit_code == code, result.output
    assert message in result.output


def test_audit_lists_every_change_with_who_and_why(registry: Any) -> None:
    registry.approve("acme", 2, "alice", "fresher data")
    registry.reject("acme", 1, "bob", "superseded")
    result = runner.invoke(app, ["registry", "audit", "--tenant", "acme", "--json"])
    assert result.exit_code == 0, result.output
    entries = [json.loads(line) for line in result.output.splitlines()]
    want = [
        ("register", 1, "pipeline"),
        ("register", 2, "pipeline"),
        ("approve", 2, "alice"),
        ("reject", 1, "bob"),
    ]
    assert [(e["action"], e["version"], e["actor"]) for e in entries] == want
    assert entries[2]["detail"]["reason"] == "fresher data"
    assert all(e["tenant_id"] == "acme" for e in entries)
    table = runner.invoke(app, ["registry", "audit", "--tenant", "acme", "--version", "1"])
    assert table.exit_code == 0
    assert "superseded" in table.output
    assert "fresher data" not in table.output
    other = runner.invoke(app, ["registry", "audit", "--tenant", "globex", "--json"])
    assert [json.loads(line)["version"] for line in other.output.splitlines()] == [1]


def test_show_writes_the_card_as_json_and_html(registry: Any, tmp_path: Path) -> None:
    registry.approve("acme", 1, "alice", "first")
    page, doc = tmp_path / "card.html", tmp_path / "card.json"
    args = [
        "registry",
        "show",
        "--tenant",
        "acme",
        "--version",
        "2",
        "--html",
        str(page),
        "--card-json",
        str(doc),
    ]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    card = json.loads(doc.read_text())
    assert card["model"]["version"] == 2
    assert card["champion"]["version"] == 1
    assert card["champion"]["deltas"]["wape"]["delta"] == pytest.approx(-0.04)
    assert any("no artifact directory" in item for item in card["missing"])  # the artifact is not on disk
    assert "ordernimbus-acme · version 2" in page.read_text()
    assert not [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")]  # written, then swapped in


def test_a_card_written_to_a_folder_or_a_missing_one_is_refused(registry: Any, tmp_path: Path) -> None:
    """Both were tracebacks (exit 1), and the folder case left a .tmp file beside it."""
    base = ["registry", "show", "--tenant", "acme", "--version", "1"]
    missing = runner.invoke(app, [*base, "--html", str(tmp_path / "nowhere" / "card.html")])
    assert missing.exit_code == 2, missing.output
    assert "does not exist" in missing.output
    folder = runner.invoke(app, [*base, "--card-json", str(tmp_path)])
    assert folder.exit_code == 2, folder.output
    assert "is a directory" in " ".join(folder.output.split())
    assert not [p.name for p in tmp_path.parent.iterdir() if p.name.endswith(".tmp")]


def test_control_characters_in_a_reason_or_a_key_name_are_refused(registry: Any) -> None:
    """The CLI stored them raw, and `registry audit` wrote the escapes to an approver's terminal."""
    reject = ["registry", "reject", "--tenant", "acme", "--version", "1", "--reason", "ok\x1b]0;owned\x07"]
    result = runner.invoke(app, reject)
    assert result.exit_code == 2, result.output
    assert "control characters" in result.output
    assert open_registry_status(registry) == "PendingManualApproval"
    lines = runner.invoke(app, [*reject[:-1], "checked\nthe card"])  # line breaks are fine
    assert lines.exit_code == 0, lines.output
    key = runner.invoke(app, ["apikey", "create", "--tenant", "acme", "--name", "dash\x1b[2Jboard"])
    assert key.exit_code == 2, key.output


def open_registry_status(registry: Any) -> str:
    return str(registry.get("acme", 1).status)


def test_pipeline_commands_check_the_tenant_and_name_a_missing_step(home: Settings) -> None:
    """`pipeline runs --tenant ../BAD` listed nothing (exit 0), `status` called it not found (3),
    and `logs --step Trian-xgboost` printed nothing (exit 0)."""
    from pipelines.records import RunStore

    for args in (["runs"], ["status", "r1"], ["logs", "r1"]):
        result = runner.invoke(app, ["pipeline", *args, "--tenant", "../BAD"])
        assert result.exit_code == 2, (args, result.output)
        assert "invalid tenant id" in result.output
    RunStore(home.runs_db_url).create("r1", "acme", "build", {}, ["Validate", "Train-xgboost"])
    typo = runner.invoke(app, ["pipeline", "logs", "r1", "--tenant", "acme", "--step", "Trian-xgboost"])
    assert typo.exit_code == 3, typo.output
    assert "its steps are Train-xgboost, Validate" in " ".join(typo.output.split())


def test_serve_refuses_a_port_outside_1_65535() -> None:
    """uvicorn took 99999 modulo 65536 and logged the port it was given, not the one it used."""
    result = runner.invoke(app, ["serve", "--port", "99999"])
    assert result.exit_code == 2
    assert "65535" in result.output
