"""Jobs: long work started through the API (a forecast pipeline run), tracked in the ``jobs`` table.

A job row is the API's promise to a client: ``POST /v1/forecasts/generate`` returns its id at once
and ``GET /v1/jobs/{id}`` reports progress until it ends. The process doing the work heartbeats the
row (``updated_at``); a job still queued or running whose heartbeat is older than ``stale_after``
belonged to a process that died (a restart, a killed worker), and is reported failed the next time
anyone looks, so a client never polls a dead job forever.

At most one job of a kind is active per tenant: :meth:`JobStore.create` checks and inserts under a
database-wide lock (``BEGIN IMMEDIATE`` on SQLite, an advisory lock on PostgreSQL), so two
concurrent requests cannot both start a forecast run for the same tenant.

Only SQLAlchemy Core: the API's Lambda package imports this module.
"""

from __future__ import annotations

import builtins
import hashlib
import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, get_args

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from inference.store.engine import create_engine_for
from inference.store.migrations import migrate
from inference.store.tables import jobs
from ordernimbus.errors import ConflictError, NotFoundError, OrderNimbusError
from ordernimbus.tenancy import validate_tenant

JobStatus = Literal["queued", "running", "succeeded", "failed"]
JOB_STATUSES: tuple[JobStatus, ...] = get_args(JobStatus)
ACTIVE: frozenset[str] = frozenset({"queued", "running"})
MAX_MESSAGE = 2000


class JobError(OrderNimbusError):
    title = "Job request refused"


class JobNotFoundError(NotFoundError, JobError):
    title = "Job not found"


class JobConflictError(ConflictError, JobError):
    """Another job of the same kind is still active for the tenant; names it so a client can poll it."""

    title = "A job is already running"

    def __init__(self, message: str, job_id: str) -> None:
        super().__init__(message)
        self.job_id = job_id


@dataclass(frozen=True)
class Job:
    job_id: str
    tenant_id: str
    kind: str
    status: JobStatus
    run_id: str | None
    progress: float
    message: str | None
    parameters: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    created_by: str | None

    @property
    def active(self) -> bool:
        return self.status in ACTIVE


