"""The Register step registers one version per pipeline run, however often it runs."""

from __future__ import annotations

import json
from pathlib import Path

from models.registry.factory import open_registry
from ordernimbus.settings import Settings
from pipelines.contract import StepContext
from pipelines.steps import register


def _step_folder(base: Path) -> StepContext:
    """The inputs the Register step reads: the evaluation and the ensemble's model folder."""
    evaluation = base / "processing" / "input" / "evaluation"
    model = base / "processing" / "input" / "model"
    evaluation.mkdir(parents=True)
    model.mkdir(parents=True)
    (evaluation / "evaluation.json").write_text(
        json.dumps({"gate": {"passed": True}, "ensemble": {"wape": 0.1}})
    )
    (model / "data_meta.json").write_text(
        json.dumps({"fingerprint": "f", "start": "2017-01-01", "end": "2017-09-30"})
    )
    (model / "ensemble.json").write_text("{}")
    return StepContext(base, {"tenant": "acme", "run_id": "run-1", "gate_passed": "true"})


def test_a_resumed_run_registers_its_build_once(home: Settings, tmp_path: Path) -> None:
    """A runner killed between the registry write and the step's record redid the step on resume:
    the same build became versions 1 and 2, the second overwriting the first's artifact."""
    ctx = _step_folder(tmp_path / "step")
    register.main(ctx)
    first = json.loads(
        (ctx.base / "processing" / "output" / "registration" / "registration.json").read_text()
    )
    register.main(ctx)  # the resume
    again = json.loads(
        (ctx.base / "processing" / "output" / "registration" / "registration.json").read_text()
    )
    versions = open_registry(home).list_versions("acme")
    assert [v.version for v in versions] == [1]
    assert again == first
    assert versions[0].created_by == "pipeline:run-1"
    register.main(StepContext(ctx.base, {**ctx.args, "run_id": "run-2"}))  # another run: a new version
    assert [v.version for v in open_registry(home).list_versions("acme")] == [1, 2]
