"""Point-in-time ("as-of") joins of label rows with offline feature records.

For each entity row (store_id, sku, time) the join takes the feature record of the same series with
the newest event time at or before that time, never a later one: a training set built this way sees
exactly what was known when each label's period began (feature rows of period ``t`` only use data
up to ``t - 1``). ``tolerance`` bounds how stale a matched record may be.
"""

from __future__ import annotations

from typing import Any, Protocol

import pandas as pd

from features.store.base import FeatureStoreError

KEYS = ["store_id", "sku"]


class _OfflineReader(Protocol):
    def read_offline(
        self,
        tenant: str,
        group: str,
        start: pd.Timestamp | None = None,
        end: pd.Timestamp | None = None,
        columns: list[str] | None = None,
    ) -> pd.DataFrame: ...


def as_of_join(
    store: _OfflineReader,
    tenant: str,
    group: str,
    entities: pd.DataFrame,
    *,
    time_column: str = "date",
    tolerance: pd.Timedelta | None = None,
    columns: list[str] | None = None,
) -> pd.DataFrame:
    """``entities`` in their order with the features columns and ``feature_time`` (NaT: none matched)."""
    missing = [c for c in (*KEYS, time_column) if c not in entities.columns]
    if missing:
        raise FeatureStoreError(
            f"entities for an as-of join need columns {missing} (have {list(entities.columns)})"
        )
    times = pd.to_datetime(entities[time_column])
    start = times.min() - tolerance if tolerance is not None else None
    wanted = None if columns is None else list(dict.fromkeys([*KEYS, "date", *columns]))
    feats = store.read_offline(tenant, group, start=start, end=times.max(), columns=wanted)
    feats = feats.drop(
        columns=[c for c in ("record_id", "tenant_id") if c in feats and c not in (columns or [])]
    )
    clash = [c for c in feats.columns if c in entities.columns and c not in KEYS]
    feats = feats.rename(
        columns={"date": "feature_time", **{c: f"{c}_feature" for c in clash if c != "date"}}
    )
    left = entities.assign(_order=range(len(entities)), _time=times.to_numpy())
    left[KEYS] = left[KEYS].astype(str)
    feats[KEYS] = feats[KEYS].astype(str)
    merged = pd.merge_asof(
        left.sort_values("_time"),
        feats.sort_values("feature_time"),
        left_on="_time",
        right_on="feature_time",
        by=KEYS,
        direction="backward",
        tolerance=tolerance,
        allow_exact_matches=True,
    )
    return _restore(merged)


def _restore(merged: pd.DataFrame) -> pd.DataFrame:
    out = merged.sort_values("_order").drop(columns=["_order", "_time"]).reset_index(drop=True)
    return out


def summary(frame: pd.DataFrame) -> dict[str, Any]:
    """How many entity rows found features: for logs and reports."""
    matched = int(frame["feature_time"].notna().sum()) if "feature_time" in frame else 0
    return {"rows": len(frame), "matched": matched, "unmatched": len(frame) - matched}
