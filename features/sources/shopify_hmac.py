"""Shopify webhook signature check, standard library only.

The API verifies every webhook before it parses the body, inside a small Lambda package, so this
module must import without pandas. Shopify signs the raw request body with the app's shared secret
(HMAC-SHA256) and sends the base64 digest in ``X-Shopify-Hmac-Sha256``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac


def verify_shopify_hmac(body: bytes, secret: str, header_value: str) -> bool:
    """True only if ``header_value`` is the base64 HMAC-SHA256 of ``body`` under ``secret``.

    The comparison runs in constant time over the decoded digests, so a caller cannot learn a prefix
    of the right signature from response timings. Anything malformed (empty secret, missing header,
    non-base64 text) is simply not a valid signature: False, never an exception.
    """
    if not isinstance(body, bytes | bytearray) or not secret or not header_value:
        return False
    try:
        given = base64.b64decode(header_value.strip().encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        return False
    expected = hmac.new(secret.encode("utf-8"), bytes(body), hashlib.sha256).digest()
    return hmac.compare_digest(expected, given)
