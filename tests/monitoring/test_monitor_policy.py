"""The retraining policy's rules and the trigger's debouncing, on explicit evidence."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from monitoring.drift import Psi
from monitoring.policy import Evidence, evaluate, should_retrain
from monitoring.trigger import BuildRun, debounce
from ordernimbus.settings import RetrainPolicy

NOW = datetime(2026, 3, 10, 6, 0, tzinfo=UTC)
POLICY = RetrainPolicy()


def _days(values: list[float], start: date = date(2026, 3, 1), step: int = 1) -> dict[str, float]:
    return {(start + timedelta(days=i * step)).isoformat(): v for i, v in enumerate(values)}


def _evidence(**changes: object) -> Evidence:
    base: dict[str, object] = {
        "requested": False,
        "trailing_wape": _days([0.10, 0.11, 0.10]),
        "backtest_wape": 0.10,
        "drift_share": 0.0,
        "drifted": (),
        "compared_columns": 6,
        "psi": Psi(0.03, 0.02, 10, 5000, 5000, "units_index"),
        "last_build_at": NOW - timedelta(days=2),
    }
    base.update(changes)
    return Evidence(**base)  # type: ignore[arg-type]


def _fired(evidence: Evidence, policy: RetrainPolicy = POLICY) -> set[str]:
    return {r.rule for r in evaluate(policy, evidence, NOW) if r.fired}


def test_nothing_fires_on_healthy_evidence_and_every_rule_says_why() -> None:
    results = evaluate(POLICY, _evidence(), NOW)
    assert [r.rule for r in results] == ["accuracy", "drift_share", "psi", "schedule", "manual"]
    assert not any(r.fired for r in results)
    assert all(r.detail for r in results)
    assert should_retrain(POLICY, results) is False


def test_accuracy_fires_only_after_consecutive_periods_above_the_margin() -> None:
    limit = 0.10 * (1 + POLICY.accuracy_margin)
    bad = limit + 0.01
    assert "accuracy" in _fired(_evidence(trailing_wape=_days([0.1, bad, bad, bad])))
    assert "accuracy" not in _fired(_evidence(trailing_wape=_days([bad, bad, bad, limit - 0.01])))
    assert "accuracy" not in _fired(_evidence(trailing_wape=_days([bad, bad])))  # too few days yet
    gap = {"2026-03-01": bad, "2026-03-02": bad, "2026-03-05": bad}
    [result] = [r for r in evaluate(POLICY, _evidence(trailing_wape=gap), NOW) if r.rule == "accuracy"]
    assert not result.fired
    assert "not consecutive" in result.detail
    weekly = _evidence(trailing_wape=_days([bad, bad, bad], step=7), period_days=7)
    assert "accuracy" in _fired(weekly)
    assert "accuracy" not in _fired(_evidence(trailing_wape=_days([bad] * 3), backtest_wape=None))


def test_drift_share_psi_schedule_and_manual() -> None:
    assert "drift_share" in _fired(_evidence(drift_share=0.5, drifted=("units", "unit_price", "month")))
    assert "drift_share" not in _fired(_evidence(drift_share=0.34, drifted=("units", "unit_price")))
    assert "psi" in _fired(_evidence(psi=Psi(0.25, 0.05, 10, 4000, 4000, "units_index")))
    # above 0.1 but within sampling noise of a small sample: not evidence of drift
    assert "psi" not in _fired(_evidence(psi=Psi(0.25, 0.31, 10, 140, 140, "units_index")))
    assert "schedule" in _fired(_evidence(last_build_at=NOW - timedelta(days=7)))
    assert "schedule" in _fired(_evidence(last_build_at=None))
    assert "schedule" not in _fired(_evidence(last_build_at=None), RetrainPolicy(schedule_days=0))
    assert _fired(_evidence(requested=True)) == {"manual"}
    nothing_to_compare = _evidence(drift_share=None, psi=None)
    assert not _fired(nothing_to_compare)


def test_automatic_off_leaves_only_the_manual_trigger() -> None:
    manual_only = RetrainPolicy(automatic=False)
    drifted = _evidence(psi=Psi(0.9, 0.01, 10, 9000, 9000, "units_index"))
    assert should_retrain(manual_only, evaluate(manual_only, drifted, NOW)) is False
    assert should_retrain(manual_only, evaluate(manual_only, _evidence(requested=True), NOW)) is True
    assert should_retrain(POLICY, evaluate(POLICY, drifted, NOW)) is True


@pytest.mark.parametrize("manual", [False, True])
def test_a_running_build_blocks_every_trigger(manual: bool) -> None:
    running = [BuildRun("run-2", "Executing", NOW - timedelta(hours=1))]
    reason = debounce(running, None, POLICY, NOW, manual=manual)
    assert reason is not None
    assert "run-2 is still running" in reason


def test_cool_down_and_pending_version_hold_back_automatic_triggers_only() -> None:
    recent = [BuildRun("run-1", "Succeeded", NOW - timedelta(hours=3))]
    held = debounce(recent, None, POLICY, NOW, manual=False)
    assert held is not None
    assert held.startswith("cool-down")
    assert debounce(recent, None, POLICY, NOW, manual=True) is None
    old = [BuildRun("run-1", "Succeeded", NOW - timedelta(days=2))]
    assert debounce(old, None, POLICY, NOW, manual=False) is None
    waiting = debounce(old, 4, POLICY, NOW, manual=False)
    assert waiting is not None
    assert "version 4" in waiting
    assert debounce(old, 4, POLICY, NOW, manual=True) is None
    # a run left "Executing" by a killed runner a day ago does not block monitoring forever
    stale = [BuildRun("run-0", "Executing", NOW - timedelta(days=2))]
    assert debounce(stale, None, POLICY, NOW, manual=False) is None
