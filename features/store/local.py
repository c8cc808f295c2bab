"""The embedded feature store: Parquet offline store partitioned by tenant and month, SQLite online store.

Offline layout (fsspec, so the root may be ``file://`` or any filesystem fsspec knows)::

    <root>/<group>/tenant_id=<tenant>/year=<YYYY>/month=<MM>/part.parquet
    <root>/<group>/tenant_id=<tenant>/_group.json     declared features (append-only)
    <root>/<group>/tenant_id=<tenant>/_state.json     what the last materialisation saw

One file per month: an upload of a new day rewrites one small file, a correction rewrites the months
its lags reach, and a reader gets the old or the new file, never a mix (write a temporary file, then
move it over the old one). Within a partition a record is keyed by (record_id, event time); a newer
write of the same key replaces the older one, which is the "corrected days overwrite" rule.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import fsspec
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from features.store.base import FeatureGroupNotFoundError, FeatureStoreError, WriteResult
from features.store.groups import EVENT_FORMAT, FeatureGroup, record_id, to_records
from features.store.join import as_of_join
from features.store.online import OnlineStore
from ordernimbus.atomic import file_lock
from ordernimbus.tenancy import validate_tenant

PART = "part.parquet"


class LocalFeatureStore:
    def __init__(self, offline_uri: str | Path, online_path: Path, lock_dir: Path) -> None:
        self.fs, self.root = fsspec.core.url_to_fs(str(offline_uri))
        self.online = OnlineStore(online_path)
        self.lock_dir = lock_dir

    # --- layout ------------------------------------------------------------------------------
    def _tenant_root(self, group: str, tenant: str) -> str:
        if not group.replace("-", "").isalnum():
            raise FeatureStoreError(f"feature group name {group!r}: letters, digits and '-' only")
        return f"{self.root}/{group}/tenant_id={validate_tenant(tenant)}"

    def _partition(self, group: str, tenant: str, year: int, month: int) -> str:
        return f"{self._tenant_root(group, tenant)}/year={year:04d}/month={month:02d}/{PART}"

    # --- groups ------------------------------------------------------------------------------
    def ensure_group(self, tenant: str, group: FeatureGroup) -> None:
        path = f"{self._tenant_root(group.name, tenant)}/_group.json"
        declared = self._read_json(path) or {"features": []}
        known = {f["name"]: f["type"] for f in declared["features"]}
        clash = {n: (known[n], t) for n, t in group.types.items() if n in known and known[n] != t}
        if clash:
            raise FeatureStoreError(
                f"feature group {group.name} of tenant {tenant}: features {clash} would change "
                "type (stored, new); a feature's type never changes, add a new feature instead"
            )
        added = [{"name": n, "type": t} for n, t in group.types.items() if n not in known]
        if added or not self.fs.exists(path):
            declared = {
                "name": group.name,
                "record_identifier": group.record_identifier,
                "event_time": group.event_time,
                "features": [*declared["features"], *added],
            }
            self._write_bytes(path, json.dumps(declared, indent=1).encode())

    def declared(self, tenant: str, group: str) -> list[str]:
        found = self._read_json(f"{self._tenant_root(group, tenant)}/_group.json")
        if found is None:
            raise FeatureGroupNotFoundError(
                f"tenant {tenant} has no feature group {group!r}: run the build pipeline"
            )
        return [f["name"] for f in found["features"]]

    # --- writes ------------------------------------------------------------------------------
    def write(self, tenant: str, group: FeatureGroup, features: pd.DataFrame) -> WriteResult:
        self.ensure_group(tenant, group)
        now = datetime.now(UTC).strftime(EVENT_FORMAT)
        dates = pd.DatetimeIndex(features["date"])
        month = (dates.year * 100 + dates.month).to_numpy()
        last = (
            pd.Series(np.arange(len(features)))
            .groupby([features["store_id"].to_numpy(), features["sku"].to_numpy()], sort=False)
            .max()
        )  # each series' newest row (rows are series-major, dates ascending)
        newest = to_records(features.iloc[np.sort(last.to_numpy())], group, tenant)
        with self._lock(group.name, tenant):
            for ym in np.unique(month):
                records = to_records(features[month == ym], group, tenant)
                records["write_time"] = now
                path = self._partition(group.name, tenant, int(ym) // 100, int(ym) % 100)
                self._merge_partition(path, records)
            # Offline first: if this process dies here, the next write brings the online store along.
            online = self.online.upsert(group.name, tenant, newest, group.names, now)
        return WriteResult(records=len(features), partitions=len(np.unique(month)), online=online)

    def _merge_partition(self, path: str, new: pd.DataFrame) -> None:
        if self.fs.exists(path):
            old = pd.read_parquet(path, filesystem=self.fs)
            new = pd.concat([old, new], ignore_index=True).drop_duplicates(["record_id", "date"], keep="last")
            new = new.sort_values(["store_id", "sku", "date"], ignore_index=True)
        table = pa.Table.from_pandas(new, preserve_index=False)
        strings = [c for c in new.columns if new[c].dtype == object]  # numbers gain nothing from dictionaries
        tmp = f"{path.rsplit('/', 1)[0]}/.tmp-{uuid.uuid4().hex}.parquet"
        self.fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
        try:
            with self.fs.open(tmp, "wb") as handle:
                pq.write_table(table, handle, compression="zstd", use_dictionary=strings)
            self.fs.mv(tmp, path)
        finally:
            if self.fs.exists(tmp):
                self.fs.rm(tmp)

    @contextmanager
    def _lock(self, group: str, tenant: str) -> Iterator[None]:
        """One writer per tenant and group at a time (an advisory lock on this machine)."""
        with file_lock(self.lock_dir / f"{group}.{validate_tenant(tenant)}.lock"):
            yield

    # --- reads -------------------------------------------------------------------------------
    def latest(self, tenant: str, group: str, store_id: str, sku: str) -> dict[str, Any] | None:
        return self.online.get(group, tenant, record_id(tenant, store_id, sku))

    def find_latest(self, tenant: str, sku: str, store_id: str | None = None) -> list[dict[str, Any]]:
        return [{"feature_group": g, **r} for g, r in self.online.find(tenant, sku, store_id)]

    def read_offline(
        self,
        tenant: str,
        group: str,
        start: pd.Timestamp | None = None,
        end: pd.Timestamp | None = None,
        columns: list[str] | None = None,
    ) -> pd.DataFrame:
        base = self._tenant_root(group, tenant)
        if not self.fs.exists(base):
            raise FeatureGroupNotFoundError(
                f"tenant {tenant} has no offline records in feature group {group!r}"
            )
        frames = []
        for path in sorted(self.fs.glob(f"{base}/year=*/month=*/{PART}")):
            year, month = (int(p.split("=")[1]) for p in path.split("/")[-3:-1])
            first = pd.Timestamp(year=year, month=month, day=1)
            if (end is not None and first > end) or (
                start is not None and first + pd.offsets.MonthEnd(1) < start
            ):
                continue
            filters = [("date", ">=", start)] if start is not None else []
            filters += [("date", "<=", end)] if end is not None else []
            frames.append(pd.read_parquet(path, filesystem=self.fs, filters=filters or None, columns=columns))
        if not frames:
            return pd.DataFrame(columns=columns or ["record_id", "store_id", "sku", "date"])
        out = pd.concat(frames, ignore_index=True)
        order = [c for c in ("store_id", "sku", "date") if c in out.columns]
        return out.sort_values(order, ignore_index=True) if order else out

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
    def read_state(self, tenant: str, group: str) -> dict[str, Any] | None:
        return self._read_json(f"{self._tenant_root(group, tenant)}/_state.json")

    def write_state(self, tenant: str, group: str, state: dict[str, Any]) -> None:
        self._write_bytes(f"{self._tenant_root(group, tenant)}/_state.json", json.dumps(state).encode())

    def _read_json(self, path: str) -> dict[str, Any] | None:
        if not self.fs.exists(path):
            return None
        with self.fs.open(path, "rb") as handle:
            value: dict[str, Any] = json.loads(handle.read())
        return value

    def _write_bytes(self, path: str, data: bytes) -> None:
        folder = path.rsplit("/", 1)[0]
        self.fs.makedirs(folder, exist_ok=True)
        tmp = f"{folder}/.tmp-{uuid.uuid4().hex}"
        with self.fs.open(tmp, "wb") as handle:
            handle.write(data)
        self.fs.mv(tmp, path)
