"""Kill the local runner (SIGKILL) in the middle of a training step, then `resume` finishes the run.

The runner runs in its own process, as `ordernimbus pipeline run build` would; the test watches the
run store until the XGBoost training step is executing and kills the runner there. Then it checks
what a crash must leave behind (the step still marked Executing, no orphan step process), that a
resume is refused while a runner still holds the run, and that the resume redoes only the
interrupted step: the finished steps keep their records and logs byte for byte.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from realcuts import store_item_cut
from typer.testing import CliRunner

from features.lake import SalesLake
from monitoring.trigger import LocalTrigger
from ordernimbus.cli import app
from ordernimbus.errors import ConflictError
from ordernimbus.settings import Settings
from pipelines.local import LocalRunner, run_status
from pipelines.records import RunRecord, RunStore

pytestmark = pytest.mark.integration
TENANT = "killed-co"
VICTIM = "Train-xgboost"
RUNNER = """
import sys
from ordernimbus.service import run_build
from ordernimbus.settings import get_settings
small = {"BoostingRounds": 40, "BacktestWindows": 1, "DeepAREpochs": 1}
run = run_build(get_settings(), sys.argv[1], horizon=7, extra=small)
print(run.run_id, run.status)
"""


def _start_runner(home: Settings, own_group: bool = False) -> tuple[RunStore, subprocess.Popen[bytes]]:
    """A small tenant's build in a runner process of its own, as `ordernimbus pipeline run build`."""
    SalesLake(home.lake_dir).upsert(TENANT, store_item_cut(stores=1, items=2, since="2016-06-01"), "cut")
    proc = subprocess.Popen(
        [sys.executable, "-c", RUNNER, TENANT],
        env={**os.environ},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=own_group,
    )
    return RunStore(home.runs_db_url), proc


def _wait_for(store: RunStore, proc: subprocess.Popen[bytes], timeout: float = 240.0) -> RunRecord:
    """The run, as soon as the victim step is executing (fails if the runner ends first)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, "the runner ended before the training step started"
        runs = store.list(TENANT)
        if runs and runs[0].step(VICTIM).status == "Executing":
            return runs[0]
        time.sleep(0.05)
    raise AssertionError(f"{VICTIM} never started within {timeout} s")


def _processes_mentioning(text: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if text in cmdline:
                found.append(int(entry.name))
    return found


def test_resume_after_sigkill_redoes_only_the_interrupted_step(home: Settings) -> None:
    store, proc = _start_runner(home)
    try:
        live = _wait_for(store, proc)
        # a second process may not resume a run whose runner is alive
        with pytest.raises(ConflictError, match="still executing in runner process"):
            LocalRunner(home).resume(live.run_id, TENANT)
        assert run_status(home, TENANT, live.run_id, "Executing") == "Executing"
        assert LocalTrigger(home).builds(TENANT)[0].status == "Executing"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    killed = store.get(live.run_id)
    assert killed is not None
    assert killed.status == "Executing"
    assert killed.step(VICTIM).status == "Executing"
    # what lists and the retraining debounce see: not running (it held manual retraining back 24 h)
    assert run_status(home, TENANT, live.run_id, killed.status) == "Stopped"
    assert LocalTrigger(home).builds(TENANT)[0].status == "Stopped"
    listed = CliRunner().invoke(app, ["pipeline", "runs", "--tenant", TENANT])
    assert "Stopped (runner gone" in listed.output
    assert killed.step(VICTIM).attempts == 1
    run_dir = str(home.runs_dir / TENANT / live.run_id)  # every step of the run, and workers they forked
    deadline = time.monotonic() + 10
    while _processes_mentioning(run_dir) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _processes_mentioning(run_dir) == [], "a step (or a worker it forked) outlived its runner"

    finished = {s.step: s for s in killed.steps if s.status == "Succeeded"}
    assert "Validate" in finished
    assert len(finished) >= 2
    logs = {name: Path(s.log or "").read_text() for name, s in finished.items()}

    events: list[tuple[str, str, str]] = []
    resumed = LocalRunner(home, on_event=lambda *e: events.append(e)).resume(live.run_id, TENANT)

    assert resumed.status == "Succeeded", resumed.error
    for name, before in finished.items():  # not redone: same record, same log
        after = resumed.step(name)
        assert (after.status, after.attempts, after.seconds, after.outputs) == (
            "Succeeded",
            before.attempts,
            before.seconds,
            before.outputs,
        )
        assert Path(after.log or "").read_text() == logs[name]
    victim = resumed.step(VICTIM)
    assert victim.status == "Succeeded"
    assert victim.attempts == 2
    victim_log = Path(victim.log or "").read_text()
    assert "the runner process died while this step was executing" in victim_log
    assert victim_log.count("--- ") >= 3  # first attempt, the death notice, the resumed attempt
    started = [step for step, status, _ in events if status == "Executing"]
    assert VICTIM in started
    assert not set(started) & set(finished)
    assert ("Register" in started) != ("RegisterGateFailed" in started)


def test_ctrl_c_stops_the_run_at_once_and_resume_finishes_it(home: Settings) -> None:
    """Ctrl-C reaches the runner and its steps (one process group). The interrupted steps used to be
    retried, queued steps started, and the run stayed Executing after the runner exited 30 s later."""
    store, proc = _start_runner(home, own_group=True)  # a terminal's foreground job
    try:
        live = _wait_for(store, proc)
        interrupted_at = time.monotonic()
        os.killpg(proc.pid, signal.SIGINT)
        proc.wait(timeout=60)
        took = time.monotonic() - interrupted_at
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode != 0
    assert took < 10, f"the runner took {took:.0f} s to stop"
    stopped = store.get(live.run_id)
    assert stopped is not None
    assert stopped.status == "Stopped"
    assert f"pipeline resume {live.run_id}" in (stopped.error or "")
    victim = stopped.step(VICTIM)
    assert (victim.status, victim.attempts) == ("Failed", 1)  # stopped, not retried
    assert "stopped by a signal" in (victim.error or "")
    assert any(s.status == "Pending" for s in stopped.steps)  # nothing queued was started
    resumed = LocalRunner(home).resume(live.run_id, TENANT)
    assert resumed.status == "Succeeded", resumed.error
