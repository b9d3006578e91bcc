"""Faults of the sandbox: 429 with Retry-After (and the referee), 503 outages, slow answers,
resets after an applied write, 409 collisions, budgets, duplicate and delayed deliveries."""

from __future__ import annotations

import time

import pytest
import requests

from sandbox.server import SandboxHandle
from tests.webhook_receiver import Receiver

BOT_JIRA = ("bot@tierdesk.example", "sandbox-token")
BOT_ZD = ("bot@tierdesk.example/token", "sandbox-token")


def issue_url(sandbox: SandboxHandle) -> str:
    return f"{sandbox.jira_url}/rest/api/2/issue/SUP-1"


def test_rate_limit_answers_429_with_retry_after(sandbox: SandboxHandle) -> None:
    """The next N requests get 429 + Retry-After in the vendor's error shape."""
    sandbox.set_faults({"jira": {"rate_limit": {"requests": 1, "retry_after": 1}}})
    response = requests.get(issue_url(sandbox), auth=BOT_JIRA, timeout=5)
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "1"
    assert response.headers["X-RateLimit-Remaining"] == "0"
    assert "errorMessages" in response.json()


def test_coming_back_early_is_a_counted_violation(sandbox: SandboxHandle) -> None:
    """A client that retries before Retry-After elapsed is refused again and counted."""
    sandbox.set_faults({"zendesk": {"rate_limit": {"requests": 1, "retry_after": 1}}})
    url = f"{sandbox.zendesk_url}/api/v2/tickets/1.json"
    assert requests.get(url, auth=BOT_ZD, timeout=5).status_code == 429
    early = requests.get(url, auth=BOT_ZD, timeout=5)
    assert early.status_code == 429
    state = sandbox.state()
    assert state["retry_after_violations"] == 1
    [violation] = state["faults"]["zendesk"]["violations"]
    assert violation["path"] == "/api/v2/tickets/1.json"
    assert 0 < violation["early_by"] <= 1
    assert 0 <= violation["since_refusal"] < 1


def test_waiting_for_retry_after_is_no_violation(sandbox: SandboxHandle) -> None:
    """A client that waits as told gets through and no violation is recorded."""
    sandbox.set_faults({"jira": {"rate_limit": {"requests": 1, "retry_after": 1}}})
    first = requests.get(issue_url(sandbox), auth=BOT_JIRA, timeout=5)
    time.sleep(float(first.headers["Retry-After"]))
    assert requests.get(issue_url(sandbox), auth=BOT_JIRA, timeout=5).status_code == 200
    assert sandbox.state()["retry_after_violations"] == 0


def test_other_clients_are_not_blocked_by_someone_elses_retry_after(
    sandbox: SandboxHandle,
) -> None:
    """Retry-After binds the client that was told, identified by its credentials."""
    sandbox.set_faults({"jira": {"rate_limit": {"requests": 1, "retry_after": 30}}})
    assert requests.get(issue_url(sandbox), auth=BOT_JIRA, timeout=5).status_code == 429
    other = requests.get(
        issue_url(sandbox), auth=("agent@tierdesk.example", "sandbox-token"), timeout=5
    )
    assert other.status_code == 200
    assert sandbox.state()["retry_after_violations"] == 0


def test_outage_answers_503_for_its_duration(sandbox: SandboxHandle) -> None:
    """unavailable: 503 (with Retry-After when asked) until the duration has passed."""
    sandbox.set_faults({"zendesk": {"unavailable": {"seconds": 0.3}}})
    url = f"{sandbox.zendesk_url}/api/v2/tickets/1.json"
    down = requests.get(url, auth=BOT_ZD, timeout=5)
    assert down.status_code == 503
    assert "Retry-After" not in down.headers
    time.sleep(0.35)
    assert requests.get(url, auth=BOT_ZD, timeout=5).status_code == 200


def test_slow_answer_times_the_client_out_but_the_write_landed(sandbox: SandboxHandle) -> None:
    """slow: the write is applied, the answer comes after the client's timeout."""
    sandbox.set_faults({"jira": {"slow": {"requests": 1, "seconds": 0.6}}})
    with pytest.raises(requests.ReadTimeout):
        requests.put(
            issue_url(sandbox),
            auth=BOT_JIRA,
            timeout=0.2,
            json={"update": {"labels": [{"add": "tier-l1"}]}},
        )
    assert sandbox.state()["jira"]["issues"]["SUP-1"]["labels"] == ["tier-l1"]


