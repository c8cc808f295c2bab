"""schemathesis against the app's own OpenAPI document, on a small seeded store.

Every operation gets generated requests (valid and invalid) with a bearer token holding all four
roles, so each route is reached past authorisation. The checks: no 5xx, every status and content
type documented, every body matching its schema, invalid input refused with a 4xx.

CI runs it derandomised (the same examples every run), so a red build always means a change in the
code, never a new roll of the dice; ``FUZZ_RANDOM=1`` explores fresh examples when you go hunting.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import jwt
import pytest
import schemathesis
from cryptography.hazmat.primitives.asymmetric import rsa
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)
from serving_world import build_world

from ordernimbus.settings import Settings
from serving.app import create_app

pytestmark = pytest.mark.integration
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    negative_data_rejection,
]


# The schema is loaded when the module is collected (schemathesis parametrises from it), so the app
# is built then, over a home the fixture below seeds before the first request opens any store.
HOME = Path(tempfile.mkdtemp(prefix="ordernimbus-fuzz-"))
DB_URL = f"sqlite:///{HOME / 'api.db'}"
JWKS = HOME / "jwks.json"
LIMITS = {"api_rate_limit_per_minute": 1_000_000, "api_rate_limit_per_tenant_per_minute": 1_000_000}
APP = create_app(Settings(home=HOME, database_url=DB_URL, api_jwt_jwks_path=JWKS, **LIMITS))  # type: ignore[arg-type]
schema = schemathesis.openapi.from_asgi("/openapi.json", APP)


@pytest.fixture(scope="module")
def token() -> Iterator[str]:
    """Seeds the world and returns a bearer token of its tenant A holding all four roles."""
    world = build_world(HOME, DB_URL)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key())) | {"kid": "k1", "use": "sig"}
    JWKS.write_text(json.dumps({"keys": [jwk]}))
    now = int(time.time())
    claims = {
        "sub": "fuzzer", "iat": now, "exp": now + 7200, "custom:tenant_id": world.a.name,
        "cognito:groups": ["admin", "approver", "analyst", "viewer"],
    }  # fmt: skip
    yield jwt.encode(claims, key, algorithm="RS256", headers={"kid": "k1"})
    world.store.close()
    shutil.rmtree(HOME, ignore_errors=True)


@schema.parametrize()
@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=not os.environ.get("FUZZ_RANDOM"),
)
def test_api_conforms_to_its_schema(case: schemathesis.Case, token: str) -> None:
    case.call_and_validate(headers={"Authorization": f"Bearer {token}"}, checks=CHECKS)
