"""The dev app, synthesized once offline: resources, key properties, least privilege and cdk-nag."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App, Stack
from aws_cdk import aws_s3 as s3
from aws_cdk.assertions import Match, Template

from infra.config import get_config
from infra.errors import InfraError
from infra.feature_spec import SALES_FEATURES
from infra.monitor_image import DOCKERFILE
from infra.nag import MIN_REASON_CHARS, acknowledge, enable_checks
from infra.stacks.api import PIPELINE_ARTIFACT, PIPELINE_DOCUMENT, PIPELINE_RUNS_PREFIX, REGISTRY_PREFIX
from infra.stacks.common import VPC_ENI_ACTIONS
from infra.synth import SynthResult, main, read_findings, synthesize

CONFIG = get_config("dev")
# Every rule we acknowledge somewhere; a new kind of exception must be added here, in review.
ACKNOWLEDGED_RULES = {
    "AwsSolutions-IAM5",
    "AwsSolutions-L1",
    "AwsSolutions-APIG4",
    "AwsSolutions-S1",
    "AwsSolutions-RDS10",
    "AwsSolutions-RDS11",
}
# Actions AWS offers no resource-level permission for; nothing else may be granted on "*".
STAR_ACTIONS = {
    *VPC_ENI_ACTIONS,
    "sagemaker:ListModelPackages",
    "ecr:GetAuthorizationToken",
    "cloudwatch:PutMetricData",
}


@pytest.fixture(scope="module")
def dev(tmp_path_factory: pytest.TempPathFactory, pipeline_dir: Path, lambda_asset: Path) -> SynthResult:
    outdir = tmp_path_factory.mktemp("cdk.out")
    return synthesize("dev", outdir, pipeline_definitions_dir=pipeline_dir, lambda_asset_dir=lambda_asset)


def template(result: SynthResult, concern: str) -> Template:
    return Template.from_json(result.template(concern))


def of_type(result: SynthResult, concern: str, kind: str) -> dict[str, dict[str, Any]]:
    resources = result.template(concern)["Resources"]
    return {lid: r.get("Properties", {}) for lid, r in resources.items() if r["Type"] == kind}


def flatten(value: Any) -> str:
    """A CloudFormation string (possibly Fn::Join of tokens) as text, tokens shown as <ref>."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        return separator.join(flatten(part) for part in parts)
    return "<ref>"


def statements(result: SynthResult) -> Iterator[tuple[str, dict[str, Any]]]:
    for concern in result.stack_names:
        for kind in ("AWS::IAM::Policy", "AWS::IAM::Role", "AWS::IAM::ManagedPolicy"):
            for lid, props in of_type(result, concern, kind).items():
                documents = [props.get("PolicyDocument")] + [
                    p["PolicyDocument"] for p in props.get("Policies", [])
                ]
                for document in filter(None, documents):
                    for statement in document["Statement"]:
                        yield f"{concern}/{lid}", statement


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


# --- cdk-nag -------------------------------------------------------------------------------------


def test_cdk_nag_reports_nothing_unacknowledged(dev: SynthResult) -> None:
    assert dev.findings == (), "\n".join(str(f) for f in dev.findings)


def test_every_acknowledgment_is_a_known_rule_with_a_real_reason(dev: SynthResult) -> None:
    seen: set[str] = set()
    for concern in dev.stack_names:
        for resource in dev.template(concern)["Resources"].values():
            for rule in resource.get("Metadata", {}).get("cdk_nag", {}).get("rules_to_suppress", []):
                if rule["id"].startswith("AwsSolutions-"):
                    seen.add(rule["id"].split("[")[0])
                    assert len(rule["reason"]) >= MIN_REASON_CHARS, rule
    assert seen == ACKNOWLEDGED_RULES


