"""Zendesk deliveries from the sandbox: trigger bodies with placeholders, event envelopes,
signatures, the bot exclusion condition and retries."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

import requests

from sandbox.server import SandboxHandle
from tests.webhook_receiver import Receiver

BOT = ("bot@tierdesk.example/token", "sandbox-token")
TEMPLATE = (
    '{"ticket_id": "{{ticket.id}}", "tags": "{{ticket.tags}}", "subject": "{{ticket.title}}",'
    ' "steps": "{{ticket.ticket_field_360001111}}", "actor": "{{current_user.id}}",'
    ' "org": "{{ticket.organization.name}}", "plan":'
    ' "{{ticket.organization.custom_fields.support_plan}}",'
    ' "requester": "{{ticket.requester.email}}", "updated": "{{ticket.updated_at_with_timestamp}}",'
    ' "unknown": "{{ticket.no_such_thing}}"}'
)


def install(
    sandbox: SandboxHandle,
    receiver: Receiver,
    *,
    subscriptions: list[str] | None = None,
    trigger: bool = True,
) -> tuple[str, str]:
    """Create a webhook (and the tierdesk-style trigger); return its id and signing secret."""
    hook = requests.post(
        f"{sandbox.zendesk_url}/api/v2/webhooks",
        auth=BOT,
        timeout=5,
        json={
            "webhook": {
                "name": "tierdesk",
                "endpoint": receiver.url + "/webhooks/zendesk",
                "http_method": "POST",
                "request_format": "json",
                "status": "active",
                "subscriptions": subscriptions or ["conditional_ticket_events"],
            }
        },
    ).json()
    hook_id = hook["webhook"]["id"]
    secret = requests.get(
        f"{sandbox.zendesk_url}/api/v2/webhooks/{hook_id}/signing_secret", auth=BOT, timeout=5
    ).json()["signing_secret"]["secret"]
    if trigger:
        created = requests.post(
            f"{sandbox.zendesk_url}/api/v2/triggers.json",
            auth=BOT,
            timeout=5,
            json={
                "trigger": {
                    "title": "tierdesk",
                    "conditions": {
                        "all": [{"field": "current_user", "operator": "is_not", "value": "9001"}],
                        "any": [
                            {"field": "update_type", "operator": "is", "value": "Create"},
                            {"field": "update_type", "operator": "is", "value": "Change"},
                        ],
                    },
                    "actions": [{"field": "notification_webhook", "value": [hook_id, TEMPLATE]}],
                }
            },
        )
        assert created.status_code == 201
    return hook_id, secret


def verify(call_body: bytes, headers: dict[str, str], secret: str) -> bool:
    stamp = headers["X-Zendesk-Webhook-Signature-Timestamp"]
    digest = hmac.new(secret.encode(), stamp.encode() + call_body, hashlib.sha256).digest()
    return hmac.compare_digest(
        base64.b64encode(digest).decode(), headers["X-Zendesk-Webhook-Signature"]
    )


def test_agent_change_fires_trigger_with_rendered_placeholders(
    sandbox: SandboxHandle, receiver: Receiver
) -> None:
    """An agent's edit runs the trigger: the body template is rendered, valid JSON, signed."""
    hook_id, secret = install(sandbox, receiver)
    sandbox.agent(
        "zendesk",
        "agent@tierdesk.example",
        "PUT",
        "/api/v2/tickets/1",
        {
            "ticket": {
                "tags": ["escalate-l2"],
                "subject": 'Export "quoted" report',
                "custom_fields": [{"id": 360001111, "value": "line1\nline2"}],
            }
        },
    )
    [call] = receiver.wait_for(1)
    assert verify(call.body, call.headers, secret)
    assert call.headers["X-Zendesk-Webhook-Id"] == hook_id
    assert call.headers["X-Zendesk-Account-Id"] == "1234567"
    assert call.headers["X-Zendesk-Webhook-Invocation-Id"].isdigit()
    body = call.json()
    updated = sandbox.state()["zendesk"]["tickets"]["1"]["updated_at"]
    assert body == {
        "ticket_id": "1",
        "tags": "escalate-l2",
        "subject": 'Export "quoted" report',
        "steps": "line1\nline2",
        "actor": "9002",
        "org": "Globex",
        "plan": "standard",
        "requester": "bob@globex.example",
        "updated": updated,
        "unknown": "",
    }


def test_bot_changes_do_not_fire_the_excluding_trigger(
    sandbox: SandboxHandle, receiver: Receiver
) -> None:
    """current_user is_not <bot id> keeps tierdesk's own writes from coming back."""
    install(sandbox, receiver)
    response = requests.put(
        f"{sandbox.zendesk_url}/api/v2/tickets/1.json",
        auth=BOT,
        timeout=5,
        json={"ticket": {"tags": ["tier-l1"], "group_id": 100}},
    )
    assert response.status_code == 200
    assert sandbox.wait_for_deliveries()
    assert receiver.calls == []


