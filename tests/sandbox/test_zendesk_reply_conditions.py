"""The sandbox's Zendesk trigger conditions for a public agent reply, as Zendesk documents them
("Conditions reference": `update_type`, `comment_is_public`, the current user's `role`, and the
`current_user` loop guard; sources in sandbox/zendesk/triggers.py): a public comment by an agent
or admin fires the trigger; an end user's comment, a private note, the bot's own comment, a
change without a comment and the creation of a ticket do not."""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests

from sandbox.server import SandboxHandle
from tests.webhook_receiver import Receiver

BOT = ("bot@tierdesk.example/token", "sandbox-token")
AGENT, ADMIN, END_USER, BOT_EMAIL = (
    "agent@tierdesk.example", "bot@tierdesk.example", "alice@acme.example", "bot@tierdesk.example")

#: The public reply trigger as tierdesk installs it, spelled out here (the sandbox and its
#: tests import nothing from connectors/): see connectors/zendesk/reply_trigger.py.
CONDITIONS = {"all": [
    {"field": "update_type", "operator": "is", "value": "Change"},
    {"field": "comment_is_public", "operator": "is", "value": "true"},
    {"field": "role", "operator": "is_not", "value": "end_user"},
    {"field": "current_user", "operator": "is_not", "value": "9001"},
], "any": []}
BODY = '{"ticket_id": "{{ticket.id}}", "public_reply_at": "{{ticket.updated_at_with_timestamp}}"}'


def install(sandbox: SandboxHandle, receiver: Receiver, conditions: dict[str, Any]) -> None:
    hook = requests.post(f"{sandbox.zendesk_url}/api/v2/webhooks", auth=BOT, timeout=5, json={
        "webhook": {"name": "tierdesk", "endpoint": receiver.url + "/webhooks/zendesk",
                    "http_method": "POST", "request_format": "json", "status": "active",
                    "subscriptions": ["conditional_ticket_events"]}}).json()["webhook"]["id"]
    made = requests.post(f"{sandbox.zendesk_url}/api/v2/triggers.json", auth=BOT, timeout=5,
                         json={"trigger": {
                             "title": "tierdesk (public reply)", "conditions": conditions,
                             "actions": [{"field": "notification_webhook",
                                          "value": [hook, BODY]}]}})
    assert made.status_code == 201, made.text


def new_ticket(sandbox: SandboxHandle) -> str:
    answer = sandbox.agent("zendesk", AGENT, "POST", "/api/v2/tickets.json", {"ticket": {
        "subject": "Export fails", "comment": {"body": "It crashes."}, "requester_id": 9101}})
    assert answer.status == 201, answer.body
    return str(answer.body["ticket"]["id"])


def update(sandbox: SandboxHandle, who: str, ticket: str, data: dict[str, Any]) -> None:
    answer = sandbox.agent("zendesk", who, "PUT", f"/api/v2/tickets/{ticket}.json",
                           {"ticket": data})
    assert answer.status == 200, answer.body


CASES: list[tuple[str, str, dict[str, Any], bool]] = [
    # an agent's public reply: the one update that fires
    ("agent-public", AGENT, {"comment": {"body": "Try 2.3.1", "public": True}}, True),
    # another agent's public reply
    ("other-agent", "9003", {"comment": {"body": "Fixed", "public": True}}, True),
    # the requester writes back: role end_user
    ("end-user", END_USER, {"comment": {"body": "Still broken", "public": True}}, False),
    # an internal note: comment_is_public is false
    ("private-note", AGENT, {"comment": {"body": "Asked L2", "public": False}}, False),
    # a change with no comment at all
    ("no-comment", AGENT, {"priority": "high"}, False),
]


@pytest.mark.parametrize(("case", "who", "data", "fires"), CASES, ids=[c[0] for c in CASES])
def test_only_a_public_agent_comment_fires_the_reply_trigger(
    sandbox: SandboxHandle, receiver: Receiver, case: str, who: str, data: dict[str, Any],
    fires: bool,
) -> None:
    """Exactly the documented conditions decide; the body carries the update's time."""
    install(sandbox, receiver, CONDITIONS)
    ticket = new_ticket(sandbox)  # update_type Create: never a reply
    assert sandbox.wait_for_deliveries()
    assert receiver.calls == []
    update(sandbox, who, ticket, data)
    assert sandbox.wait_for_deliveries()
    assert len(receiver.calls) == (1 if fires else 0)
    if fires:
        body = json.loads(receiver.calls[0].body)
        stamp = sandbox.state()["zendesk"]["tickets"][ticket]["updated_at"]
        assert body == {"ticket_id": ticket, "public_reply_at": stamp}


def test_the_bots_own_public_comment_does_not_fire(
    sandbox: SandboxHandle, receiver: Receiver
) -> None:
    """The loop guard (`current_user is_not <bot>`) holds for the bot, an admin, too."""
    install(sandbox, receiver, CONDITIONS)
    ticket = new_ticket(sandbox)
    update(sandbox, BOT_EMAIL, ticket, {"comment": {"body": "tierdesk says hi", "public": True}})
    assert sandbox.wait_for_deliveries()
    assert receiver.calls == []


def test_an_admin_counts_as_an_agent(sandbox: SandboxHandle, receiver: Receiver) -> None:
    """`role is_not end_user` matches an admin ("Administrators have all the abilities of
    agents", Users API reference): the seed's only admin is the bot, so without the guard."""
    install(sandbox, receiver, {"all": CONDITIONS["all"][:3], "any": []})
    ticket = new_ticket(sandbox)
    update(sandbox, ADMIN, ticket, {"comment": {"body": "An admin replies", "public": True}})
    assert sandbox.wait_for_deliveries()
    assert len(receiver.calls) == 1


def test_comment_is_public_is_not_true_matches_private_notes_only(
    sandbox: SandboxHandle, receiver: Receiver
) -> None:
    """`is_not` negates the condition (it is not ignored): a private note fires, a public
    comment does not."""
    install(sandbox, receiver, {"all": [
        {"field": "update_type", "operator": "is", "value": "Change"},
        {"field": "comment_is_public", "operator": "is_not", "value": "true"},
        {"field": "comment_is_public", "operator": "is", "value": "not_relevant"},
    ], "any": []})
    ticket = new_ticket(sandbox)
    update(sandbox, AGENT, ticket, {"comment": {"body": "public", "public": True}})
    update(sandbox, AGENT, ticket, {"comment": {"body": "internal", "public": False}})
    update(sandbox, AGENT, ticket, {"priority": "low"})  # no comment: not_relevant fails
    assert sandbox.wait_for_deliveries()
    assert len(receiver.calls) == 1
