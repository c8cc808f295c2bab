"""Typed, layered configuration: environment (``ORDERNIMBUS_*``) over defaults.

Settings are built once by :func:`get_settings` at an entrypoint (CLI command, API app factory,
pipeline step) and passed down as a frozen object; nothing below reads the environment itself.
All embedded state lives under one data home so a user can see, back up or delete it at once.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class ShopifyWebhook(BaseModel):
    """One shop's webhooks: the shop's signing secret decides the tenant (never the payload)."""

    model_config = ConfigDict(frozen=True)

    shop: str = Field(description="X-Shopify-Shop-Domain, e.g. acme.myshopify.com")
    tenant: str
    secret: SecretStr


class RetrainPolicy(BaseModel):
    """When monitoring retrains a tenant's model; any rule that fires is enough (see monitoring/policy.py).

    Thresholds live here, not in monitoring code, so a tenant can be given its own policy
    (``tenant_retrain_policies``) without a release.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    # Live error runs above the backtest's even on unchanged data (the blend is fitted on the backtest
    # windows; a season's turn is harder): 1.29x on real Store Item Demand, October 2017. Hence 0.5.
    accuracy_margin: float = Field(
        default=0.5, ge=0, description="retrain when WAPE > the version's backtest WAPE x (1 + margin) ..."
    )
    accuracy_days: int = Field(default=3, ge=1, description="... on this many consecutive days")
    accuracy_window_days: int = Field(default=7, ge=1, description="a day's WAPE spans these trailing days")
    drift_share: float = Field(default=0.5, gt=0, le=1, description="retrain if this share of columns drifts")
    psi_threshold: float = Field(default=0.1, gt=0, description="retrain when the target's PSI exceeds this")
    schedule_days: int = Field(default=7, ge=0, description="retrain when the last build is older; 0 = never")
    cooldown_hours: float = Field(default=24, ge=0, description="no automatic build this soon after one")
    current_weeks: int = Field(default=2, ge=1, description="latest weeks compared with training")
    automatic: bool = Field(default=True, description="False: only manual requests start a build")


class Settings(BaseSettings):
    """Everything configurable, with embedded (one machine, no cloud) defaults."""

    model_config = SettingsConfigDict(env_prefix="ORDERNIMBUS_", frozen=True, extra="ignore")

    home: Path = Field(default=Path(".ordernimbus"), description="root of all embedded state")
    database_url: str | None = Field(
        default=None,
        description=(
            "forecast store + API keys; default sqlite under home; postgresql+psycopg://... in production"
        ),
    )
    registry_backend: Literal["local", "sagemaker"] = "local"
    feature_store_backend: Literal["local", "sagemaker"] = "local"
    feature_store_offline_uri: str | None = Field(
        default=None, description="offline feature store root (fsspec URI); default <home>/features/offline"
    )
    pipeline_backend: Literal["local", "sagemaker"] = "local"
    aws_region: str = "us-east-1"
    sagemaker_role_arn: str | None = None
    artifacts_bucket: str | None = None

    quantiles: tuple[float, ...] = (0.1, 0.5, 0.9)
    default_horizon: int = Field(default=28, ge=1, le=365)
    gate_max_wape_ratio: float = Field(
        default=1.0, gt=0, description="ensemble WAPE must be <= ratio x best baseline WAPE"
    )
    forecast_sets_kept: int = Field(default=5, ge=1)
    # Inventory advice published with every forecast set (formula in inference/inventory.py).
    inventory_lead_time_days: int = Field(default=7, ge=1, le=365, description="days from order to delivery")
    inventory_service_level: float = Field(
        default=0.95, ge=0.5, le=0.999, description="probability of no stock-out while an order is under way"
    )
    inventory_review_days: int = Field(default=7, ge=1, le=365, description="days between two orders")
    sales_history_days: int = Field(default=365, ge=7, le=3660, description="actuals kept for API charts")
    sales_history_refresh_days: int = Field(
        default=56, ge=0, description="days before the latest stored one rewritten per publish; 0 = all"
    )
    transform_workers: int = Field(
        default=0, ge=0, description="batch transform processes; 0 = one per two cores"
    )
    max_parallel_steps: int = Field(default=2, ge=1)

    api_cors_origins: tuple[str, ...] = ()
    api_rate_limit_per_minute: int = Field(default=6000, ge=1)
    api_max_body_bytes: int = Field(default=110 * 1024 * 1024, ge=1024)
    api_rate_limit_per_tenant_per_minute: int = Field(
        default=30000, ge=1, description="all keys and tokens of one tenant together"
    )
    api_jwt_jwks_path: Path | None = Field(
        default=None, description="JWKS file (e.g. the Cognito pool's jwks.json); unset = no bearer tokens"
    )
    api_jwt_issuer: str | None = None
    api_jwt_audience: str | None = Field(default=None, description="app client id: aud (id) or client_id")
    api_jwt_tenant_claim: str = "custom:tenant_id"
    api_jwt_groups_claim: str = "cognito:groups"
    api_jwt_group_prefix: str = Field(default="", description="group '<prefix><role>' grants role")
    shopify_webhooks: tuple[ShopifyWebhook, ...] = Field(
        default=(), description='JSON list of {"shop": "x.myshopify.com", "tenant": ..., "secret": ...}'
    )

    retrain_policy: RetrainPolicy = Field(default_factory=RetrainPolicy, description="every tenant's default")
    tenant_retrain_policies: dict[str, dict[str, float | int | bool]] = Field(
        default_factory=dict, description='per-tenant overrides: {"acme": {"psi_threshold": 0.2}}'
    )

    @field_validator("tenant_retrain_policies")
    @classmethod
    def _valid_overrides(
        cls, value: dict[str, dict[str, float | int | bool]]
    ) -> dict[str, dict[str, float | int | bool]]:
        for overrides in value.values():  # fail at startup, not at the first check of that tenant
            RetrainPolicy(**overrides)  # type: ignore[arg-type]
        return value

    def policy_for(self, tenant: str) -> RetrainPolicy:
        """The tenant's retraining policy: the default with the tenant's overrides applied."""
        overrides = self.tenant_retrain_policies.get(tenant, {})
        return RetrainPolicy(**{**self.retrain_policy.model_dump(), **overrides})

    @field_validator("home")
    @classmethod
    def _absolute_home(cls, value: Path) -> Path:
        return value.expanduser().resolve()

    @property
    def lake_dir(self) -> Path:
        return self.home / "lake"

    @property
    def features_dir(self) -> Path:
        return self.home / "features"

    @property
    def artifacts_dir(self) -> Path:
        return self.home / "artifacts"

    @property
    def runs_dir(self) -> Path:
        return self.home / "runs"

    @property
    def reports_dir(self) -> Path:
        return self.home / "reports"

    @property
    def db_url(self) -> str:
        return self.database_url or f"sqlite:///{self.home / 'ordernimbus.db'}"

    @property
    def registry_url(self) -> str:
        return f"sqlite:///{self.home / 'registry.db'}"

    @property
    def runs_db_url(self) -> str:
        return f"sqlite:///{self.home / 'runs.db'}"


@lru_cache(maxsize=8)
def get_settings(**overrides: object) -> Settings:
    """The process's settings; overrides are for tests and the CLI's global options."""
    settings = Settings(**overrides)  # type: ignore[arg-type]
    settings.home.mkdir(parents=True, exist_ok=True)
    return settings
