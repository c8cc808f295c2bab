"""Choose the registry backend from settings: the one place that knows both implementations."""

from __future__ import annotations

from models.registry.base import ModelRegistry, RegistryError
from ordernimbus.settings import Settings


def open_registry(settings: Settings, *, default_image: str | None = None) -> ModelRegistry:
    """The registry named by ``settings.registry_backend`` ("local" SQLite file or "sagemaker").

    ``default_image`` is the inference container image the SageMaker backend records for
    versions registered without one (SageMaker requires it); the local backend ignores it.
    """
    if settings.registry_backend == "local":
        from models.registry.local import LocalRegistry

        return LocalRegistry(settings.registry_url)
    if settings.registry_backend == "sagemaker":
        from models.registry.sagemaker import SageMakerRegistry

        return SageMakerRegistry(
            settings.aws_region, audit_bucket=settings.artifacts_bucket, default_image=default_image
        )
    raise RegistryError(f"registry_backend {settings.registry_backend!r}: expected 'local' or 'sagemaker'")
