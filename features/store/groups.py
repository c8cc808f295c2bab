"""Feature groups, declared once: name, record identifier, event time, feature definitions with types.

Both backends read these declarations: the embedded store lays its Parquet and SQLite out by them,
the SageMaker adapter sends them as ``CreateFeatureGroup``. A record is one series on one period:

* ``record_id`` identifies the *series* (``<tenant>#<store>#<sku>``, each part percent-encoded), so
  the online store, which keeps the latest record per identifier, holds each series' newest
  period, and the offline store every period;
* ``event_time`` is the period the features describe (ISO-8601 UTC, Feature Store's String form),
  which is what point-in-time joins compare against.

The core definitions follow the frequency's :class:`FeatureSpec`; a tenant's numeric covariates
(price features, markdowns, ...) are appended to them, never inserted, because SageMaker can only
append features to an existing group.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Any, Literal
from urllib.parse import quote

import numpy as np
import pandas as pd

from features.engineering import FeatureSpec
from features.frequency import base
from ordernimbus.tenancy import validate_tenant

FeatureType = Literal["String", "Integral", "Fractional"]
Role = Literal["key", "target", "calendar", "covariate", "categorical"]
RECORD_ID = "record_id"
EVENT_TIME = "event_time"
EVENT_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
KEY_FEATURES = (RECORD_ID, EVENT_TIME, "tenant_id", "store_id", "sku", "feature_spec_version")
CATEGORICAL = ("store_code", "sku_code", "category_code", "department_code")


@dataclass(frozen=True)
class FeatureDefinition:
    name: str
    type: FeatureType
    role: Role


@dataclass(frozen=True)
class FeatureGroup:
    name: str
    record_identifier: str
    event_time: str
    features: tuple[FeatureDefinition, ...]
    spec: FeatureSpec
    description: str = ""

    @property
    def names(self) -> list[str]:
        return [f.name for f in self.features]

    @property
    def types(self) -> dict[str, FeatureType]:
        return {f.name: f.type for f in self.features}

    def with_covariates(self, names: Sequence[str]) -> FeatureGroup:
        """This group plus numeric covariates it does not declare yet (appended, in the given order)."""
        known = set(self.names)
        extra = tuple(FeatureDefinition(n, "Fractional", "covariate") for n in names if n not in known)
        return replace(self, features=(*self.features, *extra)) if extra else self

    def for_frame(self, features: pd.DataFrame) -> FeatureGroup:
        """The group extended by the covariate columns ``features`` has beyond the declaration."""
        skip = {"date", "write_time", *self.names}
        extra = [c for c in features.columns if c not in skip and pd.api.types.is_numeric_dtype(features[c])]
        return self.with_covariates(extra)


def _definitions(spec: FeatureSpec) -> tuple[FeatureDefinition, ...]:
    keys = [FeatureDefinition(n, "String", "key") for n in KEY_FEATURES]
    target = [FeatureDefinition(n, "Fractional", "target") for n in ("units", *spec.target_features)]
    calendar = [FeatureDefinition(n, "Integral", "calendar") for n in spec.calendar_features]
    codes = [FeatureDefinition(n, "Integral", "categorical") for n in CATEGORICAL[:2]]
    return (*keys, *target, *calendar, *codes)


def sales_group(freq: str, country: str | None = "US") -> FeatureGroup:
    """The sales feature group of a frequency: ``sales-daily`` or ``sales-weekly``."""
    spec = FeatureSpec.for_freq(freq, country=country)
    name = "sales-daily" if base(freq) == "D" else "sales-weekly"
    return FeatureGroup(
        name=name,
        record_identifier=RECORD_ID,
        event_time=EVENT_TIME,
        features=_definitions(spec),
        spec=spec,
        description=f"{name}: lags, window statistics, calendar and covariates per store x sku",
    )


GROUPS = {g.name: g for g in (sales_group("D"), sales_group("W-SUN"))}


def record_id(tenant: str, store_id: str, sku: str) -> str:
    """``<tenant>#<store>#<sku>``; '#' and '%' inside ids are percent-encoded, so the split is unique."""
    return "#".join(_quoted(str(part)) for part in (validate_tenant(tenant), store_id, sku))


@lru_cache(maxsize=65536)
def _quoted(part: str) -> str:
    return quote(part, safe="")


def to_records(features: pd.DataFrame, group: FeatureGroup, tenant: str) -> pd.DataFrame:
    """Feature rows (from ``build_features``) as records of ``group``: keys added, columns in order.

    Returns the declared columns in declaration order plus ``date`` (the event time as a timestamp,
    which the embedded store partitions and joins on). Values keep their dtypes (float32 features,
    small integer calendar columns); a declared feature the frame lacks is NaN.
    """
    validate_tenant(tenant)
    stores = features["store_id"].astype(str).to_numpy()
    skus = features["sku"].astype(str).to_numpy()
    # Rows come in runs of one series (build_features is series-major): one id per run.
    starts = (
        np.r_[True, (stores[1:] != stores[:-1]) | (skus[1:] != skus[:-1])]
        if len(stores)
        else np.zeros(0, bool)
    )
    codes = np.cumsum(starts) - 1
    ids = np.array(
        [record_id(tenant, s, k) for s, k in zip(stores[starts], skus[starts], strict=True)], dtype=object
    )
    dates = pd.DatetimeIndex(features["date"])
    day_codes, uniq = pd.factorize(dates)
    days = pd.DatetimeIndex(uniq)
    columns: dict[str, Any] = {
        RECORD_ID: ids[codes],
        EVENT_TIME: np.array(list(days.strftime(EVENT_FORMAT)), dtype=object)[day_codes],
        "tenant_id": np.full(len(features), tenant, dtype=object),
        "store_id": stores,
        "sku": skus,
        "feature_spec_version": np.full(len(features), group.spec.version, dtype=object),
    }
    for name in group.names:
        if name not in columns:
            columns[name] = (
                features[name].to_numpy()
                if name in features.columns
                else np.full(len(features), np.nan, "float32")
            )
    columns["date"] = dates.to_numpy()
    return pd.DataFrame(columns, copy=False)
