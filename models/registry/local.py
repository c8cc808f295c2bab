"""The embedded registry: SageMaker Model Registry semantics in one SQLite file.

Every write runs in a ``BEGIN IMMEDIATE`` transaction, so writers from any thread or process
take SQLite's write lock before they read what they are about to change: version numbers are
assigned without gaps or duplicates, and two approvals racing each other are applied one after
the other, each stamped with a strictly later ``approved_at``, so exactly one version serves.
Reads use plain deferred transactions and, with WAL, never wait for a writer.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Connection,
    Dialect,
    Engine,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    event,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.engine import make_url
from sqlalchemy.types import TypeDecorator

from models.registry.base import (
    APPROVED,
    PENDING,
    REJECTED,
    ApprovalStatus,
    AuditEntry,
    ModelVersion,
    RegistryError,
    VersionNotFound,
    check_decision,
    check_json_object,
    check_registration,
)
from models.registry.migrations import upgrade
from ordernimbus.tenancy import registry_group, validate_tenant

_TS_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"
_READ_OPTION = "ordernimbus_read_only"


class UTCTimestamp(TypeDecorator[datetime]):
    """Aware UTC datetimes stored as fixed-width ISO text, so text order is time order."""

    impl = String(32)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> str | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise RegistryError(f"timestamp {value!r} has no time zone; the registry stores UTC")
        return value.astimezone(UTC).strftime(_TS_FORMAT)

    def process_result_value(self, value: str | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return datetime.strptime(value, _TS_FORMAT).replace(tzinfo=UTC)


metadata = MetaData()

versions_table = Table(
    "registry_versions",
    metadata,
    Column("tenant_id", String(63), primary_key=True),
    Column("group_name", String(75), nullable=False),
    Column("version", Integer, primary_key=True),
    Column("status", String(32), nullable=False),
    Column("artifact_uri", Text, nullable=False),
    Column("metrics", JSON, nullable=False),
    Column("lineage", JSON, nullable=False),
    Column("inference_spec", JSON, nullable=False),
    Column("gate_passed", Boolean, nullable=False),
    Column("created_at", UTCTimestamp, nullable=False),
    Column("created_by", String(255), nullable=False),
    Column("approved_at", UTCTimestamp),
    Column("decided_by", String(255)),
    Column("reason", Text),
    Column("override", Boolean, nullable=False),
)

audit_table = Table(
    "registry_audit",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("tenant_id", String(63), nullable=False),
    Column("at", UTCTimestamp, nullable=False),
    Column("actor", String(255), nullable=False),
    Column("action", String(32), nullable=False),
    Column("version", Integer),
    Column("detail", JSON, nullable=False),
)


def _sqlite_engine(url: str) -> Engine:
    """An engine whose transactions begin IMMEDIATE unless opened with the read-only option.

    pysqlite's own transaction handling is switched off (``isolation_level = None``) so the
    BEGIN we emit is the one that counts; this is SQLAlchemy's documented recipe for SQLite.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        raise RegistryError(f"registry url {url!r}: the local registry needs sqlite:////abs/path/registry.db")
    database = parsed.database
    if not database or database == ":memory:" or database.startswith("file::memory:"):
        raise RegistryError(
            f"registry url {url!r}: the local registry needs a database file (sqlite:////abs/path/"
            "registry.db) so that every process sees the same versions"
        )
    Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"timeout": 60})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=60000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        read_only = conn.get_execution_options().get(_READ_OPTION, False)
        conn.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")

    return engine


def _now() -> datetime:
    return datetime.now(UTC)


