"""Shared fixtures of the infra tests: the pipeline-definition fixtures and a tiny API Lambda asset.

Synthesis is the slow part (a Node.js process runs the CDK), so each test module synthesizes
an environment once in a module-scoped fixture and every test reads the written templates.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# jsii prints a banner on every start under Node 20 (end of life); it is noise in test output.
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

FIXTURES = Path(__file__).parent / "fixtures"
PIPELINE_FIXTURES = FIXTURES / "pipelines"

HANDLER = '''"""Test asset: the real package is built by make lambda-package."""


def handler(event, context):
    return {"statusCode": 200, "body": "ok"}
'''


def write_lambda_asset(root: Path) -> Path:
    """A directory shaped like build/lambda: the API handler module (the monitor is an image)."""
    (root / "serving").mkdir(parents=True, exist_ok=True)
    (root / "serving" / "__init__.py").write_text("", encoding="utf-8")
    (root / "serving" / "lambda_handler.py").write_text(HANDLER, encoding="utf-8")
    return root


@pytest.fixture(scope="session")
def pipeline_dir() -> Path:
    """Small but valid SageMaker definitions (Version 2020-12-01, Parameters, one ProcessingStep)."""
    return PIPELINE_FIXTURES


@pytest.fixture(scope="session")
def lambda_asset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_lambda_asset(tmp_path_factory.mktemp("lambda"))