def test_ticket_creation_fires_the_create_condition(
    sandbox: SandboxHandle, receiver: Receiver
) -> None:
    """A ticket created by an end user's channel (agent API) matches update_type Create."""
    install(sandbox, receiver)
    sandbox.agent(
        "zendesk",
        "9002",
        "POST",
        "/api/v2/tickets",
        {
            "ticket": {
                "subject": "Invoice question",
                "comment": {"body": "Wrong invoice"},
                "requester_id": 9103,
            }
        },
    )
    [call] = receiver.wait_for(1)
    assert call.json()["ticket_id"] == "2"
    assert call.json()["plan"] == "basic"


def test_event_subscription_envelopes(sandbox: SandboxHandle, receiver: Receiver) -> None:
    """zen:event-type:ticket.* webhooks get the envelope with string ids and UPPERCASE enums."""
    _, secret = install(
        sandbox,
        receiver,
        trigger=False,
        subscriptions=["zen:event-type:ticket.tags_changed", "zen:event-type:ticket.comment_added"],
    )
    sandbox.agent(
        "zendesk",
        "9002",
        "PUT",
        "/api/v2/tickets/1",
        {"ticket": {"tags": ["vip"], "comment": {"body": "looking", "public": False}}},
    )
    calls = receiver.wait_for(2)
    assert all(verify(c.body, c.headers, secret) for c in calls)
    by_type = {c.json()["type"]: c.json() for c in calls}
    tags = by_type["zen:event-type:ticket.tags_changed"]
    assert tags["event"] == {"tags_added": ["vip"], "tags_removed": []}
    assert tags["subject"] == "zen:ticket:1"
    assert tags["detail"]["id"] == "1"
    assert tags["detail"]["actor_id"] == "9002"
    assert tags["detail"]["priority"] == "LOW"
    assert tags["detail"]["status"] == "OPEN"
    comment = by_type["zen:event-type:ticket.comment_added"]["event"]["comment"]
    assert comment["body"] == "looking"
    assert comment["is_public"] is False
    assert comment["author"] == {"id": "9002", "is_staff": True, "name": "Ada Agent"}


def test_failed_delivery_is_retried_with_fresh_signature_and_same_invocation(
    sandbox: SandboxHandle, receiver: Receiver
) -> None:
    """A 503 from the receiver is retried: same invocation id, each attempt signed."""
    _, secret = install(sandbox, receiver)
    receiver.statuses = [503, 409]
    sandbox.agent("zendesk", "9002", "PUT", "/api/v2/tickets/1", {"ticket": {"tags": ["a"]}})
    calls = receiver.wait_for(3)
    assert sandbox.wait_for_deliveries()
    assert len({c.headers["X-Zendesk-Webhook-Invocation-Id"] for c in calls}) == 1
    assert all(verify(c.body, c.headers, secret) for c in calls)
    assert json.loads(calls[-1].body)["tags"] == "a"


def test_zendesk_gives_up_after_three_retries(sandbox: SandboxHandle, receiver: Receiver) -> None:
    """An endpoint that keeps failing gets 1 + 3 attempts, then the delivery is dropped."""
    install(sandbox, receiver)
    receiver.statuses = [500] * 10
    sandbox.agent("zendesk", "9002", "PUT", "/api/v2/tickets/1", {"ticket": {"tags": ["a"]}})
    assert sandbox.wait_for_deliveries()
    assert len(receiver.calls) == 1  # 500 is not among the codes Zendesk retries
    receiver.calls.clear()
    receiver.statuses = [503] * 10
    sandbox.agent("zendesk", "9002", "PUT", "/api/v2/tickets/1", {"ticket": {"tags": ["b"]}})
    assert sandbox.wait_for_deliveries()
    assert len(receiver.calls) == 4
    assert sandbox.state()["deliveries"]["gave_up"] == 2


def test_liquid_loop_counts_attachments_in_trigger_body(
    sandbox: SandboxHandle, receiver: Receiver
) -> None:
    """`{% for comment in ticket.comments %}{% for a in comment.attachments %}+...` renders one
    `+` per uploaded attachment, as tierdesk's trigger body expects."""
    hook = requests.post(
        f"{sandbox.zendesk_url}/api/v2/webhooks",
        auth=BOT,
        timeout=5,
        json={
            "webhook": {
                "name": "t",
                "endpoint": receiver.url,
                "http_method": "POST",
                "request_format": "json",
                "status": "active",
                "subscriptions": ["conditional_ticket_events"],
            }
        },
    ).json()["webhook"]
    template = (
        '{"n": "{% for comment in ticket.comments %}{% for attachment in'
        ' comment.attachments %}+{% endfor %}{% endfor %}", "p": "{{ticket.priority}}"}'
    )
    requests.post(
        f"{sandbox.zendesk_url}/api/v2/triggers",
        auth=BOT,
        timeout=5,
        json={
            "trigger": {
                "title": "t",
                "conditions": {
                    "all": [{"field": "update_type", "operator": "is", "value": "Change"}]
                },
                "actions": [{"field": "notification_webhook", "value": [hook["id"], template]}],
            }
        },
    )
    token = requests.post(
        f"{sandbox.zendesk_url}/api/v2/uploads.json?filename=a.log",
        data=b"trace",
        auth=BOT,
        timeout=5,
    ).json()["upload"]["token"]
    requests.post(
        f"{sandbox.zendesk_url}/api/v2/uploads.json?filename=b.png&token={token}",
        data=b"png",
        auth=BOT,
        timeout=5,
    )
    sandbox.agent(
        "zendesk",
        "9002",
        "PUT",
        "/api/v2/tickets/1",
        {"ticket": {"comment": {"body": "logs attached", "uploads": [token]}, "priority": "high"}},
    )
    [call] = receiver.wait_for(1)
    assert call.json() == {"n": "++", "p": "High"}
    comments = requests.get(
        f"{sandbox.zendesk_url}/api/v2/tickets/1/comments.json", auth=BOT, timeout=5
    ).json()["comments"]
    assert [a["file_name"] for a in comments[-1]["attachments"]] == ["a.log", "b.png"]
    reused = requests.put(
        f"{sandbox.zendesk_url}/api/v2/tickets/1.json",
        auth=BOT,
        timeout=5,
        json={"ticket": {"comment": {"body": "again", "uploads": [token]}}},
    )
    assert reused.status_code == 422


