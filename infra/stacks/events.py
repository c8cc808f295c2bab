"""Events: what starts the pipelines (schedules, model approvals) and the daily drift check.

Rules are per tenant: the pipeline parameters of an EventBridge SageMaker target are static, so a
single rule cannot pass the tenant of the event it matched. The approval rule therefore matches
the tenant's exact group name ``ordernimbus-<tenant>``, never a prefix (a prefix would let
``ordernimbus-acme`` also match ``ordernimbus-acme-eu``). The drift check is a Lambda
container image (``monitoring.lambda_handler.handler``, see :mod:`infra.monitor_image`: pandas and
Evidently do not fit a zip) that publishes ``DriftDetected`` and starts the build pipeline when the
policy says retrain.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aws_cdk import Duration, Stack
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct

from infra.config import EnvConfig
from infra.grants import Grant
from infra.monitor_image import ImageAsset
from infra.pipeline_definitions import APPROVAL_PARAMETER, INPUT_PARAMETER, TENANT_PARAMETER
from infra.stacks.api import PIPELINE_DOCUMENT, PIPELINE_RUNS_PREFIX
from infra.stacks.common import FunctionSpec, aws_env, service_environment, vpc_function
from infra.stacks.data import APP_USER, DataStack

METRIC_NAMESPACE = "OrderNimbus"
# One call checks every tenant of the environment in turn, each loading its training window and
# recent actuals into pandas and running Evidently's drift report: Lambda's ceiling on time, and
# 3008 MB, room for those frames and about 1.7 vCPUs (Lambda's CPU share grows with memory).
MONITOR_TIMEOUT = Duration.minutes(15)
MONITOR_MEMORY_MB = 3008
MODEL_PACKAGE_STATE_CHANGE = "SageMaker Model Package State Change"
TARGET_RETRY = events.CfnRule.RetryPolicyProperty(maximum_retry_attempts=3, maximum_event_age_in_seconds=3600)


class EventsStack(Stack):
    """Owns ``pipeline_rules`` (name -> rule), ``start_role`` and the ``monitor`` function."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: EnvConfig,
        data: DataStack,
        key: kms.IKey,
        monitor_image: ImageAsset,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, env=aws_env(config), **kwargs)
        self.config = config
        build_arn = config.pipeline_arn(config.build_pipeline)
        forecast_arn = config.pipeline_arn(config.forecast_pipeline)
        self.start_role = iam.Role(
            self,
            "StartPipelinesRole",
            assumed_by=iam.ServicePrincipal("events.amazonaws.com"),
            description="EventBridge starts the OrderNimbus build and forecast pipelines",
        )
        self.start_role.add_to_policy(
            iam.PolicyStatement(
                actions=["sagemaker:StartPipelineExecution"], resources=[build_arn, forecast_arn]
            )
        )
        approval = "Approved" if config.auto_approve else "PendingManualApproval"
        self.pipeline_rules: dict[str, events.CfnRule] = {}
        for tenant, group in config.model_package_groups.items():
            per_tenant = {TENANT_PARAMETER: tenant, INPUT_PARAMETER: config.lake_uri(tenant)}
            self._rule(
                f"DailyForecast-{tenant}", forecast_arn, per_tenant, schedule=config.schedules.daily_forecast
            )
            self._rule(
                f"WeeklyRetrain-{tenant}",
                build_arn,
                {**per_tenant, APPROVAL_PARAMETER: approval},
                schedule=config.schedules.weekly_retrain,
            )
            self._rule(
                f"ModelApproved-{tenant}",
                forecast_arn,
                per_tenant,
                pattern={
                    "source": ["aws.sagemaker"],
                    "detail-type": [MODEL_PACKAGE_STATE_CHANGE],
                    "detail": {"ModelPackageGroupName": [group], "ModelApprovalStatus": ["Approved"]},
                },
            )
        self._monitor(data, key, monitor_image, build_arn)

    def _rule(
        self,
        construct_id: str,
        pipeline_arn: str,
        parameters: Mapping[str, str],
        *,
        schedule: str | None = None,
        pattern: Mapping[str, Any] | None = None,
    ) -> None:
        self.pipeline_rules[construct_id] = events.CfnRule(
            self,
            construct_id,
            description=f"OrderNimbus {self.config.name}: {construct_id} -> {pipeline_arn.partition('/')[2]}",
            schedule_expression=schedule,
            event_pattern=pattern,
            state="ENABLED",
            targets=[
                events.CfnRule.TargetProperty(
                    id="pipeline",
                    arn=pipeline_arn,
                    role_arn=self.start_role.role_arn,
                    retry_policy=TARGET_RETRY,
                    sage_maker_pipeline_parameters=events.CfnRule.SageMakerPipelineParametersProperty(
                        pipeline_parameter_list=[
                            events.CfnRule.SageMakerPipelineParameterProperty(name=name, value=value)
                            for name, value in parameters.items()
                        ]
                    ),
                )
            ],
        )

    def _monitor(self, data: DataStack, key: kms.IKey, image: ImageAsset, build_arn: str) -> None:
        config = self.config
        self.monitor = vpc_function(
            self,
            "Monitor",
            config,
            FunctionSpec(
                code=image,
                environment={
                    **service_environment(config, data.database_url),
                    "ORDERNIMBUS_BUILD_PIPELINE_NAME": config.build_pipeline,
                    "ORDERNIMBUS_LAKE_URI": config.lake_root_uri,
                    "ORDERNIMBUS_METRIC_NAMESPACE": METRIC_NAMESPACE,
                },
                timeout=MONITOR_TIMEOUT,
                memory_mb=MONITOR_MEMORY_MB,
                description="OrderNimbus drift check: publishes DriftDetected, starts retraining",
                grants=monitor_grants(config, key.key_arn, build_arn),
            ),
            vpc=data.vpc,
            security_group=data.lambda_security_group,
        )
        data.proxy.grant_connect(self.monitor, APP_USER)
        self.drift_rule = events.Rule(
            self,
            "DriftCheck",
            description=f"OrderNimbus {config.name}: daily drift check of every tenant",
            schedule=events.Schedule.expression(config.schedules.drift_check),
            targets=[
                targets.LambdaFunction(
                    self.monitor,
                    event=events.RuleTargetInput.from_object(
                        {"environment": config.name, "tenants": list(config.tenants)}
                    ),
                    retry_attempts=2,
                )
            ],
        )


