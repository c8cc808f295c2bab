"""The standard-library RS256 verifier against signatures made by ``cryptography``, and against the
forgery that breaks verifiers which parse the decoded padding instead of comparing all of it."""

from __future__ import annotations

import hashlib
import os

import jwt
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from serving.rs256 import _SHA256_PREFIX, KeyError_, RsaPublicKey, b64url, verify


def keypair(bits: int = 2048, e: int = 65537) -> tuple[rsa.RSAPrivateKey, RsaPublicKey]:
    private = rsa.generate_private_key(public_exponent=e, key_size=bits)
    numbers = private.public_key().public_numbers()
    return private, RsaPublicKey(numbers.n, numbers.e)


@pytest.mark.parametrize("bits", [2048, 3072])
def test_accepts_exactly_the_signatures_cryptography_makes(bits: int) -> None:
    private, public = keypair(bits)
    for _ in range(5):
        message = os.urandom(200)
        signature = private.sign(message, padding.PKCS1v15(), hashes.SHA256())
        assert verify(public, message, signature)
        assert not verify(public, message + b"x", signature)
        flipped = bytearray(signature)
        flipped[len(flipped) // 2] ^= 0x01
        assert not verify(public, message, bytes(flipped))
    pss = private.sign(b"m", padding.PSS(padding.MGF1(hashes.SHA256()), 32), hashes.SHA256())
    assert not verify(public, b"m", pss)
    other = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    assert not verify(public, b"m", other.sign(b"m", padding.PKCS1v15(), hashes.SHA256()))
    sha1 = private.sign(b"m", padding.PKCS1v15(), hashes.SHA1())
    assert not verify(public, b"m", sha1)


def test_refuses_malformed_signatures() -> None:
    private, public = keypair()
    signature = private.sign(b"m", padding.PKCS1v15(), hashes.SHA256())
    assert not verify(public, b"m", signature[1:])
    assert not verify(public, b"m", b"\x00" + signature)
    assert not verify(public, b"m", public.n.to_bytes(public.size, "big"))  # s >= n
    assert not verify(public, b"m", b"\x00" * public.size)


def test_the_e3_forgery_is_refused() -> None:
    """Bleichenbacher 2006: with e=3, a cube root of 00 01 FF 00 DigestInfo H <garbage> is a
    'signature' that verifiers skipping the padding length accept. Full comparison refuses it."""
    _, public = keypair(e=3)
    k = public.size
    digest_info = _SHA256_PREFIX + hashlib.sha256(b"pay me").digest()
    prefix = b"\x00\x01\xff\x00" + digest_info
    target = int.from_bytes(prefix + b"\x00" * (k - len(prefix)), "big")
    root = _icbrt(target)
    forged = root.to_bytes(k, "big")
    assert pow(root, 3, public.n).to_bytes(k, "big").startswith(prefix)  # a lenient parser would accept
    assert not verify(public, b"pay me", forged)


def _icbrt(n: int) -> int:
    lo, hi = 0, 1 << ((n.bit_length() + 2) // 3 + 1)
    while lo < hi:
        mid = (lo + hi) // 2
        if mid**3 < n:
            lo = mid + 1
        else:
            hi = mid
    return lo


def test_keys_are_checked_when_loaded() -> None:
    private, _ = keypair()
    jwk = jwt.algorithms.RSAAlgorithm.to_jwk(private.public_key(), as_dict=True)
    key = RsaPublicKey.from_jwk(jwk)
    assert key.n == private.public_key().public_numbers().n
    small = jwt.algorithms.RSAAlgorithm.to_jwk(
        rsa.generate_private_key(public_exponent=65537, key_size=1024).public_key(), as_dict=True
    )
    for bad in (small, {**jwk, "kty": "EC"}, {**jwk, "e": "Ag"}, {"kty": "RSA", "n": "!!"}, {"kty": "RSA"}):
        with pytest.raises(KeyError_):
            RsaPublicKey.from_jwk(bad)
    with pytest.raises(ValueError, match="base64url"):
        b64url("ab+c")
