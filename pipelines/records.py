"""Run records of the local runner (SQLite): what ran, with which parameters, how it went."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

META = sa.MetaData()
RUNS = sa.Table(
    "runs",
    META,
    sa.Column("run_id", sa.String(64), primary_key=True),
    sa.Column("tenant_id", sa.String(63), nullable=False, index=True),
    sa.Column("pipeline", sa.String(64), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("parameters", sa.JSON, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("finished_at", sa.DateTime(timezone=True)),
    sa.Column("error", sa.Text),
)
STEPS = sa.Table(
    "run_steps",
    META,
    sa.Column("run_id", sa.String(64), sa.ForeignKey("runs.run_id"), primary_key=True),
    sa.Column("step", sa.String(64), primary_key=True),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("started_at", sa.DateTime(timezone=True)),
    sa.Column("finished_at", sa.DateTime(timezone=True)),
    sa.Column("seconds", sa.Float),
    sa.Column("cache_key", sa.String(64)),
    sa.Column("cached_from", sa.String(64)),
    sa.Column("outputs", sa.JSON),
    sa.Column("error", sa.Text),
    sa.Column("log", sa.Text),
)


@dataclass(frozen=True)
class StepRecord:
    step: str
    status: str
    attempts: int
    seconds: float | None
    cached_from: str | None
    outputs: dict[str, str]
    error: str | None
    log: str | None


@dataclass(frozen=True)
class RunRecord:
    run_id: str
    tenant_id: str
    pipeline: str
    status: str
    parameters: dict[str, Any]
    created_at: datetime
    finished_at: datetime | None
    error: str | None
    steps: list[StepRecord]

    def step(self, name: str) -> StepRecord:
        return next(s for s in self.steps if s.step == name)


class RunStore:
    def __init__(self, url: str) -> None:
        self.engine = sa.create_engine(url)
        META.create_all(self.engine)

    def create(
        self, run_id: str, tenant: str, pipeline: str, params: dict[str, Any], steps: list[str]
    ) -> None:
        now = datetime.now(UTC)
        with self.engine.begin() as conn:
            conn.execute(
                RUNS.insert().values(
                    run_id=run_id,
                    tenant_id=tenant,
                    pipeline=pipeline,
                    status="Executing",
                    parameters=params,
                    created_at=now,
                )
            )
            conn.execute(
                STEPS.insert(),
                [{"run_id": run_id, "step": s, "status": "Pending", "attempts": 0} for s in steps],
            )

    def update_run(self, run_id: str, **values: Any) -> None:
        with self.engine.begin() as conn:
            conn.execute(RUNS.update().where(RUNS.c.run_id == run_id).values(**values))

    def update_step(self, run_id: str, step: str, **values: Any) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                STEPS.update().where((STEPS.c.run_id == run_id) & (STEPS.c.step == step)).values(**values)
            )

    def get(self, run_id: str, tenant: str | None = None) -> RunRecord | None:
        with self.engine.connect() as conn:
            query = RUNS.select().where(RUNS.c.run_id == run_id)
            if tenant is not None:
                query = query.where(RUNS.c.tenant_id == tenant)
            run = conn.execute(query).mappings().first()
            if run is None:
                return None
            steps = conn.execute(STEPS.select().where(STEPS.c.run_id == run_id)).mappings().all()
        return RunRecord(
            run["run_id"],
            run["tenant_id"],
            run["pipeline"],
            run["status"],
            run["parameters"],
            run["created_at"],
            run["finished_at"],
            run["error"],
            [
                StepRecord(
                    s["step"],
                    s["status"],
                    s["attempts"],
                    s["seconds"],
                    s["cached_from"],
                    s["outputs"] or {},
                    s["error"],
                    s["log"],
                )
                for s in steps
            ],
        )

    def list(self, tenant: str, limit: int = 20) -> list[RunRecord]:
        with self.engine.connect() as conn:
            ids = (
                conn.execute(
                    sa.select(RUNS.c.run_id)
                    .where(RUNS.c.tenant_id == tenant)
                    .order_by(RUNS.c.created_at.desc())
                    .limit(limit)
                )
                .scalars()
                .all()
            )
        return [r for r in (self.get(i) for i in ids) if r is not None]

    def cached(self, key: str) -> StepRecord | None:
        """The latest succeeded, non-cached execution of a step with this cache key."""
        with self.engine.connect() as conn:
            row = (
                conn.execute(
                    STEPS.select()
                    .where(
                        (STEPS.c.cache_key == key)
                        & (STEPS.c.status == "Succeeded")
                        & STEPS.c.cached_from.is_(None)
                    )
                    .order_by(STEPS.c.finished_at.desc())
                )
                .mappings()
                .first()
            )
        if row is None:
            return None
        return StepRecord(
            row["step"],
            row["status"],
            row["attempts"],
            row["seconds"],
            row["run_id"],
            row["outputs"] or {},
            None,
            row["log"],
        )


def dumps(value: Any) -> str:
    return json.dumps(value, default=str)