class LocalRegistry:
    """The ModelRegistry port on SQLite (``sqlite:////abs/registry.db``)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._engine = _sqlite_engine(url)
        self._reader = self._engine.execution_options(**{_READ_OPTION: True})
        with self._engine.begin() as conn:
            upgrade(conn)

    def close(self) -> None:
        self._engine.dispose()

    def register(  # noqa: PLR0917 - the port's signature
        self,
        tenant: str,
        artifact_uri: str,
        metrics: dict[str, Any],
        lineage: dict[str, Any],
        gate_passed: bool,
        created_by: str = "pipeline",
        inference_spec: dict[str, Any] | None = None,
    ) -> ModelVersion:
        group = registry_group(tenant)
        spec = inference_spec or {}
        check_registration(artifact_uri, metrics, lineage, gate_passed, created_by)
        check_json_object("inference_spec", spec)
        at = _now()
        with self._engine.begin() as conn:
            last = conn.execute(
                select(func.max(versions_table.c.version)).where(versions_table.c.tenant_id == tenant)
            ).scalar()
            version = int(last or 0) + 1
            conn.execute(
                insert(versions_table).values(
                    tenant_id=tenant,
                    group_name=group,
                    version=version,
                    status=PENDING,
                    artifact_uri=artifact_uri,
                    metrics=metrics,
                    lineage=lineage,
                    inference_spec=spec,
                    gate_passed=gate_passed,
                    created_at=at,
                    created_by=created_by,
                    override=False,
                )
            )
            detail = {"artifact_uri": artifact_uri, "gate_passed": gate_passed, "status": PENDING}
            self._append_audit(conn, AuditEntry(tenant, at, created_by, "register", version, detail))
            return self._load(conn, tenant, version)

    def list_versions(self, tenant: str) -> list[ModelVersion]:
        validate_tenant(tenant)
        with self._reader.begin() as conn:
            rows = conn.execute(
                select(versions_table)
                .where(versions_table.c.tenant_id == tenant)
                .order_by(versions_table.c.version)
            ).mappings()
            return [_to_version(row) for row in rows]

    def get(self, tenant: str, version: int) -> ModelVersion:
        validate_tenant(tenant)
        with self._reader.begin() as conn:
            return self._load(conn, tenant, version)

    def approve(
        self, tenant: str, version: int, actor: str, reason: str, override: bool = False
    ) -> ModelVersion:
        return self._decide(tenant, version, APPROVED, actor=actor, reason=reason, override=override)

    def reject(self, tenant: str, version: int, actor: str, reason: str) -> ModelVersion:
        return self._decide(tenant, version, REJECTED, actor=actor, reason=reason, override=False)

    def serving_version(self, tenant: str) -> ModelVersion | None:
        validate_tenant(tenant)
        t = versions_table.c
        with self._reader.begin() as conn:
            row = (
                conn.execute(
                    select(versions_table)
                    .where(t.tenant_id == tenant, t.status == APPROVED)
                    .order_by(t.approved_at.desc(), t.version.desc())
                    .limit(1)
                )
                .mappings()
                .first()
            )
            return _to_version(row) if row is not None else None

    def audit_log(self, tenant: str) -> list[AuditEntry]:
        validate_tenant(tenant)
        with self._reader.begin() as conn:
            rows = conn.execute(
                select(audit_table).where(audit_table.c.tenant_id == tenant).order_by(audit_table.c.id)
            ).mappings()
            return [
                AuditEntry(
                    tenant_id=row["tenant_id"],
                    at=row["at"],
                    actor=row["actor"],
                    action=row["action"],
                    version=row["version"],
                    detail=row["detail"],
                )
                for row in rows
            ]

    def _decide(
        self, tenant: str, version: int, target: ApprovalStatus, *, actor: str, reason: str, override: bool
    ) -> ModelVersion:
        validate_tenant(tenant)
        with self._engine.begin() as conn:
            current = self._load(conn, tenant, version)
            overrides = check_decision(current, target, actor, reason, override)
            at = _now()
            approved_at: datetime | None = None
            if target == APPROVED:
                approved_at = self._next_approval_time(conn, tenant, at)
            t = versions_table.c
            conn.execute(
                update(versions_table)
                .where(t.tenant_id == tenant, t.version == version)
                .values(
                    status=target,
                    approved_at=approved_at,
                    decided_by=actor,
                    reason=reason,
                    override=bool(overrides),
                )
            )
            action = "approve" if target == APPROVED else "reject"
            detail = {
                "reason": reason,
                "override": bool(overrides),
                "overrides": overrides,
                "from_status": current.status,
                "to_status": target,
            }
            self._append_audit(conn, AuditEntry(tenant, approved_at or at, actor, action, version, detail))
            return self._load(conn, tenant, version)

    @staticmethod
    def _next_approval_time(conn: Connection, tenant: str, now: datetime) -> datetime:
        """``now``, or just after the latest approval if the clock has not moved past it.

        Approvals are serialised by the write lock, so stamping each strictly after the
        previous one makes "most recently approved" a total order even on a coarse clock.
        """
        t = versions_table.c
        latest = conn.execute(
            select(func.max(t.approved_at)).where(t.tenant_id == tenant, t.approved_at.is_not(None))
        ).scalar()
        if latest is None:
            return now
        previous = latest if isinstance(latest, datetime) else datetime.strptime(latest, _TS_FORMAT)
        previous = previous.replace(tzinfo=UTC)
        return max(now, previous + timedelta(microseconds=1))

    @staticmethod
    def _load(conn: Connection, tenant: str, version: int) -> ModelVersion:
        if not isinstance(version, int) or isinstance(version, bool):
            raise RegistryError(f"version must be an integer, got {version!r}")
        row = (
            conn.execute(
                select(versions_table).where(
                    versions_table.c.tenant_id == tenant, versions_table.c.version == version
                )
            )
            .mappings()
            .first()
        )
        if row is None:
            raise VersionNotFound(
                f"tenant {tenant!r} has no model version {version} (group {registry_group(tenant)})"
            )
        return _to_version(row)

    @staticmethod
    def _append_audit(conn: Connection, entry: AuditEntry) -> None:
        conn.execute(
            insert(audit_table).values(
                tenant_id=entry.tenant_id,
                at=entry.at,
                actor=entry.actor,
                action=entry.action,
                version=entry.version,
                detail=entry.detail,
            )
        )


def _to_version(row: Any) -> ModelVersion:
    return ModelVersion(
        tenant_id=row["tenant_id"],
        group=row["group_name"],
        version=row["version"],
        status=row["status"],
        artifact_uri=row["artifact_uri"],
        metrics=row["metrics"],
        lineage=row["lineage"],
        gate_passed=bool(row["gate_passed"]),
        created_at=row["created_at"],
        created_by=row["created_by"],
        approved_at=row["approved_at"],
        decided_by=row["decided_by"],
        reason=row["reason"],
        override=bool(row["override"]),
        inference_spec=row["inference_spec"],
    )
