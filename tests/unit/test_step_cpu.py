"""The runner's CPU accounting read back from a step log (the supervisor writes the line)."""

from __future__ import annotations

from pathlib import Path

from pipelines.local import _failure, cpu_seconds


def test_the_last_execution_of_a_resumed_step_counts(tmp_path: Path) -> None:
    log = tmp_path / "step.log"
    log.write_text(
        "--- 2026-11-23T10:00:00 pipelines.steps.train --model arima\n"
        "arima: window 2017-01-05 done in 186.3 s\n"
        "--- cpu 12.5 s\n"
        "--- 2026-11-23T10:05:00 pipelines.steps.train --model arima\n"
        "arima: 3 backtest windows and the final fit in 305.74 s\n"
        "--- cpu 401.25 s\n"
    )
    assert cpu_seconds(log) == 401.25
    assert cpu_seconds(str(log)) == 401.25


def test_a_step_killed_before_it_ended_or_never_run_has_no_figure(tmp_path: Path) -> None:
    log = tmp_path / "step.log"
    log.write_text("--- 2026-11-23T10:00:00 pipelines.steps.train\nwindow done in 3.1 s\n")
    assert cpu_seconds(log) is None
    assert cpu_seconds(tmp_path / "missing.log") is None
    assert cpu_seconds(None) is None


def test_a_failed_steps_reason_is_its_own_last_words_not_the_cpu_line(tmp_path: Path) -> None:
    log = tmp_path / "step.log"
    log.write_text("--- 2026-11-23T10:00:00 pipelines.steps.validate\nValueError: bad column\n--- cpu 1 s\n")
    assert _failure(tmp_path, log).endswith("ValueError: bad column")
