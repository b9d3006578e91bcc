"""The Jira connector driven by the real inbox and worker: webhook in, one PUT out, faults retried.

A small stateful fake of Jira (behind `responses`) applies each PUT and answers each GET, so a
retry sees what the first attempt left behind. The inbox clock is controlled by the test.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import responses

from connectors.jira import JiraConnector
from connectors.jira import webhook as jira_webhook
from tests.connectors.jira.conftest import BASE, cloud_config, load, policy
from webhooks.inbox.store import Inbox
from webhooks.worker import Worker

URL = f"{BASE}/rest/api/2/issue/TES-41"


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


class StatefulJira:
    """TES-41 as Jira holds it; PUT applies label/component/assignee/comment edits, GET returns
    them."""

    def __init__(self, fields: dict[str, Any]) -> None:
        self.fields = fields
        self.fields["comment"] = {"comments": []}
        self.failures: list[str] = []  # "reset-after", "reset-before", "429"
        self.puts = 0
        self.gets = 0

    def put(self, request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
        self.puts += 1
        failure = self.failures.pop(0) if self.failures else None
        if failure == "429":
            return 429, {"Retry-After": "30"}, '{"errorMessages": ["Rate limit exceeded."]}'
        if failure == "reset-before":
            raise requests.ConnectionError("Connection reset by peer")
        assert request.body is not None
        body = json.loads(request.body)
        labels: list[str] = self.fields["labels"]
        for op in body.get("update", {}).get("labels", []):
            if "add" in op and op["add"] not in labels:
                labels.append(op["add"])
            if "remove" in op and op["remove"] in labels:
                labels.remove(op["remove"])
        for op in body.get("update", {}).get("components", []):
            verb, component = next(iter(op.items()))
            kept = [c for c in self.fields["components"] if c["name"] != component["name"]]
            self.fields["components"] = [*kept, component] if verb == "add" else kept
        for op in body.get("update", {}).get("comment", []):
            self.fields["comment"]["comments"].append(op["add"])
        if "assignee" in body.get("fields", {}):
            assignee = body["fields"]["assignee"]
            self.fields["assignee"] = assignee if any(assignee.values()) else None
        if failure == "reset-after":
            raise requests.ConnectionError("Connection reset by peer")
        return 204, {}, ""

    def get(self, request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
        self.gets += 1
        return 200, {}, json.dumps({"key": "TES-41", "fields": self.fields})

    @property
    def notes(self) -> int:
        return len(self.fields["comment"]["comments"])


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[Inbox, Worker, StatefulJira, Clock]]:
    """An SQLite inbox, a worker with the Jira connector, and the fake Jira behind it."""
    body = load("jira_issue_updated__cloud_labels.json")
    fields = body["issue"]["fields"]
    fields["labels"] = ["tier-l1", "escalate-l2"]
    fields["reporter"]["emailAddress"] = "ann@example.com"  # premium; L2 docs missing
    yield from _world(tmp_path, body)


@pytest.fixture
def escalated_world(tmp_path: Path) -> Iterator[tuple[Inbox, Worker, StatefulJira, Clock]]:
    """As `world`, with TES-41 at L3 (component Engineering, beside an agent's COMP-1),
    documented up to L4 and asking for it."""
    body = load("jira_issue_updated__cloud_labels.json")
    fields = body["issue"]["fields"]
    fields["labels"] = ["tier-l3", "escalate-l4"]
    fields["reporter"]["emailAddress"] = "ann@example.com"  # premium: L4 allowed
    fields["components"].append({"id": "10001", "name": "Engineering"})
    fields.update(customfield_10067="Open the app, tap sync", customfield_10068=[{"value": "prod"}],
                  customfield_10074={"value": "A"})
    yield from _world(tmp_path, body)


def _world(
    tmp_path: Path, body: dict[str, Any]
) -> Iterator[tuple[Inbox, Worker, StatefulJira, Clock]]:
    clock = Clock()
    inbox = Inbox.connect(f"sqlite:///{tmp_path / 'inbox.db'}", clock=clock)
    jira = StatefulJira(json.loads(json.dumps(body["issue"]["fields"])))
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        rsps.add_callback(responses.PUT, URL, callback=jira.put)
        rsps.add_callback(responses.GET, URL, callback=jira.get)
        connector = JiraConnector(cloud_config(), policy())
        worker = Worker(inbox=inbox, connectors={"jira": connector}, policy=policy(),
                        retry_initial_delay=0.5, retry_max_delay=5.0)
        inbox.enqueue(jira_webhook.classify(body, {"X-Atlassian-Webhook-Identifier": "d-1"}), body)
        yield inbox, worker, jira, clock
    inbox.close()


def _echo_twice(inbox: Inbox, worker: Worker, jira: StatefulJira, clock: Clock) -> None:
    """Jira's echo of tierdesk's write, once as the bot's event and once as someone else's
    (the decision must be idempotent even without the bot check); each is processed."""
    echo = load("jira_issue_updated__cloud_labels.json")
    echo["issue"]["fields"] = json.loads(json.dumps(jira.fields))
    # Jira stamps the echo after the write it reports (an older stamp would be read fresh).
    clock.now += 1
    echo["timestamp"] = int(clock.now * 1000)
    for delivery, actor in (("d-2", "bot-account"), ("d-3", "someone")):
        echo["user"]["accountId"] = actor
        inbox.enqueue(jira_webhook.classify(echo, {"X-Atlassian-Webhook-Identifier": delivery}),
                      echo)
        assert worker.drain() == 1


def test_full_payload_is_one_put_then_quiet(
    world: tuple[Inbox, Worker, StatefulJira, Clock],
) -> None:
    """Webhook in -> exactly one PUT with the checklist; Jira's echo of it -> no request."""
    inbox, worker, jira, clock = world
    assert worker.drain() == 1
    assert (jira.puts, jira.gets, jira.notes) == (1, 0, 1)
    _echo_twice(inbox, worker, jira, clock)
    assert (jira.puts, jira.gets, jira.notes) == (1, 0, 1)


def test_tier_change_moves_the_issue_then_quiet(
    escalated_world: tuple[Inbox, Worker, StatefulJira, Clock],
) -> None:
    """L3 -> L4: one PUT leaves exactly L4's owner (Engineering out, the agent's component
    kept); the echo of that write, the bot's or not, makes no request."""
    inbox, worker, jira, clock = escalated_world
    assert worker.drain() == 1
    assert (jira.puts, jira.gets) == (1, 0)
    assert jira.fields["assignee"] == {"accountId": "acc-vendor"}
    assert [c["name"] for c in jira.fields["components"]] == ["COMP-1", "Vendor"]
    _echo_twice(inbox, worker, jira, clock)
    assert (jira.puts, jira.gets) == (1, 0)


@pytest.mark.parametrize(("failure", "puts"), [
    ("reset-after", 1),  # the write landed: the fresh read finds it, nothing is resent
    ("reset-before", 2),  # it did not: the retry writes it
    ("429", 2),  # refused: the retry, after Retry-After, writes it
])
def test_retry_never_duplicates_the_checklist(
    failure: str, puts: int, world: tuple[Inbox, Worker, StatefulJira, Clock]
) -> None:
    """After any fault the worker's retry leaves exactly one checklist note on the issue."""
    _inbox, worker, jira, clock = world
    jira.failures = [failure]
    assert worker.drain() == 1
    assert jira.puts == 1
    clock.now += 10  # past the backoff
    assert worker.drain() == (0 if failure == "429" else 1)  # 429 pauses Jira for 30 s
    clock.now += 30
    worker.drain()
    assert jira.notes == 1
    assert jira.puts == puts
    assert jira.gets == 1  # the retry read the issue once, fresh, with its comments
    assert "tier-docs-missing" in jira.fields["labels"]


def test_data_center_comment_twins_are_stored_once(tmp_path: Path) -> None:
    """DC's comment_created and its issue_commented twin: the inbox keeps only the first."""
    inbox = Inbox.connect(f"sqlite:///{tmp_path / 'twins.db'}")
    try:
        alone = load("comment_created__server.json")
        twin = load("jira_issue_updated__server_commented.json")
        assert inbox.enqueue(jira_webhook.classify(alone, {}), alone) is True
        assert inbox.enqueue(jira_webhook.classify(twin, {}), twin) is False
        assert len(inbox.events_of("jira", "10013")) == 1
        assert inbox.events_of("jira", "PRJX-14") == []
    finally:
        inbox.close()
