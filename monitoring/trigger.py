"""Starting the build pipeline when the policy says retrain, and the debouncing in front of it.

One small port, two adapters: locally the runner (``ordernimbus.service.run_build``), on AWS
``StartPipelineExecution`` of the deployed build pipeline (boto3, imported inside the adapter).
Both report the tenant's build runs, newest first, which is all debouncing needs:

- never a second build while one is running (a run stuck in Executing for a day is ignored:
  a killed local runner leaves its record behind);
- no automatic build within ``cooldown_hours`` of the last one, whoever started it;
- no automatic build while a retrained version newer than the serving one awaits approval:
  another candidate would not help, the approver is the bottleneck.

A manual request skips the last two, never the first.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from monitoring.errors import MonitorError
from ordernimbus.settings import RetrainPolicy, Settings
from ordernimbus.tenancy import validate_tenant

RUNNING = ("Executing", "Stopping")
STALE_AFTER = timedelta(hours=24)
_SCAN_EXECUTIONS = 50  # newest pipeline executions inspected for the tenant's parameter


@dataclass(frozen=True)
class BuildRun:
    run_id: str
    status: str
    started_at: datetime


class BuildTrigger(Protocol):
    backend: str

    def builds(self, tenant: str, limit: int = 20) -> list[BuildRun]:
        """The tenant's build runs, newest first."""
        ...

    def start(self, tenant: str, *, reason: str, token: str, horizon: int | None) -> BuildRun:
        """Start a build of the tenant's whole history; ``token`` makes a retried start idempotent."""
        ...


def debounce(
    runs: list[BuildRun],
    pending_version: int | None,
    policy: RetrainPolicy,
    now: datetime,
    *,
    manual: bool,
) -> str | None:
    """Why a retraining must not start now, or None when it may."""
    for run in runs:
        if run.status in RUNNING and now - run.started_at < STALE_AFTER:
            return f"build run {run.run_id} is still running (started {run.started_at:%Y-%m-%d %H:%M} UTC)"
    if manual:
        return None
    if runs and now - runs[0].started_at < timedelta(hours=policy.cooldown_hours):
        hours = (now - runs[0].started_at).total_seconds() / 3600
        return (
            f"cool-down: build run {runs[0].run_id} started {hours:.1f} h ago, "
            f"less than {policy.cooldown_hours:g} h"
        )
    if pending_version is not None:
        return f"version {pending_version} from an earlier build awaits approval; approve or reject it first"
    return None


class LocalTrigger:
    """Builds through the local runner; ``start`` waits for the run (the embedded default)."""

    backend = "local"

    def __init__(
        self,
        settings: Settings,
        *,
        extra: dict[str, Any] | None = None,
        on_event: Callable[[str, str, str], None] | None = None,
    ) -> None:
        self.settings = settings
        self.extra = dict(extra or {})
        self.on_event = on_event

    def builds(self, tenant: str, limit: int = 20) -> list[BuildRun]:
        import sqlalchemy as sa

        from pipelines.records import RUNS, RunStore

        validate_tenant(tenant)
        store = RunStore(self.settings.runs_db_url)
        stmt = (
            sa.select(RUNS.c.run_id, RUNS.c.status, RUNS.c.created_at)
            .where(RUNS.c.tenant_id == tenant, RUNS.c.pipeline == "build")
            .order_by(RUNS.c.created_at.desc())
            .limit(limit)
        )
        from pipelines.local import run_status

        try:
            with store.engine.connect() as conn:
                rows = list(conn.execute(stmt))
        finally:
            store.engine.dispose()
        # A run left Executing by a dead runner is not running (it held manual retraining back for
        # the 24 hours of STALE_AFTER): the runner's lock says which are alive.
        return [
            BuildRun(r.run_id, run_status(self.settings, tenant, r.run_id, r.status), _utc(r.created_at))
            for r in rows
        ]

    def start(self, tenant: str, *, reason: str, token: str, horizon: int | None) -> BuildRun:
        from ordernimbus.service import run_build

        run = run_build(self.settings, tenant, horizon=horizon, on_event=self.on_event, extra=self.extra)
        return BuildRun(run.run_id, run.status, _utc(run.created_at))


