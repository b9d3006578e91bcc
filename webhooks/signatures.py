"""Webhook signature checks for Jira and Zendesk: pure functions on the raw body that fail closed.

Each check raises `SignatureInvalid` (answered 401) with a reason safe to log; it never says what
the expected signature was. A missing secret is a failure, never a skipped check.

- Jira (Cloud admin webhooks and Data Center, when a secret is set): header
  `X-Hub-Signature: sha256=<hex>`, HMAC-SHA256 of the raw body keyed with the secret.
  https://developer.atlassian.com/cloud/jira/platform/webhooks/#secure-admin-webhooks
  The method before `=` is parsed and anything but sha256 is refused.
- Zendesk: `X-Zendesk-Webhook-Signature` = base64(HMAC-SHA256(key = the signing secret as UTF-8
  text, message = `X-Zendesk-Webhook-Signature-Timestamp` + raw body)).
  https://developer.zendesk.com/documentation/webhooks/verifying/
  Zendesk documents no replay window, so `check_timestamp` enforces one.

Rotation: each check takes the current secret and, during a rotation, the previous one; a
delivery signed with either passes (the previous secret is never tried when it is unset).

HTTP Basic (Jira only, an explicit opt-in): Jira Data Center documents basic authentication as
the other way to secure a webhook ("Managing webhooks", confluence.atlassian.com/adminjiraserver/
managing-webhooks-938846912.html). `check_basic` compares user and password in constant time.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
from datetime import UTC, datetime


class SignatureInvalid(Exception):
    """The delivery is not signed by the vendor: answered 401, never stored."""


@functools.lru_cache(maxsize=8)
def _keyed(secret: str) -> hmac.HMAC:
    """An HMAC-SHA256 keyed with `secret`, to be copied per message: keying costs more than
    hashing a 9 KB body under OpenSSL 3, and the receiver checks every delivery with the same
    one or two secrets."""
    return hmac.new(secret.encode("utf-8"), digestmod=hashlib.sha256)


def _mac(secret: str, *parts: bytes) -> hmac.HMAC:
    mac = _keyed(secret).copy()
    for part in parts:
        mac.update(part)
    return mac


def verify_jira(
    body: bytes, *, signature: str | None, secret: str | None, previous: str | None = None
) -> None:
    """Check Jira's `X-Hub-Signature: sha256=<hex>` over `body` with the current secret or,
    during a rotation, the `previous` one; raise SignatureInvalid."""
    if not secret:
        raise SignatureInvalid(
            "no Jira webhook secret is configured (TIERDESK_JIRA_WEBHOOK_SECRET)"
        )
    if not signature:
        raise SignatureInvalid("missing X-Hub-Signature header")
    method, sep, given = signature.strip().partition("=")
    if not sep:
        raise SignatureInvalid("X-Hub-Signature is not of the form sha256=<hex>")
    if method.strip().lower() != "sha256":
        raise SignatureInvalid(f"unsupported X-Hub-Signature method {method[:16]!r}")
    presented = given.strip().lower().encode("utf-8")
    for key in (secret, previous):
        if key and hmac.compare_digest(_mac(key, body).hexdigest().encode("ascii"), presented):
            return
    raise SignatureInvalid("X-Hub-Signature does not match the body")


def verify_zendesk(
    body: bytes,
    *,
    signature: str | None,
    timestamp: str | None,
    secret: str | None,
    previous: str | None = None,
) -> None:
    """Check Zendesk's `X-Zendesk-Webhook-Signature` over timestamp + `body` with the current
    secret or, during a rotation, the `previous` one; raise SignatureInvalid. The timestamp's
    age is checked separately by `check_timestamp`."""
    if not secret:
        raise SignatureInvalid(
            "no Zendesk webhook secret is configured (TIERDESK_ZENDESK_WEBHOOK_SECRET)"
        )
    if not signature:
        raise SignatureInvalid("missing X-Zendesk-Webhook-Signature header")
    if not timestamp:
        raise SignatureInvalid("missing X-Zendesk-Webhook-Signature-Timestamp header")
    try:
        given = base64.b64decode(signature.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise SignatureInvalid("X-Zendesk-Webhook-Signature is not base64") from None
    for key in (secret, previous):
        if key and hmac.compare_digest(_mac(key, timestamp.encode("utf-8"), body).digest(), given):
            return
    raise SignatureInvalid("X-Zendesk-Webhook-Signature does not match the body")


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


def parse_timestamp(value: str) -> datetime:
    """A Zendesk signature timestamp (ISO 8601 like `2021-03-25T05:09:27Z`, or epoch seconds)."""
    text = value.strip()
    try:
        if text.isdigit():
            return datetime.fromtimestamp(int(text), tz=UTC)
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except (ValueError, OverflowError, OSError):
        raise SignatureInvalid(
            "X-Zendesk-Webhook-Signature-Timestamp is not an ISO 8601 time"
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def check_timestamp(timestamp: str | None, *, now: datetime, max_age: float) -> None:
    """Refuse a signature timestamp more than `max_age` seconds before or after `now` (a replay
    of an old delivery, or a forged future one)."""
    if not timestamp:
        raise SignatureInvalid("missing X-Zendesk-Webhook-Signature-Timestamp header")
    skew = abs((now - parse_timestamp(timestamp)).total_seconds())
    if skew > max_age:
        raise SignatureInvalid(
            f"signature timestamp is {int(skew)} s away from now (limit {int(max_age)} s):"
            " a replay, or a clock out of sync"
        )


def sign_jira(body: bytes, secret: str) -> str:
    """The `X-Hub-Signature` value Jira would send (for tests, the sandbox and bench/)."""
    return "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def sign_zendesk(body: bytes, secret: str, timestamp: str) -> str:
    """The `X-Zendesk-Webhook-Signature` value Zendesk would send (for tests and bench/)."""
    digest = hmac.new(secret.encode("utf-8"), timestamp.encode("utf-8") + body, hashlib.sha256)
    return base64.b64encode(digest.digest()).decode("ascii")
