"""The ModelRegistry port on SageMaker Model Registry (boto3), with the audit log and full metrics in S3.

Where things live, and why:

* Versions, approval status and the approval reason are SageMaker's own (ModelPackageGroup
  ``ordernimbus-<tenant>``, ModelPackage versions, ``ModelApprovalStatus``, ``ApprovalDescription``),
  so EventBridge rules, the console and Studio see the same state as OrderNimbus.
* CustomerMetadataProperties hold what must be cheap to read or visible in the console: gate result,
  who registered/decided, the approval time that defines the serving version, override flag, a
  compact ensemble-metrics JSON and the short lineage values. Values are strings of at most 256
  characters; anything longer is left out there (never truncated into a lie).
* The full metrics, lineage and inference spec are one JSON document per version in S3,
  referenced as ``ModelMetrics.ModelQuality.Statistics``; it is written before the package, so a
  package never points at a missing document (a failed create can leave an orphan document).
* The audit log is one small JSON object per entry under ``<prefix>/<group>/audit/`` in S3: keys
  are unique, so concurrent writers never overwrite each other (S3 has no append), and listing the
  prefix returns the entries in time order. CloudTrail remains the AWS-side record of the API calls.

The approval rules are the port's (:func:`models.registry.base.check_decision`). Unlike SQLite,
SageMaker offers no transaction: a check and its update are two calls, so two deciders racing on
the *same* version can both pass the check. Races on different versions are safe.
"""

from __future__ import annotations

import json
import math
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

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
    pick_serving,
)
from ordernimbus.tenancy import registry_group

META_VALUE_MAX = 256  # SageMaker's limit on one CustomerMetadataProperties value
META_ENTRIES_MAX = 50
_K = "ordernimbus:"
K_GATE = _K + "gate_passed"
K_CREATED_BY = _K + "created_by"
K_APPROVED_AT = _K + "approved_at"
K_DECIDED_BY = _K + "decided_by"
K_OVERRIDE = _K + "override"
K_METRICS = _K + "metrics"
K_DOCUMENT = _K + "document"
K_TENANT = _K + "tenant"
LINEAGE_PREFIX = "lineage:"
_AUDIT_TS = "%Y%m%dT%H%M%S%fZ"


def compact_metrics(metrics: dict[str, Any]) -> str:
    """The ensemble's headline metrics as JSON of at most 256 characters (4 significant digits)."""
    ensemble = metrics.get("ensemble") if isinstance(metrics.get("ensemble"), dict) else {}
    compact: dict[str, Any] = {}
    for key, value in (ensemble or {}).items():
        if isinstance(value, int | float) and not isinstance(value, bool):
            compact[key] = float(f"{value:.4g}") if math.isfinite(value) else None
    gate = metrics.get("gate")
    if isinstance(gate, dict) and gate.get("best_baseline"):
        compact["baseline"] = str(gate["best_baseline"])[:40]
    text = json.dumps(compact, separators=(",", ":"))
    while len(text) > META_VALUE_MAX and compact:
        compact.pop(next(reversed(compact)))
        text = json.dumps(compact, separators=(",", ":"))
    return text


def lineage_properties(lineage: dict[str, Any], room: int) -> dict[str, str]:
    """Short lineage values as metadata (``lineage:<key>``); long ones live only in the S3 document."""
    props: dict[str, str] = {}
    for key, value in lineage.items():
        if len(props) >= room:
            break
        text = value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))
        name = f"{LINEAGE_PREFIX}{key}"
        if len(text) <= META_VALUE_MAX and len(name) <= 128:
            props[name] = text
    return props


