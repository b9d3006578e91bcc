"""Zendesk webhooks, pure: `verify` the raw bytes and their timestamp, `parse`, `classify`.

Signature: `X-Zendesk-Webhook-Signature` = base64(HMAC-SHA256(key = the signing secret as UTF-8
text, message = `X-Zendesk-Webhook-Signature-Timestamp` + raw body)).
https://developer.zendesk.com/documentation/webhooks/verifying/
Zendesk documents no replay window, so `check_timestamp` enforces one.

`classify(body, headers)` runs after the signature check. Three body kinds reach the receiver
(see ../shared/vendor/README.md, Zendesk section, and the fixtures in
tests/connectors/zendesk/fixtures/):

- tierdesk's own trigger body (`connectors/zendesk/trigger_body.py`): `"tierdesk": 1`,
  `"event_type": "trigger"`, string placeholders. Complete: deciding on it needs no read.
- event-subscribed webhooks (`zen:event-type:...`; envelope `type`, `id`, `time`, `subject`,
  `detail`, `event`; ids are strings and enums UPPERCASE). Ticket events are partial (no requester
  email, organization name or custom fields): they cost one read of the ticket. User,
  organization and other non-ticket events are accepted and ignored.
- `tierdesk:backfill` bodies that `tierdesk backfill zendesk` enqueues: a ticket id only.

Dedupe key: the event `id` (stable across redeliveries of one event); else the
`X-Zendesk-Webhook-Invocation-Id` header (Zendesk's "Anatomy of a webhook request"; trigger
deliveries have no event id); else a sha256 of the canonical body.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from connectors.base import Envelope, PayloadInvalid, WebhookAuth
from connectors.http import header
from connectors.payload import parse_json
from connectors.signatures import SignatureInvalid, mac, signed_by_either
from connectors.zendesk.trigger_body import TEMPLATE_VERSION, TRIGGER_EVENT

VENDOR = "zendesk"

#: The synthetic event `tierdesk backfill zendesk` enqueues: `{"tierdesk": 1, "event_type":
#: "tierdesk:backfill", "ticket_id": "123"}`; the worker reads the ticket once.
BACKFILL_EVENT = "tierdesk:backfill"

TICKET_EVENT_PREFIX = "zen:event-type:ticket."

#: Ticket events that say nothing about a live ticket tierdesk could act on: accepted, recorded
#: as ignored (reading a deleted ticket would only answer 404).
IGNORED_TICKET_EVENTS = frozenset(
    {
        "zen:event-type:ticket.soft_deleted",
        "zen:event-type:ticket.permanently_deleted",
        "zen:event-type:ticket.marked_as_spam",
        "zen:event-type:ticket.merged",
    }
)

#: Ticket events known to change what a decision looks at. Other `zen:event-type:ticket.*`
#: events are handled too (one read; decisions are idempotent, so a needless one writes
#: nothing): dropping an unknown ticket event could lose a change.
HANDLED_TICKET_EVENTS = frozenset(
    {
        "zen:event-type:ticket.created",
        "zen:event-type:ticket.status_changed",
        "zen:event-type:ticket.comment_added",
        "zen:event-type:ticket.tags_changed",
        "zen:event-type:ticket.priority_changed",
        "zen:event-type:ticket.custom_field_changed",
        "zen:event-type:ticket.agent_assignment_changed",
        "zen:event-type:ticket.group_assignment_changed",
        "zen:event-type:ticket.subject_changed",
        "zen:event-type:ticket.description_changed",
        "zen:event-type:ticket.organization_changed",
        "zen:event-type:ticket.requester_changed",
        "zen:event-type:ticket.attachment_linked_to_comment",
        "zen:event-type:ticket.reopened",
    }
)

INVOCATION_HEADER = "x-zendesk-webhook-invocation-id"
SIGNATURE_HEADER = "x-zendesk-webhook-signature"
TIMESTAMP_HEADER = "x-zendesk-webhook-signature-timestamp"

_DIGITS = re.compile(r"^[0-9]+$")
_SUBJECT_TICKET = re.compile(r"^zen:ticket:([0-9]+)$")
_ISO = re.compile(
    r"^(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2})(?::(\d{2})(?:\.(\d+))?)?\s*(Z|[+-]\d{2}:?\d{2})?$"
)


def delivery_id(body: Mapping[str, Any], headers: Mapping[str, str]) -> str:
    """The dedupe key: the event `id`, else the invocation id header, else a body hash."""
    ident = body.get("id")
    if isinstance(ident, str) and ident.strip() and isinstance(body.get("type"), str):
        return ident.strip()
    invocation = header(headers, INVOCATION_HEADER)
    if invocation is not None and invocation.strip():
        return "invocation:" + invocation.strip()
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "sha256:" + hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def requeue_body(ticket: str, run: str, *, now_ms: int) -> dict[str, Any]:
    """The backfill body for one ticket (a ticket id only: the worker reads the ticket once),
    as `tierdesk backfill zendesk` and `tierdesk plan --apply` queue it; `run` keeps separate
    runs apart (the dedupe key is the body hash). `now_ms` is unused: the body has no time."""
    return {"tierdesk": TEMPLATE_VERSION, "event_type": BACKFILL_EVENT, "ticket_id": ticket,
            "backfill_run": run}


def parse_time(value: str) -> datetime | None:
    """An ISO 8601 time as Zendesk writes it (`...Z`, nanoseconds, or minute precision), or None."""
    found = _ISO.match(value.strip())
    if not found:
        return None
    day, hm, sec, frac, zone = found.groups()
    text = f"{day}T{hm}:{sec or '00'}"
    if frac:
        text += "." + (frac + "000000")[:6]  # Python parses microseconds, Zendesk sends nanoseconds
    if zone in (None, "Z"):
        text += "+00:00"
    else:
        text += zone if ":" in zone else f"{zone[:3]}:{zone[3:]}"
    try:
        return datetime.fromisoformat(text).astimezone(UTC)
    except ValueError:
        return None


def epoch_ms(value: Any) -> int | None:
    """Epoch milliseconds of an ISO 8601 string, or None when absent or unparsable."""
    if not isinstance(value, str) or not value.strip():
        return None
    when = parse_time(value)
    return int(when.timestamp() * 1000) if when else None


def rendered(value: Any) -> bool:
    """False for a placeholder Zendesk left unrendered (`{{...}}` or `{%...%}` still in it)."""
    return not (isinstance(value, str) and ("{{" in value or "{%" in value))


def id_text(value: Any, where: str, *, required: bool = False) -> str | None:
    """A Zendesk id given as a number or a digit string, as text; None when empty.

    Trigger placeholders render as strings ("" when the ticket has no group, say) and event
    payloads use string ids; the API uses integers. Anything else is PayloadInvalid.
    """
    if isinstance(value, bool):
        raise PayloadInvalid(f"{where}: expected an id (digits), got a boolean")
    if isinstance(value, int):
        text: str | None = str(value) if value > 0 else None
    elif value is None:
        text = None
    elif isinstance(value, str):
        stripped = value.strip()
        if not stripped or not rendered(stripped) or stripped == "-":
            text = None
        elif _DIGITS.match(stripped):
            text = stripped if int(stripped) > 0 else None
        else:
            raise PayloadInvalid(f"{where}: expected an id (digits), got {value!r}")
    else:
        raise PayloadInvalid(f"{where}: expected an id (digits), got {type(value).__name__}")
    if text is None and required:
        raise PayloadInvalid(f"{where}: a ticket id is required (got {value!r})")
    return text


def _mapping(value: Any, where: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if isinstance(value, Mapping):
        return value
    raise PayloadInvalid(f"{where}: expected an object, got {type(value).__name__}")


def is_tierdesk_body(body: Mapping[str, Any]) -> bool:
    """True for tierdesk's own trigger or backfill body (it carries the `tierdesk` marker)."""
    return "tierdesk" in body


