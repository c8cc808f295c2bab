"""The SageMaker SDK, tamed for offline compilation: environment, silence, and small SDK adapters.

Everything here is about the SDK's behaviour, not about our pipelines (those are in
:mod:`pipelines.sagemaker`). ../shared/notes/sagemaker-sdk.md §2.2 lists what 3.x touches while a
definition is built; :func:`offline_sdk` switches each of those off for the duration of a build.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from pipelines.definition import Step

# Unpack the code archive (a processing input or a training channel), install the pinned
# requirements when the image lacks them, then hand over to the container adapter.
BOOTSTRAP = (
    "set -eu; mkdir -p /opt/ml/code; "
    "for d in /opt/ml/processing/input/code /opt/ml/input/data/code; do "
    'if [ -f "$d/sourcedir.tar.gz" ]; then tar -xzf "$d/sourcedir.tar.gz" -C /opt/ml/code; fi; done; '
    "cd /opt/ml/code; "
    'if [ -f requirements.txt ] && [ -z "${ORDERNIMBUS_SKIP_PIP:-}" ]; then '
    "python3 -m pip install --quiet --disable-pip-version-check -r requirements.txt; fi; "
    'exec python3 -m pipelines.sagemaker_container "$@"'
)
ENTRYPOINT = ["/bin/sh", "-c", BOOTSTRAP, "ordernimbus-step"]
SERVE_ENV = {"SAGEMAKER_PROGRAM": "ordernimbus_serve.py"}
CONTENT_TYPES = ["application/jsonlines", "text/csv"]
PENDING = "PendingManualApproval"
QUIET = logging.ERROR  # ModelBuilder sets DEBUG on its module logger unless told otherwise
_OFFLINE_ENV = {"SAGEMAKER_VALIDATE_ROLE": "false", "AWS_EC2_METADATA_DISABLED": "true"}


@contextmanager
def offline_sdk(region: str) -> Iterator[None]:
    """Make the SDK build definitions without touching AWS (see ../shared/notes/sagemaker-sdk.md §2.2)."""
    saved = {k: os.environ.get(k) for k in (*_OFFLINE_ENV, "AWS_DEFAULT_REGION")}
    os.environ.update(_OFFLINE_ENV)
    os.environ.setdefault("AWS_DEFAULT_REGION", region)  # sagemaker.ai_registry creates a client at import
    try:
        import sagemaker.mlops.workflow.pipeline
        import sagemaker.serve.model_builder
        import sagemaker.train.model_trainer  # noqa: F401 - imported first so their loggers exist
        from sagemaker.core.telemetry import telemetry_logging

        telemetry_logging._send_telemetry_request = _no_telemetry  # type: ignore[assignment]
        _quiet_sdk_loggers()
        # the SDK prints (e.g. "GZIP") and warns while building steps; stdout carries our JSON
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.filterwarnings("ignore", message="Running within a PipelineSession")
            yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _quiet_sdk_loggers() -> None:
    """The SDK sets INFO/DEBUG levels on its own module loggers; a compiler run should be silent."""
    for name in list(logging.root.manager.loggerDict):
        if name.startswith(("sagemaker", "botocore.credentials")):
            logging.getLogger(name).setLevel(logging.ERROR)


def _no_telemetry(*args: object, **kwargs: object) -> None:
    """The SDK phones home from a thread on every run()/train()/build(); never from our compiler."""


def sdk_parameter(kind: str, name: str, default: str | int | float) -> Any:
    from sagemaker.core.workflow.parameters import ParameterFloat, ParameterInteger, ParameterString

    if kind == "Integer":
        return ParameterInteger(name=name, default_value=int(default))
    if kind == "Float":
        return ParameterFloat(name=name, default_value=float(default))
    return ParameterString(name=name, default_value=str(default))


def retries(step: Step) -> list[Any] | None:
    """Retryable steps retry SageMaker's transient failures (capacity, throttling), with backoff."""
    if not step.retryable:
        return None
    from sagemaker.mlops.workflow.retry import (
        SageMakerJobExceptionTypeEnum,
        SageMakerJobStepRetryPolicy,
        StepExceptionTypeEnum,
        StepRetryPolicy,
    )

    transient = [StepExceptionTypeEnum.SERVICE_FAULT, StepExceptionTypeEnum.THROTTLING]
    return [
        StepRetryPolicy(exception_types=transient, interval_seconds=30, backoff_rate=2.0, max_attempts=3),
        SageMakerJobStepRetryPolicy(
            exception_types=[
                SageMakerJobExceptionTypeEnum.CAPACITY_ERROR,
                SageMakerJobExceptionTypeEnum.INTERNAL_ERROR,
                SageMakerJobExceptionTypeEnum.RESOURCE_LIMIT,
            ],
            interval_seconds=60,
            backoff_rate=2.0,
            max_attempts=3,
        ),
    ]


def container_training_step() -> type:
    """A TrainingStep whose job runs our bootstrap instead of the image's entrypoint.

    ``ModelTrainer`` only sets ContainerEntrypoint when it uploads a local ``SourceCode`` (to a
    timestamped key, which defeats caching), so the entrypoint is added to the request it produced.
    """
    from sagemaker.mlops.workflow.steps import TrainingStep

    class ContainerTrainingStep(TrainingStep):  # type: ignore[misc]
        container_arguments: list[str] = []  # noqa: RUF012 - set per instance by the compiler

        @property
        def arguments(self) -> dict[str, Any]:
            request: dict[str, Any] = super().arguments
            spec = request.setdefault("AlgorithmSpecification", {})
            spec["ContainerEntrypoint"] = list(ENTRYPOINT)
            spec["ContainerArguments"] = list(self.container_arguments)
            return request

    return ContainerTrainingStep
