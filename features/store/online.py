"""The embedded online store: SQLite holding the latest record per (group, tenant, record identifier).

SageMaker's online store keeps, per record identifier, the record with the newest event time; a
put with an older event time reaches only the offline store. The ``WHERE`` of the upsert below is
that rule, evaluated inside SQLite so concurrent writers cannot interleave a check and a write.
Event times are ISO-8601 UTC strings of one fixed format, so they compare correctly as text.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

import pandas as pd

from ordernimbus.tenancy import validate_tenant

_SCHEMA = """
CREATE TABLE IF NOT EXISTS online_records (
    feature_group TEXT NOT NULL,
    tenant_id TEXT NOT NULL,
    record_id TEXT NOT NULL,
    store_id TEXT NOT NULL,
    sku TEXT NOT NULL,
    event_time TEXT NOT NULL,
    write_time TEXT NOT NULL,
    record TEXT NOT NULL,
    PRIMARY KEY (feature_group, tenant_id, record_id)
);
CREATE INDEX IF NOT EXISTS online_records_sku ON online_records (tenant_id, sku, store_id);
"""
_UPSERT = """
INSERT INTO online_records
    (feature_group, tenant_id, record_id, store_id, sku, event_time, write_time, record)
VALUES (?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (feature_group, tenant_id, record_id) DO UPDATE SET
    event_time = excluded.event_time, write_time = excluded.write_time, record = excluded.record,
    store_id = excluded.store_id, sku = excluded.sku
WHERE excluded.event_time >= online_records.event_time
"""


def _rows(frame: pd.DataFrame) -> Iterator[tuple[Any, ...]]:
    """Rows as Python values (NaN/NA as None); ``tolist`` widens float32 exactly, so JSON round-trips."""
    columns = []
    for name in frame.columns:
        values = frame[name]
        missing = values.isna().to_numpy()
        plain = (
            values.astype(object).to_numpy().tolist()
            if values.dtype == object
            else values.to_numpy().tolist()
        )
        if missing.any():
            plain = [None if m else v for v, m in zip(plain, missing, strict=True)]
        columns.append(plain)
    return zip(*columns, strict=True)


class OnlineStore:
    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as db:
            db.executescript(_SCHEMA)

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        with closing(sqlite3.connect(self.path, timeout=60)) as db:
            db.execute("PRAGMA journal_mode=WAL")
            with db:  # one transaction
                yield db

    def upsert(
        self, group: str, tenant: str, records: pd.DataFrame, columns: list[str], write_time: str
    ) -> int:
        """Offer each series' newest record in ``records``; returns how many rows changed."""
        validate_tenant(tenant)
        newest = records.sort_values("event_time").drop_duplicates("record_id", keep="last")
        payloads = [
            json.dumps(dict(zip(columns, row, strict=True)), allow_nan=False)
            for row in _rows(newest[columns])
        ]
        rows = [
            (group, tenant, rid, store, sku, event, write_time, payload)
            for rid, store, sku, event, payload in zip(
                newest["record_id"],
                newest["store_id"],
                newest["sku"],
                newest["event_time"],
                payloads,
                strict=True,
            )
        ]
        with self._connect() as db:
            before = db.total_changes
            db.executemany(_UPSERT, rows)
            return db.total_changes - before

    def get(self, group: str, tenant: str, record_id: str) -> dict[str, Any] | None:
        with self._connect() as db:
            row = db.execute(
                "SELECT record FROM online_records"
                " WHERE feature_group = ? AND tenant_id = ? AND record_id = ?",
                (group, validate_tenant(tenant), record_id),
            ).fetchone()
        return json.loads(row[0]) if row else None

    def find(self, tenant: str, sku: str, store_id: str | None = None) -> list[tuple[str, dict[str, Any]]]:
        """(group, record) of every series of ``sku`` (in ``store_id`` only, if given) of the tenant."""
        query = "SELECT feature_group, record FROM online_records WHERE tenant_id = ? AND sku = ?"
        params: list[str] = [validate_tenant(tenant), sku]
        if store_id is not None:
            query += " AND store_id = ?"
            params.append(store_id)
        with self._connect() as db:
            rows = db.execute(query + " ORDER BY feature_group, store_id", params).fetchall()
        return [(group, json.loads(record)) for group, record in rows]

    def all(self, group: str, tenant: str) -> pd.DataFrame:
        """Every online record of the tenant's group (for consistency checks and exports)."""
        with self._connect() as db:
            rows = db.execute(
                "SELECT record FROM online_records"
                " WHERE feature_group = ? AND tenant_id = ? ORDER BY record_id",
                (group, validate_tenant(tenant)),
            ).fetchall()
        return pd.DataFrame([json.loads(r[0]) for r in rows])
