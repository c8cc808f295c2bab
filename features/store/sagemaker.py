"""The feature store port on Amazon SageMaker Feature Store (boto3).

* One feature group per tenant and declared group (``ordernimbus-<tenant>-sales-daily``), created
  from the declaration in ``features.store.groups`` with an online store and an offline store on
  S3 whose Glue table SageMaker creates (``DataCatalogConfig``). Per-tenant groups keep tenants
  apart by resource ARN, so IAM can fence them, and the record identifier carries the tenant too.
* The request is checked against botocore's model of ``CreateFeatureGroup`` before it is sent
  (``features.store.aws_shapes``); new covariates are appended with ``UpdateFeatureGroup``.
* Records go in with ``PutRecord`` (online + offline) and come out with ``GetRecord``; bulk history
  of large tenants goes through Spark (``features.store.spark``).
* Training sets read the offline store's Parquet directly from S3 (the layout SageMaker writes:
  ``.../year=/month=/day=/hour=/``), keep the newest write of each (record, event time), drop
  deleted records and run the same as-of join as the embedded store.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pandas as pd

from features.store.aws_shapes import check_request
from features.store.base import FeatureGroupNotFoundError, FeatureStoreError, WriteResult
from features.store.groups import EVENT_FORMAT, GROUPS, FeatureGroup, FeatureType, record_id, to_records
from features.store.join import as_of_join
from ordernimbus.tenancy import validate_tenant

PREFIX = "ordernimbus"
NAME_MAX = 64
GLUE_DATABASE = "sagemaker_featurestore"
WRITERS = 8  # concurrent PutRecord calls


def feature_group_name(tenant: str, group: str) -> str:
    """``ordernimbus-<tenant>-<group>``; a long tenant id is shortened with a hash to fit 64 characters."""
    name = f"{PREFIX}-{validate_tenant(tenant)}-{group}"
    if len(name) <= NAME_MAX:
        return name
    digest = hashlib.sha256(tenant.encode()).hexdigest()[:8]
    room = NAME_MAX - len(f"{PREFIX}--{digest}-{group}")
    return f"{PREFIX}-{tenant[:room].rstrip('-')}-{digest}-{group}"


class SageMakerFeatureStore:
    def __init__(
        self, region: str, role_arn: str, offline_uri: str, clients: dict[str, Any] | None = None
    ) -> None:
        if not offline_uri.startswith("s3://"):
            raise FeatureStoreError(f"the SageMaker offline store lives on S3, not {offline_uri!r}")
        self.role_arn = role_arn
        self.offline_uri = offline_uri.rstrip("/")
        if clients is None:
            import boto3

            clients = {
                name: boto3.client(name, region_name=region)
                for name in ("sagemaker", "sagemaker-featurestore-runtime", "s3")
            }
        self.sm = clients["sagemaker"]
        self.runtime = clients["sagemaker-featurestore-runtime"]
        self.s3 = clients["s3"]

    # --- groups ------------------------------------------------------------------------------
    def create_request(self, tenant: str, group: FeatureGroup) -> dict[str, Any]:
        """The ``CreateFeatureGroup`` parameters for the tenant's group (checked against the API shape)."""
        name = feature_group_name(tenant, group.name)
        request = {
            "FeatureGroupName": name,
            "RecordIdentifierFeatureName": group.record_identifier,
            "EventTimeFeatureName": group.event_time,
            "FeatureDefinitions": [{"FeatureName": f.name, "FeatureType": f.type} for f in group.features],
            "OnlineStoreConfig": {"EnableOnlineStore": True},
            "OfflineStoreConfig": {
                "S3StorageConfig": {"S3Uri": self.offline_uri},
                "DisableGlueTableCreation": False,
                "DataCatalogConfig": {
                    "TableName": name.replace("-", "_"),
                    "Catalog": "AwsDataCatalog",
                    "Database": GLUE_DATABASE,
                },
                "TableFormat": "Glue",
            },
            "RoleArn": self.role_arn,
            "Description": group.description[:128],
            "Tags": [
                {"Key": "ordernimbus:tenant", "Value": tenant},
                {"Key": "ordernimbus:group", "Value": group.name},
            ],
        }
        check_request("sagemaker", "CreateFeatureGroup", request)
        return request

    def describe(self, tenant: str, group: str) -> dict[str, Any] | None:
        try:
            found: dict[str, Any] = self.sm.describe_feature_group(
                FeatureGroupName=feature_group_name(tenant, group)
            )
        except self.sm.exceptions.ResourceNotFound:
            return None
        except KeyError:  # moto 5.2.5 lets its own lookup error escape where AWS answers ResourceNotFound
            return None
        return found

    def ensure_group(self, tenant: str, group: FeatureGroup) -> None:
        current = self.describe(tenant, group.name)
        if current is None:
            self.sm.create_feature_group(**self.create_request(tenant, group))
            return
        stored = {d["FeatureName"]: d["FeatureType"] for d in current["FeatureDefinitions"]}
        clash = {n: (stored[n], t) for n, t in group.types.items() if n in stored and stored[n] != t}
        if clash:
            raise FeatureStoreError(
                f"feature group {current['FeatureGroupName']}: features {clash} would change "
                "type (stored, new); add a new feature instead"
            )
        added = [{"FeatureName": n, "FeatureType": t} for n, t in group.types.items() if n not in stored]
        if added:
            request = {"FeatureGroupName": current["FeatureGroupName"], "FeatureAdditions": added}
            check_request("sagemaker", "UpdateFeatureGroup", request)
            self.sm.update_feature_group(**request)

    # --- records -----------------------------------------------------------------------------
    def put_request(self, tenant: str, group: FeatureGroup, record: dict[Any, Any]) -> dict[str, Any]:
        values = [
            {"FeatureName": name, "ValueAsString": _as_string(record[name], kind)}
            for name, kind in group.types.items()
            if name in record and not _missing(record[name])
        ]
        return {"FeatureGroupName": feature_group_name(tenant, group.name), "Record": values}

    def write(self, tenant: str, group: FeatureGroup, features: pd.DataFrame) -> WriteResult:
        records = to_records(features, group, tenant)[group.names].to_dict("records")
        requests = [self.put_request(tenant, group, r) for r in records]
        with ThreadPoolExecutor(WRITERS) as pool:
            list(pool.map(lambda req: self.runtime.put_record(**req), requests))
        return WriteResult(records=len(requests), partitions=0, online=len(requests))

    def latest(self, tenant: str, group: str, store_id: str, sku: str) -> dict[str, Any] | None:
        try:
            answer = self.runtime.get_record(
                FeatureGroupName=feature_group_name(tenant, group),
                RecordIdentifierValueAsString=record_id(tenant, store_id, sku),
            )
        except self.runtime.exceptions.ResourceNotFound:
            return None
        if not answer.get("Record"):
            return None
        types = self._types(tenant, group)
        record = {
            v["FeatureName"]: _parse(v["ValueAsString"], types.get(v["FeatureName"], "String"))
            for v in answer["Record"]
        }
        if record.get("tenant_id") != tenant:
            raise FeatureStoreError(f"record {record.get('record_id')!r} does not belong to tenant {tenant}")
        return {name: record.get(name) for name in types}

    def find_latest(self, tenant: str, sku: str, store_id: str | None = None) -> list[dict[str, Any]]:
        if store_id is None:
            raise FeatureStoreError(
                "the SageMaker online store is keyed by series: pass --store as well as --sku"
            )
        found = []
        for group in GROUPS:
            if self.describe(tenant, group) is not None:
                record = self.latest(tenant, group, store_id, sku)
                if record is not None:
                    found.append({"feature_group": group, **record})
        return found

    def _types(self, tenant: str, group: str) -> dict[str, FeatureType]:
        current = self.describe(tenant, group)
        if current is None:
            raise FeatureGroupNotFoundError(f"tenant {tenant} has no feature group {group!r} in SageMaker")
        return {d["FeatureName"]: d["FeatureType"] for d in current["FeatureDefinitions"]}

    # --- offline store -----------------------------------------------------------------------
    def read_offline(
        self,
        tenant: str,
        group: str,
        start: pd.Timestamp | None = None,
        end: pd.Timestamp | None = None,
        columns: list[str] | None = None,
    ) -> pd.DataFrame:
        current = self.describe(tenant, group)
        if current is None:
            raise FeatureGroupNotFoundError(f"tenant {tenant} has no feature group {group!r} in SageMaker")
        resolved = current["OfflineStoreConfig"]["S3StorageConfig"]["ResolvedOutputS3Uri"]
        bucket, prefix = resolved[5:].split("/", 1)
        frames = [self._read_object(bucket, key) for key in self._keys(bucket, prefix, start, end)]
        if not frames:
            return pd.DataFrame(columns=columns or ["record_id", "store_id", "sku", "date"])
        raw = pd.concat(frames, ignore_index=True)
        return _latest_versions(raw, start, end, columns)

    def _keys(
        self, bucket: str, prefix: str, start: pd.Timestamp | None, end: pd.Timestamp | None
    ) -> list[str]:
        keys = []
        for page in self.s3.get_paginator("list_objects_v2").paginate(
            Bucket=bucket, Prefix=prefix.rstrip("/") + "/"
        ):
            for obj in page.get("Contents", []):
                day = _partition_day(obj["Key"])
                if (
                    day is None
                    or (start is not None and day < start.normalize())
                    or (end is not None and day > end)
                ):
                    continue
                keys.append(obj["Key"])
        return keys

    def _read_object(self, bucket: str, key: str) -> pd.DataFrame:
        body = self.s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        return pd.read_parquet(io.BytesIO(body))

    def as_of_join(
        self,
        tenant: str,
        group: str,
        entities: pd.DataFrame,
        *,
        time_column: str = "date",
        tolerance: pd.Timedelta | None = None,
        columns: list[str] | None = None,
    ) -> pd.DataFrame:
        return as_of_join(
            self, tenant, group, entities, time_column=time_column, tolerance=tolerance, columns=columns
        )

    # --- state -------------------------------------------------------------------------------
    def _state_key(self, tenant: str, group: str) -> tuple[str, str]:
        bucket, _, prefix = self.offline_uri[5:].partition("/")
        return bucket, f"{prefix}/_ordernimbus_state/{validate_tenant(tenant)}/{group}.json".lstrip("/")

    def read_state(self, tenant: str, group: str) -> dict[str, Any] | None:
        bucket, key = self._state_key(tenant, group)
        try:
            body = self.s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        except self.s3.exceptions.NoSuchKey:
            return None
        state: dict[str, Any] = json.loads(body)
        return state

    def write_state(self, tenant: str, group: str, state: dict[str, Any]) -> None:
        bucket, key = self._state_key(tenant, group)
        self.s3.put_object(
            Bucket=bucket, Key=key, Body=json.dumps(state).encode(), ContentType="application/json"
        )


