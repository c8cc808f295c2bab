"""Events: what starts the pipelines (schedules, model approvals) and the daily drift check.

Rules are per tenant: the pipeline parameters of an EventBridge SageMaker target are static, so a
single rule cannot pass the tenant of the event it matched. The approval rule therefore matches
the tenant's exact group name ``ordernimbus-<tenant>``, never a prefix (a prefix would let
``ordernimbus-acme`` also match ``ordernimbus-acme-eu``). The drift check is a small Lambda
(``monitoring.lambda_handler.handler``, same asset as the API) that publishes ``DriftDetected``
and starts the build pipeline when the policy says retrain.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from aws_cdk import Duration, Stack
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct

from infra.config import EnvConfig
from infra.grants import Grant
from infra.pipeline_definitions import APPROVAL_PARAMETER, INPUT_PARAMETER, TENANT_PARAMETER
from infra.stacks.common import FunctionSpec, aws_env, service_environment, vpc_function
from infra.stacks.data import APP_USER, DataStack

MONITOR_HANDLER = "monitoring.lambda_handler.handler"
METRIC_NAMESPACE = "OrderNimbus"
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
        asset_dir: Path,
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
        self._monitor(data, key, asset_dir, build_arn)

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

    def _monitor(self, data: DataStack, key: kms.IKey, asset_dir: Path, build_arn: str) -> None:
        config = self.config
        self.monitor = vpc_function(
            self,
            "Monitor",
            config,
            FunctionSpec(
                handler=MONITOR_HANDLER,
                asset_dir=asset_dir,
                environment={
                    **service_environment(config, data.database_url),
                    "ORDERNIMBUS_BUILD_PIPELINE_NAME": config.build_pipeline,
                    "ORDERNIMBUS_LAKE_URI": config.lake_root_uri,
                    "ORDERNIMBUS_METRIC_NAMESPACE": METRIC_NAMESPACE,
                },
                timeout=Duration.minutes(10),
                memory_mb=2048,
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
    """Read the lake, publish the drift metric, start the build pipeline: nothing else."""
    lake = config.arn("s3", config.lake_bucket, region=False, account=False)
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
