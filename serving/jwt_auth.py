"""Optional bearer tokens (Cognito-style RS256 JWTs), mapped onto the API key model: tenant + roles.

A token is accepted only when it is signed by a key of the configured JWKS file (the user pool's
``jwks.json``, shipped with the deployment so no request waits on a network fetch), names that key
in ``kid``, says ``alg: RS256`` (never ``none`` or an HMAC algorithm: an attacker who knows the
public key could otherwise sign with it), is unexpired (``exp``, ``nbf``, with 30 s of clock skew),
has ``iat`` and ``sub``, and matches the configured issuer and app client. Cognito puts the client
id in ``aud`` for ID tokens and in ``client_id`` for access tokens, so either is checked.

The signature is checked by :mod:`serving.rs256` (standard library only, so the Lambda package
carries no ``cryptography``); the claims are checked here, explicitly, one rule per line.

The tenant comes from a claim (``custom:tenant_id``), the roles from the groups claim
(``cognito:groups``): a group ``<prefix><role>`` grants that role. A token may grant several roles,
since a person can be both an analyst and an approver; roles never imply one another.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ordernimbus.errors import TenantError
from ordernimbus.settings import Settings
from ordernimbus.tenancy import validate_tenant
from serving.auth import ROLES, Role
from serving.rs256 import KeyError_, RsaPublicKey, b64url, verify

ALGORITHM = "RS256"
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

    def __init__(self, settings: Settings, clock: Any = time.time) -> None:
        if settings.api_jwt_jwks_path is None:
            raise ValueError("api_jwt_jwks_path is not set: bearer tokens are disabled")
        self._path = Path(settings.api_jwt_jwks_path)
        self._issuer = settings.api_jwt_issuer
        self._audience = settings.api_jwt_audience
        self._tenant_claim = settings.api_jwt_tenant_claim
        self._groups_claim = settings.api_jwt_groups_claim
        self._prefix = settings.api_jwt_group_prefix
        self._clock = clock
        self._lock = threading.Lock()
        self._keys: dict[str, RsaPublicKey] = {}
        self._stamp: tuple[float, int] | None = None

    def verify(self, token: str) -> TokenIdentity:
        header, claims, signing_input, signature = _split(token)
        if header.get("alg") != ALGORITHM:
            raise TokenRejected(f"bearer tokens must be signed with {ALGORITHM}")
        key = self._key(header.get("kid"))
        if not verify(key, signing_input, signature):
            raise TokenRejected("invalid bearer token (bad signature)")
        self._check_claims(claims)
        return TokenIdentity(self._tenant(claims), self._roles(claims), str(claims["sub"]))

    def _check_claims(self, claims: dict[str, Any]) -> None:
        now = self._clock()
        for name in ("exp", "iat"):
            if not _number(claims.get(name)):
                raise TokenRejected(f"the bearer token has no numeric {name} claim")
        if claims["exp"] + LEEWAY_SECONDS <= now:
            raise TokenRejected("the bearer token has expired")
        if _number(claims.get("nbf")) and claims["nbf"] - LEEWAY_SECONDS > now:
            raise TokenRejected("the bearer token is not valid yet")
        if not isinstance(claims.get("sub"), str) or not claims["sub"]:
            raise TokenRejected("the bearer token has no sub claim")
        if self._issuer is not None and claims.get("iss") != self._issuer:
            raise TokenRejected("the bearer token was issued by another identity provider")
        if self._audience is not None:
            aud = claims.get("aud", claims.get("client_id"))
            if self._audience not in (aud if isinstance(aud, list) else [aud]):
                raise TokenRejected("the bearer token was issued for another application")

    def _tenant(self, claims: dict[str, Any]) -> str:
        value = claims.get(self._tenant_claim)
        if not isinstance(value, str):
            raise TokenRejected(f"the bearer token has no {self._tenant_claim} claim")
        try:
            return validate_tenant(value)
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

    def _key(self, kid: Any) -> RsaPublicKey:
        with self._lock:
            try:
                stat = self._path.stat()
            except OSError:
                raise TokenRejected("bearer tokens cannot be verified right now") from None
            stamp = (stat.st_mtime, stat.st_size)
            if stamp != self._stamp:
                self._keys = _load_jwks(self._path)
                self._stamp = stamp
            key = self._keys.get(kid) if isinstance(kid, str) else None
        if key is None:
            raise TokenRejected("the bearer token was signed by an unknown key")
        return key


def _split(token: str) -> tuple[dict[str, Any], dict[str, Any], bytes, bytes]:
    """(header, claims, signing input, signature) of a compact JWS; TokenRejected if malformed."""
    if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_LENGTH or token.count(".") != 2:
        raise TokenRejected("malformed bearer token")
    head, body, sig = token.split(".")
    try:
        header, claims = json.loads(b64url(head)), json.loads(b64url(body))
        signature = b64url(sig)
    except ValueError:
        raise TokenRejected("malformed bearer token") from None
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise TokenRejected("malformed bearer token")
    return header, claims, f"{head}.{body}".encode("ascii"), signature


def _load_jwks(path: Path) -> dict[str, RsaPublicKey]:
    """RSA signing keys of a JWKS file by kid; keys for other uses, types or sizes are skipped."""
    try:
        document = json.loads(path.read_text())
        entries = document["keys"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise TokenRejected(f"bearer tokens cannot be verified right now ({type(exc).__name__})") from None
    keys: dict[str, RsaPublicKey] = {}
    for jwk in entries if isinstance(entries, list) else []:
        if not isinstance(jwk, dict) or not isinstance(jwk.get("kid"), str):
            continue
        if jwk.get("use", "sig") != "sig" or jwk.get("alg", ALGORITHM) != ALGORITHM:
            continue
        try:
            keys[jwk["kid"]] = RsaPublicKey.from_jwk(jwk)
        except KeyError_:
            continue
    return keys


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
