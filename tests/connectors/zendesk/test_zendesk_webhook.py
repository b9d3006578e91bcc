"""Zendesk webhook classification: handled or ignored, ticket, actor, dedupe key, errors."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from connectors.base import Envelope, PayloadInvalid
from connectors.zendesk.webhook import classify as envelope
from connectors.zendesk.webhook import delivery_id, epoch_ms
from connectors.zendesk.webhook import parse as parse_body

FIXTURES = Path(__file__).parent / "fixtures"


def load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / name).read_text(encoding="utf-8"))
    return data


def test_dust_ticket_created_envelope() -> None:
    """An event-subscribed ticket.created is handled, keyed by event id, actor from actor_id."""
    got = envelope(load("ticket_created__dust_tt.json"), {})
    assert got == Envelope(
        vendor="zendesk", event_type="zen:event-type:ticket.created", handled=True,
        ticket="5158", delivery_id="cbe4028c-7239-495d-b020-f22348516046",
        actor="8447388090494", occurred_at=1736331127672,
    )


def test_dust_comment_added_envelope() -> None:
    """ticket.comment_added is handled; its nanosecond `time` becomes epoch milliseconds."""
    headers = {"X-Zendesk-Webhook-Invocation-Id": "9"}
    got = envelope(load("ticket_comment_added__dust_tt.json"), headers)
    assert got == Envelope(
        vendor="zendesk", event_type="zen:event-type:ticket.comment_added", handled=True,
        ticket="5158", delivery_id="d4f5c389-8f4a-4c2e-a1b9-8e4f39c71d52",
        actor="8447388090495", occurred_at=1736346330123,
    )


def test_dust_status_changed_envelope() -> None:
    """ticket.status_changed is handled like any ticket event (one read decides)."""
    got = envelope(load("ticket_status_changed__dust_tt.json"), {})
    assert got == Envelope(
        vendor="zendesk", event_type="zen:event-type:ticket.status_changed", handled=True,
        ticket="5158", delivery_id="a8b9c1d2-3e4f-5a6b-7c8d-9e0f1a2b3c4d",
        actor="8447388090494", occurred_at=1736354720987,
    )


def test_prismatic_ticket_created_envelope() -> None:
    """A minimal ticket.created without actor_id is handled; the ticket comes from detail.id."""
    wrapped = load("ticket_created__prismatic_with_headers.json")
    got = envelope(wrapped["body"], wrapped["headers"])
    assert got == Envelope(
        vendor="zendesk", event_type="zen:event-type:ticket.created", handled=True,
        ticket="35436", delivery_id="01HNXXXX-CTEXAMPLE", actor=None, occurred_at=1713374290000,
    )


@pytest.mark.parametrize(
    ("name", "event", "delivery", "ts"),
    [
        # User events are known and not acted on: accepted and recorded as ignored.
        ("user_active_changed__zendesk_docs.json", "zen:event-type:user.active_changed",
         "2b24ef10-19d4-4740-93cf-8f98ec4776c0", 4086826398000),
        ("user_group_membership_created__zendesk_go.json",
         "zen:event-type:user.group_membership_created",
         "6b9bbadf-5725-4e92-bebe-7b71011bf5f1", 4086826398000),
    ],
)
def test_non_ticket_events_are_ignored(name: str, event: str, delivery: str, ts: int) -> None:
    """Non-ticket Zendesk events are accepted with handled=False and no ticket."""
    got = envelope(load(name), {})
    assert got == Envelope(
        vendor="zendesk", event_type=event, handled=False, ticket=None, delivery_id=delivery,
        actor=None, occurred_at=ts,
    )


def test_foreign_trigger_body_is_rejected_with_advice() -> None:
    """A trigger body tierdesk did not define (zendesk-go's) is a 400 saying what to point here."""
    with pytest.raises(PayloadInvalid, match="tierdesk install zendesk") as err:
        envelope(load("trigger__zendesk_go_foreign_body.json"), {})
    assert "'End User Comment'" in str(err.value)


def test_deleted_ticket_event_is_ignored() -> None:
    """ticket.soft_deleted is accepted but not acted on (reading it would answer 404)."""
    body = load("ticket_created__dust_tt.json") | {"type": "zen:event-type:ticket.soft_deleted"}
    got = envelope(body, {})
    assert (got.handled, got.ticket) == (False, None)


def test_ticket_from_subject_when_detail_lacks_id() -> None:
    """Without detail.id the ticket id comes from `subject` zen:ticket:<id>."""
    body = load("ticket_created__dust_tt.json")
    body["detail"] = {"actor_id": "7"}
    assert envelope(body, {}).ticket == "5158"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        # A handled ticket event must name its ticket somewhere.
        ({"detail": {}, "subject": "zen:user:1"}, "no ticket id"),
        # Ids are digits (string or number); a word is a malformed payload.
        ({"detail": {"id": "abc"}}, r"detail\.id: expected an id \(digits\), got 'abc'"),
        # detail must be an object.
        ({"detail": ["x"]}, "detail: expected an object, got list"),
        # The event id is the dedupe key and must be a string.
        ({"id": 5}, "id: a Zendesk event needs a string id, got 5"),
        ({"time": 12}, "time: expected an ISO 8601 string, got int"),
        ({"detail": {"id": "5158", "actor_id": True}}, "detail.actor_id: expected an id"),
    ],
)
def test_malformed_ticket_events(change: dict[str, Any], message: str) -> None:
    """A handled ticket event with missing or mistyped keys raises PayloadInvalid naming the key."""
    body = load("ticket_created__dust_tt.json") | change
    with pytest.raises(PayloadInvalid, match=message):
        envelope(body, {})