def test_nag_collection_catches_a_violation(tmp_path: Path) -> None:
    """The check above can fail: an unencrypted, unlogged bucket is reported as errors."""
    app = App(outdir=str(tmp_path))
    s3.Bucket(Stack(app, "Bad"), "Open")
    enable_checks(app)
    with pytest.raises(RuntimeError, match="ValidationFailed"):
        app.synth()
    rules = {finding.rule for finding in read_findings(tmp_path / "validation-report.json")}
    assert {"AwsSolutions-S1", "AwsSolutions-S10"} <= rules


@pytest.mark.parametrize("reason", ["ok", "TODO: justify this later, after the release is out the door"])
def test_lazy_reasons_are_refused(reason: str) -> None:
    with pytest.raises(InfraError, match="must explain"):
        acknowledge(Stack(App(), "S"), "AwsSolutions-S1", reason)


def test_synth_is_offline(dev: SynthResult) -> None:
    manifest = json.loads((dev.outdir / "manifest.json").read_text(encoding="utf-8"))
    assert "missing" not in manifest  # no context provider lookups were requested
    for concern, name in dev.stack_names.items():
        environment = manifest["artifacts"][name]["environment"]
        assert environment == f"aws://{CONFIG.account}/{CONFIG.region}", concern


# --- least privilege -----------------------------------------------------------------------------


def test_star_resources_only_for_actions_without_resource_permissions(dev: SynthResult) -> None:
    for source, statement in statements(dev):
        actions = set(as_list(statement["Action"]))
        assert not any(action.endswith(":*") or action == "*" for action in actions), (source, actions)
        if "*" in as_list(statement.get("Resource", [])) and statement["Effect"] == "Allow":
            assert actions <= STAR_ACTIONS, (source, actions - STAR_ACTIONS)
            if "cloudwatch:PutMetricData" in actions:
                assert "cloudwatch:namespace" in json.dumps(statement.get("Condition", {})), source


def test_sagemaker_role_is_scoped_to_this_environment(dev: SynthResult) -> None:
    allowed_prefixes = (
        *(CONFIG.pipeline_arn(p) for p in (CONFIG.build_pipeline, CONFIG.forecast_pipeline)),
        *(
            CONFIG.arn("sagemaker", f"{kind}/pipelines-*")
            for kind in ("processing-job", "training-job", "transform-job", "model")
        ),
        CONFIG.arn("sagemaker", "model-package-group/ordernimbus-"),
        CONFIG.arn("sagemaker", "model-package/ordernimbus-"),
        CONFIG.arn("sagemaker", "feature-group/ordernimbus-"),
    )
    role_statements = [s for src, s in statements(dev) if src.startswith("ml/SageMakerExecution")]
    assert role_statements
    for statement in role_statements:
        resources = [flatten(r) for r in as_list(statement["Resource"])]
        actions = as_list(statement["Action"])
        for resource in resources:
            if any(a.startswith("sagemaker:") for a in actions) and resource != "*":
                assert resource.startswith(allowed_prefixes), resource
            if any(a.startswith("s3:") for a in actions):
                assert resource.split("/")[0] in {
                    f"arn:aws:s3:::{CONFIG.lake_bucket}",
                    f"arn:aws:s3:::{CONFIG.artifacts_bucket}",
                }, resource
    pass_role = next(s for s in role_statements if s["Action"] == "iam:PassRole")
    assert pass_role["Resource"] == CONFIG.sagemaker_role_arn
    assert pass_role["Condition"] == {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}}


def test_eventbridge_may_start_only_our_two_pipelines(dev: SynthResult) -> None:
    role_statements = [s for src, s in statements(dev) if src.startswith("events/StartPipelinesRole")]
    assert len(role_statements) == 1
    assert role_statements[0]["Action"] == "sagemaker:StartPipelineExecution"
    assert sorted(role_statements[0]["Resource"]) == sorted(
        CONFIG.pipeline_arn(p) for p in (CONFIG.build_pipeline, CONFIG.forecast_pipeline)
    )


# --- storage -------------------------------------------------------------------------------------


