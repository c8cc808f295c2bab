"""Reading a tenant's sales for a check: the local lake, or the same file layout on S3.

The layout is the one :class:`features.lake.SalesLake` writes (``<root>/<tenant>/sales.parquet``
with the detected frequency in the Parquet metadata) and the pipelines' ``InputDataUri`` points
at; the monitor Lambda reads it from the lake bucket with boto3 (imported inside the adapter).
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any, Protocol

import pandas as pd

from features.frequency import FREQUENCY_KEY
from features.outages import METADATA_KEY as OUTAGES_KEY
from features.outages import Outage, loads
from ordernimbus.tenancy import validate_tenant

SALES_FILE = "sales.parquet"


class SalesReader(Protocol):
    def exists(self, tenant: str) -> bool: ...

    def read(self, tenant: str) -> pd.DataFrame: ...

    def frequency(self, tenant: str) -> str: ...

    def outages(self, tenant: str) -> list[Outage]: ...


class S3Lake:
    """``s3://bucket/prefix/<tenant>/sales.parquet``, read whole (one object per tenant)."""

    def __init__(self, root_uri: str, region: str, client: Any = None) -> None:
        import boto3

        if not root_uri.startswith("s3://"):
            raise ValueError(f"lake URI {root_uri!r} is not an s3:// URI")
        bucket, _, prefix = root_uri[len("s3://") :].partition("/")
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.client = client or boto3.client("s3", region_name=region)
        self._cache: dict[str, tuple[pd.DataFrame, str, list[Outage]]] = {}

    def key(self, tenant: str) -> str:
        parts = [p for p in (self.prefix, validate_tenant(tenant), SALES_FILE) if p]
        return "/".join(parts)

    def exists(self, tenant: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            self.client.head_object(Bucket=self.bucket, Key=self.key(tenant))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return False
            raise
        return True

    def read(self, tenant: str) -> pd.DataFrame:
        return self._load(tenant)[0]

    def frequency(self, tenant: str) -> str:
        return self._load(tenant)[1]

    def outages(self, tenant: str) -> list[Outage]:
        return self._load(tenant)[2]

    def _load(self, tenant: str) -> tuple[pd.DataFrame, str, list[Outage]]:
        if tenant not in self._cache:
            import pyarrow.parquet as pq

            body = self.client.get_object(Bucket=self.bucket, Key=self.key(tenant))["Body"].read()
            table = pq.read_table(io.BytesIO(body))
            meta = table.schema.metadata or {}
            frame = table.to_pandas().sort_values(["store_id", "sku", "date"], ignore_index=True)
            outages = loads(meta.get(OUTAGES_KEY))
            self._cache[tenant] = (frame, meta.get(FREQUENCY_KEY, b"D").decode(), outages)
        return self._cache[tenant]


def open_lake(local_root: Path, lake_root_uri: str | None, region: str) -> SalesReader:
    """The S3 lake when ``lake_root_uri`` is ``s3://...``, else the local lake under ``local_root``."""
    if lake_root_uri and lake_root_uri.startswith("s3://"):
        return S3Lake(lake_root_uri, region)
    from features.lake import SalesLake

    return SalesLake(local_root)
