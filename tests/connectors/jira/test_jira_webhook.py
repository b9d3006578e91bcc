"""Jira webhook classification: handled or ignored, ticket reference, actor, dedupe key, errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from connectors.base import Envelope, PayloadInvalid
from connectors.jira.webhook import classify as envelope
from connectors.jira.webhook import delivery_id

FIXTURES = Path(__file__).parent / "fixtures"


def load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / name).read_text(encoding="utf-8"))
    return data


# One row per captured payload: the whole envelope it yields (delivery id from the header).
ENVELOPES = [
    # Zulip's Server-era issue_created: accountId present, preferred over name.
    ("jira_issue_created__zulip_server.json", "jira:issue_created", "BUG-15",
     "99:27935d01-92a7-4687-8272-a9b8d3b2ae2e", 1364403238369),
    ("jira_issue_created__cloud.json", "jira:issue_created", "TES-41",
     "5c5f880629be9642ba529340", 1550286113023),
    ("jira_issue_created__cloud_many_fields.json", "jira:issue_created", "KT-22",
     "5cedcb4355a88a0fc86388ba", 1566935004475),
    ("jira_issue_updated__cloud_custom_field.json", "jira:issue_updated", "TES-14",
     "5cedcb4355a88a0fc86388ba", 1565574553414),
    ("jira_issue_updated__cloud_labels.json", "jira:issue_updated", "TES-41",
     "5c5f880629be9642ba529340", 1550351530065),
    # Server issue_updated for a comment: user.name (no accountId on Server).
    ("jira_issue_updated__server_commented.json", "jira:issue_updated", "PRJX-14",
     "levbrouk", 1559607317244),
    # Cloud comment events have no `user`: the actor is the comment author.
    ("comment_created__cloud_mention_user.json", "comment_created", "TES-41",
     "5c5f880629be9642ba529340", 1550286678321),
    ("comment_updated__cloud.json", "comment_updated", "TES-41",
     "5c5f880629be9642ba529340", 1550286728432),
    # Server comment_created has no issue: the numeric id comes from comment.self.
    ("comment_created__server.json", "comment_created", "10013", "levbrouk", 1559607317234),
    ("comment_updated__server.json", "comment_updated", "10013", "levbrouk", 1559609613673),
]


@pytest.mark.parametrize(("name", "event", "ticket", "actor", "ts"), ENVELOPES)
def test_fixture_envelope(name: str, event: str, ticket: str, actor: str, ts: int) -> None:
    """Every captured payload is handled, with its issue, actor, timestamp and header dedupe key."""
    got = envelope(load(name), {"X-Atlassian-Webhook-Identifier": "hook-1"})
    assert got == Envelope(
        vendor="jira", event_type=event, handled=True, ticket=ticket, delivery_id="hook-1",
        actor=actor, occurred_at=ts,
    )


def test_fixture_names_follow_convention() -> None:
    """Every fixture is named <event>__<variant>.json after the event it holds."""
    for path in FIXTURES.glob("*.json"):
        event = load(path.name)["webhookEvent"]
        assert path.name.startswith(event.replace(":", "_") + "__"), path.name


def test_header_lookup_is_case_insensitive() -> None:
    """The Cloud webhook identifier is found whatever the header name's case."""
    body = load("jira_issue_created__cloud.json")
    assert envelope(body, {"x-atlassian-webhook-identifier": "abc"}).delivery_id == "abc"


def test_body_hash_is_stable_without_header() -> None:
    """Without the Cloud header, the dedupe key is a sha256 of the canonical body."""
    body = {"webhookEvent": "comment_created", "b": 1, "a": [1, 2]}
    same = {"a": [1, 2], "b": 1, "webhookEvent": "comment_created"}
    key = delivery_id(body, {})
    assert key.startswith("sha256:") and len(key) == len("sha256:") + 64
    assert key == delivery_id(same, {})
    assert key != delivery_id({**body, "b": 2}, {})


def test_comment_updated_actor_is_update_author() -> None:
    """A Cloud comment edit is attributed to whoever edited it, not the original author."""
    body = load("comment_updated__cloud.json")
    body["comment"]["updateAuthor"] = {"accountId": "bot-1"}
    assert envelope(body, {}).actor == "bot-1"


