"""Optional bearer tokens (Cognito-style RS256 JWTs), mapped onto the API key model: tenant + roles.

A token is accepted only when it is signed by a key of the configured JWKS file (the user pool's
``jwks.json``, shipped with the deployment so no request waits on a network fetch), carries a
``kid`` naming that key, uses RS256 (never ``none`` or an HMAC algorithm: an attacker who knows
the public key could otherwise sign with it), is unexpired, and matches the configured issuer and
app client. Cognito puts the client id in ``aud`` for ID tokens and in ``client_id`` for access
tokens, so either is checked against the audience.

The tenant comes from a claim (``custom:tenant_id``), the roles from the groups claim
(``cognito:groups``): a group ``<prefix><role>`` grants that role. A token may grant several roles,
since a person can be both an analyst and an approver; roles never imply one another.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt

from ordernimbus.errors import TenantError
from ordernimbus.settings import Settings
from ordernimbus.tenancy import validate_tenant
from serving.auth import ROLES, Role

ALGORITHMS = ["RS256"]
MAX_TOKEN_LENGTH = 8192
LEEWAY_SECONDS = 30


class TokenRejected(Exception):  # noqa: N818 - reads as what happened to the token
    """The token is not acceptable; the message is safe to show the caller."""


@dataclass(frozen=True)
class TokenIdentity:
    tenant_id: str
    roles: frozenset[Role]
    subject: str


class JwtVerifier:
    """Verifies tokens against one JWKS file, re-read when the file changes (key rotation)."""

    def __init__(self, settings: Settings) -> None:
        if settings.api_jwt_jwks_path is None:
            raise ValueError("api_jwt_jwks_path is not set: bearer tokens are disabled")
        self._path = Path(settings.api_jwt_jwks_path)
        self._issuer = settings.api_jwt_issuer
        self._audience = settings.api_jwt_audience
        self._tenant_claim = settings.api_jwt_tenant_claim
        self._groups_claim = settings.api_jwt_groups_claim
        self._prefix = settings.api_jwt_group_prefix
        self._lock = threading.Lock()
        self._keys: dict[str, Any] = {}
        self._stamp: tuple[float, int] | None = None

    def verify(self, token: str) -> TokenIdentity:
        if not token or len(token) > MAX_TOKEN_LENGTH:
            raise TokenRejected("malformed bearer token")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise TokenRejected("malformed bearer token") from None
        if header.get("alg") not in ALGORITHMS:
            raise TokenRejected(f"bearer tokens must be signed with {', '.join(ALGORITHMS)}")
        key = self._key(str(header.get("kid", "")))
        options = {"require": ["exp", "iat", "sub"], "verify_aud": False}
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=ALGORITHMS,
                issuer=self._issuer,
                options=options,  # type: ignore[arg-type]
                leeway=LEEWAY_SECONDS,
            )
        except jwt.ExpiredSignatureError:
            raise TokenRejected("the bearer token has expired") from None
        except jwt.PyJWTError as exc:
            raise TokenRejected(f"invalid bearer token ({type(exc).__name__})") from None
        self._check_audience(claims)
        return TokenIdentity(self._tenant(claims), self._roles(claims), str(claims["sub"]))

    def _check_audience(self, claims: dict[str, Any]) -> None:
        if self._audience is None:
            return
        aud = claims.get("aud", claims.get("client_id"))
        audiences = aud if isinstance(aud, list) else [aud]
        if self._audience not in audiences:
            raise TokenRejected("the bearer token was issued for another application")

    def _tenant(self, claims: dict[str, Any]) -> str:
        value = claims.get(self._tenant_claim)
        try:
            return validate_tenant(value) if isinstance(value, str) else _missing(self._tenant_claim)
        except TenantError:
            raise TokenRejected(f"the bearer token's {self._tenant_claim} claim is not a tenant id") from None

    def _roles(self, claims: dict[str, Any]) -> frozenset[Role]:
        groups = claims.get(self._groups_claim) or []
        if isinstance(groups, str):
            groups = groups.split()
        granted = {
            g.removeprefix(self._prefix) for g in groups if isinstance(g, str) and g.startswith(self._prefix)
        }
        return frozenset(r for r in ROLES if r in granted)

    def _key(self, kid: str) -> Any:
        with self._lock:
            try:
                stat = self._path.stat()
            except OSError:
                raise TokenRejected("bearer tokens cannot be verified right now") from None
            stamp = (stat.st_mtime, stat.st_size)
            if stamp != self._stamp:
                self._keys = _load_jwks(self._path)
                self._stamp = stamp
            key = self._keys.get(kid)
        if key is None:
            raise TokenRejected("the bearer token was signed by an unknown key")
        return key


def _load_jwks(path: Path) -> dict[str, Any]:
    """RSA signing keys of a JWKS file by kid; keys for other uses or types are skipped."""
    try:
        document = json.loads(path.read_text())
        keys = jwt.PyJWKSet.from_dict(document).keys
    except (OSError, ValueError, jwt.PyJWTError) as exc:
        raise TokenRejected(f"bearer tokens cannot be verified right now ({type(exc).__name__})") from None
    return {
        k.key_id: k.key
        for k in keys
        if k.key_id and k.key_type == "RSA" and (k.public_key_use or "sig") == "sig"
    }


def _missing(claim: str) -> str:
    raise TokenRejected(f"the bearer token has no {claim} claim")
