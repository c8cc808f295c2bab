"""RS256 (RSASSA-PKCS1-v1_5 with SHA-256) signature verification in the standard library.

Why not ``cryptography``: it is 15 MB of the Lambda package's 50 MB budget, for one modular
exponentiation per request. Verification needs no secret and no randomness, and is done the way
RFC 8017 §8.2.2 recommends, which is also what makes it safe to write by hand: the signature is
turned back into the encoded message (``s^e mod n``) and compared, in constant time, with the
*complete* encoding we build ourselves for the expected digest. Nothing of the decoded message is
parsed, so the padding-parsing mistakes behind the known PKCS#1 v1.5 forgeries cannot happen.
Keys under 2048 bits, even exponents and signatures of the wrong length or not below the modulus
are refused. The tests check this against tokens signed by ``cryptography`` and PyJWT.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from dataclasses import dataclass
from typing import Any

# DER of DigestInfo { sha256, NULL } up to the 32-byte digest (RFC 8017 §9.2, note 1).
_SHA256_PREFIX = bytes.fromhex("3031300d060960864801650304020105000420")
MIN_BITS = 2048
_B64URL = re.compile(r"[A-Za-z0-9_-]*")


class KeyError_(ValueError):  # noqa: N801, N818 - "a bad key", distinct from the builtin KeyError
    """A JWK that is not a usable RSA signature key."""


@dataclass(frozen=True)
class RsaPublicKey:
    n: int
    e: int

    @property
    def size(self) -> int:
        return (self.n.bit_length() + 7) // 8

    @classmethod
    def from_jwk(cls, jwk: dict[str, Any]) -> RsaPublicKey:
        if jwk.get("kty") != "RSA":
            raise KeyError_("not an RSA key")
        try:
            n, e = b64url_int(jwk["n"]), b64url_int(jwk["e"])
        except (KeyError, TypeError, ValueError) as exc:
            raise KeyError_(f"RSA key without valid n and e ({exc})") from None
        if n.bit_length() < MIN_BITS or e < 3 or e % 2 == 0:
            raise KeyError_(f"RSA keys need at least {MIN_BITS} bits and an odd exponent >= 3")
        return cls(n, e)


def verify(key: RsaPublicKey, message: bytes, signature: bytes) -> bool:
    """True only if ``signature`` is a valid RS256 signature of ``message`` under ``key``."""
    k = key.size
    if len(signature) != k:
        return False
    s = int.from_bytes(signature, "big")
    if s >= key.n:
        return False
    encoded = pow(s, key.e, key.n).to_bytes(k, "big")
    digest_info = _SHA256_PREFIX + hashlib.sha256(message).digest()
    expected = b"\x00\x01" + b"\xff" * (k - len(digest_info) - 3) + b"\x00" + digest_info
    return hmac.compare_digest(encoded, expected)


def b64url(text: str) -> bytes:
    """Base64url without padding (JOSE), strictly: any other character is an error."""
    if not isinstance(text, str) or not _B64URL.fullmatch(text):
        raise ValueError("expected base64url text")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise ValueError("invalid base64url") from None


def b64url_int(text: str) -> int:
    raw = b64url(text)
    if not raw:
        raise ValueError("empty integer")
    return int.from_bytes(raw, "big")
