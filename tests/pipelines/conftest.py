"""Compiled SageMaker definitions for fixed, reviewable inputs (compiled once per session: ~3 s each)."""

from __future__ import annotations

import hashlib

import pytest

from pipelines.definition import build_pipeline, forecast_pipeline
from pipelines.sagemaker import definition, with_defaults
from pipelines.sagemaker_code import CodeBundle
from pipelines.sagemaker_target import SageMakerTarget

# Fixed inputs of the golden definition: nothing here depends on the checkout or the machine.
GOLDEN_TARGET = SageMakerTarget(
    region="eu-west-1",
    role_arn="arn:aws:iam::123456789012:role/ordernimbus-golden-sagemaker",
    bucket="ordernimbus-golden-artifacts",
)
GOLDEN_CODE = CodeBundle(b"golden code archive", hashlib.sha256(b"golden code archive").hexdigest())
GOLDEN_TENANT = "golden-co"


@pytest.fixture(scope="session")
def compiled_build() -> str:
    return definition(with_defaults(build_pipeline(), TenantId=GOLDEN_TENANT), GOLDEN_TARGET, GOLDEN_CODE)


@pytest.fixture(scope="session")
def compiled_forecast() -> str:
    return definition(with_defaults(forecast_pipeline(), TenantId=GOLDEN_TENANT), GOLDEN_TARGET, GOLDEN_CODE)