def inference_specification(
    spec: dict[str, Any], artifact_uri: str, default_image: str | None
) -> dict[str, Any]:
    """SageMaker's InferenceSpecification from our small spec dict (``image``, ``environment``, ...)."""
    image = spec.get("image") or default_image
    if not image:
        raise RegistryError(
            "the SageMaker registry needs the inference container image: pass inference_spec={'image': "
            "'<account>.dkr.ecr.<region>.amazonaws.com/<repo>:<tag>'} or SageMakerRegistry(default_image=...)"
        )
    container: dict[str, Any] = {"Image": str(image), "ModelDataUrl": artifact_uri}
    if spec.get("environment"):
        container["Environment"] = {str(k): str(v) for k, v in dict(spec["environment"]).items()}
    result: dict[str, Any] = {
        "Containers": [container],
        "SupportedContentTypes": list(spec.get("content_types", ["text/csv", "application/x-parquet"])),
        "SupportedResponseMIMETypes": list(spec.get("response_types", ["text/csv"])),
    }
    if spec.get("transform_instance_types"):
        result["SupportedTransformInstanceTypes"] = list(spec["transform_instance_types"])
    return result


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat(timespec="microseconds")


def _from_iso(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text).astimezone(UTC) if text else None


class SageMakerRegistry:
    """SageMaker Model Registry backend; audit entries and version documents in ``audit_bucket``."""

    def __init__(
        self,
        region: str,
        client: Any = None,
        *,
        audit_bucket: str | None = None,
        s3_client: Any = None,
        default_image: str | None = None,
        prefix: str = "registry",
    ) -> None:
        if not audit_bucket:
            raise RegistryError(
                "the SageMaker registry keeps its audit log and full metrics in S3: set "
                "ORDERNIMBUS_ARTIFACTS_BUCKET (SageMakerRegistry(audit_bucket=...))"
            )
        if client is None or s3_client is None:
            import boto3

            client = client or boto3.client("sagemaker", region_name=region)
            s3_client = s3_client or boto3.client("s3", region_name=region)
        self.region = region
        self.bucket = audit_bucket
        self.prefix = prefix.strip("/")
        self.default_image = default_image
        self._sm = client
        self._s3 = s3_client

    # -- the port ---------------------------------------------------------------------------------

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
        container_spec = inference_specification(spec, artifact_uri, self.default_image)
        self._ensure_group(tenant, group)
        document_key = f"{self.prefix}/{group}/versions/{uuid.uuid4().hex}.json"
        document = {"metrics": metrics, "lineage": lineage, "inference_spec": spec}
        self._put_json(document_key, document)
        props = {
            K_TENANT: tenant,
            K_GATE: "true" if gate_passed else "false",
            K_CREATED_BY: created_by[:META_VALUE_MAX],
            K_OVERRIDE: "false",
            K_METRICS: compact_metrics(metrics),
            K_DOCUMENT: f"s3://{self.bucket}/{document_key}",
        }
        props.update(lineage_properties(lineage, META_ENTRIES_MAX - len(props) - 3))
        arn = self._sm.create_model_package(
            ModelPackageGroupName=group,
            ModelPackageDescription=f"OrderNimbus forecaster for tenant {tenant}"[:1024],
            ModelApprovalStatus=PENDING,
            InferenceSpecification=container_spec,
            ModelMetrics={
                "ModelQuality": {
                    "Statistics": {"ContentType": "application/json", "S3Uri": props[K_DOCUMENT]}
                }
            },
            CustomerMetadataProperties=props,
        )["ModelPackageArn"]
        version = self._describe(tenant, arn)
        detail = {"artifact_uri": artifact_uri, "gate_passed": gate_passed, "status": PENDING}
        self._append_audit(
            AuditEntry(tenant, version.created_at, created_by, "register", version.version, detail)
        )
        return version

    def list_versions(self, tenant: str) -> list[ModelVersion]:
        arns = self._package_arns(tenant)
        return [self._describe(tenant, arns[n]) for n in sorted(arns)]

    def get(self, tenant: str, version: int) -> ModelVersion:
        return self._describe(tenant, self._arn(tenant, version))

    def approve(
        self, tenant: str, version: int, actor: str, reason: str, override: bool = False
    ) -> ModelVersion:
        return self._decide(tenant, version, APPROVED, actor=actor, reason=reason, override=override)

    def reject(self, tenant: str, version: int, actor: str, reason: str) -> ModelVersion:
        return self._decide(tenant, version, REJECTED, actor=actor, reason=reason, override=False)

    def serving_version(self, tenant: str) -> ModelVersion | None:
        arns = self._package_arns(tenant, status=APPROVED)
        return pick_serving([self._describe(tenant, arn) for arn in arns.values()])

    def audit_log(self, tenant: str) -> list[AuditEntry]:
        prefix = f"{self.prefix}/{registry_group(tenant)}/audit/"
        keys: list[str] = []
        for page in self._s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
            keys.extend(item["Key"] for item in page.get("Contents", []))
        entries: list[tuple[datetime, str, AuditEntry]] = []
        for key in keys:
            raw = json.loads(self._s3.get_object(Bucket=self.bucket, Key=key)["Body"].read())
            if raw.get("tenant_id") != tenant:
                raise RegistryError(f"audit object s3://{self.bucket}/{key} belongs to another tenant")
            at = datetime.fromisoformat(raw["at"])
            entry = AuditEntry(tenant, at, raw["actor"], raw["action"], raw["version"], raw["detail"])
            entries.append((at, key, entry))
        return [entry for _, _, entry in sorted(entries, key=lambda item: (item[0], item[1]))]

    # -- internals --------------------------------------------------------------------------------

    def _decide(
        self, tenant: str, version: int, target: ApprovalStatus, *, actor: str, reason: str, override: bool
    ) -> ModelVersion:
        arn = self._arn(tenant, version)
        package = self._sm.describe_model_package(ModelPackageName=arn)
        current = self._to_version(tenant, arn, package)
        overrides = check_decision(current, target, actor, reason, override)
        props = dict(package.get("CustomerMetadataProperties") or {})
        now = datetime.now(UTC)
        props[K_DECIDED_BY] = actor[:META_VALUE_MAX]
        props[K_OVERRIDE] = "true" if overrides else "false"
        remove: list[str] = []
        if target == APPROVED:
            now = self._next_approval_time(tenant, now)
            props[K_APPROVED_AT] = _iso(now)
        else:
            props.pop(K_APPROVED_AT, None)
            remove.append(K_APPROVED_AT)
        # Always resend the metadata: moto's update replaces it wholesale (real AWS merges).
        request: dict[str, Any] = {
            "ModelPackageArn": arn,
            "ModelApprovalStatus": target,
            "ApprovalDescription": reason,
            "CustomerMetadataProperties": props,
        }
        if remove:
            request["CustomerMetadataPropertiesToRemove"] = remove
        self._sm.update_model_package(**request)
        detail = {
            "reason": reason,
            "override": bool(overrides),
            "overrides": overrides,
            "from_status": current.status,
            "to_status": target,
        }
        action = "approve" if target == APPROVED else "reject"
        self._append_audit(AuditEntry(tenant, now, actor, action, version, detail))
        return self._describe(tenant, arn)

    def _next_approval_time(self, tenant: str, now: datetime) -> datetime:
        """Strictly after the group's latest approval, so serving order is total on a coarse clock."""
        times = [v.approved_at for v in self._approved(tenant) if v.approved_at is not None]
        return max([now, *(t + timedelta(microseconds=1) for t in times)])

    def _approved(self, tenant: str) -> list[ModelVersion]:
        return [self._describe(tenant, arn) for arn in self._package_arns(tenant, status=APPROVED).values()]

    def _ensure_group(self, tenant: str, group: str) -> None:
        from botocore.exceptions import ClientError

        try:
            self._sm.describe_model_package_group(ModelPackageGroupName=group)
            return
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") not in ("ValidationException", "ResourceNotFound"):
                raise
        try:
            self._sm.create_model_package_group(
                ModelPackageGroupName=group,
                ModelPackageGroupDescription=f"OrderNimbus forecasters of tenant {tenant}",
            )
        except ClientError:
            # Created meanwhile by a concurrent register: fine if it exists now.
            self._sm.describe_model_package_group(ModelPackageGroupName=group)

    def _package_arns(self, tenant: str, status: str | None = None) -> dict[int, str]:
        from botocore.exceptions import ClientError

        group = registry_group(tenant)
        query: dict[str, Any] = {"ModelPackageGroupName": group, "ModelPackageType": "Versioned"}
        if status is not None:
            query["ModelApprovalStatus"] = status
        arns: dict[int, str] = {}
        try:
            for page in self._sm.get_paginator("list_model_packages").paginate(**query):
                for summary in page.get("ModelPackageSummaryList", []):
                    if summary.get("ModelPackageGroupName", group) == group:
                        arns[int(summary["ModelPackageVersion"])] = summary["ModelPackageArn"]
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") not in ("ValidationException", "ResourceNotFound"):
                raise
        return arns

    def _arn(self, tenant: str, version: int) -> str:
        if not isinstance(version, int) or isinstance(version, bool):
            raise RegistryError(f"version must be an integer, got {version!r}")
        arn = self._package_arns(tenant).get(version)
        if arn is None:
            raise VersionNotFound(
                f"tenant {tenant!r} has no model version {version} (group {registry_group(tenant)})"
            )
        return arn

    def _describe(self, tenant: str, arn: str) -> ModelVersion:
        return self._to_version(tenant, arn, self._sm.describe_model_package(ModelPackageName=arn))

    def _to_version(self, tenant: str, arn: str, package: dict[str, Any]) -> ModelVersion:
        group = registry_group(tenant)
        if package.get("ModelPackageGroupName") != group:
            raise RegistryError(f"model package {arn} is not in group {group}")
        props: dict[str, str] = package.get("CustomerMetadataProperties") or {}
        document = self._get_document(props.get(K_DOCUMENT), arn)
        containers = package.get("InferenceSpecification", {}).get("Containers", [{}])
        return ModelVersion(
            tenant_id=tenant,
            group=group,
            version=int(package["ModelPackageVersion"]),
            status=package["ModelApprovalStatus"],
            artifact_uri=containers[0].get("ModelDataUrl", ""),
            metrics=document.get("metrics", {}),
            lineage=document.get("lineage", {}),
            gate_passed=props.get(K_GATE) == "true",
            created_at=package["CreationTime"].astimezone(UTC),
            created_by=props.get(K_CREATED_BY, "unknown"),
            approved_at=_from_iso(props.get(K_APPROVED_AT)),
            decided_by=props.get(K_DECIDED_BY),
            reason=package.get("ApprovalDescription"),
            override=props.get(K_OVERRIDE) == "true",
            inference_spec=document.get("inference_spec", {}),
        )

    def _get_document(self, uri: str | None, arn: str) -> dict[str, Any]:
        expected = f"s3://{self.bucket}/"
        if not uri or not uri.startswith(expected):
            raise RegistryError(f"model package {arn} has no OrderNimbus document in s3://{self.bucket}")
        body = self._s3.get_object(Bucket=self.bucket, Key=uri[len(expected) :])["Body"].read()
        loaded: dict[str, Any] = json.loads(body)
        return loaded

    def _put_json(self, key: str, payload: dict[str, Any]) -> None:
        self._s3.put_object(
            Bucket=self.bucket,
            Key=key,
            Body=json.dumps(payload).encode(),
            ContentType="application/json",
        )

    def _append_audit(self, entry: AuditEntry) -> None:
        at = entry.at.astimezone(UTC)
        key = (
            f"{self.prefix}/{registry_group(entry.tenant_id)}/audit/"
            f"{at.strftime(_AUDIT_TS)}-{entry.version or 0:06d}-{uuid.uuid4().hex[:12]}.json"
        )
        payload = {
            "tenant_id": entry.tenant_id,
            "at": _iso(at),
            "actor": entry.actor,
            "action": entry.action,
            "version": entry.version,
            "detail": entry.detail,
        }
        self._put_json(key, payload)
