"""Where a compiled pipeline runs: account-level values the definition embeds (role, bucket, images).

Two ways to get one:

* :func:`target_from_settings` for a direct ``pipeline upsert`` (``ORDERNIMBUS_SAGEMAKER_ROLE_ARN``,
  ``ORDERNIMBUS_ARTIFACTS_BUCKET``, ``ORDERNIMBUS_AWS_REGION``, or the CLI flags);
* :func:`stack_target` for the CDK stacks: the role, bucket and key become the
  ``${OrderNimbus:<Name>}`` placeholders that :mod:`infra.pipeline_definitions` renders per
  environment. The SDK insists on an IAM ARN and a bucket name while it builds the steps, so the
  compiler builds with sentinel values and :func:`apply_placeholders` swaps them afterwards.

Images default to the SageMaker PyTorch framework images of the region (``image_uris.retrieve`` reads
the JSON bundled with the SDK: no network); the bootstrap installs the pinned requirements into them.
A team that bakes its own image passes ``image_uri`` instead.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import cache

from ordernimbus.errors import OrderNimbusError
from ordernimbus.settings import Settings

FRAMEWORK = "pytorch"
FRAMEWORK_VERSION = "2.5.1"
PY_VERSION = "py311"  # our code needs 3.11; this is the newest PyTorch DLC built for it
SPARK_VERSION = "3.5"
_SENTINEL = "ordernimbus-placeholder"
SENTINELS = {
    f"arn:aws:iam::000000000000:role/{_SENTINEL}-role": "${OrderNimbus:SageMakerRoleArn}",
    f"{_SENTINEL}-artifacts": "${OrderNimbus:ArtifactsBucket}",
    f"arn:aws:kms:us-east-1:000000000000:key/{_SENTINEL}-key": "${OrderNimbus:KmsKeyArn}",
}


class TargetError(OrderNimbusError):
    title = "SageMaker target incomplete"


@dataclass(frozen=True)
class SageMakerTarget:
    region: str
    role_arn: str
    bucket: str
    prefix: str = "pipelines"
    image_uri: str | None = None  # processing + training; None: the framework image of the region
    inference_image_uri: str | None = None  # registry + transform; None: the framework inference image
    kms_key_id: str | None = None
    cache_expire_after: str = "P30D"
    max_runtime_seconds: int = 24 * 3600
    volume_gb: int = 30
    spark_features: bool = False  # compile the features step as a PySparkProcessor (large tenants)
    spark_instance_count: int = 2
    spark_image_uri: str | None = None  # None: the SageMaker Spark processing image of the region
    # environment of the steps with side effects (registry, forecast store), e.g. backends
    side_effect_env: tuple[tuple[str, str], ...] = field(default=())
    placeholders: bool = False

    def step_image(self) -> str:
        return self.image_uri or _framework_image(self.region, "training")

    def inference_image(self) -> str:
        return self.inference_image_uri or _framework_image(self.region, "inference")

    def spark_image(self) -> str:
        if self.spark_image_uri:
            return self.spark_image_uri
        from sagemaker.core import image_uris

        return str(image_uris.retrieve("spark", self.region, version=SPARK_VERSION, image_scope="processing"))

    def output_root(self) -> str:
        return f"s3://{self.bucket}/{self.prefix.strip('/')}/runs"


@cache
def _framework_image(region: str, scope: str) -> str:
    from sagemaker.core import image_uris

    return str(
        image_uris.retrieve(
            FRAMEWORK,
            region,
            version=FRAMEWORK_VERSION,
            py_version=PY_VERSION,
            image_scope=scope,
            instance_type="ml.m5.xlarge",
        )
    )


def target_from_settings(settings: Settings, **overrides: object) -> SageMakerTarget:
    """The target of this installation; a clear error names the setting that is missing."""
    values: dict[str, object] = {
        "region": settings.aws_region,
        "role_arn": settings.sagemaker_role_arn,
        "bucket": settings.artifacts_bucket,
    }
    values.update({k: v for k, v in overrides.items() if v is not None})
    required = {"role_arn": "ORDERNIMBUS_SAGEMAKER_ROLE_ARN", "bucket": "ORDERNIMBUS_ARTIFACTS_BUCKET"}
    missing = [
        f"{n} (set {env} or pass --{n.replace('_', '-')})" for n, env in required.items() if not values.get(n)
    ]
    if missing:
        raise TargetError(
            f"the SageMaker target lacks {', '.join(missing)}; or use --placeholders for the CDK stack form"
        )
    role = str(values["role_arn"])
    if not (role.startswith("arn:") and ":iam::" in role and ":role/" in role):
        raise TargetError(f"role_arn {role!r}: expected an IAM role ARN (arn:aws:iam::<account>:role/<name>)")
    return SageMakerTarget(**values)  # type: ignore[arg-type]


def stack_target(region: str, **overrides: object) -> SageMakerTarget:
    """The form the CDK stacks embed: role, bucket and KMS key are ``${OrderNimbus:...}`` placeholders."""
    role, bucket, key = SENTINELS
    target = SageMakerTarget(region=region, role_arn=role, bucket=bucket, kms_key_id=key, placeholders=True)
    return replace(target, **overrides)  # type: ignore[arg-type]


def apply_placeholders(body: str) -> str:
    for sentinel, placeholder in SENTINELS.items():
        body = body.replace(sentinel, placeholder)
    return body
