"""Jira webhooks, pure: `verify` the raw bytes, `parse` them, `classify` the event, refuse replays.

Signature (Cloud admin webhooks and Data Center, when a secret is set): header
`X-Hub-Signature: sha256=<hex>`, HMAC-SHA256 of the raw body keyed with the secret.
https://developer.atlassian.com/cloud/jira/platform/webhooks/#secure-admin-webhooks
The method before `=` is parsed and anything but sha256 is refused. HTTP Basic is an explicit
opt-in: Jira Data Center documents basic authentication as the other way to secure a webhook
("Managing webhooks", confluence.atlassian.com/adminjiraserver/managing-webhooks-938846912.html).

`classify(body, headers)` runs after the signature check. Payload facts it relies on (see
../shared/vendor/README.md, Jira section, and the fixtures in tests/connectors/jira/fixtures/):

- `webhookEvent` names the event; `timestamp` is epoch milliseconds.
- Issue events carry `user` (the actor) and the whole `issue`.
- Cloud comment events carry no `user`: the actor is `comment.author` (or `comment.updateAuthor`
  for `comment_updated`), and a trimmed `issue` (key present, labels absent).
- Server/Data Center `comment_created` carries no `issue` at all: the issue is named only by its
  numeric id inside `comment.self` (`.../rest/api/2/issue/10013/comment/10082`), so that id is the
  ticket reference (Jira's `GET /rest/api/2/issue/{issueIdOrKey}` accepts it).
- Cloud delivery header `X-Atlassian-Webhook-Identifier` is the same across retries of one
  delivery: the dedupe key. Without it (Data Center) a comment event and its `issue_commented`
  twin share `comment:<id>:<updated>`, and anything else uses a sha256 of the canonical body,
  equally stable across redeliveries of the same body (see `delivery_id`).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from connectors.base import Envelope, PayloadInvalid, WebhookAuth
from connectors.http import header
from connectors.payload import parse_json
from connectors.signatures import SignatureInvalid, check_basic, mac, signed_by_either

VENDOR = "jira"

#: The synthetic event `tierdesk backfill jira` enqueues, with `"issue": <GET issue JSON>`.
BACKFILL_EVENT = "tierdesk:backfill"

#: Events tierdesk evaluates a ticket on.
HANDLED_EVENTS = frozenset(
    {
        "jira:issue_created",
        "jira:issue_updated",
        "comment_created",
        "comment_updated",
        BACKFILL_EVENT,
    }
)

#: Events Jira may send that tierdesk accepts (so Jira stops retrying) and records as ignored.
#: Any other event name is treated the same way; this list documents the known ones.
IGNORED_EVENTS = frozenset(
    {
        "jira:issue_deleted",
        "comment_deleted",
        "worklog_created",
        "worklog_updated",
        "worklog_deleted",
        "issuelink_created",
        "issuelink_deleted",
        "attachment_created",
        "attachment_deleted",
        "project_created",
        "project_updated",
        "project_deleted",
        "jira:version_created",
        "jira:version_updated",
        "jira:version_released",
        "jira:version_deleted",
        "user_created",
        "user_updated",
        "user_deleted",
        "sprint_started",
        "sprint_closed",
        "board_created",
        "board_updated",
    }
)

DELIVERY_HEADER = "x-atlassian-webhook-identifier"
SIGNATURE_HEADER = "x-hub-signature"

_ISSUE_ID_IN_URL = re.compile(r"/rest/api/\d+/issue/(\d+)(?:/|$)")
_ISSUE_KEY = re.compile(r"^[A-Za-z][A-Za-z0-9_]*-\d+$")


#: Data Center sends every comment twice: `comment_created` (no issue) and `jira:issue_updated`
#: with one of these `issue_event_type_name`s (full issue), carrying the same comment.
_COMMENT_TWIN_TYPES = frozenset({"issue_commented", "issue_comment_edited"})


def _comment_delivery(body: Mapping[str, Any]) -> str | None:
    """`comment:<id>:<updated>` for a comment event or its DC `issue_commented` twin, else None."""
    event = body.get("webhookEvent")
    kind = body.get("issue_event_type_name")
    twin = event == "jira:issue_updated" and kind in _COMMENT_TWIN_TYPES
    if event not in ("comment_created", "comment_updated") and not twin:
        return None
    comment = body.get("comment")
    if not isinstance(comment, Mapping):
        return None
    ident, updated = comment.get("id"), comment.get("updated")
    if isinstance(ident, str) and ident and isinstance(updated, str) and updated:
        return f"comment:{ident}:{updated}"
    return None


def delivery_id(body: Mapping[str, Any], headers: Mapping[str, str]) -> str:
    """The dedupe key: Jira Cloud's webhook identifier; else, for a comment, the comment's id and
    update time; else a hash of the canonical body.

    Without the Cloud header (Data Center), one comment arrives as two events: `comment_created`
    without an issue (its ticket reference is the numeric issue id) and `jira:issue_updated` /
    `issue_commented` (referenced by key): see the fixtures comment_created__server.json and
    jira_issue_updated__server_commented.json. Processed separately, under two ticket references,
    both could post the same checklist note; sharing one dedupe key makes the inbox keep only
    the first to arrive.
    """
    ident = header(headers, DELIVERY_HEADER)
    if ident is not None and ident.strip():
        return ident.strip()
    shared = _comment_delivery(body)
    if shared is not None:
        return shared
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "sha256:" + hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _mapping(value: Any, where: str) -> Mapping[str, Any] | None:
    """`value` if it is an object or absent (None); PayloadInvalid otherwise."""
    if value is None or isinstance(value, Mapping):
        return value
    raise PayloadInvalid(f"{where}: expected an object, got {type(value).__name__}")


def _text(value: Any, where: str) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise PayloadInvalid(f"{where}: expected a string, got {type(value).__name__}")


def user_id(user: Mapping[str, Any] | None, where: str) -> str | None:
    """A Jira user's identity: `accountId` (Cloud), else `name` (Data Center), else None."""
    if user is None:
        return None
    for key in ("accountId", "name"):
        value = _text(user.get(key), f"{where}.{key}")
        if value:
            return value
    return None