def _trigger(**over: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "tierdesk": 1, "event_type": "trigger", "ticket_id": "42", "current_user_id": "900",
        "updated_at": "2026-11-21T10:15:30Z", "tags": "a b",
    }
    body.update(over)
    return body


def test_trigger_envelope_uses_invocation_id() -> None:
    """A tierdesk trigger body is keyed by the invocation id header (any header case)."""
    got = envelope(_trigger(), {"x-zendesk-webhook-invocation-id": "8350205582"})
    assert got == Envelope(
        vendor="zendesk", event_type="trigger", handled=True, ticket="42",
        delivery_id="invocation:8350205582", actor="900", occurred_at=1795256130000,
    )


def test_trigger_without_invocation_header_hashes_body() -> None:
    """Without the invocation header the dedupe key is the sha256 of the canonical body."""
    body = _trigger()
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert delivery_id(body, {}) == "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()
    assert envelope(body, {}).delivery_id == delivery_id(dict(reversed(body.items())), {})


def test_trigger_minute_precision_time() -> None:
    """Zendesk's minute-precision `..._with_timestamp` format still yields occurred_at."""
    assert epoch_ms("2013-12-12T05:35Z") == 1386826500000
    assert epoch_ms("2013-12-12T05:35:00+01:00") == 1386822900000
    assert epoch_ms("not a time") is None


@pytest.mark.parametrize(
    ("change", "message"),
    [
        # A template version tierdesk does not know: the trigger must be reinstalled.
        ({"tierdesk": 2}, "rerun `tierdesk install zendesk`"),
        ({"event_type": "other"}, "event_type: expected 'trigger'"),
        # Zendesk renders an empty string when a placeholder has no value; the id is required.
        ({"ticket_id": ""}, "ticket_id: a ticket id is required"),
        ({"ticket_id": None}, "ticket_id: a ticket id is required"),
        ({"ticket_id": "4x"}, r"ticket_id: expected an id \(digits\), got '4x'"),
        ({"ticket_id": [42]}, r"ticket_id: expected an id \(digits\), got list"),
        ({"current_user_id": "bob"}, "current_user_id: expected an id"),
    ],
)
def test_malformed_trigger_bodies(change: dict[str, Any], message: str) -> None:
    """A tierdesk body with a bad marker, type or id raises PayloadInvalid naming the key."""
    with pytest.raises(PayloadInvalid, match=message):
        envelope(_trigger(**change), {})


def test_trigger_numeric_ids_accepted() -> None:
    """Integer ids (an edited template without quotes) are accepted as text."""
    got = envelope(_trigger(ticket_id=42, current_user_id=900), {})
    assert (got.ticket, got.actor) == ("42", "900")


def test_backfill_body_envelope() -> None:
    """`tierdesk backfill zendesk` bodies are handled with their own event type."""
    got = envelope({"tierdesk": 1, "event_type": "tierdesk:backfill", "ticket_id": "7"}, {})
    assert (got.event_type, got.handled, got.ticket, got.actor) == (
        "tierdesk:backfill", True, "7", None,
    )


def test_non_object_body_rejected() -> None:
    """A JSON array body is a 400, not a crash."""
    with pytest.raises(PayloadInvalid, match="expected a JSON object, got list"):
        envelope([1], {})  # type: ignore[arg-type]


def test_parse_body_salvages_unescaped_trigger_body() -> None:
    """A trigger body broken by unescaped free text keeps its routing keys and is marked partial."""
    raw = (
        b'{\n  "tierdesk": 1,\n  "event_type": "trigger",\n  "ticket_id": "42",\n'
        b'  "current_user_id": "900",\n  "updated_at": "2026-11-21T10:15Z",\n'
        b'  "subject": "He said "hi"\n  and left"\n}'
    )
    body = parse_body(raw)
    assert body == {
        "tierdesk": 1, "event_type": "trigger", "ticket_id": "42", "current_user_id": "900",
        "updated_at": "2026-11-21T10:15Z", "partial": True,
    }
    assert envelope(body, {}).ticket == "42"


def test_parse_body_rejects_other_invalid_json() -> None:
    """Invalid JSON that is not tierdesk's trigger body is a 400 naming the JSON error."""
    with pytest.raises(PayloadInvalid, match="body is not valid JSON"):
        parse_body(b'{"type": "zen:event-type:ticket.created", ')
    with pytest.raises(PayloadInvalid, match="expected a JSON object, got str"):
        parse_body(b'"hello"')


def test_fixture_names_follow_convention() -> None:
    """Every fixture is named <event>__<variant>.json."""
    names = sorted(p.name for p in FIXTURES.glob("*.json"))
    assert names and all("__" in n and n.endswith(".json") for n in names)
