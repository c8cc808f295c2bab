"""Choose the feature store backend from settings: the one place that knows both implementations."""

from __future__ import annotations

from features.store.base import FeatureStore, FeatureStoreError
from ordernimbus.settings import Settings


def offline_uri(settings: Settings) -> str:
    if settings.feature_store_offline_uri:
        return settings.feature_store_offline_uri
    if settings.feature_store_backend == "sagemaker":
        if not settings.artifacts_bucket:
            raise FeatureStoreError(
                "feature_store_backend 'sagemaker' needs ORDERNIMBUS_ARTIFACTS_BUCKET "
                "(or ORDERNIMBUS_FEATURE_STORE_OFFLINE_URI) for the offline store"
            )
        return f"s3://{settings.artifacts_bucket}/feature-store"
    return str(settings.features_dir / "offline")


def open_feature_store(settings: Settings) -> FeatureStore:
    """The store named by ``settings.feature_store_backend``: "local" (Parquet + SQLite) or "sagemaker"."""
    if settings.feature_store_backend == "local":
        from features.store.local import LocalFeatureStore

        return LocalFeatureStore(
            offline_uri(settings), settings.features_dir / "online.db", settings.features_dir / "locks"
        )
    if settings.feature_store_backend == "sagemaker":
        from features.store.sagemaker import SageMakerFeatureStore

        if not settings.sagemaker_role_arn:
            raise FeatureStoreError("feature_store_backend 'sagemaker' needs ORDERNIMBUS_SAGEMAKER_ROLE_ARN")
        return SageMakerFeatureStore(
            settings.aws_region, role_arn=settings.sagemaker_role_arn, offline_uri=offline_uri(settings)
        )
    raise FeatureStoreError(
        f"feature_store_backend {settings.feature_store_backend!r}: expected local or sagemaker"
    )