class SageMakerTrigger:
    """Builds through the deployed SageMaker build pipeline (what the monitor Lambda uses)."""

    backend = "sagemaker"

    def __init__(
        self,
        pipeline_name: str,
        lake_root_uri: str,
        region: str,
        *,
        approval_status: str = "PendingManualApproval",
        client: Any = None,
    ) -> None:
        import boto3

        self.pipeline_name = pipeline_name
        self.lake_root_uri = lake_root_uri.rstrip("/")
        self.approval_status = approval_status
        self.client = client or boto3.client("sagemaker", region_name=region)

    def builds(self, tenant: str, limit: int = 20) -> list[BuildRun]:
        validate_tenant(tenant)
        summaries: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {
            "PipelineName": self.pipeline_name,
            "SortBy": "CreationTime",
            "SortOrder": "Descending",
            "MaxResults": 50,
        }
        while len(summaries) < _SCAN_EXECUTIONS:
            page = self.client.list_pipeline_executions(**kwargs)
            summaries += page.get("PipelineExecutionSummaries", [])
            if not page.get("NextToken"):
                break
            kwargs["NextToken"] = page["NextToken"]
        summaries.sort(key=lambda s: s["StartTime"], reverse=True)
        out: list[BuildRun] = []
        for summary in summaries[:_SCAN_EXECUTIONS]:
            arn = summary["PipelineExecutionArn"]
            if self._tenant_of(arn) == tenant:
                out.append(BuildRun(arn, summary["PipelineExecutionStatus"], _utc(summary["StartTime"])))
                if len(out) >= limit:
                    break
        return out

    def start(self, tenant: str, *, reason: str, token: str, horizon: int | None) -> BuildRun:
        validate_tenant(tenant)
        parameters = {
            "TenantId": tenant,
            "InputDataUri": f"{self.lake_root_uri}/{tenant}",
            "ModelApprovalStatus": self.approval_status,
        }
        if horizon is not None:
            parameters["Horizon"] = str(horizon)
        response = self.client.start_pipeline_execution(
            PipelineName=self.pipeline_name,
            PipelineExecutionDisplayName=f"monitor-{tenant}",
            PipelineExecutionDescription=reason[:3072],
            PipelineParameters=[{"Name": k, "Value": v} for k, v in parameters.items()],
            ClientRequestToken=token,
        )
        return BuildRun(response["PipelineExecutionArn"], "Executing", datetime.now(UTC))

    def _tenant_of(self, arn: str) -> str | None:
        found = self.client.list_pipeline_parameters_for_execution(PipelineExecutionArn=arn)
        for parameter in found.get("PipelineParameters", []):
            if parameter.get("Name") == "TenantId":
                return str(parameter.get("Value"))
        return None


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def open_trigger(
    settings: Settings,
    *,
    pipeline_name: str | None = None,
    lake_root_uri: str | None = None,
    extra: dict[str, Any] | None = None,
    on_event: Callable[[str, str, str], None] | None = None,
) -> BuildTrigger:
    """The trigger of ``settings.pipeline_backend``; the SageMaker one needs the deployed names.

    The entrypoints (CLI, Lambda) pass ``ORDERNIMBUS_BUILD_PIPELINE_NAME`` and
    ``ORDERNIMBUS_LAKE_URI``, which the infrastructure sets on the monitor function.
    """
    if settings.pipeline_backend == "local":
        return LocalTrigger(settings, extra=extra, on_event=on_event)
    if not pipeline_name or not lake_root_uri:
        raise MonitorError(
            "pipeline_backend 'sagemaker' needs the build pipeline's name and the lake URI: set "
            "ORDERNIMBUS_BUILD_PIPELINE_NAME and ORDERNIMBUS_LAKE_URI (s3://bucket/prefix)"
        )
    return SageMakerTrigger(pipeline_name, lake_root_uri, settings.aws_region)