def test_data_buckets_are_encrypted_versioned_tiered_and_logged(dev: SynthResult) -> None:
    t = template(dev, "storage")
    t.resource_count_is("AWS::S3::Bucket", 3)
    t.has_resource_properties("AWS::KMS::Key", {"EnableKeyRotation": True})
    for name in (CONFIG.lake_bucket, CONFIG.artifacts_bucket):
        t.has_resource_properties(
            "AWS::S3::Bucket",
            {
                "BucketName": name,
                "BucketEncryption": {
                    "ServerSideEncryptionConfiguration": [
                        {
                            "ServerSideEncryptionByDefault": {
                                "SSEAlgorithm": "aws:kms",
                                "KMSMasterKeyID": Match.any_value(),
                            },
                            "BucketKeyEnabled": True,
                        }
                    ]
                },
                "VersioningConfiguration": {"Status": "Enabled"},
                "PublicAccessBlockConfiguration": {
                    "BlockPublicAcls": True,
                    "BlockPublicPolicy": True,
                    "IgnorePublicAcls": True,
                    "RestrictPublicBuckets": True,
                },
                "LoggingConfiguration": {
                    "DestinationBucketName": {"Ref": Match.any_value()},
                    "LogFilePrefix": f"{name}/",
                },
                "LifecycleConfiguration": {
                    "Rules": [
                        Match.object_like(
                            {
                                "Status": "Enabled",
                                "Transitions": [{"StorageClass": "STANDARD_IA", "TransitionInDays": 30}],
                                "NoncurrentVersionExpiration": {
                                    "NoncurrentDays": CONFIG.noncurrent_version_expiry_days
                                },
                            }
                        )
                    ]
                },
            },
        )
    policies = of_type(dev, "storage", "AWS::S3::BucketPolicy")
    assert len(policies) == 3
    for policy in policies.values():
        assert any(
            s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
            for s in policy["PolicyDocument"]["Statement"]
        )


# --- data ----------------------------------------------------------------------------------------


def test_vpc_is_isolated_without_nat(dev: SynthResult) -> None:
    t = template(dev, "data")
    t.resource_count_is("AWS::EC2::NatGateway", 0)
    t.resource_count_is("AWS::EC2::InternetGateway", 0)
    t.resource_count_is("AWS::EC2::Subnet", CONFIG.max_azs)
    t.resource_count_is("AWS::EC2::FlowLog", 1)
    endpoints = of_type(dev, "data", "AWS::EC2::VPCEndpoint")
    services = {
        flatten(p["ServiceName"]).removeprefix("com.amazonaws.").split(".", 1)[1] for p in endpoints.values()
    }
    assert services == {"s3", "secretsmanager", "sagemaker.api", "monitoring"}  # no internet path needed
    for props in of_type(dev, "data", "AWS::EC2::SecurityGroup").values():
        for rule in props.get("SecurityGroupIngress", []):
            assert rule.get("CidrIp") not in {"0.0.0.0/0"}, rule


def test_aurora_serverless_v2_is_encrypted_with_iam_auth_and_backups(dev: SynthResult) -> None:
    t = template(dev, "data")
    t.has_resource_properties(
        "AWS::RDS::DBCluster",
        {
            "Engine": "aurora-postgresql",
            "StorageEncrypted": True,
            "KmsKeyId": Match.any_value(),
            "EnableIAMDatabaseAuthentication": True,
            "BackupRetentionPeriod": CONFIG.backup_retention_days,
            "DeletionProtection": False,
            "ServerlessV2ScalingConfiguration": {
                "MinCapacity": CONFIG.aurora.min_acu,
                "MaxCapacity": CONFIG.aurora.max_acu,
            },
            "EnableCloudwatchLogsExports": ["postgresql"],
        },
    )
    instances = of_type(dev, "data", "AWS::RDS::DBInstance")
    assert (
        sorted(p["DBInstanceClass"] for p in instances.values()) == ["db.serverless"] * 2
    )  # writer + reader
    assert all(p["PubliclyAccessible"] is False for p in instances.values())
    t.has_resource_properties(
        "AWS::RDS::DBProxy",
        {
            "RequireTLS": True,
            "EngineFamily": "POSTGRESQL",
            "Auth": Match.array_with([Match.object_like({"IAMAuth": "REQUIRED"})]),
        },
    )
    t.resource_count_is("AWS::SecretsManager::RotationSchedule", 2)