def _tierdesk_envelope(body: Mapping[str, Any], headers: Mapping[str, str]) -> Envelope:
    version = body.get("tierdesk")
    if version != TEMPLATE_VERSION or isinstance(version, bool):
        raise PayloadInvalid(
            f"tierdesk: template version {version!r} is not supported (expected"
            f" {TEMPLATE_VERSION}); rerun `tierdesk install zendesk` to update the trigger body"
        )
    event = body.get("event_type")
    if event not in (TRIGGER_EVENT, BACKFILL_EVENT):
        raise PayloadInvalid(
            f"event_type: expected {TRIGGER_EVENT!r} or {BACKFILL_EVENT!r}, got {event!r}"
        )
    ticket = id_text(body.get("ticket_id"), "ticket_id", required=True)
    actor = id_text(body.get("current_user_id"), "current_user_id")
    return Envelope(
        vendor=VENDOR,
        event_type=str(event),
        handled=True,
        ticket=ticket,
        delivery_id=delivery_id(body, headers),
        actor=actor,
        occurred_at=epoch_ms(body.get("updated_at")),
    )


def _event_envelope(body: Mapping[str, Any], headers: Mapping[str, str], kind: str) -> Envelope:
    ident = body.get("id")
    if not isinstance(ident, str) or not ident.strip():
        raise PayloadInvalid(f"id: a Zendesk event needs a string id, got {ident!r}")
    occurred = body.get("time")
    if occurred is not None and not isinstance(occurred, str):
        raise PayloadInvalid(f"time: expected an ISO 8601 string, got {type(occurred).__name__}")
    common = {"vendor": VENDOR, "event_type": kind, "delivery_id": delivery_id(body, headers)}
    if not kind.startswith(TICKET_EVENT_PREFIX) or kind in IGNORED_TICKET_EVENTS:
        return Envelope(**common, handled=False, ticket=None, occurred_at=epoch_ms(occurred))
    detail = _mapping(body.get("detail"), "detail")
    ticket = id_text(detail.get("id"), "detail.id")
    if ticket is None:
        subject = body.get("subject")
        found = _SUBJECT_TICKET.match(subject) if isinstance(subject, str) else None
        if not found:
            raise PayloadInvalid(
                f"{kind}: no ticket id in detail.id or subject (expected \"zen:ticket:<id>\","
                f" got {subject!r})"
            )
        ticket = found.group(1)
    actor = id_text(detail.get("actor_id"), "detail.actor_id")
    if actor is None:
        event = _mapping(body.get("event"), "event")
        comment = _mapping(event.get("comment"), "event.comment")
        author = _mapping(comment.get("author"), "event.comment.author")
        actor = id_text(author.get("id"), "event.comment.author.id")
    return Envelope(
        **common, handled=True, ticket=ticket, actor=actor, occurred_at=epoch_ms(occurred)
    )


