"""Staging and prod: the same stacks, with the differences config.py promises (and nothing else)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from infra.config import get_config
from infra.synth import SynthResult, synthesize

ENVS = ("staging", "prod")


@pytest.fixture(scope="module")
def synthesized(
    tmp_path_factory: pytest.TempPathFactory, pipeline_dir: Path, lambda_asset: Path
) -> dict[str, SynthResult]:
    return {
        env: synthesize(
            env,
            tmp_path_factory.mktemp(f"cdk.out.{env}"),
            pipeline_definitions_dir=pipeline_dir,
            lambda_asset_dir=lambda_asset,
        )
        for env in ENVS
    }


def _resources(result: SynthResult, concern: str, kind: str) -> list[dict[str, Any]]:
    return [r for r in result.template(concern)["Resources"].values() if r["Type"] == kind]


def _acknowledged(result: SynthResult) -> set[str]:
    return {
        rule["id"]
        for concern in result.stack_names
        for resource in result.template(concern)["Resources"].values()
        for rule in resource.get("Metadata", {}).get("cdk_nag", {}).get("rules_to_suppress", [])
    }


@pytest.mark.parametrize("env", ENVS)
def test_no_unacknowledged_findings(synthesized: dict[str, SynthResult], env: str) -> None:
    result = synthesized[env]
    assert result.findings == (), "\n".join(str(f) for f in result.findings)


@pytest.mark.parametrize("env", ENVS)
def test_tenants_drive_groups_and_rules(synthesized: dict[str, SynthResult], env: str) -> None:
    result, config = synthesized[env], get_config(env)
    groups = _resources(result, "ml", "AWS::SageMaker::ModelPackageGroup")
    assert sorted(g["Properties"]["ModelPackageGroupName"] for g in groups) == sorted(
        config.model_package_groups.values()
    )
    rules = _resources(result, "events", "AWS::Events::Rule")
    assert len(rules) == 3 * len(config.tenants) + 1  # forecast, retrain, approval per tenant + drift


@pytest.mark.parametrize("env", ENVS)
def test_models_wait_for_a_person_outside_dev(synthesized: dict[str, SynthResult], env: str) -> None:
    statuses = {
        parameter["Value"]
        for rule in _resources(synthesized[env], "events", "AWS::Events::Rule")
        for target in rule["Properties"]["Targets"]
        for parameter in target.get("SageMakerPipelineParameters", {}).get("PipelineParameterList", [])
        if parameter["Name"] == "ModelApprovalStatus"
    }
    assert statuses == {"PendingManualApproval"}


def test_prod_is_protected_and_retains_data(synthesized: dict[str, SynthResult]) -> None:
    result, config = synthesized["prod"], get_config("prod")
    (cluster,) = _resources(result, "data", "AWS::RDS::DBCluster")
    assert cluster["Properties"]["DeletionProtection"] is True
    assert cluster["DeletionPolicy"] == "Snapshot"
    assert cluster["Properties"]["ServerlessV2ScalingConfiguration"] == {"MinCapacity": 1, "MaxCapacity": 16}
    assert not any(rule.startswith("AwsSolutions-RDS10") for rule in _acknowledged(result))
    assert all(b["DeletionPolicy"] == "Retain" for b in _resources(result, "storage", "AWS::S3::Bucket"))
    assert all(k["DeletionPolicy"] == "Retain" for k in _resources(result, "storage", "AWS::KMS::Key"))
    assert len(_resources(result, "data", "AWS::EC2::Subnet")) == config.max_azs == 3
    manifest = json.loads((result.outdir / "manifest.json").read_text(encoding="utf-8"))
    for name in result.stack_names.values():
        assert manifest["artifacts"][name]["properties"]["terminationProtection"] is True, name


def test_staging_acknowledges_missing_deletion_protection(synthesized: dict[str, SynthResult]) -> None:
    result = synthesized["staging"]
    (cluster,) = _resources(result, "data", "AWS::RDS::DBCluster")
    assert cluster["Properties"]["DeletionProtection"] is False
    assert "AwsSolutions-RDS10" in _acknowledged(result)


@pytest.mark.parametrize("env", ENVS)
def test_retention_and_throttle_follow_config(synthesized: dict[str, SynthResult], env: str) -> None:
    result, config = synthesized[env], get_config(env)
    retentions = {
        g["Properties"]["RetentionInDays"] for g in _resources(result, "api", "AWS::Logs::LogGroup")
    }
    assert retentions == {config.log_retention_days}
    (stage,) = _resources(result, "api", "AWS::ApiGatewayV2::Stage")
    assert stage["Properties"]["DefaultRouteSettings"] == {
        "ThrottlingBurstLimit": config.throttle.burst_limit,
        "ThrottlingRateLimit": config.throttle.rate_limit,
    }