# --- ml ------------------------------------------------------------------------------------------


def test_pipelines_deploy_the_compiled_definitions_with_placeholders_filled(dev: SynthResult) -> None:
    pipelines = {p["PipelineName"]: p for p in of_type(dev, "ml", "AWS::SageMaker::Pipeline").values()}
    assert set(pipelines) == {CONFIG.build_pipeline, CONFIG.forecast_pipeline}
    for name, props in pipelines.items():
        body = flatten(props["PipelineDefinition"]["PipelineDefinitionBody"])
        assert "${OrderNimbus:" not in body
        definition = json.loads(body)
        assert definition["Version"] == "2020-12-01"
        step = definition["Steps"][0]
        assert step["Type"] == "Processing"
        assert step["Arguments"]["RoleArn"] == CONFIG.sagemaker_role_arn
        assert step["Arguments"]["ProcessingResources"]["ClusterConfig"]["VolumeKmsKeyId"] == "<ref>"
        outputs = json.dumps(step["Arguments"]["ProcessingOutputConfig"])
        assert f"s3://{CONFIG.artifacts_bucket}/" in outputs, name


def test_model_package_group_per_tenant(dev: SynthResult) -> None:
    groups = of_type(dev, "ml", "AWS::SageMaker::ModelPackageGroup")
    assert sorted(p["ModelPackageGroupName"] for p in groups.values()) == [
        f"ordernimbus-{t}" for t in CONFIG.tenants
    ]


def test_feature_group_matches_the_spec(dev: SynthResult) -> None:
    (props,) = of_type(dev, "ml", "AWS::SageMaker::FeatureGroup").values()
    assert props["RecordIdentifierFeatureName"] == "record_id"
    assert props["EventTimeFeatureName"] == "event_time"
    assert [(f["FeatureName"], f["FeatureType"]) for f in props["FeatureDefinitions"]] == list(SALES_FEATURES)
    assert props["OnlineStoreConfig"]["EnableOnlineStore"] is True
    assert "KmsKeyId" in props["OnlineStoreConfig"]["SecurityConfig"]
    storage = props["OfflineStoreConfig"]["S3StorageConfig"]
    assert storage["S3Uri"] == f"s3://{CONFIG.lake_bucket}/feature-store"
    assert "KmsKeyId" in storage


# --- api -----------------------------------------------------------------------------------------


def test_api_lambda_runs_in_the_vpc_with_proxy_url(dev: SynthResult) -> None:
    functions = of_type(dev, "api", "AWS::Lambda::Function")
    (props,) = functions.values()
    assert props["Runtime"] == "python3.11"
    assert props["Handler"] == "serving.lambda_handler.handler"
    assert len(props["VpcConfig"]["SubnetIds"]) == CONFIG.max_azs
    env = props["Environment"]["Variables"]
    assert flatten(env["ORDERNIMBUS_DATABASE_URL"]) == (
        "postgresql+psycopg://ordernimbus_app@<ref>:5432/ordernimbus?sslmode=require"
    )
    assert env["ORDERNIMBUS_REGISTRY_BACKEND"] == "sagemaker"
    connect = [s for src, s in statements(dev) if src.startswith("api/") and s["Action"] == "rds-db:connect"]
    assert len(connect) == 1
    assert flatten(connect[0]["Resource"]).endswith("/ordernimbus_app")


def test_http_api_stage_is_throttled_with_json_access_logs(dev: SynthResult) -> None:
    (stage,) = of_type(dev, "api", "AWS::ApiGatewayV2::Stage").values()
    assert stage["DefaultRouteSettings"] == {
        "ThrottlingBurstLimit": CONFIG.throttle.burst_limit,
        "ThrottlingRateLimit": CONFIG.throttle.rate_limit,
    }
    fields = json.loads(stage["AccessLogSettings"]["Format"])
    assert {"requestId", "status", "routeKey", "responseLatencyMs"} <= set(fields)
    template(dev, "api").has_resource_properties(
        "AWS::Logs::LogGroup",
        {
            "LogGroupName": f"/ordernimbus/{CONFIG.name}/api-access",
            "RetentionInDays": CONFIG.log_retention_days,
        },
    )


