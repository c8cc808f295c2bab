"""The SQLite registry under real concurrency: several OS processes on one database file."""

from __future__ import annotations

import multiprocessing as mp
from pathlib import Path
from typing import Any

import pytest

from models.registry.base import APPROVED
from models.registry.local import LocalRegistry

pytestmark = pytest.mark.integration

METRICS: dict[str, Any] = {"ensemble": {"wape": 0.2}, "gate": {"passed": True}}


def _register_many(url: str, tenant: str, count: int, barrier: Any) -> None:
    registry = LocalRegistry(url)  # every worker may be the first to migrate the fresh file
    barrier.wait(timeout=60)
    for i in range(count):
        registry.register(tenant, f"s3://b/{tenant}/{i}.tar.gz", METRICS, {"worker": str(i)}, True)
    registry.close()


def _approve(url: str, version: int, barrier: Any) -> None:
    registry = LocalRegistry(url)
    barrier.wait(timeout=60)
    registry.approve("acme", version, f"approver-{version}", f"ship v{version}")
    registry.close()


def _run(target: Any, args_list: list[tuple[Any, ...]]) -> None:
    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(len(args_list))
    procs = [ctx.Process(target=target, args=(*args, barrier)) for args in args_list]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(timeout=120)
    assert [proc.exitcode for proc in procs] == [0] * len(procs)


def test_concurrent_processes_get_unique_gapless_versions(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'fresh' / 'registry.db'}"
    _run(_register_many, [(url, "acme", 6), (url, "acme", 6), (url, "globex", 6), (url, "acme", 6)])
    registry = LocalRegistry(url)
    assert [v.version for v in registry.list_versions("acme")] == list(range(1, 19))
    assert [v.version for v in registry.list_versions("globex")] == list(range(1, 7))
    assert len(registry.audit_log("acme")) == 18
    with registry._reader.connect() as conn:  # the schema was migrated exactly once
        rows = conn.exec_driver_sql("SELECT version FROM registry_schema ORDER BY version").fetchall()
    assert [r[0] for r in rows] == [1, 2]


def test_two_processes_approving_different_versions(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'registry.db'}"
    registry = LocalRegistry(url)
    for i in range(3):
        registry.register("acme", f"s3://b/{i}", METRICS, {}, True)
    _run(_approve, [(url, 2), (url, 3)])
    two, three = registry.get("acme", 2), registry.get("acme", 3)
    assert two.status == three.status == APPROVED
    assert two.approved_at is not None
    assert three.approved_at is not None
    assert two.approved_at != three.approved_at
    later = 2 if two.approved_at > three.approved_at else 3
    serving = registry.serving_version("acme")
    assert serving is not None
    assert serving.version == later
    approvals = [e for e in registry.audit_log("acme") if e.action == "approve"]
    assert sorted(e.version for e in approvals) == [2, 3]
    assert approvals[-1].version == later  # the audit order is the commit order
