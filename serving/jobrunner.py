"""Runs API-started jobs (a forecast pipeline run) beside the web server and reports into ``jobs``.

Embedded default: the run happens in a background thread of the API process, through the same
use case the CLI calls (:func:`ordernimbus.service.run_forecast`, imported lazily: it needs the
full package, not the Lambda one). The runner's steps are subprocesses, so the thread mostly waits.
A heartbeat thread touches the job row while it runs; if the process dies, the row goes stale and
:class:`inference.store.jobs.JobStore` reports the job failed instead of running forever.

Progress is the share of the pipeline's steps that have finished (succeeded, skipped or served
from cache), from the runner's step events; the run id is attached as soon as the run exists so a
client can follow it with ``ordernimbus pipeline status RUN``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime
from typing import Any

from inference.store.jobs import Job, JobStore
from ordernimbus.errors import ConflictError, OrderNimbusError
from ordernimbus.settings import Settings
from ordernimbus.tenancy import tenant_dir

log = logging.getLogger(__name__)
FORECAST = "forecast"
SALES_FILE = "sales.parquet"  # features.lake.SALES_FILE, named here so this module needs no pandas
HEARTBEAT_SECONDS = 10.0
_DONE_EVENTS = frozenset({"Succeeded", "Skipped"})


class BackendNotWiredError(OrderNimbusError):
    status = 501
    title = "Not available in this deployment"


# (settings, tenant, horizon, on_event) -> run record with run_id / status / error
ForecastStarter = Callable[[Settings, str, int | None, Callable[[str, str, str], None]], Any]


def run_forecast_locally(
    settings: Settings, tenant: str, horizon: int | None, on_event: Callable[[str, str, str], None]
) -> Any:
    from ordernimbus.service import run_forecast

    return run_forecast(settings, tenant, horizon, on_event=on_event)


class JobRunner:
    """Starts jobs in daemon threads; ``wait`` is for tests and graceful shutdown."""

    def __init__(
        self, settings: Settings, jobs: JobStore, start_forecast: ForecastStarter | None = None
    ) -> None:
        self.settings = settings
        self.jobs = jobs
        self.start_forecast = start_forecast or run_forecast_locally
        self._threads: dict[str, threading.Thread] = {}
        self._lock = threading.Lock()

    def submit_forecast(self, tenant: str, horizon: int | None, created_by: str) -> Job:
        """A queued forecast job running in the background; 409 when the tenant has no sales yet
        (the run could only fail) or a forecast job is already running for it."""
        if self.settings.pipeline_backend != "local":
            raise BackendNotWiredError(
                "on the sagemaker backend, forecast runs start from the registry's approval event "
                "(EventBridge) or `ordernimbus pipeline start`; this API runs local pipelines only"
            )
        if not tenant_dir(self.settings.lake_dir, tenant, SALES_FILE).exists():
            raise ConflictError(
                "this tenant has no sales data yet, so there is nothing to forecast from: "
                "upload sales first (POST /v1/uploads)"
            )
        job = self.jobs.create(tenant, FORECAST, {"horizon": horizon}, created_by)
        thread = threading.Thread(target=self._run, args=(job,), name=f"job-{job.job_id}", daemon=True)
        with self._lock:
            self._threads[job.job_id] = thread
        thread.start()
        return job

    def wait(self, job_id: str, timeout: float | None = None) -> None:
        with self._lock:
            thread = self._threads.get(job_id)
        if thread is not None:
            thread.join(timeout)

    def _run(self, job: Job) -> None:
        stop = threading.Event()
        beat = threading.Thread(target=self._heartbeat, args=(job, stop), daemon=True)
        beat.start()
        try:
            self.jobs.update(
                job.tenant_id, job.job_id, status="running", message="starting the forecast pipeline"
            )
            progress = _Progress(self, job)
            run = self.start_forecast(self.settings, job.tenant_id, job.parameters.get("horizon"), progress)
            ok = run.status == "Succeeded"
            self.jobs.update(
                job.tenant_id,
                job.job_id,
                status="succeeded" if ok else "failed",
                progress=1.0 if ok else None,
                run_id=run.run_id,
                message="forecast set published"
                if ok
                else f"{run.error or 'the pipeline failed'}; resume "
                f"with `ordernimbus pipeline resume {run.run_id} --tenant {job.tenant_id}`",
            )
        except OrderNimbusError as exc:
            self.jobs.update(job.tenant_id, job.job_id, status="failed", message=str(exc))
        except Exception as exc:  # the job must end, whatever broke; details go to the log only
            log.exception("job %s failed", job.job_id)
            self.jobs.update(
                job.tenant_id, job.job_id, status="failed", message=f"internal error ({type(exc).__name__})"
            )
        finally:
            stop.set()
            with self._lock:
                self._threads.pop(job.job_id, None)

    def _heartbeat(self, job: Job, stop: threading.Event) -> None:
        while not stop.wait(HEARTBEAT_SECONDS):
            try:
                self.jobs.update(job.tenant_id, job.job_id)
            except Exception:  # a missed beat is retried; staleness takes several in a row
                log.warning("heartbeat of job %s failed", job.job_id, exc_info=True)


class _Progress:
    """The runner's ``on_event`` callback: counts finished steps and finds the run id."""

    def __init__(self, runner: JobRunner, job: Job) -> None:
        from pipelines.definition import PIPELINES

        self.runner = runner
        self.job = job
        self.total = max(1, len(PIPELINES[FORECAST]().steps))
        self.done: set[str] = set()
        self.run_id: str | None = None

    def __call__(self, step: str, status: str, message: str) -> None:
        if status in _DONE_EVENTS:
            self.done.add(step)
        if self.run_id is None:
            self.run_id = _find_run(self.runner.settings, self.job.tenant_id, self.job.created_at)
        text = f"{step}: {status}" + (f" ({message})" if message else "")
        try:
            self.runner.jobs.update(
                self.job.tenant_id,
                self.job.job_id,
                progress=min(0.99, len(self.done) / self.total),
                message=text,
                run_id=self.run_id,
            )
        except Exception:  # progress is best effort; the final update decides the job's outcome
            log.warning("progress update of job %s failed", self.job.job_id, exc_info=True)


def _find_run(settings: Settings, tenant: str, since: datetime) -> str | None:
    """The forecast run this job started: the tenant's newest forecast run created after the job."""
    from pipelines.records import RunStore

    for run in RunStore(settings.runs_db_url).list(tenant, limit=5):
        created = run.created_at if run.created_at.tzinfo else run.created_at.replace(tzinfo=since.tzinfo)
        if run.pipeline == FORECAST and created >= since.replace(microsecond=0):
            return run.run_id
    return None