def classify(body: Mapping[str, Any], headers: Mapping[str, str]) -> Envelope:
    """Classify one Zendesk delivery; PayloadInvalid (answered 400) says what is wrong."""
    if not isinstance(body, Mapping):
        raise PayloadInvalid(f"expected a JSON object, got {type(body).__name__}")
    if is_tierdesk_body(body):
        return _tierdesk_envelope(body, headers)
    kind = body.get("type")
    if isinstance(kind, str) and kind.startswith("zen:event-type:"):
        return _event_envelope(body, headers, kind)
    raise PayloadInvalid(
        "neither a Zendesk event (`type` \"zen:event-type:...\") nor tierdesk's trigger body"
        " (`\"tierdesk\": 1`): point only the trigger that `tierdesk install zendesk` creates at"
        " this URL, or subscribe the webhook to zen:event-type:ticket.* events"
        + (f" (got type {kind!r})" if kind is not None else "")
    )


# ------------------------------------------------------------------ raw bodies that are not JSON

_SALVAGE_MARKER = re.compile(rb'^\s*\{\s*"tierdesk"\s*:\s*(\d+)\s*,\s*"event_type"\s*:\s*"trigger"')
_SALVAGE_KEYS = {
    "ticket_id": re.compile(rb'"ticket_id"\s*:\s*"(\d+)"'),
    "current_user_id": re.compile(rb'"current_user_id"\s*:\s*"(\d*)"'),
    "updated_at": re.compile(rb'"updated_at"\s*:\s*"([0-9T:.+\-Z ]*)"'),
    # The public reply trigger's marker (trigger_body.REPLY_KEY), also a routing key: a reply
    # must not be lost because the free text of the same body broke the JSON.
    "public_reply_at": re.compile(rb'"public_reply_at"\s*:\s*"([0-9T:.+\-Z ]*)"'),
}


