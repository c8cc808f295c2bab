"""The real Lambda entrypoint, driven with API Gateway events in a separate process.

``serving.lambda_handler`` reads its settings from the environment like a deployed function, so it
runs in a subprocess whose environment points at a database seeded here; its answers must equal
what the ASGI test client gets from the same app for the same request.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import pytest
from fastapi.testclient import TestClient

from inference.store.sql import SqlForecastStore
from ordernimbus.settings import Settings
from serving.app import create_app
from serving.auth import ApiKeyStore

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("pandas", "numpy", "torch", "gluonts", "xgboost")

INVOKE = """
import json, sys
from serving.lambda_handler import handler
events = json.load(open(sys.argv[1]))
print(json.dumps([handler(event, {}) for event in events]))
"""


def http_api_v2(path: str, query: str, headers: dict[str, str]) -> dict[str, Any]:
    return {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": query,
        "headers": {
            "host": "abc123.execute-api.eu-west-1.amazonaws.com",
            **{k.lower(): v for k, v in headers.items()},
        },
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "abc123",
            "domainName": "abc123.execute-api.eu-west-1.amazonaws.com",
            "http": {
                "method": "GET",
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "203.0.113.7",
                "userAgent": "t",
            },
            "requestId": "req-v2",
            "routeKey": "$default",
            "stage": "$default",
            "time": "22/Nov/2025:10:00:00 +0000",
            "timeEpoch": 1763805600000,
        },
        "isBase64Encoded": False,
    }


def rest_api_v1(path: str, query: str, headers: dict[str, str]) -> dict[str, Any]:
    params = dict(parse_qsl(query))
    return {
        "resource": "/{proxy+}",
        "path": path,
        "httpMethod": "GET",
        "headers": {"Host": "abc123.execute-api.eu-west-1.amazonaws.com", **headers},
        "multiValueHeaders": {
            "Host": ["abc123.execute-api.eu-west-1.amazonaws.com"],
            **{k: [v] for k, v in headers.items()},
        },
        "queryStringParameters": params or None,
        "multiValueQueryStringParameters": {k: [v] for k, v in params.items()} or None,
        "pathParameters": {"proxy": path.lstrip("/")},
        "stageVariables": None,
        "requestContext": {
            "resourcePath": "/{proxy+}",
            "httpMethod": "GET",
            "path": f"/prod{path}",
            "stage": "prod",
            "requestId": "req-v1",
            "accountId": "123456789012",
            "identity": {"sourceIp": "203.0.113.7", "userAgent": "t"},
        },
        "body": None,
        "isBase64Encoded": False,
    }


@pytest.fixture
def deployment(tmp_path: Path) -> tuple[Settings, str]:
    db = f"sqlite:///{tmp_path / 'lambda.db'}"
    with SqlForecastStore(db) as store:
        store.write_set(
            "acme",
            5,
            [
                [
                    ("s1", f"sku-{s:03d}", date(2025, 6, 2) + timedelta(d), d + 1, 1.0, 2.0, 4.0, 2.2)
                    for s in range(4)
                    for d in range(7)
                ]
            ],
        )
    keys = ApiKeyStore(db)
    key = keys.create("acme", "viewer")[1]
    keys.close()
    return Settings(home=tmp_path / "home", database_url=db), key


def test_handler_answers_v2_and_v1_events_like_the_asgi_app(
    deployment: tuple[Settings, str], tmp_path: Path
) -> None:
    settings, key = deployment
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        etag = client.get("/v1/forecasts/current", headers={"X-API-Key": key}).headers["etag"]
        requests = [
            ("/v1/forecasts", "limit=3&sku=sku-001", {"X-API-Key": key}),
            ("/v1/forecasts/current", "", {"X-API-Key": key}),
            ("/v1/forecasts/current", "", {"X-API-Key": key, "If-None-Match": etag}),
            ("/v1/forecasts", "limit=5000", {"X-API-Key": key}),
            ("/v1/forecasts", "", {}),
            ("/v1/health", "", {}),
        ]
        expected = [client.get(f"{p}?{q}" if q else p, headers=h) for p, q, h in requests]
    events = [make(p, q, h) for make in (http_api_v2, rest_api_v1) for p, q, h in requests]
    (tmp_path / "events.json").write_text(json.dumps(events))
    env = {
        **os.environ,
        "ORDERNIMBUS_HOME": str(settings.home),
        "ORDERNIMBUS_DATABASE_URL": str(settings.database_url),
    }
    out = subprocess.run(
        [sys.executable, "-c", INVOKE, str(tmp_path / "events.json")],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    responses = json.loads(out.stdout.strip().splitlines()[-1])
    assert len(responses) == 2 * len(requests)
    for i, got in enumerate(responses):
        want = expected[i % len(requests)]
        where = f"{'v2' if i < len(requests) else 'v1'} {requests[i % len(requests)][:2]}"
        assert got["statusCode"] == want.status_code, where
        headers = {k.lower(): v for k, v in got["headers"].items()}
        if want.status_code == 304:
            assert got["body"] == ""
            assert headers["etag"] == want.headers["etag"]
            continue
        assert got["isBase64Encoded"] is False, where
        # Each request gets its own id (echoed in X-Request-ID and in problem bodies).
        assert _without_id(json.loads(got["body"])) == _without_id(want.json()), where
        assert headers["x-request-id"], where
        assert headers["content-type"] == want.headers["content-type"], where
        assert headers.get("etag") == want.headers.get("etag"), where


def _without_id(body: Any) -> Any:
    return {k: v for k, v in body.items() if k != "request_id"} if isinstance(body, dict) else body


def test_importing_the_api_loads_no_heavy_library(tmp_path: Path) -> None:
    code = (
        "import serving.app, serving.lambda_handler, sys\n"
        f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    env = {**os.environ, "ORDERNIMBUS_HOME": str(tmp_path / "home")}
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "", f"serving imported {out.stdout.strip()}"
