"""API: the forecast API Lambda (FastAPI through Mangum) behind an API Gateway HTTP API.

The function runs in the isolated subnets to reach RDS Proxy and talks to SageMaker's registry
through the VPC endpoint; the registry's documents, audit log and model artifacts are objects in
the artifacts bucket, readable (and, for audit entries, writable) under its tenants' prefixes only.
Stage throttling protects Aurora from bursts before a request costs a database connection;
per-tenant rate limits stay in the app, which knows the tenant.
Authentication is the app's (the tenant is derived from the verified credential, DESIGN.md §4).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsii
from aws_cdk import Duration, Stack
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_apigatewayv2 as apigwv2
from aws_cdk import aws_apigatewayv2_integrations as integrations
from aws_cdk import aws_kms as kms
from constructs import Construct

from infra.config import EnvConfig
from infra.grants import Grant
from infra.nag import acknowledge
from infra.stacks.common import FunctionSpec, ZipAsset, aws_env, log_group, service_environment, vpc_function
from infra.stacks.data import APP_USER, DataStack

API_HANDLER = "serving.lambda_handler.handler"
# Key layout in the artifacts bucket, as the code writes it: SageMakerRegistry(prefix="registry")
# keeps registry/<group>/versions/<id>.json and registry/<group>/audit/<entry>.json
# (models/registry/sagemaker.py); the compiled build pipeline writes under
# pipelines/runs/<tenant>/<execution id>/<step>/<output> (SageMakerTarget.output_root() and
# SageMakerCompiler._output_uri in pipelines/), and its ModelStep registers
# Evaluate/evaluation/document.json as the version's document and Evaluate/model/model.tar.gz as
# its artifact.
REGISTRY_PREFIX = "registry"
PIPELINE_RUNS_PREFIX = "pipelines/runs"
PIPELINE_DOCUMENT = "Evaluate/evaluation/document.json"
PIPELINE_ARTIFACT = "Evaluate/model/model.tar.gz"
# One JSON object per request: parseable by Logs Insights without regexes.
ACCESS_LOG_FIELDS = {
    "requestId": "$context.requestId",
    "requestTime": "$context.requestTime",
    "sourceIp": "$context.identity.sourceIp",
    "httpMethod": "$context.httpMethod",
    "routeKey": "$context.routeKey",
    "path": "$context.path",
    "status": "$context.status",
    "protocol": "$context.protocol",
    "responseLength": "$context.responseLength",
    "responseLatencyMs": "$context.responseLatency",
    "integrationLatencyMs": "$context.integrationLatency",
    "integrationError": "$context.integrationErrorMessage",
    "userAgent": "$context.identity.userAgent",
}


@jsii.implements(apigwv2.IAccessLogSettings)
class _AccessLogs:
    def __init__(self, destination: apigwv2.IAccessLogDestination) -> None:
        self._destination = destination

    @property
    def destination(self) -> apigwv2.IAccessLogDestination:
        return self._destination

    @property
    def format(self) -> apigw.AccessLogFormat:
        return apigw.AccessLogFormat.custom(json.dumps(ACCESS_LOG_FIELDS))


class ApiStack(Stack):
    """Owns ``function`` and ``http_api`` (with its throttled ``$default`` stage)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: EnvConfig,
        data: DataStack,
        key: kms.IKey,
        asset_dir: Path,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, env=aws_env(config), **kwargs)
        self.function = vpc_function(
            self,
            "Api",
            config,
            FunctionSpec(
                code=ZipAsset(asset_dir, API_HANDLER),
                environment=service_environment(config, data.database_url),
                timeout=Duration.seconds(29),  # API Gateway's integration timeout
                memory_mb=1024,
                description="OrderNimbus forecast API (FastAPI via Mangum)",
                grants=[*registry_grants(config), *artifact_grants(config, key.key_arn)],
            ),
            vpc=data.vpc,
            security_group=data.lambda_security_group,
        )
        data.proxy.grant_connect(self.function, APP_USER)
        self.http_api = apigwv2.HttpApi(
            self,
            "HttpApi",
            api_name=f"{config.prefix}-api",
            description="OrderNimbus forecast API",
            default_integration=integrations.HttpLambdaIntegration("Lambda", self.function),
            create_default_stage=False,
        )
        self.stage = apigwv2.HttpStage(
            self,
            "DefaultStage",
            http_api=self.http_api,
            auto_deploy=True,
            throttle=apigwv2.ThrottleSettings(
                rate_limit=config.throttle.rate_limit, burst_limit=config.throttle.burst_limit
            ),
            access_log_settings=_AccessLogs(
                apigwv2.LogGroupLogDestination(
                    log_group(self, "AccessLogs", config, f"/ordernimbus/{config.name}/api-access")
                )
            ),
        )
        for route in self.http_api.node.find_all():
            if isinstance(route, apigwv2.CfnRoute):
                acknowledge(
                    route,
                    "AwsSolutions-APIG4",
                    "Authentication happens in the app: serving verifies the API key / JWT and "
                    "derives the tenant from it; a gateway authorizer could not resolve the tenant",
                )


