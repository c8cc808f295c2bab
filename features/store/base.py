"""The feature store port: one small interface, an embedded and a SageMaker implementation.

Callers (the features pipeline step, the CLI, training-set builders) hold a :class:`FeatureStore`
and never know which backend it is; ``features.store.factory.open_feature_store`` picks one from
settings.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import pandas as pd

from features.store.groups import FeatureGroup
from ordernimbus.errors import NotFoundError, OrderNimbusError


class FeatureStoreError(OrderNimbusError):
    title = "Feature store error"


class FeatureGroupNotFoundError(NotFoundError):
    title = "Feature group not found"


@dataclass(frozen=True)
class WriteResult:
    records: int  # feature records written to the offline store
    partitions: int  # offline partitions (files or objects) written
    online: int  # online records inserted or replaced (latest per identifier)


class FeatureStore(Protocol):
    def ensure_group(self, tenant: str, group: FeatureGroup) -> None:
        """Create the tenant's group, or append the features it lacks; never drop or retype one."""

    def write(self, tenant: str, group: FeatureGroup, features: pd.DataFrame) -> WriteResult:
        """Upsert feature rows: offline by (record, event time), online only if not older than stored."""

    def latest(self, tenant: str, group: str, store_id: str, sku: str) -> dict[str, Any] | None:
        """The series' online record (its newest period), or None."""

    def find_latest(self, tenant: str, sku: str, store_id: str | None = None) -> list[dict[str, Any]]:
        """Online records of ``sku`` (in every store unless ``store_id``), across the tenant's groups."""

    def read_offline(
        self,
        tenant: str,
        group: str,
        start: pd.Timestamp | None = None,
        end: pd.Timestamp | None = None,
        columns: list[str] | None = None,
    ) -> pd.DataFrame:
        """Offline records with event dates in [start, end], sorted by series and date."""

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
        """Each entity row (store_id, sku, time) with the newest features dated at or before its time."""

    def read_state(self, tenant: str, group: str) -> dict[str, Any] | None:
        """What the last materialisation recorded (spec version, per-period digests), or None."""

    def write_state(self, tenant: str, group: str, state: dict[str, Any]) -> None: ...
