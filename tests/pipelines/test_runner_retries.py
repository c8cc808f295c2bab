"""The local runner's retries: a retryable step that fails is run again with backoff, every attempt
counted, and a step that keeps failing fails the run with its last reason. The step here is a real
entrypoint in its own module, run by the runner's supervisor as any step is."""

from __future__ import annotations

from pathlib import Path

import pytest

from ordernimbus.settings import Settings
from pipelines.definition import PIPELINES, Parameter, PipelineDef, Step
from pipelines.local import LocalRunner

FLAKY = """
from pathlib import Path

from pipelines.contract import StepContext
from pipelines.steps._io import run_step


def main(ctx: StepContext) -> None:
    marker = Path(ctx.param("marker"))
    tries = int(marker.read_text()) if marker.exists() else 0
    marker.write_text(str(tries + 1))
    if tries < int(ctx.param("failures")):
        raise RuntimeError(f"flaky failure {tries + 1}")
    (ctx.output("out") / "done.txt").write_text("ok")


if __name__ == "__main__":
    run_step(main)
"""


@pytest.fixture
def flaky(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A pipeline "flaky" of one retryable step that fails a given number of times before succeeding."""
    code = tmp_path / "code"
    code.mkdir()
    (code / "flaky_step.py").write_text(FLAKY)
    monkeypatch.setenv("PYTHONPATH", f"{code}:{Path.cwd()}")
    marker = tmp_path / "tries.txt"

    def definition() -> PipelineDef:
        step = Step(
            "Flaky",
            "processing",
            "flaky_step",
            outputs=("out",),
            arguments=(("marker", str(marker)), ("failures", "param:Failures")),
            retryable=True,
            cache=False,
        )
        parameters = (Parameter("TenantId", "String", ""), Parameter("Failures", "Integer", 0))
        return PipelineDef("flaky", parameters, (step,))

    monkeypatch.setitem(PIPELINES, "flaky", definition)
    return marker


def test_a_failing_step_is_retried_and_every_attempt_counted(home: Settings, flaky: Path) -> None:
    run = LocalRunner(home, retries=2).start("flaky", "acme", {"Failures": 2})
    assert run.status == "Succeeded", run.error
    assert run.step("Flaky").attempts == 3
    assert flaky.read_text() == "3"  # the step really ran three times
    log = Path(run.step("Flaky").log or "").read_text()
    assert "flaky failure 1" in log
    assert "flaky failure 2" in log


def test_a_step_that_keeps_failing_fails_the_run_after_its_retries(home: Settings, flaky: Path) -> None:
    run = LocalRunner(home, retries=2).start("flaky", "acme", {"Failures": 9})
    assert run.status == "Failed"
    step = run.step("Flaky")
    assert (step.status, step.attempts) == ("Failed", 3)
    assert "flaky failure 3" in (step.error or "")
    assert flaky.read_text() == "3"
