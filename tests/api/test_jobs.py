"""Jobs: one active forecast job per tenant, heartbeats, stale jobs reported failed, tenant scoping;
and (e2e) a real forecast pipeline started through the API, from approval and from generate."""

from __future__ import annotations

import threading
import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from realcuts import store_item_cut
from serving_world import assert_problem

from inference.store.jobs import JobConflictError, JobError, JobNotFoundError, JobStore
from ordernimbus.service import run_build
from ordernimbus.settings import Settings
from serving.app import create_app
from serving.auth import ApiKeyStore


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return (
        f"sqlite:///{tmp_path / 'jobs.db'}"
        if request.param == "sqlite"
        else request.getfixturevalue("pg_url")
    )


def test_one_active_job_per_tenant_and_kind(db: str) -> None:
    jobs = JobStore(db)
    tenant, other = f"t-{uuid.uuid4().hex[:8]}", f"u-{uuid.uuid4().hex[:8]}"
    first = jobs.create(tenant, "forecast", {"horizon": 7}, "key:abc")
    assert (first.status, first.progress, first.parameters) == ("queued", 0.0, {"horizon": 7})
    with pytest.raises(JobConflictError) as refused:
        jobs.create(tenant, "forecast", {}, "key:abc")
    assert refused.value.job_id == first.job_id
    assert jobs.create(other, "forecast", {}, None).tenant_id == other  # other tenants are independent
    assert jobs.create(tenant, "build", {}, None).kind == "build"  # other kinds too
    done = jobs.update(tenant, first.job_id, status="succeeded", progress=1.0, run_id="run-1", message="ok")
    assert (done.status, done.progress, done.run_id) == ("succeeded", 1.0, "run-1")
    reopened = jobs.update(tenant, first.job_id, status="running", progress=0.2)
    assert reopened.status == "succeeded"
    assert reopened.progress == 1.0
    assert jobs.create(tenant, "forecast", {}, None).status == "queued"
    with pytest.raises(JobError):
        jobs.create(tenant, "forecast", {"bad": object()}, None)
    jobs.close()


def test_jobs_are_invisible_to_other_tenants(db: str) -> None:
    jobs = JobStore(db)
    mine = jobs.create("tenant-a1", "forecast", {}, None)
    with pytest.raises(JobNotFoundError):
        jobs.get("tenant-b1", mine.job_id)
    with pytest.raises(JobNotFoundError):
        jobs.update("tenant-b1", mine.job_id, status="failed")
    assert jobs.get("tenant-a1", mine.job_id).status == "queued"
    assert [j.job_id for j in jobs.list("tenant-b1")] == []
    jobs.close()


def test_a_job_without_heartbeat_is_reported_failed(db: str) -> None:
    jobs = JobStore(db, stale_after=timedelta(seconds=1))
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    job = jobs.create(tenant, "forecast", {}, None)
    jobs.update(tenant, job.job_id, status="running", run_id="run-9")
    time.sleep(1.3)
    lost = jobs.get(tenant, job.job_id)
    assert lost.status == "failed"
    assert "no heartbeat" in (lost.message or "")
    assert "pipeline resume" in (lost.message or "")
    assert jobs.create(tenant, "forecast", {}, None).status == "queued"  # the dead job blocks nothing


def test_concurrent_creates_start_exactly_one_job(db: str) -> None:
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    stores = [JobStore(db) for _ in range(6)]  # separate engines: separate connections
    barrier = threading.Barrier(len(stores))
    outcomes: list[str] = []

    def attempt(store: JobStore) -> None:
        barrier.wait()
        try:
            outcomes.append(store.create(tenant, "forecast", {}, None).job_id)
        except JobConflictError as exc:
            outcomes.append(f"conflict:{exc.job_id}")

    threads = [threading.Thread(target=attempt, args=(s,)) for s in stores]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    created = [o for o in outcomes if not o.startswith("conflict:")]
    assert len(created) == 1
    assert all(o == f"conflict:{created[0]}" for o in outcomes if o.startswith("conflict:"))
    for s in stores:
        s.close()


