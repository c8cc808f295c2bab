"""Environment configuration: the rules that keep a bad value from ever reaching CloudFormation."""

from __future__ import annotations

import dataclasses
import re

import pytest

from infra.config import ENVIRONMENTS, EnvConfig, Schedules, get_config
from infra.errors import InfraConfigError
from ordernimbus.tenancy import registry_group


def _variant(**changes: object) -> EnvConfig:
    return dataclasses.replace(ENVIRONMENTS["staging"], **changes)  # type: ignore[arg-type]


def test_three_environments_with_distinct_accounts() -> None:
    assert set(ENVIRONMENTS) == {"dev", "staging", "prod"}
    assert len({cfg.account for cfg in ENVIRONMENTS.values()}) == 3


def test_unknown_environment_lists_the_valid_ones() -> None:
    with pytest.raises(InfraConfigError, match=r"'qa'.*\['dev', 'prod', 'staging'\]"):
        get_config("qa")


def test_only_dev_may_auto_approve() -> None:
    assert get_config("dev").auto_approve
    assert not get_config("staging").auto_approve
    assert not get_config("prod").auto_approve
    with pytest.raises(InfraConfigError, match="auto_approve is allowed in 'dev' only"):
        _variant(auto_approve=True)


def test_prod_is_protected_and_retained() -> None:
    prod = get_config("prod")
    assert prod.deletion_protection
    assert prod.retain_data
    assert prod.backup_retention_days >= get_config("dev").backup_retention_days


@pytest.mark.parametrize("tenant", ["Acme", "a", "acme_retail", "-acme", "acme/../other"])
def test_invalid_tenant_is_rejected_with_its_name(tenant: str) -> None:
    with pytest.raises(InfraConfigError, match=re.escape(repr(tenant))):
        _variant(tenants=("demo", tenant))


def test_duplicate_and_empty_tenants_are_rejected() -> None:
    with pytest.raises(InfraConfigError, match="duplicates"):
        _variant(tenants=("demo", "demo"))
    with pytest.raises(InfraConfigError, match="tenants is empty"):
        _variant(tenants=())


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"account": "12345"}, "account '12345' must be 12 digits"),
        ({"region": "europe"}, "region 'europe'"),
        ({"log_retention_days": 10}, "log_retention_days 10 is not a CloudWatch Logs retention"),
        ({"backup_retention_days": 0}, "backup_retention_days must be >= 1"),
    ],
)
def test_field_errors_name_the_field(changes: dict[str, object], message: str) -> None:
    with pytest.raises(InfraConfigError, match=re.escape(message)):
        _variant(**changes)


def test_aurora_capacity_must_be_ordered() -> None:
    staging = ENVIRONMENTS["staging"]
    with pytest.raises(InfraConfigError, match=r"min_acu=8.*max_acu=4"):
        _variant(aurora=dataclasses.replace(staging.aurora, min_acu=8))


def test_schedule_must_be_an_eventbridge_expression() -> None:
    with pytest.raises(InfraConfigError, match=r"schedules.weekly_retrain '0 2 \* \* 0'"):
        _variant(
            schedules=Schedules(
                daily_forecast="rate(1 day)", weekly_retrain="0 2 * * 0", drift_check="rate(1 day)"
            )
        )


def test_names_are_deterministic_and_match_the_registry_adapters() -> None:
    dev = get_config("dev")
    assert dev.lake_bucket == "ordernimbus-dev-lake-111111111111-eu-west-1"
    assert dev.model_package_groups == {"demo": registry_group("demo")} == {"demo": "ordernimbus-demo"}
    assert dev.pipeline_arn(dev.forecast_pipeline) == (
        "arn:aws:sagemaker:eu-west-1:111111111111:pipeline/ordernimbus-dev-forecast"
    )
    assert dev.sagemaker_role_arn == "arn:aws:iam::111111111111:role/ordernimbus-dev-sagemaker-execution"
    for cfg in ENVIRONMENTS.values():  # S3 bucket names: 3-63 characters
        assert all(
            len(name) <= 63 for name in (cfg.lake_bucket, cfg.artifacts_bucket, cfg.access_logs_bucket)
        )