def issue_id_from_url(url: str) -> str | None:
    """The numeric issue id in a REST URL such as `.../rest/api/2/issue/10013/comment/10082`."""
    found = _ISSUE_ID_IN_URL.search(url)
    return found.group(1) if found else None


def ticket_ref(body: Mapping[str, Any]) -> str | None:
    """The issue key (or, for Server comment events, the numeric issue id) the event is about."""
    issue = _mapping(body.get("issue"), "issue")
    if issue is not None:
        key = _text(issue.get("key"), "issue.key")
        if key:
            if not _ISSUE_KEY.match(key):
                raise PayloadInvalid(f"issue.key: {key!r} is not a Jira issue key like SUP-123")
            return key
        # Cloud `issue.self` can be malformed, so the id is preferred over parsing it.
        ident = issue.get("id")
        if isinstance(ident, str) and ident.isdigit():
            return ident
    comment = _mapping(body.get("comment"), "comment")
    if comment is not None:
        url = _text(comment.get("self"), "comment.self")
        if url:
            return issue_id_from_url(url)
    return None


def actor(body: Mapping[str, Any], event: str) -> str | None:
    """Who caused the event: `user`, else (Cloud comment events) the comment's (update) author."""
    found = user_id(_mapping(body.get("user"), "user"), "user")
    if found:
        return found
    comment = _mapping(body.get("comment"), "comment")
    if comment is None:
        return None
    if event == "comment_updated":
        found = user_id(_mapping(comment.get("updateAuthor"), "comment.updateAuthor"),
                        "comment.updateAuthor")
        if found:
            return found
    return user_id(_mapping(comment.get("author"), "comment.author"), "comment.author")


