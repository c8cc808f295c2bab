"""Observability: alarms on the API, the pipelines and drift, all notifying one encrypted SNS topic.

Pipeline failures are reported twice on purpose: the EventBridge rule delivers each failed
execution with its ARN within seconds, and the metric alarm catches a pattern (repeated failures
per day) even if a notification is missed. The topic's key policy lets CloudWatch and EventBridge
use the key; without it, publishes to an SSE-KMS topic fail silently.
"""

from __future__ import annotations

from typing import Any

from aws_cdk import Duration, Stack
from aws_cdk import aws_apigatewayv2 as apigwv2
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from constructs import Construct

from infra.config import EnvConfig
from infra.stacks.common import aws_env, removal_policy
from infra.stacks.events import METRIC_NAMESPACE

PIPELINE_NAMESPACE = "AWS/Sagemaker/ModelBuildingPipeline"
PIPELINE_STATUS_CHANGE = "SageMaker Model Building Pipeline Execution Status Change"
DRIFT_METRIC = "DriftDetected"
FIVE_MINUTES = Duration.minutes(5)
ONE_DAY = Duration.days(1)


class ObservabilityStack(Stack):
    """Owns ``topic`` and ``alarms`` (name -> alarm)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: EnvConfig,
        http_api: apigwv2.IHttpApi,
        monitor: lambda_.IFunction,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, env=aws_env(config), **kwargs)
        self.config = config
        key = kms.Key(
            self,
            "AlarmTopicKey",
            alias=f"alias/{config.prefix}-alarms",
            enable_key_rotation=True,
            removal_policy=removal_policy(config),
        )
        key.add_to_resource_policy(
            iam.PolicyStatement(
                principals=[
                    iam.ServicePrincipal("cloudwatch.amazonaws.com"),
                    iam.ServicePrincipal("events.amazonaws.com"),
                ],
                actions=["kms:Decrypt", "kms:GenerateDataKey"],
                resources=["*"],  # in a key policy, "*" means this key
                conditions={"StringEquals": {"aws:SourceAccount": config.account}},
            )
        )
        self.topic = sns.Topic(
            self, "AlarmTopic", topic_name=f"{config.prefix}-alarms", master_key=key, enforce_ssl=True
        )
        pipelines = (config.build_pipeline, config.forecast_pipeline)
        self.failure_rule = events.Rule(
            self,
            "PipelineFailed",
            description=f"OrderNimbus {config.name}: a build or forecast pipeline execution failed",
            event_pattern=events.EventPattern(
                source=["aws.sagemaker"],
                detail_type=[PIPELINE_STATUS_CHANGE],
                detail={
                    "currentPipelineExecutionStatus": ["Failed"],
                    "pipelineArn": [config.pipeline_arn(name) for name in pipelines],
                },
            ),
            targets=[targets.SnsTopic(self.topic)],
        )
        self.alarms: dict[str, cloudwatch.Alarm] = {}
        thresholds = config.alarms
        self._alarm(
            "Api5xx",
            http_api.metric_server_error(period=FIVE_MINUTES, statistic="Sum"),
            thresholds.api_5xx_per_5min,
            "API returned too many 5xx responses in 5 minutes",
        )
        self._alarm(
            "ApiLatencyP95",
            http_api.metric_latency(period=FIVE_MINUTES, statistic="p95"),
            thresholds.api_p95_latency_ms,
            "API p95 latency (ms) above threshold for 2 of 3 periods",
            evaluation_periods=3,
            datapoints_to_alarm=2,
        )
        for name in pipelines:
            metric = cloudwatch.Metric(
                namespace=PIPELINE_NAMESPACE,
                metric_name="ExecutionFailed",
                dimensions_map={"PipelineName": name},
                statistic="Sum",
                period=ONE_DAY,
            )
            self._alarm(
                f"PipelineFailures-{name}",
                metric,
                thresholds.pipeline_failures_per_day,
                f"Pipeline {name} failed executions per day",
            )
        for tenant in config.tenants:
            metric = cloudwatch.Metric(
                namespace=METRIC_NAMESPACE,
                metric_name=DRIFT_METRIC,
                dimensions_map={"Environment": config.name, "TenantId": tenant},
                statistic="Sum",
                period=ONE_DAY,
            )
            self._alarm(
                f"Drift-{tenant}",
                metric,
                thresholds.drift_detections_per_day,
                f"Drift detected for tenant {tenant}; retraining is started by the monitor policy",
            )
        self._alarm(
            "MonitorErrors",
            monitor.metric_errors(period=ONE_DAY, statistic="Sum"),
            1,
            "The drift check Lambda failed: drift would go unnoticed",
        )

    def _alarm(
        self,
        construct_id: str,
        metric: cloudwatch.IMetric,
        threshold: float,
        description: str,
        *,
        evaluation_periods: int = 1,
        datapoints_to_alarm: int = 1,
    ) -> None:
        alarm = cloudwatch.Alarm(
            self,
            construct_id,
            alarm_name=f"{self.config.prefix}-{construct_id}",
            alarm_description=description,
            metric=metric,
            threshold=threshold,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            evaluation_periods=evaluation_periods,
            datapoints_to_alarm=datapoints_to_alarm,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        alarm.add_alarm_action(actions.SnsAction(self.topic))
        self.alarms[construct_id] = alarm