class _DuplicateKey(ValueError):
    """A JSON object with the same key twice."""


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: set[str] = set()
    for key, _ in pairs:
        if key in seen:
            raise _DuplicateKey(key)
        seen.add(key)
    return dict(pairs)


def _salvage(raw: bytes, why: Exception) -> dict[str, Any]:
    """The routing keys of a trigger body that cannot be trusted, marked `partial` (the worker
    reads the ticket from the API); PayloadInvalid when the bytes are not a trigger body."""
    marker = _SALVAGE_MARKER.match(raw)
    ticket = _SALVAGE_KEYS["ticket_id"].search(raw)
    if marker is None or ticket is None:
        if isinstance(why, _DuplicateKey):
            raise PayloadInvalid(f"the JSON object has the key {str(why)!r} twice") from why
        raise PayloadInvalid(f"body is not valid JSON: {why}") from why
    salvaged: dict[str, Any] = {"tierdesk": int(marker.group(1)), "event_type": TRIGGER_EVENT}
    for key, pattern in _SALVAGE_KEYS.items():
        # The first occurrence: the template puts these keys before any free text, so text a
        # customer wrote cannot come before them.
        found = pattern.search(raw)
        if found:
            salvaged[key] = found.group(1).decode("ascii")
    salvaged["partial"] = True
    return salvaged


def parse(raw: bytes) -> dict[str, Any]:
    """Parse a delivery's raw bytes (after the signature check) into the body `classify` takes.

    If Zendesk rendered free text into tierdesk's trigger body without JSON escaping (not
    confirmed either way), the text can break the JSON, or keep it valid and add keys: a subject
    of `help", "organization_name": "Initech", "x": "` repeats `organization_name`, and JSON's
    last-duplicate-wins rule would let the customer choose their plan. So a trigger body is
    parsed with duplicate-key detection, and a body that is not valid JSON or repeats any key
    is untrusted: its routing keys, which the template puts first and which hold only digits,
    are salvaged into a body marked `"partial": true`, and the worker reads the ticket from the
    API (one read) instead of believing the body. Anything else that is not JSON raises
    PayloadInvalid. (Zendesk event bodies are Zendesk's own JSON, not a template: not checked.)
    """
    try:
        body = parse_json(raw)
        if isinstance(body, dict) and "tierdesk" in body:
            # orjson keeps the last of duplicate keys silently: check the trigger body again.
            body = json.loads(raw, object_pairs_hook=_no_duplicates)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError, _DuplicateKey) as exc:
        return _salvage(raw, exc)
    if not isinstance(body, dict):
        raise PayloadInvalid(f"expected a JSON object, got {type(body).__name__}")
    return body


# ------------------------------------------------------------------ signatures on the raw bytes


def verify_signature(
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
    stamp = timestamp.encode("utf-8")
    if not signed_by_either(given, lambda key: mac(key, stamp, body).digest(),
                            secret=secret, previous=previous):
        raise SignatureInvalid("X-Zendesk-Webhook-Signature does not match the body")


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


def verify(body: bytes, headers: Mapping[str, str], auth: WebhookAuth, *, now: datetime) -> None:
    """Check a delivery's signature over its raw bytes, then its timestamp's age; raise
    SignatureInvalid."""
    timestamp = header(headers, TIMESTAMP_HEADER)
    verify_signature(body, signature=header(headers, SIGNATURE_HEADER), timestamp=timestamp,
                     secret=auth.secret, previous=auth.previous)
    check_timestamp(timestamp, now=now, max_age=auth.signature_max_age)


def replayed(envelope: Envelope, auth: WebhookAuth, *, now: datetime) -> str | None:
    """None: a replay is refused by `verify` already (the signed timestamp's age)."""
    return None


def sign(body: bytes, secret: str, timestamp: str) -> str:
    """The `X-Zendesk-Webhook-Signature` value Zendesk would send (for tests and bench/)."""
    digest = hmac.new(secret.encode("utf-8"), timestamp.encode("utf-8") + body, hashlib.sha256)
    return base64.b64encode(digest.digest()).decode("ascii")