def wait_for(client: TestClient, key: str, job_id: str, timeout: float = 600) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    seen = []
    while time.monotonic() < deadline:
        body = client.get(f"/v1/jobs/{job_id}", headers={"X-API-Key": key}).json()
        seen.append(body["progress"])
        if body["status"] in ("succeeded", "failed"):
            body["_progress_seen"] = seen
            return dict(body)
        time.sleep(0.5)
    raise AssertionError(f"job {job_id} did not end within {timeout} s")


@pytest.mark.e2e
def test_approval_and_generate_run_the_forecast_pipeline(home: Settings, tmp_path: Path) -> None:
    """Upload through the API, build, approve through the API (which forecasts), then generate."""
    keys = ApiKeyStore(home.db_url)
    admin, approver = keys.create("shop-e2e", "admin")[1], keys.create("shop-e2e", "approver")[1]
    sales = store_item_cut(stores=1, items=2, since="2016-06-01")
    csv = sales.rename(columns={"sku": "item_id"}).to_csv(index=False).encode()
    with TestClient(create_app(home), raise_server_exceptions=False) as client:
        uploaded = client.post(
            "/v1/uploads", headers={"X-API-Key": admin}, files={"file": ("sales.csv", csv)}
        )
        assert uploaded.status_code == 201, uploaded.text
        assert_problem(
            client.post("/v1/forecasts/generate", headers={"X-API-Key": admin}), 409
        )  # nothing approved
        run = run_build(
            home,
            "shop-e2e",
            until="2017-11-30",
            horizon=7,
            extra={"BoostingRounds": 15, "BacktestWindows": 2, "DeepAREpochs": 1},
        )
        assert run.status == "Succeeded", run.error

        approved = client.post(
            "/v1/registry/versions/1/approve", headers={"X-API-Key": approver},
            json={"reason": "e2e: reviewed the card", "override": True},
        )  # fmt: skip
        assert approved.status_code == 200, approved.text
        job = approved.json()["job"]
        assert job is not None
        assert job["status"] in ("queued", "running")
        finished = wait_for(client, admin, job["job_id"])
        assert finished["status"] == "succeeded", finished["message"]
        assert finished["progress"] == 1.0
        assert finished["run_id"]
        assert finished["created_by"] == f"key:{approver.split('_')[1]}"
        progress = finished["_progress_seen"]
        assert progress == sorted(progress)  # progress only moves forward
        explained = client.get("/v1/explanations?store_id=1&sku=1", headers={"X-API-Key": admin})
        assert explained.status_code == 200, explained.text  # explain.json of the real XGBoost member
        assert explained.json()["model_version"] == 1
        assert explained.json()["scope"] == "series"
        assert explained.json()["drivers"]
        assert all(d["label"] for d in explained.json()["drivers"])
        current = client.get("/v1/forecasts/current", headers={"X-API-Key": admin}).json()
        assert current["model_version"] == 1
        assert current["series"] == 2

        started = client.post("/v1/forecasts/generate", headers={"X-API-Key": admin}, json={"horizon": 5})
        assert started.status_code == 202, started.text
        assert started.headers["location"] == f"/v1/jobs/{started.json()['job_id']}"
        busy = assert_problem(client.post("/v1/forecasts/generate", headers={"X-API-Key": admin}), 409)
        assert busy["job_id"] == started.json()["job_id"]
        again = wait_for(client, admin, started.json()["job_id"])
        assert again["status"] == "succeeded", again["message"]
        newer = client.get("/v1/forecasts/current", headers={"X-API-Key": admin}).json()
        assert newer["set_id"] != current["set_id"]
        assert newer["rows"] == 2 * 5
        listed = client.get("/v1/jobs", headers={"X-API-Key": admin}).json()
        assert [j["job_id"] for j in listed] == [started.json()["job_id"], job["job_id"]]