def test_backfill_payload_is_handled() -> None:
    """The synthetic backfill event is handled with the issue key and no actor."""
    issue = load("jira_issue_created__cloud.json")["issue"]
    got = envelope({"webhookEvent": "tierdesk:backfill", "issue": issue}, {})
    assert (got.handled, got.ticket, got.actor, got.occurred_at) == (True, "TES-41", None, None)


@pytest.mark.parametrize("event", ["jira:issue_deleted", "worklog_created", "something_new"])
def test_other_events_are_accepted_but_ignored(event: str) -> None:
    """Known and unknown non-handled events give handled=False and no ticket, never an error."""
    got = envelope({"webhookEvent": event, "timestamp": 5, "issue": "junk"}, {})
    assert (got.handled, got.ticket, got.event_type, got.occurred_at) == (False, None, event, 5)


BAD = [
    # not a Jira body at all
    ({"hello": 1}, "webhookEvent: missing"),
    ({"webhookEvent": 3}, "webhookEvent: missing or not a string"),
    # handled event without any issue reference
    ({"webhookEvent": "jira:issue_updated"}, "no issue reference"),
    ({"webhookEvent": "comment_created", "comment": {"self": "https://x/other"}},
     "no issue reference"),
    # wrong types in untrusted JSON
    ({"webhookEvent": "jira:issue_updated", "issue": []}, "issue: expected an object, got list"),
    ({"webhookEvent": "jira:issue_updated", "issue": {"key": 7}},
     "issue.key: expected a string, got int"),
    ({"webhookEvent": "jira:issue_updated", "issue": {"key": "not a key"}},
     "is not a Jira issue key"),
    ({"webhookEvent": "jira:issue_updated", "issue": {"key": "A-1"}, "timestamp": "1"},
     "timestamp: expected epoch milliseconds"),
    ({"webhookEvent": "jira:issue_updated", "issue": {"key": "A-1"}, "user": "bob"},
     "user: expected an object, got str"),
    ({"webhookEvent": "jira:issue_updated", "issue": {"key": "A-1"}, "user": {"accountId": 5}},
     "user.accountId: expected a string, got int"),
    ({"webhookEvent": "comment_created", "comment": {"self": 12}},
     "comment.self: expected a string, got int"),
    ({"webhookEvent": "comment_created", "issue": {"key": "A-1"}, "comment": {"author": []}},
     "comment.author: expected an object, got list"),
]


@pytest.mark.parametrize(("body", "message"), BAD)
def test_bad_payloads_raise_payload_invalid(body: dict[str, Any], message: str) -> None:
    """Malformed handled events raise PayloadInvalid naming the key path."""
    with pytest.raises(PayloadInvalid, match=message):
        envelope(body, {})


def test_non_object_body_is_invalid() -> None:
    """A JSON array body is rejected with a clear message."""
    with pytest.raises(PayloadInvalid, match="expected a JSON object, got list"):
        envelope([], {})  # type: ignore[arg-type]


def test_data_center_comment_twins_share_a_dedupe_key() -> None:
    """DC's comment_created and its issue_commented twin dedupe as one delivery (same comment)."""
    alone = envelope(load("comment_created__server.json"), {})
    twin = envelope(load("jira_issue_updated__server_commented.json"), {})
    assert alone.ticket == "10013" and twin.ticket == "PRJX-14"
    assert alone.delivery_id == twin.delivery_id == "comment:10082:2019-06-04T00:15:17.234+0000"
    edited = envelope(load("comment_updated__server.json"), {})
    assert edited.delivery_id == "comment:10084:2019-06-04T00:53:33.665+0000"


def test_plain_issue_update_is_not_a_comment_twin() -> None:
    """An issue update that is not a comment keeps the body-hash dedupe key."""
    body = load("jira_issue_updated__server_commented.json")
    body["issue_event_type_name"] = "issue_updated"
    assert envelope(body, {}).delivery_id.startswith("sha256:")