def test_api_lambda_reaches_only_its_tenants_registry_objects_in_the_artifacts_bucket(
    dev: SynthResult,
) -> None:
    bucket = f"arn:aws:s3:::{CONFIG.artifacts_bucket}"
    (tenant,) = CONFIG.tenants
    audit = f"registry/ordernimbus-{tenant}/audit/"
    run = f"{bucket}/pipelines/runs/{tenant}/*"
    template(dev, "api").has_resource_properties(
        "AWS::IAM::Policy",
        {
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [
                        {
                            "Sid": "ListAuditEntries",
                            "Effect": "Allow",
                            "Action": "s3:ListBucket",
                            "Resource": bucket,
                            "Condition": {"StringEquals": {"s3:prefix": [audit]}},
                        },
                        {
                            "Sid": "ReadWriteAuditEntries",
                            "Effect": "Allow",
                            "Action": ["s3:GetObject", "s3:PutObject"],
                            "Resource": f"{bucket}/{audit}*",
                        },
                        {
                            "Sid": "ReadVersionDocuments",
                            "Effect": "Allow",
                            "Action": "s3:GetObject",
                            "Resource": [
                                f"{bucket}/registry/ordernimbus-{tenant}/versions/*",
                                f"{run}/Evaluate/evaluation/document.json",
                            ],
                        },
                        {
                            "Sid": "ReadModelArtifacts",
                            "Effect": "Allow",
                            "Action": "s3:GetObject",
                            "Resource": f"{run}/Evaluate/model/model.tar.gz",
                        },
                        {
                            "Sid": "UseDataKeyThroughS3",
                            "Effect": "Allow",
                            "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
                            "Resource": {"Fn::ImportValue": Match.string_like_regexp("DataKey")},
                            "Condition": {
                                "StringEquals": {"kms:ViaService": f"s3.{CONFIG.region}.amazonaws.com"}
                            },
                        },
                    ]
                )
            }
        },
    )


def test_api_lambda_grants_nothing_else(dev: SynthResult) -> None:
    """The whole access policy: S3 writes are audit entries only, KMS is the data key through S3."""
    grants = {
        s["Sid"]: sorted(as_list(s["Action"]))
        for src, s in statements(dev)
        if src.startswith("api/ApiAccess")
    }
    assert grants == {
        "OwnLogGroup": ["logs:CreateLogStream", "logs:PutLogEvents"],
        "VpcNetworking": sorted(VPC_ENI_ACTIONS),
        "TenantRegistries": [
            "sagemaker:DescribeModelPackage",
            "sagemaker:DescribeModelPackageGroup",
            "sagemaker:UpdateModelPackage",
        ],
        "ListModelPackages": ["sagemaker:ListModelPackages"],
        "ListAuditEntries": ["s3:ListBucket"],
        "ReadWriteAuditEntries": ["s3:GetObject", "s3:PutObject"],
        "ReadVersionDocuments": ["s3:GetObject"],
        "ReadModelArtifacts": ["s3:GetObject"],
        "UseDataKeyThroughS3": ["kms:Decrypt", "kms:GenerateDataKey"],
    }


def test_api_grant_prefixes_follow_the_layout_the_code_writes() -> None:
    """The key layout in infra/stacks/api.py is the registry adapter's and the build pipeline's."""
    from models.registry.sagemaker import SageMakerRegistry
    from pipelines.definition import build_pipeline
    from pipelines.sagemaker_target import SageMakerTarget

    registry = SageMakerRegistry("eu-west-1", object(), audit_bucket="b", s3_client=object())
    assert registry.prefix == REGISTRY_PREFIX
    target = SageMakerTarget(region="eu-west-1", role_arn="arn:aws:iam::1:role/r", bucket="b")
    assert target.output_root() == f"s3://b/{PIPELINE_RUNS_PREFIX}"
    (register,) = [s for s in build_pipeline().steps if s.name == "Register"]
    sources = {i.name: i.source for i in register.inputs}
    assert PIPELINE_DOCUMENT.startswith(sources["evaluation"] + "/")
    assert PIPELINE_ARTIFACT.startswith(sources["model"] + "/")


