"""Replayed signed bodies and over-long keys at the receiver, on SQLite and PostgreSQL: a Jira
body outside the replay horizon is 401, an identical body under a fresh delivery header is
stored once, and a key longer than the inbox columns is 400."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import pytest

from connectors.jira.webhook import classify as jira_envelope
from tests.shared_vendor import VENDOR
from tests.webhooks.fakes import vendors_classifying
from tests.webhooks.test_app import NOW, jira_post, make_client, zd_post
from webhooks.inbox.store import Inbox

CAPTURE = json.loads((VENDOR / "jira" / "webhooks" / "webhook-issue-updated-labels.json")
                     .read_text("utf-8"))


def signed_body(*, sent: datetime, key: str = "TES-41") -> bytes:
    """The captured Jira body as Jira would sign it at `sent`."""
    body: dict[str, Any] = json.loads(json.dumps(CAPTURE))
    body["timestamp"] = int(sent.timestamp() * 1000)
    body["issue"]["key"] = key
    return json.dumps(body).encode()


def _client(inbox: Inbox) -> Any:
    return make_client(inbox, vendors=vendors_classifying(jira=jira_envelope),
                       max_body_bytes=1 << 20, replay_horizon=7200)


# Each row: how long before the receiver's now Jira signed the body, and the answer.
AGES = [
    # a fresh delivery
    (timedelta(seconds=0), 202),
    # a retry 30 minutes late: Atlassian's documented retry window, kept
    (timedelta(minutes=30), 202),
    # just inside the 2-hour horizon
    (timedelta(seconds=7199), 202),
    # a captured body replayed three hours later
    (timedelta(hours=3), 401),
    # a body signed "in the future" beyond the horizon (a forged or broken clock)
    (timedelta(hours=-3), 401),
]


@pytest.mark.parametrize(("age", "status"), AGES, ids=[str(a[0]) for a in AGES])
def test_jira_replay_horizon(inbox: Inbox, age: timedelta, status: int) -> None:
    """A signed Jira body is accepted within the replay horizon and refused (401) outside it."""
    with _client(inbox) as c:
        r = jira_post(c, signed_body(sent=NOW - age),
                      headers={"X-Atlassian-Webhook-Identifier": "id-1"})
    assert r.status_code == status, r.text
    if status == 401:
        assert "a replayed delivery" in r.json()["error"]
        assert inbox.counts() == {}


def test_identical_signed_body_with_fresh_identifiers_is_stored_once(inbox: Inbox) -> None:
    """A captured body replayed within the horizon under new X-Atlassian-Webhook-Identifier
    values is a duplicate (200), stored once."""
    raw = signed_body(sent=NOW - timedelta(minutes=5))
    with _client(inbox) as c:
        answers = [jira_post(c, raw, headers={"X-Atlassian-Webhook-Identifier": f"forged-{i}"})
                   .status_code for i in range(5)]
    assert answers == [202, 200, 200, 200, 200]
    assert inbox.counts() == {"pending": 1}
    assert [e.delivery_id for e in inbox.events_of("jira", "TES-41")] == ["forged-0"]


def test_distinct_bodies_are_not_merged(inbox: Inbox) -> None:
    """Two different signed bodies of one issue (one millisecond apart) are both stored."""
    with _client(inbox) as c:
        first = jira_post(c, signed_body(sent=NOW), headers={
            "X-Atlassian-Webhook-Identifier": "a"})
        second = jira_post(c, signed_body(sent=NOW + timedelta(milliseconds=1)), headers={
            "X-Atlassian-Webhook-Identifier": "b"})
    assert (first.status_code, second.status_code) == (202, 202)
    assert inbox.counts() == {"pending": 2}


def test_zendesk_body_replayed_under_a_fresh_invocation_id_is_stored_once(
    inbox: Inbox,
) -> None:
    """Zendesk's invocation id (the trigger body's dedupe key) is not signed either: the same
    signed trigger body and timestamp under a new invocation id is a duplicate."""
    from connectors.zendesk.webhook import classify as zd_envelope
    from tests.connectors.zendesk.conftest import trigger_body

    body = json.dumps(trigger_body()).encode()
    with make_client(inbox, vendors=vendors_classifying(zendesk=zd_envelope)) as c:
        answers = []
        for i in range(3):
            r = zd_post(c, body, headers={"X-Zendesk-Webhook-Invocation-Id": f"inv-{i}"})
            answers.append(r.status_code)
    assert answers == [202, 200, 200]
    assert inbox.counts() == {"pending": 1}


# Each row: an issue key's length, and the answer on both databases.
KEYS = [
    # the longest key the inbox holds
    (255, 202),
    # one more: 400 (PostgreSQL answered 503 for ever, SQLite stored it)
    (256, 400),
    # the reported attack
    (300, 400),
]


@pytest.mark.parametrize(("length", "status"), KEYS)
def test_over_long_issue_key_is_400(inbox: Inbox, length: int, status: int) -> None:
    """An issue key longer than the inbox's columns is refused with 400 on SQLite and
    PostgreSQL alike, saying how long it was."""
    key = "S" * (length - 2) + "-1"
    with _client(inbox) as c:
        r = jira_post(c, signed_body(sent=NOW, key=key),
                      headers={"X-Atlassian-Webhook-Identifier": "id-1"})
    assert r.status_code == status, r.text
    if status == 400:
        assert r.json() == {"error": f"the ticket key is {length} characters; at most 255 are"
                                     " accepted"}
        assert inbox.counts() == {}
    else:
        assert inbox.counts() == {"pending": 1}


def test_over_long_delivery_id_is_400(inbox: Inbox) -> None:
    """A delivery identifier longer than the column is 400, not silently truncated (two
    different ids cut to one would be deduplicated)."""
    with _client(inbox) as c:
        r = jira_post(c, signed_body(sent=NOW),
                      headers={"X-Atlassian-Webhook-Identifier": "x" * 300})
    assert r.status_code == 400
    assert r.json() == {"error": "the delivery id is 300 characters; at most 255 are accepted"}


def test_migration_4_adds_the_replay_index(db_url: str) -> None:
    """A database at schema version 3 gets ix_tierdesk_events_occurred on connect, data kept."""
    import sqlalchemy as sa

    from webhooks.inbox.migrations import SCHEMA_VERSION
    from webhooks.inbox.schema import schema_version

    box = Inbox.connect(db_url)
    box.enqueue(jira_envelope(json.loads(signed_body(sent=NOW)), {}), {"x": 1})
    with box.engine.begin() as conn:
        conn.execute(sa.text("DROP INDEX ix_tierdesk_events_occurred"))
        conn.execute(schema_version.update().values(version=3))
    box.close()
    again = Inbox.connect(db_url)
    names = {i["name"] for i in sa.inspect(again.engine).get_indexes("tierdesk_events")}
    assert "ix_tierdesk_events_occurred" in names
    assert again.migrate() == SCHEMA_VERSION == 7 and again.counts() == {"pending": 1}
    again.close()
