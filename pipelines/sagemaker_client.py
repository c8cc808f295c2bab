"""Create, update, start and watch SageMaker pipelines through plain boto3.

Not through the SDK's ``Pipeline.upsert``: that one re-validates the role with IAM simulation calls
and needs the full SDK at run time. What is deployed is exactly the JSON that
:func:`pipelines.sagemaker.definition` printed, and the code archive it references is uploaded
first (content-addressed: an unchanged code base uploads nothing and keeps SageMaker's step cache).

Tenant isolation: an execution belongs to the tenant passed as its ``TenantId`` parameter; reading an
execution checks that parameter against the caller's tenant and answers "not found" otherwise.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from ordernimbus.errors import NotFoundError, OrderNimbusError
from ordernimbus.tenancy import registry_group, validate_tenant
from pipelines.definition import PipelineDef
from pipelines.local import _check_parameters
from pipelines.sagemaker_code import CodeBundle, upload_bundle
from pipelines.sagemaker_target import SageMakerTarget

TERMINAL = ("Succeeded", "Failed", "Stopped")
_MISSING = ("ResourceNotFound", "ValidationException")


class SageMakerError(OrderNimbusError):
    title = "SageMaker request failed"


@dataclass(frozen=True)
class Upserted:
    pipeline_arn: str
    created: bool
    code_uri: str
    code_uploaded: bool


@dataclass(frozen=True)
class Execution:
    arn: str
    pipeline: str
    status: str
    tenant_id: str
    parameters: dict[str, str]
    failure_reason: str | None
    steps: list[dict[str, Any]] | None  # None when the service (or moto) cannot list them


class SageMakerPipelines:
    """The control-plane calls of one target; clients are injectable for tests (moto)."""

    def __init__(self, target: SageMakerTarget, sagemaker: Any = None, s3: Any = None) -> None:
        if target.placeholders:
            raise SageMakerError(
                "a placeholder target is for the CDK stacks; give a role ARN and bucket to upsert"
            )
        if sagemaker is None or s3 is None:
            import boto3

            sagemaker = sagemaker or boto3.client("sagemaker", region_name=target.region)
            s3 = s3 or boto3.client("s3", region_name=target.region)
        self.target, self._sm, self._s3 = target, sagemaker, s3

    def upsert(self, name: str, body: str, code: CodeBundle, description: str = "") -> Upserted:
        """Upload the code archive if absent, then create the pipeline or update its definition."""
        uploaded = self._call(upload_bundle, code, self.target.bucket, self.target.prefix, self._s3)
        request = {
            "PipelineName": name,
            "PipelineDefinition": body,
            "RoleArn": self.target.role_arn,
            "PipelineDescription": description[:3072],
        }
        exists = self._describe(name) is not None
        if exists:
            arn = self._call(self._sm.update_pipeline, **request)["PipelineArn"]
        else:
            tags = [{"Key": "ordernimbus:pipeline", "Value": name}]
            arn = self._call(self._sm.create_pipeline, **request, PipelineDisplayName=name[:256], Tags=tags)[
                "PipelineArn"
            ]
        return Upserted(arn, not exists, code.uri(self.target.bucket, self.target.prefix), uploaded)

    def start(self, name: str, pipeline: PipelineDef, tenant: str, parameters: dict[str, Any]) -> Execution:
        """Start an execution for ``tenant`` with every parameter explicit (the record shows them all)."""
        validate_tenant(tenant)
        if self._describe(name) is None:
            raise NotFoundError(
                f"no SageMaker pipeline {name!r} in {self.target.region}: run `pipeline upsert` first"
            )
        params: dict[str, Any] = {p.name: p.default for p in pipeline.parameters}
        params.update({k: v for k, v in parameters.items() if v is not None})
        params["TenantId"] = tenant
        _check_parameters(pipeline, params)
        empty = sorted({i.source[6:] for st in pipeline.steps for i in st.inputs
                        if i.source.startswith("param:") and not str(params[i.source[6:]])})  # fmt: skip
        if empty:
            raise OrderNimbusError(f"parameters {empty} name the data the pipeline reads and are empty: pass "
                                   f"--param {empty[0]}=s3://... (the tenant's folder)")  # fmt: skip
        if pipeline.condition is not None or any(s.kind == "register" for s in pipeline.steps):
            self._ensure_group(tenant)
        values = [{"Name": k, "Value": str(v)} for k, v in params.items()]
        arn = self._call(
            self._sm.start_pipeline_execution,
            PipelineName=name,
            PipelineParameters=values,
            PipelineExecutionDisplayName=f"{tenant}-{int(time.time())}",
        )["PipelineExecutionArn"]
        return self.execution(arn, tenant)

    def execution(self, arn: str, tenant: str) -> Execution:
        """One execution of ``tenant`` (another tenant's execution is reported as not found)."""
        from botocore.exceptions import ClientError

        try:
            described = self._sm.describe_pipeline_execution(PipelineExecutionArn=arn)
            listed = self._sm.list_pipeline_parameters_for_execution(PipelineExecutionArn=arn)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in _MISSING:
                raise NotFoundError(f"no pipeline execution {arn!r}") from None
            raise SageMakerError(f"describe {arn}: {exc}") from None
        params = {p["Name"]: p["Value"] for p in listed.get("PipelineParameters", [])}
        if params.get("TenantId") != tenant:
            raise NotFoundError(f"no pipeline execution {arn!r} for tenant {tenant!r}")
        return Execution(
            arn,
            arn.split(":pipeline/", 1)[-1].split("/", 1)[0],
            described["PipelineExecutionStatus"],
            tenant,
            params,
            described.get("FailureReason") or None,
            self._steps(arn),
        )

    def wait(
        self,
        arn: str,
        tenant: str,
        poll_seconds: float = 30.0,
        timeout_seconds: float = 86400.0,
        on_poll: Any = None,
    ) -> Execution:
        deadline = time.monotonic() + timeout_seconds
        while True:
            execution = self.execution(arn, tenant)
            if on_poll:
                on_poll(execution)
            if execution.status in TERMINAL or time.monotonic() > deadline:
                return execution
            time.sleep(poll_seconds)

    # --- internals -------------------------------------------------------------------------
    def _describe(self, name: str) -> dict[str, Any] | None:
        from botocore.exceptions import ClientError

        try:
            described: dict[str, Any] = self._sm.describe_pipeline(PipelineName=name)
            return described
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in _MISSING:
                return None
            raise SageMakerError(f"describe pipeline {name}: {exc}") from None

    def _steps(self, arn: str) -> list[dict[str, Any]] | None:
        from botocore.exceptions import ClientError

        try:
            pages = self._sm.get_paginator("list_pipeline_execution_steps").paginate(PipelineExecutionArn=arn)
            return [step for page in pages for step in page.get("PipelineExecutionSteps", [])]
        except (NotImplementedError, ClientError):  # moto 5.2.5 does not implement it
            return None

    def _ensure_group(self, tenant: str) -> None:
        """The RegisterModel step needs the tenant's ModelPackageGroup; create it on first use."""
        from botocore.exceptions import ClientError

        group = registry_group(tenant)
        try:
            self._sm.describe_model_package_group(ModelPackageGroupName=group)
        except ClientError:
            self._call(
                self._sm.create_model_package_group,
                ModelPackageGroupName=group,
                ModelPackageGroupDescription=f"OrderNimbus forecasters of tenant {tenant}",
            )

    @staticmethod
    def _call(fn: Any, *args: Any, **kwargs: Any) -> Any:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return fn(*args, **kwargs)
        except ClientError as exc:
            error = exc.response.get("Error", {})
            raise SageMakerError(
                f"{exc.operation_name}: {error.get('Code')}: {error.get('Message')}"
            ) from None
        except BotoCoreError as exc:
            raise SageMakerError(f"AWS call failed: {exc}") from None