# --- events --------------------------------------------------------------------------------------


def _pipeline_rules(dev: SynthResult) -> dict[str, dict[str, Any]]:
    return {
        lid: p
        for lid, p in of_type(dev, "events", "AWS::Events::Rule").items()
        if "SageMakerPipelineParameters" in p["Targets"][0]
    }


def test_schedules_and_approvals_start_the_right_pipeline_per_tenant(dev: SynthResult) -> None:
    rules = _pipeline_rules(dev)
    assert len(rules) == 3 * len(CONFIG.tenants)
    forecast, build = (CONFIG.pipeline_arn(p) for p in (CONFIG.forecast_pipeline, CONFIG.build_pipeline))
    kinds = []
    for props in rules.values():
        target = props["Targets"][0]
        parameters = {
            p["Name"]: p["Value"] for p in target["SageMakerPipelineParameters"]["PipelineParameterList"]
        }
        assert parameters["TenantId"] in CONFIG.tenants
        assert parameters["InputDataUri"] == f"s3://{CONFIG.lake_bucket}/sales/{parameters['TenantId']}"
        if "ScheduleExpression" in props and target["Arn"] == build:
            assert props["ScheduleExpression"] == CONFIG.schedules.weekly_retrain
            assert parameters["ModelApprovalStatus"] == "Approved"  # dev auto-approves
            kinds.append("retrain")
        elif "ScheduleExpression" in props:
            assert (target["Arn"], props["ScheduleExpression"]) == (forecast, CONFIG.schedules.daily_forecast)
            kinds.append("forecast")
        else:
            kinds.append("approval")
            assert target["Arn"] == forecast
            assert props["EventPattern"]["detail-type"] == ["SageMaker Model Package State Change"]
            assert props["EventPattern"]["detail"] == {
                "ModelPackageGroupName": [f"ordernimbus-{parameters['TenantId']}"],
                "ModelApprovalStatus": ["Approved"],
            }
    assert sorted(kinds) == sorted(["approval", "forecast", "retrain"] * len(CONFIG.tenants))


def _monitor(dev: SynthResult) -> tuple[str, dict[str, Any]]:
    (monitor,) = of_type(dev, "events", "AWS::Lambda::Function").items()
    return monitor


def test_monitor_is_a_container_image_with_room_for_evidently(dev: SynthResult) -> None:
    _, props = _monitor(dev)
    assert props["PackageType"] == "Image"
    assert "Runtime" not in props
    assert "Handler" not in props  # the image's CMD: monitoring.lambda_handler.handler
    assert (props["MemorySize"], props["Timeout"]) == (3008, 15 * 60)
    assert props["Architectures"] == ["x86_64"]
    assert props["FunctionName"] == f"{CONFIG.prefix}-monitor"
    assert len(props["VpcConfig"]["SubnetIds"]) == CONFIG.max_azs
    env = props["Environment"]["Variables"]
    assert env["ORDERNIMBUS_BUILD_PIPELINE_NAME"] == CONFIG.build_pipeline
    assert env["ORDERNIMBUS_LAKE_URI"] == CONFIG.lake_root_uri
    assert env["ORDERNIMBUS_METRIC_NAMESPACE"] == "OrderNimbus"
    (image_hash, image) = _docker_images(dev)
    assert image["source"]["dockerFile"] == DOCKERFILE
    assert image["source"]["platform"] == "linux/amd64"
    assert flatten(props["Code"]["ImageUri"]["Fn::Sub"]).endswith(
        f"container-assets-{CONFIG.account}-{CONFIG.region}:{image_hash}"
    )


