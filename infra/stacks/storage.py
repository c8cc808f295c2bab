"""Storage: the data-lake and artifacts buckets, their KMS key, and the access-log bucket.

Both data buckets hold tenant data (sales, features, models, forecasts), so they share one
customer-managed key with rotation, versioning (a bad pipeline run can be rolled back),
TLS-only policies and server access logs. Objects move to Infrequent Access after 30 days because
training reads the recent window far more often than history.
"""

from __future__ import annotations

from typing import Any

from aws_cdk import Duration, Stack
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from infra.config import EnvConfig
from infra.nag import acknowledge
from infra.stacks.common import aws_env, removal_policy

INFREQUENT_ACCESS_AFTER_DAYS = 30
ABORT_MULTIPART_AFTER_DAYS = 7


class StorageStack(Stack):
    """Owns ``key``, ``lake``, ``artifacts`` and ``access_logs``; other stacks get names from config."""

    def __init__(self, scope: Construct, construct_id: str, *, config: EnvConfig, **kwargs: Any) -> None:
        super().__init__(scope, construct_id, env=aws_env(config), **kwargs)
        self.config = config
        self.key = kms.Key(
            self,
            "DataKey",
            alias=f"alias/{config.prefix}-data",
            description="OrderNimbus lake, artifacts, feature store and pipeline data",
            enable_key_rotation=True,
            removal_policy=removal_policy(config),
        )
        self.access_logs = s3.Bucket(
            self,
            "AccessLogs",
            bucket_name=config.access_logs_bucket,
            # S3 server access logging delivers only to SSE-S3 buckets, not SSE-KMS.
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            removal_policy=removal_policy(config),
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="expire-access-logs",
                    expiration=Duration.days(config.log_retention_days),
                    abort_incomplete_multipart_upload_after=Duration.days(ABORT_MULTIPART_AFTER_DAYS),
                )
            ],
        )
        acknowledge(
            self.access_logs,
            "AwsSolutions-S1",
            "This is the server access log destination of the lake and artifacts buckets; logging "
            "it to itself would create an endless loop of log deliveries",
        )
        self.lake = self._data_bucket("Lake", config.lake_bucket)
        self.artifacts = self._data_bucket("Artifacts", config.artifacts_bucket)

    def _data_bucket(self, construct_id: str, name: str) -> s3.Bucket:
        return s3.Bucket(
            self,
            construct_id,
            bucket_name=name,
            encryption=s3.BucketEncryption.KMS,
            encryption_key=self.key,
            bucket_key_enabled=True,
            versioned=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            server_access_logs_bucket=self.access_logs,
            server_access_logs_prefix=f"{name}/",
            removal_policy=removal_policy(self.config),
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="tiering-and-noncurrent-expiry",
                    transitions=[
                        s3.Transition(
                            storage_class=s3.StorageClass.INFREQUENT_ACCESS,
                            transition_after=Duration.days(INFREQUENT_ACCESS_AFTER_DAYS),
                        )
                    ],
                    noncurrent_version_expiration=Duration.days(self.config.noncurrent_version_expiry_days),
                    abort_incomplete_multipart_upload_after=Duration.days(ABORT_MULTIPART_AFTER_DAYS),
                )
            ],
        )