def _latest_versions(
    raw: pd.DataFrame, start: pd.Timestamp | None, end: pd.Timestamp | None, columns: list[str] | None
) -> pd.DataFrame:
    """SageMaker's offline store keeps every write: keep each (record, event time)'s newest, minus deletes."""
    order = [c for c in ("api_invocation_time", "write_time") if c in raw.columns]
    raw = raw.sort_values(order) if order else raw
    raw = raw.drop_duplicates(["record_id", "event_time"], keep="last")
    if "is_deleted" in raw.columns:
        raw = raw[~raw["is_deleted"].astype(bool)]
    raw = raw.assign(date=pd.to_datetime(raw["event_time"], format=EVENT_FORMAT))
    if start is not None:
        raw = raw[raw["date"] >= start]
    if end is not None:
        raw = raw[raw["date"] <= end]
    raw = raw.drop(
        columns=[c for c in ("write_time", "api_invocation_time", "is_deleted") if c in raw.columns]
    )
    if columns is not None:
        raw = raw[[c for c in dict.fromkeys([*columns, "date"]) if c in raw.columns]]
    return raw.sort_values(["store_id", "sku", "date"], ignore_index=True)


def _partition_day(key: str) -> pd.Timestamp | None:
    parts = dict(p.split("=", 1) for p in key.split("/") if p.count("=") == 1)
    if not {"year", "month", "day"} <= parts.keys():
        return None
    return pd.Timestamp(year=int(parts["year"]), month=int(parts["month"]), day=int(parts["day"]))


def _missing(value: Any) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))


def _as_string(value: Any, kind: FeatureType) -> str:
    if kind == "Integral":
        return str(int(value))
    if kind == "Fractional":
        return repr(float(value))
    return str(value)


def _parse(text: str, kind: FeatureType) -> Any:
    if kind == "Integral":
        return int(text)
    if kind == "Fractional":
        return float(text)
    return text
