"""One frozen configuration per deployment environment (dev, staging, prod).

Every difference between environments lives here as data, so the stacks contain no
``if env == "prod"`` branches: they read capacity, retention, throttling, alarm thresholds and
schedules from an :class:`EnvConfig`. Physical names are derived here too, so cross-stack
permissions can name resources literally instead of passing CloudFormation exports around.
Accounts are placeholders; the real ones are filled in by the team that owns the AWS Organization.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from infra.errors import InfraConfigError
from ordernimbus.errors import TenantError
from ordernimbus.tenancy import registry_group, validate_tenant

_ACCOUNT = re.compile(r"^\d{12}$")
_REGION = re.compile(r"^[a-z]{2}(-gov)?-[a-z]+-\d$")
_SCHEDULE = re.compile(r"^(cron|rate)\(.+\)$")
# Aurora Serverless v2 capacity range in ACUs (0 means auto-pause, PostgreSQL 16.3+).
_MIN_ACU, _MAX_ACU = 0.0, 256.0
LAKE_SALES_PREFIX = "sales"
# The retention periods CloudWatch Logs accepts.
LOG_RETENTION_DAYS = (
    1,
    3,
    5,
    7,
    14,
    30,
    60,
    90,
    120,
    150,
    180,
    365,
    400,
    545,
    731,
    1096,
    1827,
    2192,
    2557,
    2922,
    3288,
    3653,
)


@dataclass(frozen=True)
class AuroraCapacity:
    min_acu: float
    max_acu: float


@dataclass(frozen=True)
class ApiThrottle:
    rate_limit: float  # steady-state requests per second for the whole stage
    burst_limit: int


@dataclass(frozen=True)
class AlarmThresholds:
    api_5xx_per_5min: int
    api_p95_latency_ms: int
    pipeline_failures_per_day: int
    drift_detections_per_day: int


@dataclass(frozen=True)
class Schedules:
    """EventBridge schedule expressions (UTC)."""

    daily_forecast: str
    weekly_retrain: str
    drift_check: str


@dataclass(frozen=True)
class EnvConfig:
    name: str
    account: str
    region: str
    tenants: tuple[str, ...]
    aurora: AuroraCapacity
    throttle: ApiThrottle
    alarms: AlarmThresholds
    schedules: Schedules
    retain_data: bool  # RETAIN buckets, keys, database and logs on stack deletion
    deletion_protection: bool
    log_retention_days: int
    backup_retention_days: int
    noncurrent_version_expiry_days: int
    secret_rotation_days: int
    max_azs: int = 2
    auto_approve: bool = False  # build pipeline registers models as Approved (dev only)
    partition: str = "aws"

    def __post_init__(self) -> None:
        where = f"infra environment {self.name!r}"
        for problem in (*self._identity_problems(), *self._capacity_problems()):
            raise InfraConfigError(f"{where}: {problem}")

    def _identity_problems(self) -> list[str]:
        problems = []
        if not _ACCOUNT.fullmatch(self.account):
            problems.append(f"account {self.account!r} must be 12 digits")
        if not _REGION.fullmatch(self.region):
            problems.append(f"region {self.region!r} is not an AWS region name")
        if not self.tenants:
            problems.append("tenants is empty; list at least one tenant id")
        if len(set(self.tenants)) != len(self.tenants):
            problems.append(f"tenants {self.tenants!r} contain duplicates")
        for tenant in self.tenants:
            try:
                validate_tenant(tenant)
            except TenantError as exc:
                problems.append(f"tenants: {exc}")
        if self.auto_approve and self.name != "dev":
            problems.append(
                "auto_approve is allowed in 'dev' only; models reaching staging or prod must be "
                "approved by a person"
            )
        return problems

    def _capacity_problems(self) -> list[str]:
        problems = []
        if not _MIN_ACU <= self.aurora.min_acu <= self.aurora.max_acu <= _MAX_ACU:
            problems.append(
                f"aurora capacity must satisfy {_MIN_ACU} <= min_acu <= max_acu <= {_MAX_ACU}, "
                f"got min_acu={self.aurora.min_acu}, max_acu={self.aurora.max_acu}"
            )
        if self.throttle.rate_limit <= 0 or self.throttle.burst_limit <= 0:
            problems.append("throttle rate_limit and burst_limit must be positive")
        problems += [
            f"schedules.{field} {expression!r} must be 'cron(...)' or 'rate(...)'"
            for field, expression in vars(self.schedules).items()
            if not _SCHEDULE.fullmatch(expression)
        ]
        problems += [
            f"{field} must be >= 1, got {getattr(self, field)}"
            for field in ("backup_retention_days", "noncurrent_version_expiry_days", "secret_rotation_days")
            if getattr(self, field) < 1
        ]
        if not 2 <= self.max_azs <= 3:
            problems.append(f"max_azs must be 2 or 3 (Aurora needs two zones), got {self.max_azs}")
        if self.log_retention_days not in LOG_RETENTION_DAYS:
            problems.append(
                f"log_retention_days {self.log_retention_days} is not a CloudWatch Logs retention; "
                f"expected one of {LOG_RETENTION_DAYS}"
            )
        return problems

    # Physical names: deterministic, so permissions and other stacks can name them literally.
    @property
    def prefix(self) -> str:
        return f"ordernimbus-{self.name}"

    def bucket_name(self, purpose: str) -> str:
        """Globally unique bucket name: purpose, environment, account and region."""
        return f"{self.prefix}-{purpose}-{self.account}-{self.region}"

    @property
    def lake_bucket(self) -> str:
        return self.bucket_name("lake")

    @property
    def lake_root_uri(self) -> str:
        """Root of the sales lake; a prefix keeps tenant folders apart from ``feature-store/``."""
        return f"s3://{self.lake_bucket}/{LAKE_SALES_PREFIX}"

    def lake_uri(self, tenant: str) -> str:
        """The tenant's lake folder (the pipelines' ``InputDataUri``), as ``tenant_dir`` lays it out."""
        return f"{self.lake_root_uri}/{validate_tenant(tenant)}"

    @property
    def artifacts_bucket(self) -> str:
        return self.bucket_name("artifacts")

    @property
    def access_logs_bucket(self) -> str:
        return self.bucket_name("access-logs")

    @property
    def build_pipeline(self) -> str:
        return f"{self.prefix}-build"

    @property
    def forecast_pipeline(self) -> str:
        return f"{self.prefix}-forecast"

    @property
    def sales_feature_group(self) -> str:
        return f"{self.prefix}-sales-daily"

    @property
    def sagemaker_role_name(self) -> str:
        return f"{self.prefix}-sagemaker-execution"

    @property
    def sagemaker_role_arn(self) -> str:
        return self.arn("iam", f"role/{self.sagemaker_role_name}", region=False)

    def pipeline_arn(self, pipeline_name: str) -> str:
        return self.arn("sagemaker", f"pipeline/{pipeline_name}")

    @property
    def model_package_groups(self) -> dict[str, str]:
        """Tenant -> ModelPackageGroup name, as the registry adapters name them."""
        return {tenant: registry_group(tenant) for tenant in self.tenants}

    def arn(self, service: str, resource: str, *, region: bool = True, account: bool = True) -> str:
        """An ARN in this environment, literal (no tokens) so policies and nag findings read plainly."""
        return (
            f"arn:{self.partition}:{service}:{self.region if region else ''}:"
            f"{self.account if account else ''}:{resource}"
        )


_DEV = EnvConfig(
    name="dev",
    account="111111111111",
    region="eu-west-1",
    tenants=("demo",),
    aurora=AuroraCapacity(min_acu=0.5, max_acu=2),
    throttle=ApiThrottle(rate_limit=20, burst_limit=40),
    alarms=AlarmThresholds(
        api_5xx_per_5min=20, api_p95_latency_ms=3000, pipeline_failures_per_day=3, drift_detections_per_day=1
    ),
    schedules=Schedules(
        daily_forecast="cron(0 4 * * ? *)",
        weekly_retrain="cron(0 2 ? * SUN *)",
        drift_check="cron(0 6 * * ? *)",
    ),
    retain_data=False,
    deletion_protection=False,
    log_retention_days=14,
    backup_retention_days=1,
    noncurrent_version_expiry_days=7,
    secret_rotation_days=30,
    auto_approve=True,
)

_STAGING = EnvConfig(
    name="staging",
    account="222222222222",
    region="eu-west-1",
    tenants=("demo", "acme-retail"),
    aurora=AuroraCapacity(min_acu=0.5, max_acu=4),
    throttle=ApiThrottle(rate_limit=50, burst_limit=100),
    alarms=AlarmThresholds(
        api_5xx_per_5min=10, api_p95_latency_ms=2000, pipeline_failures_per_day=1, drift_detections_per_day=1
    ),
    schedules=_DEV.schedules,
    retain_data=True,
    deletion_protection=False,
    log_retention_days=30,
    backup_retention_days=7,
    noncurrent_version_expiry_days=30,
    secret_rotation_days=30,
)

_PROD = EnvConfig(
    name="prod",
    account="333333333333",
    region="eu-west-1",
    tenants=("acme-retail", "northwind"),
    aurora=AuroraCapacity(min_acu=1, max_acu=16),
    throttle=ApiThrottle(rate_limit=200, burst_limit=400),
    alarms=AlarmThresholds(
        api_5xx_per_5min=5, api_p95_latency_ms=1000, pipeline_failures_per_day=1, drift_detections_per_day=1
    ),
    schedules=_DEV.schedules,
    retain_data=True,
    deletion_protection=True,
    log_retention_days=365,
    backup_retention_days=14,
    noncurrent_version_expiry_days=90,
    secret_rotation_days=30,
    max_azs=3,
)

ENVIRONMENTS: dict[str, EnvConfig] = {cfg.name: cfg for cfg in (_DEV, _STAGING, _PROD)}


def get_config(name: str) -> EnvConfig:
    """The configuration of environment ``name``; the error lists the valid names."""
    try:
        return ENVIRONMENTS[name]
    except KeyError:
        raise InfraConfigError(
            f"unknown environment {name!r} (context key 'env'); expected one of {sorted(ENVIRONMENTS)}"
        ) from None