def monitor_grants(config: EnvConfig, key_arn: str, build_arn: str) -> list[Grant]:
    """What one check calls (monitoring/, models/registry/sagemaker.py), for this environment's tenants.

    Read the lake; read each tenant's serving version from its ModelPackageGroup and the version's
    document in the artifacts bucket; list the build pipeline's executions (and their TenantId
    parameter) to debounce; start the build pipeline; publish the drift metric. Nothing else.
    """
    lake = config.arn("s3", config.lake_bucket, region=False, account=False)
    artifacts = config.arn("s3", config.artifacts_bucket, region=False, account=False)
    groups = config.model_package_groups.values()
    return [
        Grant("ListLake", ("s3:ListBucket",), (lake,)),
        Grant(
            "ReadLake",
            ("s3:GetObject",),
            (f"{lake}/*",),
            "read-only objects of this environment's lake: the drift check compares recent actuals with "
            "each tenant's training window, whose keys are per tenant and per run",
        ),
        Grant("DecryptLake", ("kms:Decrypt",), (key_arn,)),
        Grant(
            "ReadModelVersions",
            ("sagemaker:DescribeModelPackageGroup", "sagemaker:DescribeModelPackage"),
            (
                *(config.arn("sagemaker", f"model-package-group/{group}") for group in groups),
                *(config.arn("sagemaker", f"model-package/{group}/*") for group in groups),
            ),
            "read-only versions of this environment's tenants' groups: a group's versions are numbered "
            "as models are registered, so they are named by the group",
        ),
        Grant(
            "ListModelVersions",
            ("sagemaker:ListModelPackages",),
            ("*",),
            "ListModelPackages has no resource-level permissions in IAM; the registry adapter lists one "
            "tenant's group at a time",
        ),
        Grant(
            "ReadVersionDocuments",
            ("s3:GetObject",),
            (
                *(f"{artifacts}/registry/{group}/versions/*" for group in groups),
                # versions the build pipeline registered keep their document in the run's folder
                *(f"{artifacts}/{PIPELINE_RUNS_PREFIX}/{t}/*/{PIPELINE_DOCUMENT}" for t in config.tenants),
            ),
            "read-only registry documents (metrics, lineage) of this environment's tenants' model "
            "versions, one object per registered version",
        ),
        Grant("ListBuilds", ("sagemaker:ListPipelineExecutions",), (build_arn,)),
        Grant(
            "BuildParameters",
            ("sagemaker:ListPipelineParametersForExecution",),
            (f"{build_arn}/execution/*",),
            "the build pipeline's executions, whose ids SageMaker assigns: the debounce reads each "
            "recent execution's TenantId parameter",
        ),
        Grant("StartRetraining", ("sagemaker:StartPipelineExecution",), (build_arn,)),
        Grant(
            "DriftMetric",
            ("cloudwatch:PutMetricData",),
            ("*",),
            "PutMetricData has no resource-level permissions in IAM; the statement is limited to the "
            f"{METRIC_NAMESPACE} namespace by the cloudwatch:namespace condition",
            conditions={"StringEquals": {"cloudwatch:namespace": METRIC_NAMESPACE}},
        ),
    ]