def _docker_images(dev: SynthResult) -> tuple[str, dict[str, Any]]:
    manifest = json.loads(
        (dev.outdir / f"{dev.stack_names['events']}.assets.json").read_text(encoding="utf-8")
    )
    (image,) = manifest["dockerImages"].items()
    return image


def test_monitor_image_context_is_only_what_the_dockerfile_copies(dev: SynthResult) -> None:
    """Synthesis staged the build context (Docker runs at deploy): no .venv, build, tests or data."""
    _, image = _docker_images(dev)
    context = dev.outdir / image["source"]["directory"]
    files = [p.relative_to(context).as_posix() for p in context.rglob("*") if p.is_file()]
    assert {f.split("/")[0] for f in files} == {
        "pyproject.toml", "requirements.lock", "README.md", "infra",
        "ordernimbus", "features", "inference", "models", "monitoring", "pipelines",
    }  # fmt: skip
    assert [f for f in files if f.startswith("infra/")] == [DOCKERFILE]
    assert not [f for f in files if "__pycache__" in f or f.endswith(".pyc")]
    assert "monitoring/lambda_handler.py" in files
    assert sum((context / f).stat().st_size for f in files) < 5_000_000


def test_monitor_may_read_its_tenants_and_start_only_the_build(dev: SynthResult) -> None:
    grants = {
        s["Sid"]: (sorted(as_list(s["Action"])), [flatten(r) for r in as_list(s["Resource"])])
        for src, s in statements(dev)
        if src.startswith("events/MonitorAccess")
    }
    build = CONFIG.pipeline_arn(CONFIG.build_pipeline)
    lake = f"arn:aws:s3:::{CONFIG.lake_bucket}"
    (tenant,) = CONFIG.tenants
    assert grants == {
        "OwnLogGroup": (["logs:CreateLogStream", "logs:PutLogEvents"], ["<ref>"]),
        "VpcNetworking": (sorted(VPC_ENI_ACTIONS), ["*"]),
        "ListLake": (["s3:ListBucket"], [lake]),
        "ReadLake": (["s3:GetObject"], [f"{lake}/*"]),
        "DecryptLake": (["kms:Decrypt"], ["<ref>"]),
        "ReadModelVersions": (
            ["sagemaker:DescribeModelPackage", "sagemaker:DescribeModelPackageGroup"],
            [
                CONFIG.arn("sagemaker", f"model-package-group/ordernimbus-{tenant}"),
                CONFIG.arn("sagemaker", f"model-package/ordernimbus-{tenant}/*"),
            ],
        ),
        "ListModelVersions": (["sagemaker:ListModelPackages"], ["*"]),
        "ReadVersionDocuments": (
            ["s3:GetObject"],
            [
                f"arn:aws:s3:::{CONFIG.artifacts_bucket}/registry/ordernimbus-{tenant}/versions/*",
                f"arn:aws:s3:::{CONFIG.artifacts_bucket}/pipelines/runs/{tenant}/*/Evaluate/evaluation/document.json",
            ],
        ),
        "ListBuilds": (["sagemaker:ListPipelineExecutions"], [build]),
        "BuildParameters": (["sagemaker:ListPipelineParametersForExecution"], [f"{build}/execution/*"]),
        "StartRetraining": (["sagemaker:StartPipelineExecution"], [build]),
        "DriftMetric": (["cloudwatch:PutMetricData"], ["*"]),
    }
    connect = [
        s for src, s in statements(dev) if src.startswith("events/") and s["Action"] == "rds-db:connect"
    ]
    assert len(connect) == 1
    assert flatten(connect[0]["Resource"]).endswith("/ordernimbus_app")
    monitor_role = [src for src, _ in statements(dev) if src.startswith("events/MonitorRole")]
    assert all(not src.endswith("Policy") or "DefaultPolicy" in src for src in monitor_role)  # no ECR grants


