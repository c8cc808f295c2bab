"""Small builders every stack shares: environments, removal policies, log groups, Lambda functions.

They exist so that a retention or a least-privilege decision is made once: every log group gets
the environment's retention, and every Lambda role gets exactly the logging and VPC networking it
needs instead of the broad AWS managed ``AWSLambdaBasicExecutionRole``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aws_cdk import Duration, Environment, IgnoreMode, RemovalPolicy
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecr_assets as ecr_assets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra.config import LOG_RETENTION_DAYS, EnvConfig
from infra.grants import Grant, attach
from infra.monitor_image import ImageAsset
from infra.nag import acknowledge

# CloudWatch retention in days -> the CDK enum member, in the enum's own (ascending) order.
_RETENTION = dict(
    zip(LOG_RETENTION_DAYS, [m for m in logs.RetentionDays if m.name != "INFINITE"], strict=True)
)

# Lambda attaches ENIs in the VPC; AWS documents these actions with Resource "*" (Describe* have no
# resource-level permissions, and Lambda validates the role before it knows the ENI ids).
VPC_ENI_ACTIONS: tuple[str, ...] = (
    "ec2:CreateNetworkInterface",
    "ec2:DescribeNetworkInterfaces",
    "ec2:DescribeSubnets",
    "ec2:DeleteNetworkInterface",
    "ec2:AssignPrivateIpAddresses",
    "ec2:UnassignPrivateIpAddresses",
)


def aws_env(config: EnvConfig) -> Environment:
    """Explicit account and region: synthesis never asks AWS (no lookups, no credentials)."""
    return Environment(account=config.account, region=config.region)


def removal_policy(config: EnvConfig) -> RemovalPolicy:
    return RemovalPolicy.RETAIN if config.retain_data else RemovalPolicy.DESTROY


def retention(config: EnvConfig) -> logs.RetentionDays:
    return _RETENTION[config.log_retention_days]


def log_group(scope: Construct, construct_id: str, config: EnvConfig, name: str) -> logs.LogGroup:
    return logs.LogGroup(
        scope,
        construct_id,
        log_group_name=name,
        retention=retention(config),
        removal_policy=removal_policy(config),
    )


def service_environment(config: EnvConfig, database_url: str) -> dict[str, str]:
    """``ORDERNIMBUS_*`` settings shared by the API and monitor functions (read by Settings)."""
    return {
        "ORDERNIMBUS_HOME": "/tmp/ordernimbus",  # the only writable path in Lambda
        "ORDERNIMBUS_DATABASE_URL": database_url,
        "ORDERNIMBUS_DATABASE_IAM_AUTH": "true",
        "ORDERNIMBUS_REGISTRY_BACKEND": "sagemaker",
        "ORDERNIMBUS_PIPELINE_BACKEND": "sagemaker",
        "ORDERNIMBUS_AWS_REGION": config.region,
        "ORDERNIMBUS_ARTIFACTS_BUCKET": config.artifacts_bucket,
        "ORDERNIMBUS_SAGEMAKER_ROLE_ARN": config.sagemaker_role_arn,
        "ORDERNIMBUS_ENVIRONMENT": config.name,
    }


@dataclass(frozen=True)
class ZipAsset:
    """A directory deployed as a zip on the managed Python 3.11 runtime."""

    directory: Path
    handler: str


@dataclass(frozen=True)
class FunctionSpec:
    """What differs between our Lambda functions; everything else is decided in :func:`vpc_function`."""

    code: ZipAsset | ImageAsset
    environment: dict[str, str]
    timeout: Duration
    memory_mb: int
    description: str
    grants: Sequence[Grant] = ()


def vpc_function(
    scope: Construct,
    construct_id: str,
    config: EnvConfig,
    spec: FunctionSpec,
    *,
    vpc: ec2.IVpc,
    security_group: ec2.ISecurityGroup,
) -> lambda_.Function:
    """A function (Python 3.11 zip or container image) in the isolated subnets, own log group, minimal role.

    The role is built here rather than by CDK because CDK's default attaches the AWS managed
    ``AWSLambdaBasicExecutionRole`` (logs:CreateLogGroup on ``*``) and
    ``AWSLambdaVPCAccessExecutionRole``; ours writes only to the function's own log group and
    holds ``spec.grants`` in the same policy, which exists before the function is created.
    """
    logs_to = log_group(
        scope, f"{construct_id}Logs", config, f"/aws/lambda/{config.prefix}-{construct_id.lower()}"
    )
    role = iam.Role(scope, f"{construct_id}Role", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"))
    access = attach(
        iam.Policy(scope, f"{construct_id}Access", roles=[role]),
        [
            Grant("OwnLogGroup", ("logs:CreateLogStream", "logs:PutLogEvents"), (logs_to.log_group_arn,)),
            Grant(
                "VpcNetworking",
                VPC_ENI_ACTIONS,
                ("*",),
                "Lambda VPC networking: ec2 Describe* have no resource-level permissions and Lambda "
                "validates CreateNetworkInterface before any ENI exists (the actions of "
                "AWSLambdaVPCAccessExecutionRole)",
            ),
            *spec.grants,
        ],
    )
    function = _function(
        scope,
        construct_id,
        spec.code,
        function_name=f"{config.prefix}-{construct_id.lower()}",
        description=spec.description,
        environment=spec.environment,
        timeout=spec.timeout,
        memory_size=spec.memory_mb,
        role=role,
        log_group=logs_to,
        vpc=vpc,
        vpc_subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_ISOLATED),
        security_groups=[security_group],
    )
    function.node.add_dependency(access)
    return function


def _function(
    scope: Construct, construct_id: str, code: ZipAsset | ImageAsset, **common: Any
) -> lambda_.Function:
    """A zip function on the managed runtime, or an x86_64 image function (the Dockerfile's CMD)."""
    if isinstance(code, ImageAsset):
        image = lambda_.DockerImageCode.from_image_asset(
            str(code.directory),
            file=code.dockerfile,
            exclude=list(code.exclude),
            ignore_mode=IgnoreMode.DOCKER,
            platform=ecr_assets.Platform.LINUX_AMD64,
        )
        return lambda_.DockerImageFunction(
            scope, construct_id, code=image, architecture=lambda_.Architecture.X86_64, **common
        )
    function = lambda_.Function(
        scope,
        construct_id,
        runtime=lambda_.Runtime.PYTHON_3_11,
        handler=code.handler,
        code=lambda_.Code.from_asset(str(code.directory)),
        **common,
    )
    acknowledge(
        function,
        "AwsSolutions-L1",
        "The platform targets Python 3.11 (pyproject requires-python >=3.11,<3.12) and the asset is "
        "built for it; the runtime moves when the project's interpreter moves, not independently",
    )
    return function
