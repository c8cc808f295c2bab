"""One monitoring check of one tenant: score, compare, decide, maybe retrain, record, report.

The order is what makes a check safe to repeat and to interrupt:

1. the actuals that arrived since the previous check (its ``actuals_through``; for the first
   check, the end of the serving version's training window) are scored against the forecast set
   that covered most of those days, and the accuracy rows are written (one transaction);
2. those actuals are upserted into ``sales_history`` for the API's charts;
3. drift is measured between the training window and the latest weeks;
4. the policy evaluates every rule, the trigger's run list decides debouncing, and the decision
   is recorded (``starting`` when a run is about to start) before anything is started;
5. the reports are written; then the build starts and the decision is updated with its run id.

A crash before step 4 leaves the watermark where it was, so the next check scores those days again.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from features.frequency import period
from features.outages import covered
from inference.store.factory import open_forecast_store
from inference.store.history import upsert_history
from inference.store.monitoring import AccuracyRow, Decision, MonitoringStore, forecasts_between
from inference.store.sql import SqlForecastStore
from models.registry.base import PENDING, ModelRegistry, ModelVersion
from monitoring import accuracy as acc
from monitoring.drift import DriftResult, detect_drift, series_level
from monitoring.lake import SalesReader
from monitoring.policy import Evidence, evaluate, should_retrain
from monitoring.reports import check_summary, write_check_reports
from monitoring.trigger import BuildRun, BuildTrigger, LocalTrigger, debounce
from monitoring.windows import choose_windows, dense_panel, drift_panels, first_sales
from ordernimbus.errors import NotFoundError, OrderNimbusError
from ordernimbus.settings import Settings
from ordernimbus.tenancy import tenant_dir, validate_tenant

Progress = Callable[[str], None]
PREVIOUS_CHECKS = 90  # decisions whose per-day sums feed the trailing WAPE
TRAILING_KEPT = 60  # days of trailing WAPE kept in a decision's details


@dataclass(frozen=True)
class CheckOutcome:
    decision: Decision
    summary: dict[str, Any]
    drift: DriftResult | None
    run: BuildRun | None
    report_dir: Path | None


def run_check(
    settings: Settings,
    tenant: str,
    *,
    requested: bool = False,
    origin: str = "cli",
    now: datetime | None = None,
    lake: SalesReader | None = None,
    trigger: BuildTrigger | None = None,
    registry: ModelRegistry | None = None,
    reports: bool = True,
    html: bool = True,
    progress: Progress | None = None,
) -> CheckOutcome:
    """Check ``tenant`` now; ``requested`` is a manual retraining request (still debounced).

    ``reports`` writes the check's folder under the reports dir (``summary.json``, and with
    ``html`` Evidently's drift and accuracy pages); the Lambda, whose disk is gone after the call,
    keeps everything in the decision row instead.
    """
    from features.lake import SalesLake
    from models.registry.factory import open_registry

    validate_tenant(tenant)
    lake = lake or SalesLake(settings.lake_dir)
    if not lake.exists(tenant):
        raise NotFoundError(
            f"tenant {tenant!r} has no sales data yet: run `ordernimbus ingest FILE --tenant {tenant}`"
        )
    store = open_forecast_store(settings)
    try:
        check = _Check(
            settings,
            tenant,
            lake,
            registry or open_registry(settings),
            store,
            trigger or LocalTrigger(settings),
            now or datetime.now(UTC),
            progress or (lambda _message: None),
        )
        return check.run(requested=requested, origin=origin, reports=reports, html=html)
    finally:
        store.close()


@dataclass(frozen=True)
class _Scoring:
    scored: acc.Scored | None
    rows: list[AccuracyRow]
    quality: dict[str, float | None]
    quality_snapshot: Any
    facts: dict[str, int]

    @property
    def daily(self) -> dict[str, dict[str, float]]:
        return acc.daily_sums(self.scored) if self.scored is not None else {}

    def version(self, serving: ModelVersion | None) -> int | None:
        if self.scored is not None:
            return self.scored.model_version
        return serving.version if serving is not None else None

    def summary(self) -> dict[str, Any] | None:
        return acc.summary(self.rows, self.scored, self.quality)


class _Check:
    def __init__(  # noqa: PLR0917 - private, called once above
        self,
        settings: Settings,
        tenant: str,
        lake: SalesReader,
        registry: ModelRegistry,
        store: SqlForecastStore,
        trigger: BuildTrigger,
        now: datetime,
        progress: Progress,
    ) -> None:
        self.settings, self.tenant, self.lake, self.registry = settings, tenant, lake, registry
        self.store, self.trigger, self.now, self.say = store, trigger, now, progress
        self.monitor = MonitoringStore(engine=store.engine)
        self.policy = settings.policy_for(tenant)
        self.check_id = str(uuid.uuid4())

    def run(self, *, requested: bool, origin: str, reports: bool, html: bool) -> CheckOutcome:
        self.say("reading sales")
        sales = self.lake.read(self.tenant)
        freq = self.lake.frequency(self.tenant)
        last = pd.Timestamp(sales["date"].max())
        serving = self.registry.serving_version(self.tenant)
        previous = self.monitor.decisions(self.tenant, limit=PREVIOUS_CHECKS)
        since = _watermark(previous, serving)
        starts = first_sales(sales)
        scoring = self._accuracy(sales, starts, freq, since, last)
        drift, windows = self._drift(sales, freq, last, serving)
        version = self._version(scoring.version(serving), serving)
        trailing = self._trailing(previous, scoring, serving, freq)
        runs = self.trigger.builds(self.tenant)
        evidence = Evidence(
            requested=requested,
            trailing_wape=trailing,
            backtest_wape=_backtest_wape(version),
            drift_share=drift.share if drift is not None else None,
            drifted=tuple(drift.drifted) if drift is not None else (),
            compared_columns=len(drift.columns) if drift is not None else 0,
            psi=drift.psi if drift is not None else None,
            last_build_at=runs[0].started_at if runs else None,
            period_days=period(freq).days,
        )
        results = evaluate(self.policy, evidence, self.now)
        retrain = should_retrain(self.policy, results)
        pending = _pending(self.registry, self.tenant, serving) if retrain else None
        blocked = debounce(runs, pending, self.policy, self.now, manual=requested) if retrain else None
        details: dict[str, Any] = {
            "frequency": freq,
            "serving_version": serving.version if serving else None,
            "backtest_wape": evidence.backtest_wape,
            "actuals": {
                "since": since.date().isoformat() if since is not None else None,
                "through": last.date().isoformat(),
                **scoring.facts,
            },
            "accuracy": scoring.summary(),
            "daily": scoring.daily,
            "trailing_wape": dict(list(trailing.items())[-TRAILING_KEPT:]),
            "drift": ({"windows": windows, **drift.as_dict()} if drift is not None else {"skipped": windows}),
            "debounce": blocked,
            "policy": self.policy.model_dump(),
        }
        decision = Decision(
            tenant_id=self.tenant,
            check_id=self.check_id,
            checked_at=self.now,
            origin=origin,
            retrain=retrain,
            action="none" if not retrain else ("debounced" if blocked else "starting"),
            reasons=[r.as_dict() for r in results],
            model_version=version.version if version else None,
            actuals_through=last.date(),
            details=details,
        )
        self.monitor.record_decision(decision)
        return self._finish(decision, results, version, drift, scoring, reports=reports, html=html)

    def _finish(
        self,
        decision: Decision,
        results: list[Any],
        version: ModelVersion | None,
        drift: DriftResult | None,
        scoring: _Scoring,
        *,
        reports: bool,
        html: bool,
    ) -> CheckOutcome:
        """Reports first (a long build must not delay them), then the build, then the final summary."""
        snapshots = (drift.snapshot if drift else None, scoring.quality_snapshot) if html else (None, None)
        folder = self._reports(decision, *snapshots) if reports else None
        run = self._start(decision, results, version) if decision.action == "starting" else None
        final = self.monitor.decision(self.tenant, self.check_id) or decision
        summary = check_summary(final, folder)
        if folder is not None:
            write_check_reports(folder, summary, None, None)  # the summary again, with the run's outcome
        return CheckOutcome(final, summary, drift, run, folder)

    def _accuracy(
        self,
        sales: pd.DataFrame,
        starts: pd.Series,
        freq: str,
        since: pd.Timestamp | None,
        last: pd.Timestamp,
    ) -> _Scoring:
        """Score the days since the watermark, store the rows, upsert those days' actuals for charts."""
        first = since + period(freq) if since is not None else last + period(freq)
        arrived = self._panel(sales, starts, first, last, freq)
        self.say(f"scoring forecasts on {arrived['date'].nunique()} new period(s)")
        scored = self._score(arrived)
        rows = acc.accuracy_rows(scored, self.settings.quantiles) if scored is not None else []
        quality, snapshot = acc.evidently_quality(scored) if rows and scored is not None else ({}, None)
        self.monitor.write_accuracy(self.tenant, self.check_id, self.now, rows)
        # the lake's rows as they are (no zero rows added), as the forecast pipeline publishes them
        recorded = sales[sales["date"] >= first]
        history = (
            upsert_history(self.store.engine, self.tenant, [_history_rows(recorded)])
            if len(recorded)
            else None
        )
        facts = {"periods": int(arrived["date"].nunique()), "history_rows": history.rows if history else 0}
        return _Scoring(scored, rows, quality, snapshot, facts)

    def _panel(
        self, sales: pd.DataFrame, starts: pd.Series, first: pd.Timestamp, last: pd.Timestamp, freq: str
    ) -> pd.DataFrame:
        """``dense_panel`` without the periods the tenant marked as outages: their sales were lost,
        so there is no truth to score there. (Drift fills them instead: ``drift_panels``.)
        """
        panel = dense_panel(sales, starts, first, last, freq)
        outages = self.lake.outages(self.tenant)
        return panel[~covered(panel, outages)] if outages else panel

    def _trailing(
        self, previous: list[Decision], scoring: _Scoring, serving: ModelVersion | None, freq: str
    ) -> dict[str, float]:
        """Trailing WAPE per day over this check's and earlier checks' days, forecast by one version.

        Only days the same version forecast count: a newly approved model starts with a clean slate.
        """
        version = scoring.version(serving)
        earlier = [d.details.get("daily", {}) for d in reversed(previous) if _scored_version(d) == version]
        merged = acc.merge_daily([*earlier, scoring.daily])
        return acc.trailing_wape(merged, self.policy.accuracy_window_days * period(freq).days)

    def _score(self, arrived: pd.DataFrame) -> acc.Scored | None:
        """Score the new days against the complete set covering most of them (newest on a tie)."""
        if arrived.empty:
            return None
        first, last = arrived["date"].min().date(), arrived["date"].max().date()
        best, best_days = None, 0
        for fs in self.store.list_sets(self.tenant):
            if fs.status != "complete" or fs.start_date is None or fs.end_date is None:
                continue
            days = (min(last, fs.end_date) - max(first, fs.start_date)).days + 1
            if days > best_days:
                best, best_days = fs, days
        if best is None:
            return None
        raw = forecasts_between(self.store.engine, self.tenant, best.set_id, first, last)
        frame = pd.DataFrame(raw, columns=list(acc.FORECAST_FRAME_COLUMNS))
        return acc.score(frame, arrived, best.set_id, best.model_version)

    def _drift(
        self,
        sales: pd.DataFrame,
        freq: str,
        last: pd.Timestamp,
        serving: ModelVersion | None,
    ) -> tuple[DriftResult | None, Any]:
        window = _training_window(serving)
        if window is None:
            return None, "no approved model version: there is no training window to compare with"
        windows = choose_windows(last, window[0], window[1], freq, self.policy.current_weeks)
        if windows is None:
            return None, f"too few periods after the training window (ends {window[1].date()}) to compare"
        self.say(f"comparing {windows.as_dict()['current']} with {windows.as_dict()['reference']}")
        reference, current, reference_level, current_level = drift_panels(
            sales, windows, freq, self.lake.outages(self.tenant)
        )
        if reference.empty or current.empty:  # Evidently divided by zero on an empty window
            return None, "every period of the compared weeks lies in marked outages: nothing to compare"
        levels = (series_level(reference_level), series_level(current_level))
        return detect_drift(reference, current, freq, levels, self.policy.drift_share), windows.as_dict()

    def _version(self, scored_version: int | None, serving: ModelVersion | None) -> ModelVersion | None:
        if scored_version is None or (serving is not None and serving.version == scored_version):
            return serving
        try:
            return self.registry.get(self.tenant, scored_version)
        except NotFoundError:
            return serving

    def _reports(self, decision: Decision, drift: Any, quality: Any) -> Path:
        folder = tenant_dir(self.settings.reports_dir, self.tenant, "monitor", self.check_id)
        self.say(f"writing reports to {folder}")
        write_check_reports(folder, check_summary(decision, folder), drift, quality)
        return folder

    def _start(self, decision: Decision, results: list[Any], version: ModelVersion | None) -> BuildRun | None:
        reason = "; ".join(f"{r.rule}: {r.detail}" for r in results if r.fired)
        horizon = int(version.metrics["horizon"]) if version and "horizon" in version.metrics else None
        self.say(f"retraining ({self.trigger.backend}): {reason}")
        try:
            run = self.trigger.start(self.tenant, reason=reason, token=self.check_id, horizon=horizon)
        except OrderNimbusError as exc:
            details = {**decision.details, "run_error": str(exc)}
            self.monitor.update_decision(self.tenant, self.check_id, action="failed", details=details)
            raise
        action = "failed" if run.status == "Failed" else "started"
        details = {**decision.details, "run": {"id": run.run_id, "status": run.status,
                                               "backend": self.trigger.backend}}  # fmt: skip
        self.monitor.update_decision(
            self.tenant, self.check_id, action=action, run_id=run.run_id, details=details
        )
        return run


