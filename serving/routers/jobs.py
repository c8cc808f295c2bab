"""Long work started through the API: ``POST /forecasts/generate`` returns a job; ``/jobs/{id}`` tracks it.

The job is created (and a second concurrent one refused with 409) before the work starts, so the
client always gets an id it can poll. Starting a forecast needs an approved model version: without
one the request fails at once with 409 instead of producing a job that can only fail.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response, status

from ordernimbus.errors import ConflictError
from serving.auth import Principal
from serving.deps import CurrentPrincipal, Jobs, Registry, ServicesDep, require_role
from serving.params import ID_PATH
from serving.schemas_ops import GenerateCreate, JobPublic

router = APIRouter(tags=["jobs"])
Operator = Annotated[Principal, Depends(require_role("admin", "approver", "analyst"))]
JobId = Annotated[str, ID_PATH]


@router.post(
    "/forecasts/generate",
    response_model=JobPublic,
    status_code=status.HTTP_202_ACCEPTED,
    responses={409: {"description": "no approved version, or a forecast job is already running"}},
)
def generate_forecasts(
    caller: Operator,
    svc: ServicesDep,
    registry: Registry,
    response: Response,
    body: GenerateCreate | None = None,
) -> JobPublic:
    """Start the forecast pipeline with the serving (latest approved) version; poll the job."""
    if registry.serving_version(caller.tenant_id) is None:
        raise ConflictError(
            "this tenant has no approved model version: approve one first "
            "(POST /v1/registry/versions/N/approve)"
        )
    job = svc.runner().submit_forecast(caller.tenant_id, body.horizon if body else None, caller.who)
    response.headers["Location"] = f"/v1/jobs/{job.job_id}"
    return JobPublic.of(job)


@router.get("/jobs/{job_id}", response_model=JobPublic)
def get_job(job_id: JobId, caller: CurrentPrincipal, jobs: Jobs) -> JobPublic:
    """A job's status and progress; another tenant's job id is reported as not found."""
    return JobPublic.of(jobs.get(caller.tenant_id, job_id))


@router.get("/jobs", response_model=list[JobPublic])
def list_jobs(
    caller: CurrentPrincipal, jobs: Jobs, limit: Annotated[int, Query(ge=1, le=100)] = 20
) -> list[JobPublic]:
    """The tenant's newest jobs first."""
    return [JobPublic.of(job) for job in jobs.list(caller.tenant_id, limit)]
