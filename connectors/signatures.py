"""Webhook signature helpers every vendor shares: the cached HMAC, secret rotation, HTTP Basic.

The vendor halves live in `connectors/<vendor>/webhook.py` (`verify`); each raises
`SignatureInvalid` (answered 401) with a reason safe to log, never the expected signature. A
missing secret is a failure, never a skipped check.

Rotation: a check takes the current secret and, during a rotation, the previous one; a delivery
signed with either passes (the previous secret is never tried when it is unset).
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
from collections.abc import Callable


class SignatureInvalid(Exception):
    """The delivery is not signed by the vendor: answered 401, never stored."""


@functools.lru_cache(maxsize=8)
def _keyed(secret: str) -> hmac.HMAC:
    """An HMAC-SHA256 keyed with `secret`, to be copied per message: keying costs more than
    hashing a 9 KB body under OpenSSL 3, and the receiver checks every delivery with the same
    one or two secrets."""
    return hmac.new(secret.encode("utf-8"), digestmod=hashlib.sha256)


def mac(secret: str, *parts: bytes) -> hmac.HMAC:
    """HMAC-SHA256 keyed with `secret` (UTF-8) over `parts` in order."""
    keyed = _keyed(secret).copy()
    for part in parts:
        keyed.update(part)
    return keyed


def signed_by_either(
    presented: bytes,
    expected: Callable[[str], bytes],
    *,
    secret: str,
    previous: str | None,
) -> bool:
    """True when `presented` equals `expected(key)` (constant time) for the current secret or,
    during a rotation, the previous one."""
    return any(
        key and hmac.compare_digest(expected(key), presented) for key in (secret, previous)
    )


def check_basic(authorization: str | None, *, credentials: tuple[str, str]) -> None:
    """Check an `Authorization: Basic ...` header against (user, password) in constant time;
    raise SignatureInvalid. Both parts are always compared, so timing tells nothing."""
    if not authorization:
        raise SignatureInvalid("missing X-Hub-Signature header and no Basic credentials")
    scheme, _, encoded = authorization.strip().partition(" ")
    if scheme.lower() != "basic":
        raise SignatureInvalid("Authorization is not Basic")
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise SignatureInvalid("Authorization Basic credentials are not base64") from None
    user, sep, password = decoded.partition(b":")
    want_user, want_password = (part.encode("utf-8") for part in credentials)
    same_user = hmac.compare_digest(user, want_user)
    same_password = hmac.compare_digest(password, want_password)
    if not (sep and same_user and same_password):
        raise SignatureInvalid("Authorization Basic credentials do not match")