def test_via_condition_tells_api_writes_from_agents(
    sandbox: SandboxHandle, receiver: Receiver
) -> None:
    """current_via_id is_not 5: writes through the API (tierdesk) fire nothing, an agent's
    change in the agent interface (scripted agent, via 0) fires the trigger."""
    hook = requests.post(
        f"{sandbox.zendesk_url}/api/v2/webhooks",
        auth=BOT,
        timeout=5,
        json={
            "webhook": {
                "name": "t",
                "endpoint": receiver.url,
                "http_method": "POST",
                "request_format": "json",
                "status": "active",
                "subscriptions": ["conditional_ticket_events"],
            }
        },
    ).json()["webhook"]
    created = requests.post(
        f"{sandbox.zendesk_url}/api/v2/triggers",
        auth=BOT,
        timeout=5,
        json={
            "trigger": {
                "title": "t",
                "conditions": {
                    "all": [{"field": "current_via_id", "operator": "is_not", "value": "5"}]
                },
                "actions": [
                    {
                        "field": "notification_webhook",
                        "value": [hook["id"], '{"id": "{{ticket.id}}"}'],
                    }
                ],
            }
        },
    )
    assert created.status_code == 201
    requests.put(
        f"{sandbox.zendesk_url}/api/v2/tickets/1.json",
        auth=BOT,
        timeout=5,
        json={"ticket": {"tags": ["api-write"]}},
    )
    assert sandbox.wait_for_deliveries()
    assert receiver.calls == []
    sandbox.agent("zendesk", "9002", "PUT", "/api/v2/tickets/1", {"ticket": {"tags": ["ui"]}})
    [call] = receiver.wait_for(1)
    assert call.json() == {"id": "1"}


def test_a_second_webhook_takes_over_the_trigger_and_the_first_is_retired(
    sandbox: SandboxHandle, receiver: Receiver
) -> None:
    """Two webhooks side by side: the trigger calls one at a time, signed with that webhook's
    own secret; a webhook a trigger still calls cannot be deleted (422); once the trigger is
    moved it can, and PATCH renames the survivor."""
    zd = sandbox.zendesk_url
    old_id, old_secret = install(sandbox, receiver)
    new_id, new_secret = install(sandbox, receiver, trigger=False)
    assert new_id != old_id and new_secret != old_secret
    [trigger] = requests.get(f"{zd}/api/v2/triggers", auth=BOT, timeout=5).json()["triggers"]

    refused = requests.delete(f"{zd}/api/v2/webhooks/{old_id}", auth=BOT, timeout=5)
    assert refused.status_code == 422
    assert f"trigger(s) {trigger['id']}" in refused.json()["details"]["webhook"][0]["description"]

    moved = requests.put(
        f"{zd}/api/v2/triggers/{trigger['id']}", auth=BOT, timeout=5,
        json={"trigger": {"actions": [
            {"field": "notification_webhook", "value": [new_id, TEMPLATE]}]}},
    )
    assert moved.status_code == 200
    sandbox.agent("zendesk", "agent@tierdesk.example", "PUT", "/api/v2/tickets/1",
                  {"ticket": {"tags": ["moved"]}})
    [call] = receiver.wait_for(1)
    assert call.headers["X-Zendesk-Webhook-Id"] == new_id
    assert verify(call.body, call.headers, new_secret)
    assert not verify(call.body, call.headers, old_secret)

    assert requests.delete(f"{zd}/api/v2/webhooks/{old_id}", auth=BOT,
                           timeout=5).status_code == 204
    renamed = requests.patch(f"{zd}/api/v2/webhooks/{new_id}", auth=BOT, timeout=5,
                             json={"webhook": {"name": "tierdesk-renamed"}})
    assert renamed.status_code == 204
    hooks = requests.get(f"{zd}/api/v2/webhooks", auth=BOT, timeout=5).json()["webhooks"]
    assert [(h["id"], h["name"]) for h in hooks] == [(new_id, "tierdesk-renamed")]
