"""The retraining policy: which rules fire on a tenant's evidence, each with the reason in words.

Rules (thresholds from :class:`ordernimbus.settings.RetrainPolicy`, per tenant):

- ``accuracy``: the trailing WAPE (``accuracy_window_days`` periods) was worse than the scored
  version's backtest WAPE x (1 + ``accuracy_margin``) on each of the last ``accuracy_days``
  consecutive periods with actuals. One bad day is noise; a run of them is a stale model.
- ``drift_share``: at least ``drift_share`` of the compared columns drifted (Evidently's rule).
- ``psi``: the target's PSI is above ``psi_threshold`` and above its sampling-noise floor.
- ``schedule``: the newest build is ``schedule_days`` old (or there is none).
- ``manual``: someone asked.

Any fired rule means retrain; with ``automatic`` off only ``manual`` counts. Whether a run then
starts is the trigger's business (debouncing), recorded beside these results.
Pure: evidence in, results out.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from itertools import pairwise

from monitoring.drift import Psi
from ordernimbus.settings import RetrainPolicy

AUTOMATIC_RULES = ("accuracy", "drift_share", "psi", "schedule")


@dataclass(frozen=True)
class RuleResult:
    rule: str
    fired: bool
    detail: str

    def as_dict(self) -> dict[str, object]:
        return {"rule": self.rule, "fired": self.fired, "detail": self.detail}


@dataclass(frozen=True)
class Evidence:
    requested: bool
    trailing_wape: Mapping[str, float]  # ISO day -> trailing WAPE, as accuracy.trailing_wape gives it
    backtest_wape: float | None
    drift_share: float | None  # None: too little new data to compare
    drifted: tuple[str, ...]
    compared_columns: int
    psi: Psi | None
    last_build_at: datetime | None
    period_days: int = 1  # 7 for weekly data: "consecutive" means consecutive periods


def evaluate(policy: RetrainPolicy, evidence: Evidence, now: datetime) -> list[RuleResult]:
    return [
        _accuracy(policy, evidence),
        _drift_share(policy, evidence),
        _psi(policy, evidence),
        _schedule(policy, evidence, now),
        RuleResult(
            "manual", evidence.requested, "requested by a user" if evidence.requested else "not requested"
        ),
    ]


def should_retrain(policy: RetrainPolicy, results: list[RuleResult]) -> bool:
    fired = {r.rule for r in results if r.fired}
    return "manual" in fired or (policy.automatic and bool(fired & set(AUTOMATIC_RULES)))


def _accuracy(policy: RetrainPolicy, ev: Evidence) -> RuleResult:
    if ev.backtest_wape is None or ev.backtest_wape <= 0:
        return RuleResult(
            "accuracy",
            False,
            "no backtest WAPE to compare with: no version approved and scored yet, or none recorded",
        )
    limit = ev.backtest_wape * (1 + policy.accuracy_margin)
    days = sorted(ev.trailing_wape)[-policy.accuracy_days :]
    if len(days) < policy.accuracy_days:
        return RuleResult(
            "accuracy", False, f"{len(days)} scored period(s) so far; the rule needs {policy.accuracy_days}"
        )
    dates = [date.fromisoformat(d) for d in days]
    gaps = [(b - a).days for a, b in pairwise(dates)]
    values = ", ".join(f"{ev.trailing_wape[d]:.3f}" for d in days)
    where = f"trailing WAPE {values} on {days[0]}..{days[-1]}"
    bound = f"{limit:.3f} (backtest {ev.backtest_wape:.3f} x {1 + policy.accuracy_margin:.2f})"
    if any(g != ev.period_days for g in gaps):
        return RuleResult("accuracy", False, f"{where}: the periods are not consecutive")
    if all(ev.trailing_wape[d] > limit for d in days):
        return RuleResult("accuracy", True, f"{where}: all above {bound}")
    return RuleResult("accuracy", False, f"{where}: not all above {bound}")


def _drift_share(policy: RetrainPolicy, ev: Evidence) -> RuleResult:
    if ev.drift_share is None:
        return RuleResult("drift_share", False, "too few periods since training to compare")
    fired = ev.drift_share >= policy.drift_share
    names = ", ".join(ev.drifted) or "none"
    verb = ">=" if fired else "<"
    return RuleResult(
        "drift_share",
        fired,
        f"{len(ev.drifted)} of {ev.compared_columns} columns drifted ({names}): share {ev.drift_share:.2f} "
        f"{verb} {policy.drift_share:.2f}",
    )


def _psi(policy: RetrainPolicy, ev: Evidence) -> RuleResult:
    if ev.psi is None or ev.psi.bins == 0:
        return RuleResult("psi", False, "too few periods since training to compare")
    p = ev.psi
    fired = p.exceeds(policy.psi_threshold)
    noise = f"noise floor {p.floor:.3f} at n={p.n_reference}/{p.n_current}"
    verb = "above" if fired else "not above"
    return RuleResult(
        "psi", fired, f"PSI of {p.column} {p.value:.3f} {verb} max({policy.psi_threshold:.2f}, {noise})"
    )


def _schedule(policy: RetrainPolicy, ev: Evidence, now: datetime) -> RuleResult:
    if policy.schedule_days == 0:
        return RuleResult("schedule", False, "no scheduled retraining for this tenant")
    if ev.last_build_at is None:
        return RuleResult("schedule", True, "the tenant has never been built")
    age = now - ev.last_build_at
    fired = age >= timedelta(days=policy.schedule_days)
    verb = ">=" if fired else "<"
    return RuleResult(
        "schedule", fired, f"last build {_days(age)} ago {verb} the {policy.schedule_days}-day schedule"
    )


def _days(age: timedelta) -> str:
    return f"{age.total_seconds() / 86400:.1f} days"
