"""The Lambda package builder: pins, source selection, and (slow) a real build that must fit."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from serving.package import DEFAULT_MAX_MB, ROOT, copy_sources, main, pinned_requirements, size_mb


def test_requirements_are_the_serving_set_pinned_as_in_pyproject() -> None:
    reqs = pinned_requirements()
    names = [r.split("==")[0] for r in reqs]
    expected = "fastapi mangum pydantic pydantic-settings sqlalchemy psycopg[binary] alembic python-multipart"
    assert names == expected.split()
    assert all("==" in r for r in reqs)
    text = (ROOT / "pyproject.toml").read_text()
    for req in reqs:
        _name, version = req.split("==")
        assert f"=={version}" in text, req
    heavy = {"pandas", "numpy", "torch", "gluonts", "xgboost", "boto3", "sagemaker"}
    assert not heavy & {n.split("[")[0] for n in names}


def test_sources_are_ours_only_without_tests_or_caches(tmp_path: Path) -> None:
    written = {p.relative_to(tmp_path).as_posix() for p in copy_sources(tmp_path)}
    for expected in (
        "serving/app.py",
        "serving/lambda_handler.py",
        "inference/__init__.py",
        "inference/store/sql.py",
        "inference/store/migrations/env.py",
        "inference/store/migrations/script.py.mako",
        "inference/store/migrations/versions/0001_forecast_store.py",
        "models/registry/base.py",
        "ordernimbus/settings.py",
    ):
        assert expected in written
    assert not [p for p in written if "__pycache__" in p or p.startswith(("tests/", "pipelines/"))]
    # Of features/, only the stdlib-only Shopify signature check (and its parent packages).
    assert sorted(p for p in written if p.startswith("features/")) == [
        "features/__init__.py",
        "features/sources/__init__.py",
        "features/sources/shopify_hmac.py",
    ]
    assert not [
        p
        for p in written
        if p.startswith("models/") and not p.startswith(("models/registry/", "models/__init__"))
    ]


@pytest.mark.slow
def test_full_build_fits_and_serves_without_the_dev_environment(tmp_path: Path) -> None:
    out = tmp_path / "lambda"
    assert main(["--out", str(out)]) == 0
    assert size_mb(out) < DEFAULT_MAX_MB
    probe = (
        "import os, sys; sys.path.insert(0, sys.argv[1]); os.environ['ORDERNIMBUS_HOME'] = sys.argv[2]\n"
        "import serving.lambda_handler as h\n"
        "heavy = [m for m in ('pandas', 'numpy', 'torch') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
        "assert sys.modules['fastapi'].__file__.startswith(sys.argv[1]), sys.modules['fastapi'].__file__\n"
        "ev = {'version': '2.0', 'routeKey': '$default', 'rawPath': '/v1/health', 'rawQueryString': '',\n"
        "      'headers': {'host': 'x'}, 'requestContext': {'http': {'method': 'GET', 'path': '/v1/health',\n"
        "      'protocol': 'HTTP/1.1', 'sourceIp': '1.1.1.1', 'userAgent': 't'}, 'stage': '$default'},\n"
        "      'isBase64Encoded': False}\n"
        "print(h.handler(ev, {})['statusCode'])\n"
    )
    # -S: no site-packages at all, so everything must come from the package directory.
    # cwd elsewhere: nothing may come from this checkout either (``-c`` puts the cwd on sys.path).
    result = subprocess.run(
        [sys.executable, "-S", "-c", probe, str(out), str(tmp_path / "home")],
        check=False, capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "200"
