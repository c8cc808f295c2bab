"""Bearer tokens (Cognito-style RS256, JWKS file) map onto the same tenant and role model as keys."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi.testclient import TestClient
from serving_world import World, assert_problem

from serving.app import create_app

ISSUER = "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_TestPool"
CLIENT = "7abc1defg2hij3klm4nop5qrs"


class Pool:
    """A user pool's signing keys: writes its JWKS file and issues tokens like Cognito does."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.keys: dict[str, Any] = {}
        self.rotate("key-1")

    def rotate(self, kid: str, keep: bool = False) -> None:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.keys = ({**self.keys} if keep else {}) | {kid: key}
        jwks = {"keys": [self._jwk(k, v) for k, v in self.keys.items()]}
        self.path.write_text(json.dumps(jwks))
        self.kid = kid

    @staticmethod
    def _jwk(kid: str, key: Any) -> dict[str, Any]:
        jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
        return jwk | {"kid": kid, "alg": "RS256", "use": "sig"}

    def token(self, tenant: str | None, groups: list[str] | None, **overrides: Any) -> str:
        now = int(time.time())
        claims: dict[str, Any] = {
            "sub": "8d1c2b3a-user", "iss": ISSUER, "aud": CLIENT, "token_use": "id", "iat": now,
            "exp": now + 3600, "email": "ana@example.com",
        }  # fmt: skip
        if tenant is not None:
            claims["custom:tenant_id"] = tenant
        if groups is not None:
            claims["cognito:groups"] = groups
        claims.update(overrides)
        kid = claims.pop("kid", self.kid)
        key = claims.pop("signing_key", self.keys.get(kid) or next(iter(self.keys.values())))
        return jwt.encode(claims, key, algorithm="RS256", headers={"kid": kid})


@pytest.fixture(scope="module")
def pool(tmp_path_factory: pytest.TempPathFactory) -> Pool:
    return Pool(tmp_path_factory.mktemp("jwks") / "jwks.json")


@pytest.fixture(scope="module")
def jwt_client(world: World, pool: Pool) -> Iterator[TestClient]:
    settings = world.settings.model_copy(
        update={"api_jwt_jwks_path": pool.path, "api_jwt_issuer": ISSUER, "api_jwt_audience": CLIENT}
    )
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        yield client


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_a_token_reads_its_own_tenant_only(world: World, pool: Pool, jwt_client: TestClient) -> None:
    for tenant in (world.a, world.b):
        response = jwt_client.get(
            "/v1/forecasts?limit=1000", headers=bearer(pool.token(tenant.name, ["viewer"]))
        )
        assert response.status_code == 200, response.text
        assert response.json()["forecast_set"]["set_id"] == tenant.set_id
        assert {i["store_id"][0] for i in response.json()["items"]} == {tenant.prefix}


def test_groups_grant_roles_and_several_roles_combine(
    world: World, pool: Pool, jwt_client: TestClient
) -> None:
    analyst = bearer(pool.token(world.a.name, ["analyst"]))
    assert jwt_client.get("/v1/registry/versions", headers=analyst).status_code == 200
    assert_problem(jwt_client.get("/v1/keys", headers=analyst), 403)
    denied = jwt_client.post(
        "/v1/registry/versions/1/approve", headers=analyst, json={"reason": "r", "forecast": False}
    )
    assert "analyst" in assert_problem(denied, 403)["detail"]
    both = bearer(pool.token(world.a.name, ["analyst", "approver", "some-other-app-group"]))
    approved = jwt_client.post(
        "/v1/registry/versions/1/approve", headers=both, json={"reason": "r", "forecast": False}
    )
    assert approved.status_code == 200, approved.text
    assert world.registry.audit_log(world.a.name)[-1].actor == "user:8d1c2b3a-user"
    nothing = bearer(pool.token(world.a.name, ["some-other-app-group"]))
    assert "no role" in assert_problem(jwt_client.get("/v1/forecasts", headers=nothing), 403)["detail"]


