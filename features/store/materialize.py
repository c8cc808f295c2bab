"""Keep a tenant's feature store in step with its sales: full on first run, then only the tail.

Each run hashes the sales of every period (order-independent) and compares with the digests the
last run stored. The earliest changed period ``d`` bounds the work: features before ``d`` cannot
change (point-in-time), and those after ``d + lookback`` cannot either (no feature reaches further
back), so only ``[d, last changed + lookback]`` is recomputed, from the ``lookback`` periods before
``d``, and written; new days append, corrected days overwrite. A new feature spec (code change)
recomputes everything. Periods missing from this run's sales (a build with ``--until``) are left
as they are: the offline store is the tenant's, not one run's.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from features.engineering import build_features
from features.frequency import pandas_alias
from features.store.base import FeatureStore
from features.store.groups import FeatureGroup, sales_group


@dataclass(frozen=True)
class Materialization:
    group: str
    mode: str  # "full", "incremental" or "unchanged"
    since: str | None
    until: str | None
    changed_periods: int
    records: int
    partitions: int
    online: int
    seconds: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def period_digests(sales: pd.DataFrame) -> dict[str, str]:
    """Per period, a hash of its rows that ignores row order (sum of row hashes modulo 2**64)."""
    cols = sorted(c for c in sales.columns if not str(c).startswith("_"))
    ordered = sales[cols]
    hashes = pd.util.hash_pandas_object(ordered, index=False).to_numpy()
    keys = pd.DatetimeIndex(sales["date"]).strftime("%Y-%m-%d").to_numpy()
    frame = pd.DataFrame({"d": keys, "h": hashes})
    summed = frame.groupby("d")["h"].agg(lambda h: int(np.sum(h.to_numpy(), dtype=np.uint64)))
    return {str(d): f"{int(h):016x}" for d, h in summed.items()}


def materialize(
    store: FeatureStore, tenant: str, sales: pd.DataFrame, freq: str, country: str | None = "US"
) -> Materialization:
    """Bring the tenant's ``sales-daily``/``sales-weekly`` group up to date with ``sales``."""
    started = time.perf_counter()
    group = sales_group(freq, country)
    spec = group.spec
    digests = period_digests(sales)
    state = store.read_state(tenant, group.name)
    since = until = None
    changed = sorted(digests)
    if state is not None and state.get("spec_version") == spec.version:
        old: dict[str, str] = state.get("digests", {})
        changed = sorted(d for d, h in digests.items() if old.get(d) != h)
        if not changed:
            return Materialization(group.name, "unchanged", None, None, 0, 0, 0, 0, _since(started))
        since = pd.Timestamp(changed[0])
        until = pd.date_range(changed[-1], periods=spec.lookback + 1, freq=pandas_alias(freq))[-1]
        digests = {**old, **digests}
    feats = build_features(sales, spec, since=since)
    if until is not None:
        feats = feats[feats["date"] <= until]
    result = _write(store, tenant, group.for_frame(feats), feats)
    store.write_state(tenant, group.name, {"spec_version": spec.version, "digests": digests})
    mode = "full" if since is None else "incremental"
    return Materialization(
        group.name,
        mode,
        None if since is None else str(since.date()),
        None if until is None else str(until.date()),
        len(changed),
        result[0],
        result[1],
        result[2],
        _since(started),
    )


def _write(
    store: FeatureStore, tenant: str, group: FeatureGroup, feats: pd.DataFrame
) -> tuple[int, int, int]:
    store.ensure_group(tenant, group)
    result = store.write(tenant, group, feats)
    return result.records, result.partitions, result.online


def _since(started: float) -> float:
    return round(time.perf_counter() - started, 3)
