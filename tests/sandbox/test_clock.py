"""The sandbox's settable clock (sandbox/clock.py) and the Jira statuses a seed adds.

The clock is what lets a test run tierdesk in story time against the sandbox
(tests/policies/test_stories_timed.py): records and the webhooks' signed times must follow it.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import requests
from jira import JIRA

from sandbox.clock import ClockInvalid, SandboxClock, parse_instant
from sandbox.server import SandboxHandle, run_in_thread
from tests.sandbox.test_jira_webhooks import register
from tests.webhook_receiver import Receiver

MONDAY = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)


def _clock(sandbox: SandboxHandle, body: object) -> tuple[int, dict[str, object]]:
    r = requests.post(f"{sandbox.jira_url}/_sandbox/clock", json=body, timeout=10)
    return r.status_code, r.json()


def test_clock_control_api_sets_moves_and_releases(sandbox: SandboxHandle) -> None:
    """GET shows the system time until a POST stops the clock; it then only moves forward,
    mistakes are 400 with what to send, and null gives the system time back."""
    shown = requests.get(f"{sandbox.zendesk_url}/_sandbox/clock", timeout=10).json()
    assert shown["fixed"] is False
    assert _clock(sandbox, {"now": "2026-11-23T09:00:00+01:00"}) == (
        200, {"now": "2026-11-23T08:00:00Z", "fixed": True})
    assert _clock(sandbox, {"now": "2026-11-23T11:00:00Z"})[1]["now"] == "2026-11-23T11:00:00Z"
    status, body = _clock(sandbox, {"now": "2026-11-23T10:00:00Z"})
    assert status == 400 and "only moves forward" in str(body["error"])
    status, body = _clock(sandbox, {"now": "2026-11-23T12:00:00"})
    assert status == 400 and "no UTC offset" in str(body["error"])
    status, body = _clock(sandbox, {"now": "monday"})
    assert status == 400 and "not an ISO 8601 time" in str(body["error"])
    status, body = _clock(sandbox, {"time": "2026-11-23T12:00:00Z"})
    assert status == 400 and '{"now"' in str(body["error"])
    assert _clock(sandbox, {"now": None})[1]["fixed"] is False
    assert abs(sandbox.sandbox.now() - datetime.now(UTC)).total_seconds() < 60


@pytest.mark.parametrize(("value", "expected"), [
    (None, None),  # the system time
    ("2026-11-23T08:00:00Z", MONDAY),
    ("2026-11-23T03:00:00-05:00", MONDAY),  # any offset, kept as UTC
])
def test_parse_instant(value: str | None, expected: datetime | None) -> None:
    """`now` is an aware ISO 8601 instant or null."""
    assert parse_instant(value) == expected


def test_clock_refuses_an_earlier_instant_once_set() -> None:
    """A stopped clock never goes back (records would be dated before earlier ones)."""
    clock = SandboxClock()
    clock.set(MONDAY)
    with pytest.raises(ClockInvalid, match="only moves forward"):
        clock.set(datetime(2026, 11, 22, tzinfo=UTC))
    assert clock.now() == MONDAY


def test_jira_records_and_webhook_timestamps_follow_the_clock(
    sandbox: SandboxHandle, receiver: Receiver
) -> None:
    """A change made while the clock is stopped is dated at that instant: the issue's
    `updated` and the signed body's `timestamp` (epoch ms). Set before the first request: the
    Jira site never dates anything before what it dated last (serverInfo's serverTime, the
    webhook registration)."""
    sandbox.set_clock(MONDAY)
    client = JIRA(server=sandbox.jira_url, basic_auth=("bot@tierdesk.example", "sandbox-token"),
                  max_retries=0, timeout=5, options={"check_update": False})
    register(client, sandbox.jira_url, receiver, ["jira:issue_updated"])
    answer = sandbox.agent("jira", "agent", "PUT", "/rest/api/2/issue/SUP-1",
                           {"update": {"labels": [{"add": "clocked"}]}})
    assert answer.status == 204
    [call] = receiver.wait_for(1)
    body = call.json()
    # Each thing the site dated at the stopped instant took one more millisecond.
    assert 0 < body["timestamp"] - int(MONDAY.timestamp() * 1000) < 10
    assert body["issue"]["fields"]["updated"].startswith("2026-11-23T08:00:00.00")


def test_zendesk_signature_timestamp_follows_the_clock(
    sandbox: SandboxHandle, receiver: Receiver
) -> None:
    """Zendesk signs the delivery's time (X-Zendesk-Webhook-Signature-Timestamp) by the
    sandbox's clock, as tierdesk's signature-age check reads it."""
    sandbox.set_clock(MONDAY)
    answer = sandbox.agent("zendesk", "bot@tierdesk.example", "POST", "/api/v2/webhooks/test", {
        "request": {"endpoint": receiver.url + "/webhooks/zendesk", "http_method": "POST",
                    "request_format": "json", "payload": {"ping": 1}}})
    assert answer.status == 200
    [call] = receiver.wait_for(1)
    headers = {k.lower(): v for k, v in call.headers.items()}
    assert headers["x-zendesk-webhook-signature-timestamp"] == "2026-11-23T08:00:00Z"


def test_seeded_jira_statuses_join_the_workflow(receiver: Receiver) -> None:
    """A seed's `jira.statuses` adds statuses (with their category) to the workflow, each with
    a global transition, listed, taken and shown like the default ones."""
    seed = {"jira": {"users": [{"accountId": "acc-agent", "name": "agent",
                                "displayName": "Ada Agent"}],
                     "projects": [{"key": "SUP", "id": "10000", "name": "Support"}],
                     "statuses": {"Waiting for vendor": "indeterminate"},
                     "issues": [{"key": "SUP-1", "summary": "NAS degraded"}]}}
    with run_in_thread(seed=seed) as sandbox:
        path = "/rest/api/2/issue/SUP-1/transitions"
        offered = sandbox.agent("jira", "agent", "GET", path).body["transitions"]
        vendor = next(t for t in offered if t["name"] == "Waiting for vendor")
        assert vendor["to"]["statusCategory"]["key"] == "indeterminate"
        assert sandbox.agent("jira", "agent", "POST", path,
                             {"transition": {"id": vendor["id"]}}).status == 204
        issue = sandbox.agent("jira", "agent", "GET", "/rest/api/2/issue/SUP-1").body
        assert issue["fields"]["status"]["name"] == "Waiting for vendor"
        assert issue["fields"]["status"]["id"] == vendor["to"]["id"]
