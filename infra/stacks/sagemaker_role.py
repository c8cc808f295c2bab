"""What the SageMaker execution role may do: every pipeline step and the feature group run as it.

Scoped to this environment's buckets and data key, its own two pipelines, the jobs and models
those pipelines launch (SageMaker names them ``pipelines-<execution id>-<step>-...``), the
``ordernimbus-*`` model package and feature groups, the project's ECR repositories and
SageMaker's own log groups. Nothing here is granted on another team's resources in the account.
"""

from __future__ import annotations

from infra.config import EnvConfig
from infra.grants import Grant

ECR_REPOSITORY_PREFIX = "ordernimbus"  # the step image(s) pushed by the release job
JOB_KINDS = ("processing-job", "training-job", "transform-job", "model")
METRIC_NAMESPACES = ("/aws/sagemaker/*", "OrderNimbus")
NO_RESOURCE_LEVEL = "the action has no resource-level permissions in IAM, so AWS requires Resource *"


def execution_role_grants(config: EnvConfig, key_arn: str) -> list[Grant]:
    def sm(resource: str) -> str:
        return config.arn("sagemaker", resource)

    buckets = tuple(
        config.arn("s3", name, region=False, account=False)
        for name in (config.lake_bucket, config.artifacts_bucket)
    )
    pipelines = tuple(config.pipeline_arn(name) for name in (config.build_pipeline, config.forecast_pipeline))
    return [
        Grant("ListOwnBuckets", ("s3:ListBucket", "s3:GetBucketLocation", "s3:GetBucketAcl"), buckets),
        Grant(
            "ReadWriteOwnObjects",
            ("s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload", "s3:PutObjectAcl"),
            tuple(f"{bucket}/*" for bucket in buckets),
            "objects of this environment's own lake and artifacts buckets; keys are per tenant and per "
            "run, so they cannot be listed in advance",
        ),
        Grant(
            "UseDataKey", ("kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey", "kms:DescribeKey"), (key_arn,)
        ),
        # Jobs encrypt their ML storage volumes with the key through a grant to the service.
        Grant(
            "GrantDataKeyToJobs",
            ("kms:CreateGrant",),
            (key_arn,),
            conditions={"Bool": {"kms:GrantIsForAWSResource": "true"}},
        ),
        Grant(
            "OwnPipelines",
            (
                "sagemaker:DescribePipeline",
                "sagemaker:StartPipelineExecution",
                "sagemaker:DescribePipelineExecution",
                "sagemaker:ListPipelineExecutionSteps",
                "sagemaker:SendPipelineExecutionStepSuccess",
                "sagemaker:SendPipelineExecutionStepFailure",
            ),
            (*pipelines, *(f"{arn}/execution/*" for arn in pipelines)),
            "executions of this environment's own two pipelines; execution ids are assigned at start",
        ),
        Grant(
            "PipelineJobs",
            (
                *(
                    f"sagemaker:{verb}{kind}"
                    for kind in ("ProcessingJob", "TrainingJob", "TransformJob")
                    for verb in ("Create", "Describe", "Stop")
                ),
                "sagemaker:CreateModel",
                "sagemaker:DescribeModel",
                "sagemaker:AddTags",
            ),
            tuple(sm(f"{kind}/pipelines-*") for kind in JOB_KINDS),
            "jobs and models the pipelines launch are named pipelines-<execution id>-<step> by SageMaker; "
            "the prefix confines the role to pipeline-launched resources",
        ),
        Grant(
            "TenantRegistry",
            (
                "sagemaker:CreateModelPackage",
                "sagemaker:DescribeModelPackage",
                "sagemaker:UpdateModelPackage",
                "sagemaker:DescribeModelPackageGroup",
                "sagemaker:AddTags",
            ),
            (sm("model-package-group/ordernimbus-*"), sm("model-package/ordernimbus-*/*")),
            "one ModelPackageGroup per tenant (ordernimbus-<tenant>) and the versions inside, numbered by "
            "the registry; tenants are onboarded without redeploying this role",
        ),
        Grant(
            "FeatureStore",
            (
                "sagemaker:DescribeFeatureGroup",
                "sagemaker:PutRecord",
                "sagemaker:GetRecord",
                "sagemaker:BatchGetRecord",
            ),
            (sm("feature-group/ordernimbus-*"),),
            "the project's feature groups, all named ordernimbus-*; other feature groups are excluded",
        ),
        Grant(
            "ListModelPackages",
            ("sagemaker:ListModelPackages",),
            ("*",),
            f"ListModelPackages: {NO_RESOURCE_LEVEL}",
        ),
        Grant(
            "StepImages",
            ("ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"),
            (config.arn("ecr", f"repository/{ECR_REPOSITORY_PREFIX}*"),),
            "read-only pulls from the project's step image repositories (ordernimbus*)",
        ),
        Grant(
            "EcrLogin", ("ecr:GetAuthorizationToken",), ("*",), f"GetAuthorizationToken: {NO_RESOURCE_LEVEL}"
        ),
        Grant(
            "JobLogs",
            ("logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"),
            (config.arn("logs", "log-group:/aws/sagemaker/*"),),
            "SageMaker writes job logs to its fixed groups /aws/sagemaker/ProcessingJobs, TrainingJobs, "
            "TransformJobs",
        ),
        Grant(
            "JobMetrics",
            ("cloudwatch:PutMetricData",),
            ("*",),
            f"PutMetricData: {NO_RESOURCE_LEVEL}; limited to {list(METRIC_NAMESPACES)} by a "
            "cloudwatch:namespace condition",
            conditions={"StringLike": {"cloudwatch:namespace": list(METRIC_NAMESPACES)}},
        ),
        Grant(
            "PassSelfToJobs",
            ("iam:PassRole",),
            (config.sagemaker_role_arn,),
            conditions={"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
        ),
    ]