def test_drift_check_schedule_invokes_the_monitor(dev: SynthResult) -> None:
    monitor_id, _ = _monitor(dev)
    drift = [p for p in of_type(dev, "events", "AWS::Events::Rule").values() if "Input" in p["Targets"][0]]
    assert len(drift) == 1
    assert drift[0]["ScheduleExpression"] == CONFIG.schedules.drift_check
    assert drift[0]["State"] == "ENABLED"
    (target,) = drift[0]["Targets"]
    assert target["Arn"] == {"Fn::GetAtt": [monitor_id, "Arn"]}
    assert target["RetryPolicy"]["MaximumRetryAttempts"] == 2
    assert json.loads(target["Input"]) == {"environment": "dev", "tenants": list(CONFIG.tenants)}
    template(dev, "events").has_resource_properties(
        "AWS::Lambda::Permission",
        {
            "Action": "lambda:InvokeFunction",
            "FunctionName": {"Fn::GetAtt": [monitor_id, "Arn"]},
            "Principal": "events.amazonaws.com",
        },
    )


# --- observability -------------------------------------------------------------------------------


def test_alarms_cover_api_pipelines_and_drift_and_notify_the_encrypted_topic(dev: SynthResult) -> None:
    t = template(dev, "observability")
    t.has_resource_properties("AWS::SNS::Topic", {"KmsMasterKeyId": Match.any_value()})
    alarms = of_type(dev, "observability", "AWS::CloudWatch::Alarm")
    metrics = {(a.get("Namespace"), a.get("MetricName")) for a in alarms.values()}
    assert {
        ("AWS/ApiGateway", "5xx"),
        ("AWS/ApiGateway", "Latency"),
        ("AWS/Sagemaker/ModelBuildingPipeline", "ExecutionFailed"),
        ("OrderNimbus", "DriftDetected"),
        ("AWS/Lambda", "Errors"),
    } <= metrics
    latency = next(a for a in alarms.values() if a.get("MetricName") == "Latency")
    assert latency["ExtendedStatistic"] == "p95"
    assert latency["Threshold"] == CONFIG.alarms.api_p95_latency_ms
    assert all(len(a["AlarmActions"]) == 1 for a in alarms.values())
    t.has_resource_properties(
        "AWS::Events::Rule",
        {
            "EventPattern": {
                "source": ["aws.sagemaker"],
                "detail-type": ["SageMaker Model Building Pipeline Execution Status Change"],
                "detail": {"currentPipelineExecutionStatus": ["Failed"], "pipelineArn": Match.any_value()},
            },
            "Targets": [Match.object_like({"Arn": {"Ref": Match.any_value()}})],
        },
    )
    (topic_policy,) = of_type(dev, "observability", "AWS::SNS::TopicPolicy").values()
    assert any(
        st["Effect"] == "Deny" and st["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
        for st in topic_policy["PolicyDocument"]["Statement"]
    )
    key_policy = next(iter(of_type(dev, "observability", "AWS::KMS::Key").values()))["KeyPolicy"]
    services = [s["Principal"].get("Service") for s in key_policy["Statement"] if "Service" in s["Principal"]]
    assert ["cloudwatch.amazonaws.com", "events.amazonaws.com"] in services


def test_resource_counts_per_stack(dev: SynthResult) -> None:
    counts = {concern: len(dev.template(concern)["Resources"]) for concern in dev.stack_names}
    assert counts["ml"] == 5 + len(CONFIG.tenants)  # role, policy, 2 pipelines, feature group + groups
    assert all(count > 0 for count in counts.values()), counts


def test_synth_cli_prints_stacks_and_exits_zero(
    tmp_path: Path, pipeline_dir: Path, lambda_asset: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [
        "--env",
        "dev",
        "--out",
        str(tmp_path / "out"),
        "--pipeline-definitions-dir",
        str(pipeline_dir),
        "--lambda-asset-dir",
        str(lambda_asset),
    ]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert all(f"ordernimbus-dev-{concern}" in out for concern in ("storage", "data", "ml", "api", "events"))
    assert "0 unacknowledged cdk-nag errors" in out
    assert (tmp_path / "out" / "ordernimbus-dev-observability.template.json").is_file()