def classify(body: Mapping[str, Any], headers: Mapping[str, str]) -> Envelope:
    """Classify one Jira webhook body (signature already checked, JSON already parsed).

    Raises PayloadInvalid, with the offending key path, when the body is not a Jira webhook or a
    handled event lacks an issue reference or has values of the wrong type.
    """
    if not isinstance(body, Mapping):
        raise PayloadInvalid(f"expected a JSON object, got {type(body).__name__}")
    event = body.get("webhookEvent")
    if not isinstance(event, str) or not event:
        raise PayloadInvalid(
            "webhookEvent: missing or not a string; is this a Jira webhook body?"
            " (Jira sends e.g. {\"webhookEvent\": \"jira:issue_updated\", ...})"
        )
    dedupe = delivery_id(body, headers)
    timestamp = body.get("timestamp")
    if timestamp is not None and (isinstance(timestamp, bool) or not isinstance(timestamp, int)):
        if event in HANDLED_EVENTS:
            raise PayloadInvalid(
                f"timestamp: expected epoch milliseconds (an integer), got {timestamp!r}"
            )
        timestamp = None
    if event not in HANDLED_EVENTS:
        return Envelope(
            vendor=VENDOR, event_type=event, handled=False, ticket=None, delivery_id=dedupe,
            occurred_at=timestamp,
        )
    ticket = ticket_ref(body)
    if ticket is None:
        raise PayloadInvalid(
            f"{event}: no issue reference: expected issue.key, or comment.self naming"
            " /rest/api/2/issue/<id>/comment/<id>"
        )
    return Envelope(
        vendor=VENDOR,
        event_type=event,
        handled=True,
        ticket=ticket,
        delivery_id=dedupe,
        actor=actor(body, event),
        occurred_at=timestamp,
    )


def requeue_body(ticket: str, run: str, *, now_ms: int) -> dict[str, Any]:
    """A backfill body that names only the issue, so the worker reads it fresh (one GET) before
    deciding: what `tierdesk plan --apply` queues for a ticket it saw in the inbox. `run` keeps
    separate runs apart (the dedupe key is the body hash)."""
    return {"webhookEvent": BACKFILL_EVENT, "timestamp": now_ms, "issue": {"key": ticket},
            "tierdesk_run": run}


def verify_signature(
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
    if not signed_by_either(presented, lambda key: mac(key, body).hexdigest().encode("ascii"),
                            secret=secret, previous=previous):
        raise SignatureInvalid("X-Hub-Signature does not match the body")


def verify(body: bytes, headers: Mapping[str, str], auth: WebhookAuth, *, now: datetime) -> None:
    """Check a delivery's raw bytes: the HMAC signature, or (opt-in, only for an unsigned
    delivery) the configured Basic credentials; raise SignatureInvalid."""
    signature = header(headers, SIGNATURE_HEADER)
    if auth.basic is not None and not signature:
        # Opt-in (TIERDESK_JIRA_WEBHOOK_BASIC_AUTH): an unsigned delivery must carry the
        # configured Basic credentials; a signed one is still checked by HMAC.
        check_basic(header(headers, "authorization"), credentials=auth.basic)
    else:
        verify_signature(body, signature=signature, secret=auth.secret, previous=auth.previous)


def parse(body: bytes) -> Any:
    """The JSON value of a delivery's raw bytes (ValueError or RecursionError when not JSON)."""
    return parse_json(body)


def replayed(envelope: Envelope, auth: WebhookAuth, *, now: datetime) -> str | None:
    """Why a signed Jira body is refused as a replay, or None.

    Jira signs the body (with its `timestamp`, ms) but not `X-Atlassian-Webhook-Identifier`,
    so a captured body replayed under fresh identifiers passed the dedupe. A body whose signed
    timestamp is further from now than the horizon is refused; within it, identical bodies are
    stored once (Inbox.enqueue_many). Atlassian retries failed deliveries for up to about 30
    minutes, "subject to change" ("New Jira Cloud Webhook Retry Policy",
    https://community.developer.atlassian.com/t/new-jira-cloud-webhook-retry-policy/30554;
    https://developer.atlassian.com/cloud/jira/platform/webhooks/#retry-policy), so the default
    horizon (2 h) keeps every legitimate retry."""
    horizon = auth.replay_horizon
    if horizon is None or envelope.occurred_at is None:
        return None
    age = (now.timestamp() * 1000 - envelope.occurred_at) / 1000
    if abs(age) <= horizon:
        return None
    when = "old" if age > 0 else "in the future"
    return (f"the signed timestamp is {int(abs(age))} s {when} (replay horizon"
            f" {int(horizon)} s, TIERDESK_JIRA_REPLAY_HORIZON): a replayed delivery")


def sign(body: bytes, secret: str) -> str:
    """The `X-Hub-Signature` value Jira would send (for tests, the sandbox and bench/)."""
    return "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()