class JobStore:
    """Create, update (heartbeat) and read jobs; every read is scoped to one tenant."""

    def __init__(
        self, url: str, *, engine: Engine | None = None, stale_after: timedelta = timedelta(seconds=90)
    ) -> None:
        self._engine = engine if engine is not None else create_engine_for(url)
        self._owns_engine = engine is None
        self.stale_after = stale_after
        migrate(self._engine)

    def close(self) -> None:
        if self._owns_engine:
            self._engine.dispose()

    def create(
        self, tenant: str, kind: str, parameters: dict[str, Any], created_by: str | None = None
    ) -> Job:
        """A queued job, unless one of ``kind`` is already active for ``tenant`` (JobConflictError)."""
        validate_tenant(tenant)
        if not kind or len(kind) > 32:
            raise JobError(f"job kind must be 1-32 characters, got {kind!r}")
        try:
            json.dumps(parameters)
        except (TypeError, ValueError) as exc:
            raise JobError(f"job parameters must be JSON-serialisable: {exc}") from None
        now = _now()
        job_id = str(uuid.uuid4())
        with self._writer(lock=f"{tenant}/{kind}") as conn:
            self._expire_stale(conn, tenant, now)
            active = conn.execute(
                sa.select(jobs.c.job_id).where(
                    jobs.c.tenant_id == tenant, jobs.c.kind == kind, jobs.c.status.in_(ACTIVE)
                )
            ).scalar()
            if active is not None:
                raise JobConflictError(
                    f"a {kind} job is already running for this tenant (job {active}); "
                    f"poll GET /v1/jobs/{active} until it ends",
                    active,
                )
            conn.execute(
                jobs.insert().values(
                    job_id=job_id,
                    tenant_id=tenant,
                    kind=kind,
                    status="queued",
                    progress=0.0,
                    parameters=parameters,
                    created_at=now,
                    updated_at=now,
                    created_by=(created_by or None) and created_by[:32],
                )
            )
            return self._load(conn, tenant, job_id)

    def update(
        self,
        tenant: str,
        job_id: str,
        *,
        status: JobStatus | None = None,
        progress: float | None = None,
        message: str | None = None,
        run_id: str | None = None,
    ) -> Job:
        """Record progress (also a heartbeat); a job that already ended is never reopened."""
        validate_tenant(tenant)
        if status is not None and status not in JOB_STATUSES:
            raise JobError(f"unknown job status {status!r}: expected one of {', '.join(JOB_STATUSES)}")
        values: dict[str, Any] = {"updated_at": _now()}
        if status is not None:
            values["status"] = status
        if progress is not None:
            values["progress"] = min(1.0, max(0.0, float(progress)))
        if message is not None:
            values["message"] = message[:MAX_MESSAGE]
        if run_id is not None:
            values["run_id"] = run_id[:64]
        with self._writer() as conn:
            conn.execute(
                jobs.update()
                .where(jobs.c.tenant_id == tenant, jobs.c.job_id == job_id, jobs.c.status.in_(ACTIVE))
                .values(**values)
            )
            return self._load(conn, tenant, job_id)

    def get(self, tenant: str, job_id: str) -> Job:
        """The tenant's job ``job_id``; another tenant's job is reported as not found."""
        validate_tenant(tenant)
        with self._writer() as conn:
            self._expire_stale(conn, tenant, _now())
            return self._load(conn, tenant, job_id)

    def list(self, tenant: str, limit: int = 20) -> builtins.list[Job]:
        """The tenant's newest jobs first."""
        validate_tenant(tenant)
        with self._writer() as conn:
            self._expire_stale(conn, tenant, _now())
            rows = conn.execute(
                sa.select(jobs)
                .where(jobs.c.tenant_id == tenant)
                .order_by(jobs.c.created_at.desc(), jobs.c.job_id)
                .limit(limit)
            ).mappings()
            return [_to_job(row) for row in rows]

    def _expire_stale(self, conn: Connection, tenant: str, now: datetime) -> None:
        conn.execute(
            jobs.update()
            .where(
                jobs.c.tenant_id == tenant,
                jobs.c.status.in_(ACTIVE),
                jobs.c.updated_at < now - self.stale_after,
            )
            .values(
                status="failed",
                updated_at=now,
                message=(
                    "the process running this job stopped (no heartbeat for "
                    f"{int(self.stale_after.total_seconds())} s); start it again, or resume its "
                    "pipeline run with `ordernimbus pipeline resume RUN_ID --tenant T`"
                ),
            )
        )

    @staticmethod
    def _load(conn: Connection, tenant: str, job_id: str) -> Job:
        row = (
            conn.execute(sa.select(jobs).where(jobs.c.tenant_id == tenant, jobs.c.job_id == job_id))
            .mappings()
            .first()
        )
        if row is None:
            raise JobNotFoundError(f"this tenant has no job {job_id!r}")
        return _to_job(row)

    @contextmanager
    def _writer(self, lock: str | None = None) -> Iterator[Connection]:
        with self._engine.connect() as conn:
            conn.execution_options(sqlite_begin="IMMEDIATE")
            with conn.begin():
                if lock is not None and self._engine.dialect.name == "postgresql":
                    key = int.from_bytes(hashlib.sha256(lock.encode()).digest()[:8], "big", signed=True)
                    conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})
                yield conn


def _to_job(row: sa.RowMapping) -> Job:
    return Job(
        job_id=row["job_id"],
        tenant_id=row["tenant_id"],
        kind=row["kind"],
        status=row["status"],
        run_id=row["run_id"],
        progress=float(row["progress"]),
        message=row["message"],
        parameters=dict(row["parameters"] or {}),
        created_at=_utc(row["created_at"]),
        updated_at=_utc(row["updated_at"]),
        created_by=row["created_by"],
    )


def _now() -> datetime:
    return datetime.now(UTC)


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
