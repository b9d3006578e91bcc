"""Jira faults: rate limits, outages, timeouts, resets after the write landed, rejections, loops.

The `jira` library is configured never to retry by itself (one attempt per call); the worker
retries. These tests run the retry the worker would make and check the comment lands once.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

import pytest
import requests
import responses

from connectors.base import (
    ConnectorError,
    RateLimited,
    VendorRejected,
    VendorUnavailable,
)
from connectors.http import retry_after_seconds
from connectors.jira import JiraConnector
from connectors.jira import webhook as jira_webhook
from tests.connectors.jira.conftest import BASE, cloud_config, load, policy
from tiering import decide
from tiering.models import Decision, Ticket

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
ISSUE_URL = f"{BASE}/rest/api/2/issue/TES-41"


def checklist_decision() -> tuple[Ticket, Decision]:
    """A ticket and a decision that adds a label and posts a checklist note."""
    ticket = Ticket(key="TES-41", labels=frozenset({"tier-l1", "escalate-l2"}))
    decision = Decision(ticket="TES-41", tier="L1", previous_tier="L1",
                        labels_add=("tier-docs-missing",),
                        comment="checklist\ntierdesk-note:abcdef0123456789",
                        note_key="abcdef0123456789")
    return ticket, decision


def attempt(connector: JiraConnector) -> None:
    ticket, decision = checklist_decision()
    connector.apply(ticket, decision, decide=lambda t: decision)


def test_429_honours_retry_after_and_is_not_retried_by_the_library(
    connector: JiraConnector, rsps: responses.RequestsMock
) -> None:
    """429 + Retry-After: 120 -> RateLimited(retry_after=120) after exactly one request."""
    rsps.put(ISSUE_URL, status=429, headers={"Retry-After": "120"},
             json={"errorMessages": ["Rate limit exceeded."]})
    with pytest.raises(RateLimited) as info:
        attempt(connector)
    assert (info.value.retry_after, info.value.status, info.value.ambiguous) == (120.0, 429, False)
    assert len(rsps.calls) == 1


def test_429_without_retry_after_still_waits(
    connector: JiraConnector, rsps: responses.RequestsMock
) -> None:
    """429 without Retry-After -> RateLimited with the documented floor, never zero."""
    rsps.put(ISSUE_URL, status=429)
    with pytest.raises(RateLimited) as info:
        attempt(connector)
    assert info.value.retry_after == 30.0


def test_429_with_only_x_ratelimit_reset_waits_until_the_reset(
    connector: JiraConnector, rsps: responses.RequestsMock
) -> None:
    """429 with X-RateLimit-Reset and no Retry-After -> wait until that time (about 90 s here),
    not the 30 s floor; Retry-After, when sent as well, wins."""
    from datetime import UTC, datetime, timedelta

    reset = (datetime.now(UTC) + timedelta(seconds=90)).strftime("%Y-%m-%dT%H:%M:%SZ")
    rsps.put(ISSUE_URL, status=429, headers={"X-RateLimit-Reset": reset})
    with pytest.raises(RateLimited) as info:
        attempt(connector)
    assert 60.0 < info.value.retry_after <= 90.0
    rsps.replace(responses.PUT, ISSUE_URL, status=429,
                 headers={"X-RateLimit-Reset": reset, "Retry-After": "5"})
    with pytest.raises(RateLimited) as second:
        attempt(connector)
    assert second.value.retry_after == 5.0


@pytest.mark.parametrize(
    ("value", "now", "expected"),
    [
        ("2021-05-13T03:51Z", 1620877800.0, 60.0),  # ISO 8601 as Atlassian documents it
        ("1620877860", 1620877800.0, 60.0),  # epoch seconds, as some clients report
        ("2021-05-13T03:49:00+00:00", 1620877800.0, 0.0),  # already past: no wait from it
        ("soon", 1620877800.0, None),  # unreadable: ignored (the floor applies)
        (None, 1620877800.0, None),  # absent
    ],
)
def test_rate_limit_reset_parsing(value: str | None, now: float, expected: float | None) -> None:
    """X-RateLimit-Reset is read as ISO 8601 or epoch seconds, relative to `now`."""
    from connectors.jira.client import rate_limit_reset_seconds

    assert rate_limit_reset_seconds(value, now=now) == expected


def test_503_with_retry_after_is_rate_limited(
    connector: JiraConnector, rsps: responses.RequestsMock
) -> None:
    """503 + Retry-After (Atlassian's other rate-limit answer) -> RateLimited, status 503."""
    rsps.put(ISSUE_URL, status=503, headers={"Retry-After": "7"})
    with pytest.raises(RateLimited) as info:
        attempt(connector)
    assert (info.value.retry_after, info.value.status) == (7.0, 503)
    assert len(rsps.calls) == 1


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_5xx_on_write_is_retryable_and_ambiguous(
    status: int, connector: JiraConnector, rsps: responses.RequestsMock
) -> None:
    """5xx on the PUT -> VendorUnavailable(ambiguous) after one request: check before rewriting."""
    rsps.put(ISSUE_URL, status=status, body="<html>gateway</html>")
    with pytest.raises(VendorUnavailable) as info:
        attempt(connector)
    assert not isinstance(info.value, RateLimited)
    assert (info.value.status, info.value.ambiguous) == (status, True)
    assert len(rsps.calls) == 1


def test_5xx_on_read_is_not_ambiguous(
    connector: JiraConnector, rsps: responses.RequestsMock
) -> None:
    """A failed GET changed nothing: VendorUnavailable, not ambiguous."""
    rsps.get(ISSUE_URL, status=500)
    with pytest.raises(VendorUnavailable) as info:
        connector.current_ticket([load("comment_created__cloud_mention_user.json")])
    assert (info.value.status, info.value.ambiguous) == (500, False)


def test_read_timeout_on_write_is_ambiguous(
    connector: JiraConnector, rsps: responses.RequestsMock
) -> None:
    """A read timeout after sending the PUT may hide a landed write: ambiguous."""
    rsps.put(ISSUE_URL, body=requests.ReadTimeout("read timed out"))
    with pytest.raises(VendorUnavailable, match="read timeout") as info:
        attempt(connector)
    assert info.value.ambiguous is True


def test_connect_timeout_is_not_ambiguous(
    connector: JiraConnector, rsps: responses.RequestsMock
) -> None:
    """A connect timeout never reached Jira: retryable, not ambiguous."""
    rsps.put(ISSUE_URL, body=requests.ConnectTimeout("connect timed out"))
    with pytest.raises(VendorUnavailable, match="connect timeout") as info:
        attempt(connector)
    assert info.value.ambiguous is False
    assert len(rsps.calls) == 1


REJECTIONS = [
    # Jira's error shape: errorMessages plus per-field errors
    (400, {"errorMessages": [], "errors": {"labels": "Field 'labels' cannot be set."}},
     "rejected (400): labels: Field 'labels' cannot be set."),
    (403, {"errorMessages": ["You do not have permission to edit issues."], "errors": {}},
     "rejected (403): You do not have permission to edit issues."),
    (404, {"errorMessages": ["Issue does not exist or you do not have permission to see it."]},
     "rejected (404): Issue does not exist"),
]


@pytest.mark.parametrize(("status", "answer", "message"), REJECTIONS)
def test_4xx_is_rejected_with_jira_text(
    status: int, answer: dict[str, Any], message: str,
    connector: JiraConnector, rsps: responses.RequestsMock,
) -> None:
    """4xx -> VendorRejected carrying Jira's own error text; one request, no secret in it."""
    rsps.put(ISSUE_URL, status=status, json=answer)
    with pytest.raises(VendorRejected, match=re.escape(message)) as info:
        attempt(connector)
    assert info.value.status == status
    assert "token-123" not in str(info.value)
    assert len(rsps.calls) == 1


def test_non_json_read_is_unavailable(
    connector: JiraConnector, rsps: responses.RequestsMock
) -> None:
    """A 200 that is not JSON (proxy login page) is a retryable error, not a crash."""
    rsps.get(ISSUE_URL, body="<html>login</html>", status=200)
    with pytest.raises(VendorUnavailable, match="without JSON"):
        connector.current_ticket([load("comment_created__cloud_mention_user.json")])


class FakeJira:
    """Just enough Jira to apply a PUT and answer a GET, to follow an issue across retries."""

    def __init__(self, *, reset_after_put: bool, reset_before_put: bool = False) -> None:
        self.labels: list[str] = ["tier-l1", "escalate-l2"]
        self.comments: list[dict[str, Any]] = []
        self.reset_after_put = reset_after_put
        self.reset_before_put = reset_before_put
        self.puts = 0

    def put(self, request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
        self.puts += 1
        if self.reset_before_put:
            self.reset_before_put = False
            raise requests.ConnectionError("Connection reset by peer")
        assert request.body is not None
        body = json.loads(request.body)
        for op in body.get("update", {}).get("labels", []):
            if "add" in op and op["add"] not in self.labels:
                self.labels.append(op["add"])
            if "remove" in op and op["remove"] in self.labels:
                self.labels.remove(op["remove"])
        for op in body.get("update", {}).get("comment", []):
            self.comments.append(op["add"])
        if self.reset_after_put:
            self.reset_after_put = False
            # The write landed; the answer is lost.
            raise requests.ConnectionError("Connection reset by peer")
        return 204, {}, ""

    def get(self, request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
        issue = {"key": "TES-41", "fields": {
            "summary": "s", "description": "d", "labels": list(self.labels),
            "priority": {"name": "High"}, "reporter": {"emailAddress": "a@example.com"},
            "assignee": None, "attachment": [], "updated": "2026-11-21T12:00:00.000+0000",
            "comment": {"comments": list(self.comments)},
        }}
        return 200, {}, json.dumps(issue)


def worker_attempts(connector: JiraConnector, jira: FakeJira, *, max_attempts: int = 3) -> int:
    """Drive apply like the worker: retry, re-reading fresh after an ambiguous failure."""
    ticket, decision = checklist_decision()
    fresh = False
    for n in range(1, max_attempts + 1):
        if fresh:
            ticket = connector.current_ticket(
                [{"webhookEvent": "jira:issue_updated", "issue": {"key": "TES-41"}}], fresh=True)
            # Same decision: what the engine would want is still this label and this note.
        try:
            connector.apply(ticket, decision, decide=lambda t: decision)
            return n
        except VendorUnavailable as exc:
            fresh = exc.ambiguous
    raise AssertionError("did not finish")


def test_reset_after_put_landed_does_not_post_twice(
    connector: JiraConnector, rsps: responses.RequestsMock
) -> None:
    """Connection reset after the PUT landed: the fresh read finds the note; no second PUT."""
    jira = FakeJira(reset_after_put=True)
    rsps.add_callback(responses.PUT, ISSUE_URL, callback=jira.put)
    rsps.add_callback(responses.GET, ISSUE_URL, callback=jira.get)
    assert worker_attempts(connector, jira) == 2
    assert len(jira.comments) == 1
    assert jira.puts == 1
    assert jira.labels == ["tier-l1", "escalate-l2", "tier-docs-missing"]
    assert [c.request.method for c in rsps.calls] == ["PUT", "GET"]
    assert "comment" in (rsps.calls[1].request.params["fields"] or "")


def test_reset_before_put_landed_posts_once(
    connector: JiraConnector, rsps: responses.RequestsMock
) -> None:
    """Connection reset before Jira applied the PUT: the retry writes it, exactly once."""
    jira = FakeJira(reset_after_put=False, reset_before_put=True)
    rsps.add_callback(responses.PUT, ISSUE_URL, callback=jira.put)
    rsps.add_callback(responses.GET, ISSUE_URL, callback=jira.get)
    assert worker_attempts(connector, jira) == 2
    assert len(jira.comments) == 1
    assert [c.request.method for c in rsps.calls] == ["PUT", "GET", "PUT"]


def test_rate_limited_then_succeeds_posts_once(
    connector: JiraConnector, rsps: responses.RequestsMock
) -> None:
    """429 then success: the comment is posted once (the 429 applied nothing)."""
    jira = FakeJira(reset_after_put=False)
    rsps.put(ISSUE_URL, status=429, headers={"Retry-After": "1"})
    rsps.add_callback(responses.PUT, ISSUE_URL, callback=jira.put)
    ticket, decision = checklist_decision()
    with pytest.raises(RateLimited):
        connector.apply(ticket, decision, decide=lambda t: decision)
    connector.apply(ticket, decision, decide=lambda t: decision)
    assert len(jira.comments) == 1


def test_own_events_are_dropped_without_requests(rsps: responses.RequestsMock) -> None:
    """The bot's own events (Cloud accountId, Cloud comment author, DC name): 0 requests."""
    connector = JiraConnector(cloud_config(bot_account_id="5c5f880629be9642ba529340"), policy())
    for name in ("jira_issue_updated__cloud_labels.json",
                 "comment_created__cloud_mention_user.json", "comment_updated__cloud.json"):
        assert connector.is_own_event(jira_webhook.classify(load(name), {}))
    other = jira_webhook.classify(load("jira_issue_created__cloud_many_fields.json"), {})
    assert not connector.is_own_event(other)
    dc = JiraConnector(cloud_config(bot_account_id="levbrouk", deployment="datacenter"), policy())
    assert dc.is_own_event(jira_webhook.classify(load("comment_created__server.json"), {}))
    assert len(rsps.calls) == 0


def test_no_bot_configured_drops_nothing(connector: JiraConnector) -> None:
    """Without bot_account_id, no event counts as the bot's (idempotence still prevents loops)."""
    plain = JiraConnector(cloud_config(bot_account_id=None), policy())
    envelope = jira_webhook.classify(load("jira_issue_created__cloud.json"), {})
    assert not plain.is_own_event(envelope)


def test_constructing_the_connector_makes_no_request(rsps: responses.RequestsMock) -> None:
    """JIRA() is built with get_server_info=False and no retries: nothing is sent."""
    connector = JiraConnector(cloud_config(), policy())
    assert len(rsps.calls) == 0
    assert connector.client._session.max_retries == 0
    assert connector.client._session.timeout == 5.0


def test_other_exceptions_become_connector_errors(
    connector: JiraConnector, rsps: responses.RequestsMock
) -> None:
    """Any other requests failure is translated, never leaked raw."""
    rsps.put(ISSUE_URL, body=requests.exceptions.InvalidHeader("bad header"))
    with pytest.raises(ConnectorError):
        attempt(connector)


RETRY_AFTER = [
    ("120", 120.0),
    ("0", 0.0),
    ("1.5", 1.5),
    ("Sat, 21 Nov 2026 12:01:00 GMT", 60.0),  # HTTP date, one minute after `now`
    ("Sat, 21 Nov 2026 11:59:00 GMT", 0.0),  # a date in the past means now
    ("soon", None),
    ("", None),
    (None, None),
]


@pytest.mark.parametrize(("header", "seconds"), RETRY_AFTER)
def test_retry_after_parsing(header: str | None, seconds: float | None) -> None:
    """Retry-After as delta-seconds or HTTP date; garbage is ignored."""
    assert retry_after_seconds(header, now=NOW.timestamp()) == seconds


def test_real_decisions_survive_reset(
    connector: JiraConnector, rsps: responses.RequestsMock
) -> None:
    """With the real engine: after a reset the re-decision on fresh state writes nothing more."""
    jira = FakeJira(reset_after_put=True)
    jira.labels = ["tier-l1", "escalate-l2"]
    rsps.add_callback(responses.PUT, ISSUE_URL, callback=jira.put)
    rsps.add_callback(responses.GET, ISSUE_URL, callback=jira.get)
    body = {"webhookEvent": "jira:issue_updated", "issue": {"key": "TES-41"}}
    ticket = connector.current_ticket([body], fresh=True)
    first = decide(ticket, policy(), now=NOW)
    assert first.changed and first.comment
    with pytest.raises(VendorUnavailable) as info:
        connector.apply(ticket, first, decide=lambda t: first)
    assert info.value.ambiguous
    again = connector.current_ticket([body], fresh=True)
    second = decide(again, policy(), now=NOW)
    applied = connector.apply(again, second, decide=lambda t: second)
    assert not applied.wrote
    assert len(jira.comments) == 1


def test_given_session_lends_its_transport(rsps: responses.RequestsMock) -> None:
    """A session passed to JiraConnector provides the adapters the library's requests use."""
    used: list[str] = []

    class Recording(requests.adapters.HTTPAdapter):
        def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
            used.append(request.method or "")
            return super().send(request, **kwargs)

    session = requests.Session()
    session.mount("https://", Recording())
    connector = JiraConnector(cloud_config(), policy(), session=session)
    rsps.put(ISSUE_URL, status=204)
    attempt(connector)
    assert used == ["PUT"]


def test_checklist_audience_fails_closed(
    rsps: responses.RequestsMock, caplog: pytest.LogCaptureFixture
) -> None:
    """Without visibility, JSM or an explicit `public_comments`, the connector refuses to be
    built (customers must not see the checklist by a missed setting); the explicit opt-out
    builds with a warning, a visibility builds silently."""
    with pytest.raises(ValueError, match="TIERDESK_JIRA_COMMENT_VISIBILITY=public"):
        JiraConnector(cloud_config(public_comments=False), policy())
    JiraConnector(cloud_config(public_comments=True), policy())
    assert "posted unrestricted" in caplog.text
    caplog.clear()
    JiraConnector(cloud_config(public_comments=False, comment_visibility=("group", "agents")),
                  policy())
    JiraConnector(cloud_config(public_comments=False, service_management=True), policy())
    assert caplog.text == ""
