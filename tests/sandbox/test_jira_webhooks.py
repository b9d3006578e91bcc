"""Jira webhook deliveries from the sandbox: body shapes, signatures, filters and retries."""

from __future__ import annotations

import hashlib
import hmac

from jira import JIRA

from sandbox.server import SandboxHandle
from tests.webhook_receiver import Receiver

SECRET = "It's a Secret to Everybody"


def register(
    client: JIRA, url: str, receiver: Receiver, events: list[str], jql: str = "project = SUP"
) -> None:
    response = client._session.post(
        f"{url}/rest/webhooks/1.0/webhook",
        json={
            "name": "tierdesk",
            "url": receiver.url + "/webhooks/jira",
            "events": events,
            "filters": {"issue-related-events-section": jql},
            "excludeBody": False,
            "secret": SECRET,
        },
    )
    assert response.status_code == 201


def signature_ok(body: bytes, header: str) -> bool:
    expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, header)


def test_agent_label_edit_sends_signed_issue_updated(
    sandbox: SandboxHandle, jira_client: JIRA, receiver: Receiver
) -> None:
    """An agent's label edit arrives as jira:issue_updated, signed, with a labels changelog."""
    register(jira_client, sandbox.jira_url, receiver, ["jira:issue_updated"])
    sandbox.agent(
        "jira",
        "agent",
        "PUT",
        "/rest/api/2/issue/SUP-1",
        {"update": {"labels": [{"add": "escalate-l2"}]}},
    )
    [call] = receiver.wait_for(1)
    assert sandbox.wait_for_deliveries()
    assert signature_ok(call.body, call.headers["X-Hub-Signature"])
    assert call.headers["X-Atlassian-Webhook-Identifier"]
    assert call.headers["X-Atlassian-Webhook-Retry"] == "0"
    body = call.json()
    assert body["webhookEvent"] == "jira:issue_updated"
    assert body["issue_event_type_name"] == "issue_updated"
    assert body["user"]["accountId"] == "acc-agent"
    assert body["issue"]["key"] == "SUP-1"
    assert body["issue"]["fields"]["labels"] == ["escalate-l2"]
    assert body["changelog"]["items"] == [
        {
            "field": "labels",
            "fieldtype": "jira",
            "fieldId": "labels",
            "from": None,
            "fromString": "",
            "to": None,
            "toString": "escalate-l2",
        }
    ]
    assert isinstance(body["timestamp"], int)


def test_comment_sends_issue_commented_and_trimmed_comment_created(
    sandbox: SandboxHandle, jira_client: JIRA, receiver: Receiver
) -> None:
    """A comment gives issue_updated/issue_commented and a Cloud comment_created without
    user or labels."""
    register(jira_client, sandbox.jira_url, receiver, ["jira:issue_updated", "comment_created"])
    sandbox.agent("jira", "alice", "POST", "/rest/api/2/issue/SUP-1/comment", {"body": "hi"})
    calls = receiver.wait_for(2)
    by_event = {c.json()["webhookEvent"]: c.json() for c in calls}
    assert by_event["jira:issue_updated"]["issue_event_type_name"] == "issue_commented"
    assert by_event["jira:issue_updated"]["comment"]["body"] == "hi"
    created = by_event["comment_created"]
    assert "user" not in created
    assert created["comment"]["author"]["accountId"] == "acc-acme"
    assert "labels" not in created["issue"]["fields"]
    assert created["issue"]["key"] == "SUP-1"


def test_bot_writes_echo_back_as_webhooks(
    sandbox: SandboxHandle, jira_client: JIRA, receiver: Receiver
) -> None:
    """tierdesk's own PUT is delivered too, with the bot as user: loops happen for real."""
    register(jira_client, sandbox.jira_url, receiver, ["jira:issue_updated"])
    jira_client._session.put(
        f"{sandbox.jira_url}/rest/api/2/issue/SUP-1",
        json={"update": {"labels": [{"add": "tier-l1"}]}},
    )
    [call] = receiver.wait_for(1)
    assert call.json()["user"]["accountId"] == "acc-bot"


def test_jql_filter_and_event_list_select_deliveries(
    sandbox: SandboxHandle, jira_client: JIRA, receiver: Receiver
) -> None:
    """Only webhooks whose events and JQL filter match an issue receive its events."""
    register(
        jira_client,
        sandbox.jira_url,
        receiver,
        ["jira:issue_updated"],
        jql="project = SUP AND labels = vip",
    )
    register(jira_client, sandbox.jira_url, receiver, ["jira:issue_created"])
    sandbox.agent(
        "jira", "agent", "PUT", "/rest/api/2/issue/SUP-1", {"fields": {"summary": "changed"}}
    )
    assert sandbox.wait_for_deliveries()
    assert receiver.calls == []
    sandbox.agent(
        "jira", "agent", "PUT", "/rest/api/2/issue/SUP-1", {"update": {"labels": [{"add": "vip"}]}}
    )
    calls = receiver.wait_for(1)
    assert sandbox.wait_for_deliveries()
    assert [c.json()["webhookEvent"] for c in calls] == ["jira:issue_updated"]