def registry_grants(config: EnvConfig) -> list[Grant]:
    """Read the tenants' registries and record approvals (an approval starts the forecast pipeline)."""
    return [
        Grant(
            "TenantRegistries",
            (
                "sagemaker:DescribeModelPackageGroup",
                "sagemaker:DescribeModelPackage",
                "sagemaker:UpdateModelPackage",
            ),
            (
                config.arn("sagemaker", "model-package-group/ordernimbus-*"),
                config.arn("sagemaker", "model-package/ordernimbus-*/*"),
            ),
            "one ModelPackageGroup per tenant (ordernimbus-<tenant>) and its versions; the API serves every "
            "tenant and checks the caller's tenant before each registry call",
        ),
        Grant(
            "ListModelPackages",
            ("sagemaker:ListModelPackages",),
            ("*",),
            "ListModelPackages has no resource-level permissions in IAM; the app filters by the caller's "
            "tenant group",
        ),
    ]


def artifact_grants(config: EnvConfig, key_arn: str) -> list[Grant]:
    """What the API does in the artifacts bucket, for this environment's tenants and nothing else.

    The SageMaker registry adapter reads a version's document (metrics, lineage) on every read of the
    version: ``registry/<group>/versions/`` when the adapter registered it, the build run's
    ``document.json`` when the pipeline's ModelStep did. Approving or rejecting writes one audit
    object under ``registry/<group>/audit/``; GET /v1/registry/audit lists that prefix and reads
    the entries. The explanations and model-card routes read the version's ``model.tar.gz``
    (serving/artifacts.py). The bucket is SSE-KMS with the data key, used only through S3.
    """
    bucket = config.arn("s3", config.artifacts_bucket, region=False, account=False)
    tenants = config.model_package_groups  # tenant -> ordernimbus-<tenant>
    audit = tuple(f"{REGISTRY_PREFIX}/{group}/audit/" for group in tenants.values())
    runs = tuple(f"{bucket}/{PIPELINE_RUNS_PREFIX}/{tenant}/*" for tenant in tenants)
    return [
        Grant(
            "ListAuditEntries",
            ("s3:ListBucket",),
            (bucket,),
            conditions={"StringEquals": {"s3:prefix": list(audit)}},
        ),
        Grant(
            "ReadWriteAuditEntries",
            ("s3:GetObject", "s3:PutObject"),
            tuple(f"{bucket}/{prefix}*" for prefix in audit),
            "audit entries of this environment's tenants' registries: one object per decision, its key "
            "made unique by time and a random suffix when it is written",
        ),
        Grant(
            "ReadVersionDocuments",
            ("s3:GetObject",),
            (
                *(f"{bucket}/{REGISTRY_PREFIX}/{group}/versions/*" for group in tenants.values()),
                *(f"{run}/{PIPELINE_DOCUMENT}" for run in runs),
            ),
            "read-only registry documents (metrics, lineage) of this environment's tenants' model "
            "versions, one object per version, under an id or build execution id assigned at registration",
        ),
        Grant(
            "ReadModelArtifacts",
            ("s3:GetObject",),
            tuple(f"{run}/{PIPELINE_ARTIFACT}" for run in runs),
            "read-only model.tar.gz of this environment's tenants' build runs (SHAP drivers, model "
            "card); the run's execution id is assigned by SageMaker when the build starts",
        ),
        Grant(
            "UseDataKeyThroughS3",
            ("kms:Decrypt", "kms:GenerateDataKey"),
            (key_arn,),
            conditions={"StringEquals": {"kms:ViaService": f"s3.{config.region}.amazonaws.com"}},
        ),
    ]