@pytest.mark.parametrize(
    ("case", "overrides"),
    [
        ("expired", {"exp": int(time.time()) - 120, "iat": int(time.time()) - 4000}),
        ("other issuer", {"iss": "https://evil.example.com"}),
        ("other app", {"aud": "someone-else"}),
        ("unknown kid", {"kid": "key-999"}),
        ("no tenant", {"custom:tenant_id": None}),
        ("bad tenant", {"custom:tenant_id": "../etc"}),
        ("no subject", {"sub": None}),
    ],
)
def test_bad_tokens_are_401(
    world: World, pool: Pool, jwt_client: TestClient, case: str, overrides: dict[str, Any]
) -> None:
    tenant = world.a.name
    claims = {k: v for k, v in overrides.items() if v is not None}
    token = pool.token(tenant, ["viewer"], **claims)
    if None in overrides.values():  # drop the claim entirely
        payload = jwt.decode(token, options={"verify_signature": False})
        for name, value in overrides.items():
            if value is None:
                payload.pop(name, None)
        token = jwt.encode(payload, pool.keys[pool.kid], algorithm="RS256", headers={"kid": pool.kid})
    body = assert_problem(jwt_client.get("/v1/forecasts/current", headers=bearer(token)), 401)
    assert world.a.set_id not in json.dumps(body)


def test_forged_algorithms_are_refused(world: World, pool: Pool, jwt_client: TestClient) -> None:
    claims = jwt.decode(pool.token(world.a.name, ["admin"]), options={"verify_signature": False})
    public_pem = (
        pool.keys[pool.kid]
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    unsigned = jwt.encode(claims, key=None, algorithm="none", headers={"kid": pool.kid})
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    forged = [
        unsigned,
        _hs256(claims, public_pem, pool.kid),  # the classic RS256 -> HS256 key-confusion attack
        jwt.encode(claims, other_key, algorithm="RS256", headers={"kid": pool.kid}),
        "not.a.token",
    ]
    for token in forged:
        assert_problem(jwt_client.get("/v1/forecasts", headers=bearer(token)), 401)


def _hs256(claims: dict[str, Any], secret: bytes, kid: str) -> str:
    def part(doc: dict[str, Any]) -> bytes:
        return base64.urlsafe_b64encode(json.dumps(doc).encode()).rstrip(b"=")

    signing_input = part({"alg": "HS256", "typ": "JWT", "kid": kid}) + b"." + part(claims)
    signature = base64.urlsafe_b64encode(hmac.new(secret, signing_input, hashlib.sha256).digest()).rstrip(
        b"="
    )
    return (signing_input + b"." + signature).decode()


def test_access_tokens_carry_the_client_in_client_id(
    world: World, pool: Pool, jwt_client: TestClient
) -> None:
    token = pool.token(world.b.name, ["viewer"], aud=None, client_id=CLIENT, token_use="access")
    payload = jwt.decode(token, options={"verify_signature": False})
    payload.pop("aud")
    token = jwt.encode(payload, pool.keys[pool.kid], algorithm="RS256", headers={"kid": pool.kid})
    assert jwt_client.get("/v1/forecasts/current", headers=bearer(token)).status_code == 200


def test_key_rotation_is_picked_up_from_the_file(world: World, pool: Pool, jwt_client: TestClient) -> None:
    old = pool.token(world.a.name, ["viewer"])
    assert jwt_client.get("/v1/forecasts/current", headers=bearer(old)).status_code == 200
    time.sleep(0.01)
    pool.rotate("key-2")
    assert_problem(jwt_client.get("/v1/forecasts/current", headers=bearer(old)), 401)
    new = pool.token(world.a.name, ["viewer"])
    assert jwt_client.get("/v1/forecasts/current", headers=bearer(new)).status_code == 200


def test_bearer_tokens_are_refused_when_not_configured(world: World, pool: Pool, client: TestClient) -> None:
    body = assert_problem(
        client.get("/v1/forecasts", headers=bearer(pool.token(world.a.name, ["admin"]))), 401
    )
    assert "not enabled" in body["detail"]
