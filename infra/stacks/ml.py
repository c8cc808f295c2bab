"""ML: the SageMaker execution role, the build and forecast pipelines, registry groups, feature group.

The pipelines are deployed from the definitions the ``pipelines`` package compiles, so what runs in
SageMaker is exactly what was snapshot-tested offline. The execution role is the identity every
pipeline step runs as; its grants live in :mod:`infra.stacks.sagemaker_role`.
"""

from __future__ import annotations

from typing import Any

from aws_cdk import Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sagemaker as sagemaker
from constructs import Construct

from infra.config import EnvConfig
from infra.feature_spec import EVENT_TIME, RECORD_IDENTIFIER, SALES_FEATURES
from infra.grants import attach
from infra.pipeline_definitions import PipelineDefinition
from infra.stacks.common import aws_env
from infra.stacks.sagemaker_role import execution_role_grants

FEATURE_STORE_PREFIX = "feature-store"


class MlStack(Stack):
    """Owns ``role`` (SageMaker execution), ``pipelines``, ``model_package_groups``, ``feature_group``."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: EnvConfig,
        key: kms.IKey,
        build_definition: PipelineDefinition,
        forecast_definition: PipelineDefinition,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, env=aws_env(config), **kwargs)
        self.config = config
        self.role = iam.Role(
            self,
            "SageMakerExecutionRole",
            role_name=config.sagemaker_role_name,
            assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"),
            description="Identity of every OrderNimbus pipeline step and of the feature group offline store",
        )
        self.policy = attach(
            iam.Policy(self, "SageMakerExecutionPolicy", roles=[self.role]),
            execution_role_grants(config, key.key_arn),
        )
        placeholders = {
            "SageMakerRoleArn": config.sagemaker_role_arn,
            "LakeBucket": config.lake_bucket,
            "ArtifactsBucket": config.artifacts_bucket,
            "KmsKeyArn": key.key_arn,
            "Region": config.region,
            "Account": config.account,
            "Environment": config.name,
        }
        self.pipelines = {
            name: self._pipeline(name, pipeline_name, definition.render(placeholders))
            for name, pipeline_name, definition in (
                ("Build", config.build_pipeline, build_definition),
                ("Forecast", config.forecast_pipeline, forecast_definition),
            )
        }
        self.model_package_groups = {
            tenant: sagemaker.CfnModelPackageGroup(
                self,
                f"ModelPackageGroup-{tenant}",
                model_package_group_name=group,
                model_package_group_description=f"OrderNimbus forecasters of tenant {tenant}",
                tags=[{"key": "ordernimbus:tenant", "value": tenant}],
            )
            for tenant, group in config.model_package_groups.items()
        }
        self.feature_group = self._feature_group(key)

    def _pipeline(self, construct_id: str, pipeline_name: str, body: str) -> sagemaker.CfnPipeline:
        pipeline = sagemaker.CfnPipeline(
            self,
            f"{construct_id}Pipeline",
            pipeline_name=pipeline_name,
            pipeline_display_name=pipeline_name,
            pipeline_description=f"OrderNimbus {construct_id.lower()} pipeline ({self.config.name})",
            role_arn=self.role.role_arn,
            pipeline_definition={"PipelineDefinitionBody": body},
        )
        pipeline.node.add_dependency(self.policy)  # the policy must exist before a first run
        return pipeline

    def _feature_group(self, key: kms.IKey) -> sagemaker.CfnFeatureGroup:
        group = sagemaker.CfnFeatureGroup(
            self,
            "SalesFeatureGroup",
            feature_group_name=self.config.sales_feature_group,
            description="Daily sales features per tenant x store x sku (see infra/feature_spec.py)",
            record_identifier_feature_name=RECORD_IDENTIFIER,
            event_time_feature_name=EVENT_TIME,
            feature_definitions=[
                sagemaker.CfnFeatureGroup.FeatureDefinitionProperty(feature_name=name, feature_type=kind)
                for name, kind in SALES_FEATURES
            ],
            online_store_config={"EnableOnlineStore": True, "SecurityConfig": {"KmsKeyId": key.key_arn}},
            offline_store_config={
                "S3StorageConfig": {
                    "S3Uri": f"s3://{self.config.lake_bucket}/{FEATURE_STORE_PREFIX}",
                    "KmsKeyId": key.key_arn,
                },
                # No Glue table: creating one needs glue:* on the catalog; readers use the S3 path.
                "DisableGlueTableCreation": True,
            },
            role_arn=self.role.role_arn,
        )
        group.node.add_dependency(self.policy)  # Feature Store checks S3/KMS access at creation
        return group
