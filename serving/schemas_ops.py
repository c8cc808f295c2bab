"""Public shapes of the operational routes: inventory, jobs, registry, uploads, explanations."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from inference.store.jobs import Job, JobStatus
from models.registry.base import AuditEntry, ModelVersion
from serving.params import IsoDate, Note


class InventoryItemPublic(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"store_id": "1", "sku": "7", "lead_time_days": 7, "service_level": 0.95,
                 "lead_time_demand": 166.0, "safety_stock": 13.9, "reorder_point": 180.0,
                 "order_quantity": 347.0, "on_hand": 5.0, "stockout_risk": True}
            ]
        }
    )  # fmt: skip

    store_id: str
    sku: str
    lead_time_days: int
    service_level: float = Field(description="cycle service level the advice is computed for")
    lead_time_demand: float = Field(description="median forecast summed over the lead time")
    safety_stock: float
    reorder_point: float = Field(description="order when stock on hand falls below this")
    order_quantity: float
    on_hand: float | None = Field(description="stock on hand when known")
    stockout_risk: bool = Field(description="on hand is below the reorder point")

    @classmethod
    def of(cls, row: Mapping[str, Any]) -> InventoryItemPublic:
        return cls(**{k: row[k] for k in cls.model_fields})


class InventoryPagePublic(BaseModel):
    forecast_set_id: str
    model_version: int
    items: list[InventoryItemPublic]
    next_cursor: str | None


class JobPublic(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"job_id": "0b6f3c1e-2d4a-4f7e-9a51-3c2b1d0e9f88", "kind": "forecast", "status": "running",
                 "progress": 0.33, "message": "Transform: Executing", "run_id": "20260101T120000-a1b2c3",
                 "parameters": {"horizon": 28}, "created_at": "2026-01-01T12:00:00Z",
                 "updated_at": "2026-01-01T12:00:09Z", "created_by": "key:8f14e45fceea167a"}
            ]
        }
    )  # fmt: skip

    job_id: str
    kind: str
    status: JobStatus
    progress: float = Field(description="share of the pipeline's steps finished, 0 to 1")
    message: str | None
    run_id: str | None = Field(description="the pipeline run (ordernimbus pipeline status RUN)")
    parameters: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    created_by: str | None

    @classmethod
    def of(cls, job: Job) -> JobPublic:
        return cls(**{k: getattr(job, k) for k in cls.model_fields})


class GenerateCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, json_schema_extra={"examples": [{"horizon": 28}]})

    horizon: int | None = Field(default=None, ge=1, le=365, description="default: the version's horizon")


class ModelVersionPublic(BaseModel):
    version: int
    status: str
    serving: bool = Field(description="the version forecasts are made with (latest approved)")
    gate_passed: bool
    artifact_uri: str
    metrics: dict[str, Any]
    lineage: dict[str, Any]
    created_at: datetime
    created_by: str
    approved_at: datetime | None
    decided_by: str | None
    reason: str | None
    override: bool

    @classmethod
    def of(cls, v: ModelVersion, serving: int | None) -> ModelVersionPublic:
        fields = {k: getattr(v, k) for k in cls.model_fields if k != "serving"}
        return cls(**fields, serving=v.version == serving)


class DecisionCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        strict=True,  # "forecast": 0 is not a yes
        json_schema_extra={
            "examples": [
                {"reason": "beats the champion on WAPE and coverage; card reviewed", "override": False}
            ]
        },
    )

    reason: Note = Field(min_length=1, max_length=1024, description="recorded in the audit log")
    override: bool = Field(default=False, description="approve although the quality gate failed")
    forecast: bool = Field(default=True, description="approve only: start the forecast pipeline")


class DecisionPublic(BaseModel):
    version: ModelVersionPublic
    job: JobPublic | None = Field(description="the forecast run started by an approval")
    note: str | None = Field(description="why no forecast run was started, when one was asked for")


class AuditEntryPublic(BaseModel):
    at: datetime
    actor: str
    action: str
    version: int | None
    detail: dict[str, Any]

    @classmethod
    def of(cls, e: AuditEntry) -> AuditEntryPublic:
        return cls(at=e.at, actor=e.actor, action=e.action, version=e.version, detail=e.detail)


class DriverPublic(BaseModel):
    feature: str
    label: str | None = Field(default=None, description="what the feature means, for people")
    importance: float = Field(description="mean |SHAP| on the model's scale")


class ExplanationPublic(BaseModel):
    model_version: int
    store_id: str | None
    sku: str | None
    drivers: list[DriverPublic] = Field(description="the series' top drivers, else the model's global ones")
    scope: str = Field(description="'series' when drivers are this SKU's own, 'global' otherwise")
    global_drivers: list[DriverPublic]


class UploadPublic(BaseModel):
    filename: str
    rows_in: int
    rows_new: int
    rows_updated: int
    rows_unchanged: int
    rows_total: int
    frequency: str
    source_rows: int
    quarantined: bool = Field(description="lenient mode left rows out (see the report)")
    report: dict[str, Any] = Field(description="the quality report (JSON)")


class OutageCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"first": "2024-04-01", "last": "2024-04-14", "store": None}]},
    )

    first: IsoDate = Field(description="first date whose sales were lost (YYYY-MM-DD)")
    last: IsoDate = Field(description="last date whose sales were lost, inclusive")
    store: str | None = Field(
        default=None, min_length=1, max_length=128, pattern=r"^[^\x00-\x1f\x7f]+$",
        description="only this store's sales were lost (default: every store's)",
    )  # fmt: skip


class OutagePublic(BaseModel):
    first: date
    last: date
    store: str | None = Field(description="null: every store")
    periods: int = Field(description="days or weeks (unit) the outage spans")
    unit: str
    series: int = Field(description="series started before the outage: the ones a build fills")
    records: int = Field(description="records inside the outage, kept as real sales")
    lookback: int = Field(description="periods before the outage whose mean fills it")
    after_data: bool = Field(description="the outage ends after the last sale (the rest is not filled)")
    last_sale: date | None
    created: bool = Field(default=False, description="this request marked it (false: it was marked already)")


class ShopifyWebhookPublic(BaseModel):
    order_events: int
    days_updated: int
    rows_total: int
