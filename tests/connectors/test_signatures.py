"""Signature checks against the vendors' published vectors, and every way a check fails closed."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from connectors.jira.webhook import sign as sign_jira
from connectors.jira.webhook import verify_signature as verify_jira
from connectors.signatures import SignatureInvalid
from connectors.zendesk.webhook import check_timestamp
from connectors.zendesk.webhook import sign as sign_zendesk
from connectors.zendesk.webhook import verify_signature as verify_zendesk
from tests.shared_vendor import VENDOR

ZD_VECTORS = VENDOR / "zendesk" / "aaronellington_zendesk-go"
ATLASSIAN_SECRET = "It's a Secret to Everybody"
ATLASSIAN_SIG = "sha256=a4771c39fbe90f317c7824e83ddef3caae9cb3d976c214ace1f2937e133263c9"


def _zendesk_vectors() -> list[tuple[str, bytes, str, str, str]]:
    spec = json.loads((ZD_VECTORS / "signatures.json").read_text())
    return [
        (v["file"], (ZD_VECTORS / v["file"]).read_bytes(), v["signature"], spec["timestamp"],
         spec["secret"])
        for v in spec["vectors"]
    ]


def test_jira_atlassian_documented_vector() -> None:
    """Atlassian's documented secret/body/signature vector verifies."""
    verify_jira(b"Hello World!", signature=ATLASSIAN_SIG, secret=ATLASSIAN_SECRET)


def test_jira_sign_reproduces_the_documented_vector() -> None:
    """sign_jira (used by tests, bench and the sandbox) produces Atlassian's vector."""
    assert sign_jira(b"Hello World!", ATLASSIAN_SECRET) == ATLASSIAN_SIG


@pytest.mark.parametrize(
    ("signature", "secret", "why"),
    [
        (ATLASSIAN_SIG, None, "no Jira webhook secret"),           # fail closed without a secret
        (ATLASSIAN_SIG, "", "no Jira webhook secret"),             # empty secret is no secret
        (None, ATLASSIAN_SECRET, "missing X-Hub-Signature"),       # header absent
        ("a4771c39fbe9", ATLASSIAN_SECRET, "not of the form"),     # no method prefix
        ("sha1=a4771c39", ATLASSIAN_SECRET, "unsupported"),        # only sha256 is accepted
        ("sha256=" + "0" * 64, ATLASSIAN_SECRET, "does not match"),  # wrong digest
        (ATLASSIAN_SIG, "another secret", "does not match"),       # wrong secret
    ],
)
def test_jira_refusals(signature: str | None, secret: str | None, why: str) -> None:
    """Each malformed, missing or wrong Jira signature is refused with a reason."""
    with pytest.raises(SignatureInvalid, match=why):
        verify_jira(b"Hello World!", signature=signature, secret=secret)


def test_jira_tampered_body_is_refused() -> None:
    """A body changed by one byte no longer verifies."""
    with pytest.raises(SignatureInvalid):
        verify_jira(b"Hello World?", signature=ATLASSIAN_SIG, secret=ATLASSIAN_SECRET)


@pytest.mark.parametrize(("name", "body", "signature", "timestamp", "secret"), _zendesk_vectors())
def test_zendesk_static_secret_vectors(
    name: str, body: bytes, signature: str, timestamp: str, secret: str
) -> None:
    """The Zendesk static-test-secret vectors verify (secret used as UTF-8 text, not decoded)."""
    verify_zendesk(body, signature=signature, timestamp=timestamp, secret=secret)
    assert sign_zendesk(body, secret, timestamp) == signature


@pytest.mark.parametrize(("name", "body", "signature", "timestamp", "secret"), _zendesk_vectors())
def test_zendesk_vectors_fail_with_other_timestamp(
    name: str, body: bytes, signature: str, timestamp: str, secret: str
) -> None:
    """The timestamp is part of the signed message: another timestamp does not verify."""
    with pytest.raises(SignatureInvalid, match="does not match"):
        verify_zendesk(body, signature=signature, timestamp=timestamp + "0", secret=secret)


@pytest.mark.parametrize(
    ("signature", "timestamp", "secret", "why"),
    [
        ("x", "1", None, "no Zendesk webhook secret"),       # fail closed without a secret
        (None, "1", "s", "missing X-Zendesk-Webhook-Signature header"),
        ("abc=", None, "s", "missing X-Zendesk-Webhook-Signature-Timestamp"),
        ("not base64!", "1", "s", "not base64"),
        ("AAAA", "1", "s", "does not match"),
    ],
)
def test_zendesk_refusals(
    signature: str | None, timestamp: str | None, secret: str | None, why: str
) -> None:
    """Each missing or wrong Zendesk signature part is refused with a reason."""
    with pytest.raises(SignatureInvalid, match=why):
        verify_zendesk(b"{}", signature=signature, timestamp=timestamp, secret=secret)


NOW = datetime(2026, 11, 21, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("timestamp", "ok"),
    [
        ("2026-11-21T12:00:00Z", True),      # now
        ("2026-11-21T11:55:01Z", True),      # 299 s old
        ("2026-11-21T11:54:59Z", False),     # 301 s old: a replay
        ("2026-11-21T12:04:59+00:00", True),  # slight clock skew ahead
        ("2026-11-21T12:06:00Z", False),     # far in the future
        (str(int(NOW.timestamp())), True),   # epoch seconds are accepted too
        ("yesterday", False),                # not a time
    ],
)
def test_zendesk_timestamp_window(timestamp: str, ok: bool) -> None:
    """Signature timestamps further than SIGNATURE_MAX_AGE from now are refused as replays."""
    if ok:
        check_timestamp(timestamp, now=NOW, max_age=300)
    else:
        with pytest.raises(SignatureInvalid):
            check_timestamp(timestamp, now=NOW, max_age=300)


def test_zendesk_documented_header_time_parses() -> None:
    """The timestamp format of Zendesk's documented headers is understood."""
    when = datetime(2021, 3, 25, 5, 9, 27, tzinfo=UTC)
    check_timestamp("2021-03-25T05:09:27Z", now=when + timedelta(seconds=10), max_age=300)


def test_check_basic_compares_user_and_password() -> None:
    """check_basic accepts exactly the configured pair and refuses malformed headers."""
    import base64

    from connectors.signatures import check_basic

    good = "Basic " + base64.b64encode(b"jira:secret-password").decode()
    check_basic(good, credentials=("jira", "secret-password"))
    for header in (None, "Bearer x", "Basic !!!", "Basic " + base64.b64encode(b"jira").decode(),
                   "Basic " + base64.b64encode(b"jira:other").decode()):
        with pytest.raises(SignatureInvalid):
            check_basic(header, credentials=("jira", "secret-password"))