def _watermark(previous: list[Decision], serving: ModelVersion | None) -> pd.Timestamp | None:
    """The newest actual date already accounted for: the last check's, else the end of training."""
    if previous and previous[0].actuals_through is not None:
        return pd.Timestamp(previous[0].actuals_through)
    window = _training_window(serving)
    return window[1] if window is not None else None


def _scored_version(decision: Decision) -> int | None:
    accuracy = decision.details.get("accuracy") or {}
    version = accuracy.get("model_version")
    return int(version) if version is not None else None


def _training_window(version: ModelVersion | None) -> tuple[pd.Timestamp, pd.Timestamp] | None:
    if version is None:
        return None
    start, end = version.lineage.get("data_start"), version.lineage.get("data_end")
    if not start or not end:
        data = version.metrics.get("data", {})
        start, end = data.get("start"), data.get("end")
    if not start or not end:
        return None
    return pd.Timestamp(start), pd.Timestamp(end)


def _backtest_wape(version: ModelVersion | None) -> float | None:
    if version is None:
        return None
    value = version.metrics.get("ensemble", {}).get("wape")
    return float(value) if isinstance(value, int | float) else None


def _pending(registry: ModelRegistry, tenant: str, serving: ModelVersion | None) -> int | None:
    floor = serving.version if serving is not None else 0
    waiting = [v.version for v in registry.list_versions(tenant) if v.status == PENDING and v.version > floor]
    return max(waiting) if waiting else None


def _history_rows(rows: pd.DataFrame) -> list[tuple[Any, ...]]:
    price = rows["unit_price"] if "unit_price" in rows.columns else pd.Series(None, index=rows.index)
    return [
        (s, k, d.date(), float(u), None if pd.isna(p) else float(p))
        for s, k, d, u, p in zip(
            rows["store_id"], rows["sku"], rows["date"], rows["units"], price, strict=True
        )
    ]
