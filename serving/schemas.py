"""Public shapes of the API (FastAPI template naming: ...Public for responses, ...Create for bodies)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from inference.store.base import ForecastRow, ForecastSet
from serving.auth import KeyInfo, Role
from serving.params import Label


class HealthPublic(BaseModel):
    status: str
    version: str


class ForecastSetPublic(BaseModel):
    set_id: str
    model_version: int
    generated_at: datetime
    completed_at: datetime | None
    rows: int
    series: int
    start_date: date | None
    end_date: date | None
    status: str
    is_current: bool
    metadata: dict[str, Any]

    @classmethod
    def of(cls, fs: ForecastSet) -> ForecastSetPublic:
        return cls(
            set_id=fs.set_id,
            model_version=fs.model_version,
            generated_at=fs.generated_at,
            completed_at=fs.completed_at,
            rows=fs.rows,
            series=fs.series,
            start_date=fs.start_date,
            end_date=fs.end_date,
            status=fs.status,
            is_current=fs.is_current,
            metadata=fs.metadata,
        )


class ForecastItemPublic(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"store_id": "1", "sku": "7", "target_date": "2018-01-01", "horizon_day": 1, "p10": 14.0,
                 "p50": 19.0, "p90": 25.0, "mean": 19.4, "model_version": 3}
            ]
        }
    )  # fmt: skip

    store_id: str
    sku: str
    target_date: date
    horizon_day: int
    p10: float
    p50: float
    p90: float
    mean: float
    model_version: int

    @classmethod
    def of(cls, row: ForecastRow) -> ForecastItemPublic:
        return cls(
            store_id=row.store_id,
            sku=row.sku,
            target_date=row.target_date,
            horizon_day=row.horizon_day,
            p10=row.p10,
            p50=row.p50,
            p90=row.p90,
            mean=row.mean,
            model_version=row.model_version,
        )


class ForecastPointPublic(BaseModel):
    target_date: date
    horizon_day: int
    p10: float
    p50: float
    p90: float
    mean: float

    @classmethod
    def of(cls, row: ForecastRow) -> ForecastPointPublic:
        return cls(
            target_date=row.target_date,
            horizon_day=row.horizon_day,
            p10=row.p10,
            p50=row.p50,
            p90=row.p90,
            mean=row.mean,
        )


class SalesPointPublic(BaseModel):
    date: date
    units: float
    unit_price: float | None


class SeriesForecastPublic(BaseModel):
    """One series: its forecast and the actuals just before it, for a chart."""

    store_id: str
    sku: str
    forecast_set: ForecastSetPublic
    forecast: list[ForecastPointPublic]
    history: list[SalesPointPublic] = Field(description="actuals before the first forecast day, oldest first")


class SalesHistoryPublic(BaseModel):
    store_id: str
    sku: str
    items: list[SalesPointPublic]


class AccuracyPublic(BaseModel):
    """Realised accuracy of one forecast set against actuals (WAPE, bias as a share of actual units)."""

    check_id: str
    level: str
    store_id: str | None = Field(description="null at the total level")
    sku: str | None = Field(description="null at the total and store levels")
    forecast_set_id: str
    model_version: int
    checked_at: datetime
    start_date: date
    end_date: date
    n: int = Field(description="actual values scored")
    wape: float | None
    bias: float | None
    pinball: float | None
    coverage: float | None

    @classmethod
    def of(cls, row: Mapping[str, Any]) -> AccuracyPublic:
        values = {k: row[k] for k in cls.model_fields if k not in ("store_id", "sku", "checked_at")}
        at = row["checked_at"]
        return cls(**values, checked_at=at.replace(tzinfo=UTC) if at.tzinfo is None else at,
                   store_id=row["store_id"] or None, sku=row["sku"] or None)  # fmt: skip


class AccuracyPagePublic(BaseModel):
    check_id: str | None = Field(description="the accuracy check read; null when none has run yet")
    checked_at: datetime | None
    level: str
    items: list[AccuracyPublic]
    next_cursor: str | None


class AccuracyTrendPublic(BaseModel):
    level: str
    store_id: str | None
    sku: str | None
    items: list[AccuracyPublic] = Field(description="one row per check, oldest first")


class CurrentSetPublic(ForecastSetPublic):
    accuracy: AccuracyPublic | None = Field(
        description="total realised accuracy; null until actuals are scored"
    )


class ForecastPagePublic(BaseModel):
    forecast_set: ForecastSetPublic
    items: list[ForecastItemPublic]
    next_cursor: str | None = Field(description="pass back as ?cursor= for the next page; null on the last")


class KeyCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid", strict=True, json_schema_extra={"examples": [{"role": "viewer", "name": "dashboard"}]}
    )

    role: Role
    name: Label = Field(default="", max_length=200)


class KeyPublic(BaseModel):
    key_id: str
    role: Role
    name: str
    created_at: datetime
    revoked_at: datetime | None

    @classmethod
    def of(cls, info: KeyInfo) -> KeyPublic:
        return cls(
            key_id=info.key_id,
            role=info.role,
            name=info.name,
            created_at=info.created_at,
            revoked_at=info.revoked_at,
        )


class KeyCreatedPublic(BaseModel):
    key: KeyPublic
    api_key: str = Field(description="the key itself: shown once, store it now")