def test_reset_after_write_applies_then_drops_the_connection(sandbox: SandboxHandle) -> None:
    """reset_after_write: the client sees a connection error, yet the note is on the ticket."""
    sandbox.set_faults({"zendesk": {"reset_after_write": {"requests": 1}}})
    with pytest.raises(requests.ConnectionError):
        requests.put(
            f"{sandbox.zendesk_url}/api/v2/tickets/1.json",
            auth=BOT_ZD,
            timeout=5,
            json={"ticket": {"comment": {"body": "note", "public": False}}},
        )
    comments = sandbox.state()["zendesk"]["tickets"]["1"]["comments"]
    assert comments[-1]["body"] == "note"
    again = requests.get(f"{sandbox.zendesk_url}/api/v2/tickets/1.json", auth=BOT_ZD, timeout=5)
    assert again.status_code == 200


def test_reset_after_write_spares_reads(sandbox: SandboxHandle) -> None:
    """A read never triggers the reset; the next write does."""
    sandbox.set_faults({"jira": {"reset_after_write": {"requests": 1}}})
    assert requests.get(issue_url(sandbox), auth=BOT_JIRA, timeout=5).status_code == 200
    with pytest.raises(requests.ConnectionError):
        requests.put(
            issue_url(sandbox), auth=BOT_JIRA, timeout=5, json={"fields": {"summary": "x"}}
        )


def test_conflict_answers_409_and_moves_updated_at(sandbox: SandboxHandle) -> None:
    """conflict: the ticket edit answers 409 UpdateConflict, nothing applied, stamp moved on."""
    url = f"{sandbox.zendesk_url}/api/v2/tickets/1.json"
    stamp = requests.get(url, auth=BOT_ZD, timeout=5).json()["ticket"]["updated_at"]
    sandbox.set_faults({"zendesk": {"conflict": {"requests": 1}}})
    clash = requests.put(
        url,
        auth=BOT_ZD,
        timeout=5,
        json={"ticket": {"tags": ["x"], "safe_update": True, "updated_stamp": stamp}},
    )
    assert clash.status_code == 409
    assert clash.json()["error"] == "UpdateConflict"
    now = requests.get(url, auth=BOT_ZD, timeout=5).json()["ticket"]
    assert now["tags"] == []
    assert now["updated_at"] != stamp


def test_budget_per_minute(sandbox: SandboxHandle) -> None:
    """A per-minute budget answers 429 with the wait until the window frees."""
    sandbox.set_faults({"jira": {"budget_per_minute": 2}})
    statuses = [requests.get(issue_url(sandbox), auth=BOT_JIRA, timeout=5) for _ in range(3)]
    assert [r.status_code for r in statuses] == [200, 200, 429]
    assert 1 <= int(statuses[2].headers["Retry-After"]) <= 60


def test_duplicate_and_delayed_deliveries(sandbox: SandboxHandle, receiver: Receiver) -> None:
    """webhooks.duplicate sends each delivery N times with one identifier, delayed at random."""
    requests.post(
        f"{sandbox.jira_url}/rest/webhooks/1.0/webhook",
        auth=BOT_JIRA,
        timeout=5,
        json={"url": receiver.url, "events": ["jira:issue_updated"], "secret": "s"},
    )
    sandbox.set_faults({"jira": {"webhooks": {"duplicate": 3, "delay_seconds": 0.2}}})
    sandbox.agent("jira", "agent", "PUT", "/rest/api/2/issue/SUP-1", {"fields": {"summary": "one"}})
    sandbox.agent("jira", "agent", "PUT", "/rest/api/2/issue/SUP-1", {"fields": {"summary": "two"}})
    calls = receiver.wait_for(6)
    assert sandbox.wait_for_deliveries()
    ids = [c.headers["X-Atlassian-Webhook-Identifier"] for c in calls]
    assert len(calls) == 6
    assert sorted(ids.count(i) for i in set(ids)) == [3, 3]


def test_faults_off_again(sandbox: SandboxHandle) -> None:
    """clear_faults switches everything off."""
    sandbox.set_faults({"jira": {"unavailable": {"seconds": 60}}})
    assert requests.get(issue_url(sandbox), auth=BOT_JIRA, timeout=5).status_code == 503
    sandbox.clear_faults()
    assert requests.get(issue_url(sandbox), auth=BOT_JIRA, timeout=5).status_code == 200


def test_control_requests_are_never_faulted(sandbox: SandboxHandle) -> None:
    """/_sandbox/* answers during an outage, so tests can always look and switch back."""
    sandbox.set_faults({"jira": {"unavailable": {"seconds": 60}}})
    assert requests.get(f"{sandbox.jira_url}/_sandbox/state", timeout=5).status_code == 200