def test_issue_created_event(sandbox: SandboxHandle, jira_client: JIRA, receiver: Receiver) -> None:
    """Creating an issue sends jira:issue_created with the full issue and a changelog."""
    register(jira_client, sandbox.jira_url, receiver, ["jira:issue_created"])
    sandbox.agent(
        "jira",
        "alice",
        "POST",
        "/rest/api/2/issue",
        {
            "fields": {
                "project": {"key": "SUP"},
                "summary": "Crash",
                "issuetype": {"name": "Bug"},
                "priority": {"name": "High"},
                "customfield_10002": [{"id": "1", "name": "Acme Corp"}],
            }
        },
    )
    [call] = receiver.wait_for(1)
    body = call.json()
    assert body["webhookEvent"] == "jira:issue_created"
    assert body["issue"]["fields"]["customfield_10002"] == [{"id": "1", "name": "Acme Corp"}]
    assert body["issue"]["fields"]["reporter"]["emailAddress"] == "alice@acme.example"
    assert {i["fieldId"] for i in body["changelog"]["items"]} >= {"summary", "priority"}


def test_failed_delivery_is_retried_with_the_same_identifier(
    sandbox: SandboxHandle, jira_client: JIRA, receiver: Receiver
) -> None:
    """503 then 429 from the receiver: Jira retries, same identifier, retry count rising."""
    register(jira_client, sandbox.jira_url, receiver, ["jira:issue_updated"])
    receiver.statuses = [503, 429]
    sandbox.agent(
        "jira", "agent", "PUT", "/rest/api/2/issue/SUP-1", {"fields": {"summary": "again"}}
    )
    calls = receiver.wait_for(3)
    assert sandbox.wait_for_deliveries()
    assert len({c.headers["X-Atlassian-Webhook-Identifier"] for c in calls}) == 1
    assert [c.headers["X-Atlassian-Webhook-Retry"] for c in calls] == ["0", "1", "2"]
    assert all(signature_ok(c.body, c.headers["X-Hub-Signature"]) for c in calls)


def test_client_error_is_not_retried(
    sandbox: SandboxHandle, jira_client: JIRA, receiver: Receiver
) -> None:
    """A 400 from the receiver is final, as with Jira Cloud."""
    register(jira_client, sandbox.jira_url, receiver, ["jira:issue_updated"])
    receiver.statuses = [400]
    sandbox.agent(
        "jira", "agent", "PUT", "/rest/api/2/issue/SUP-1", {"fields": {"summary": "again"}}
    )
    receiver.wait_for(1)
    assert sandbox.wait_for_deliveries()
    assert len(receiver.calls) == 1
    assert sandbox.state()["deliveries"]["gave_up"] == 1


def test_no_change_sends_nothing(
    sandbox: SandboxHandle, jira_client: JIRA, receiver: Receiver
) -> None:
    """A PUT that changes nothing answers 204 and fires no webhook."""
    register(jira_client, sandbox.jira_url, receiver, ["jira:issue_updated"])
    response = jira_client._session.put(
        f"{sandbox.jira_url}/rest/api/2/issue/SUP-1",
        json={"update": {"labels": [{"remove": "absent"}]}},
    )
    assert response.status_code == 204
    assert sandbox.wait_for_deliveries()
    assert receiver.calls == []


def test_held_deliveries_are_released_in_the_chosen_order(
    sandbox: SandboxHandle, jira_client: JIRA, receiver: Receiver
) -> None:
    """hold/release: deliveries wait, then go out newest first when asked: reordering on demand."""
    register(jira_client, sandbox.jira_url, receiver, ["jira:issue_updated"])
    sandbox.hold_deliveries()
    for summary in ("first", "second", "third"):
        sandbox.agent(
            "jira", "agent", "PUT", "/rest/api/2/issue/SUP-1", {"fields": {"summary": summary}}
        )
    assert sandbox.wait_for_deliveries()
    assert receiver.calls == []
    assert sandbox.state()["deliveries"]["held"] == 3
    assert sandbox.release_deliveries(order="reverse", spacing=0.05) == 3
    calls = receiver.wait_for(3)
    assert [c.json()["issue"]["fields"]["summary"] for c in calls] == ["third", "second", "first"]
