"""Zendesk status and created_at for the SLA clocks: from the trigger body (placeholders), from
the API, the old trigger body without them, and the trigger that lets solved tickets through."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
import responses
from responses import matchers

from connectors.zendesk import ZendeskConnector
from connectors.zendesk.admin import (
    TRIGGER_TITLE,
    ZendeskAdmin,
    loop_guard_condition,
    trigger_spec,
    webhook_spec,
)
from connectors.zendesk.config import ZendeskConfig
from connectors.zendesk.reply_trigger import REPLY_TRIGGER_TITLE, reply_trigger_spec
from connectors.zendesk.tickets import status_of, ticket_from_api, time_of
from connectors.zendesk.trigger_body import render_template, template
from connectors.zendesk.webhook import requeue_body
from tiering import Policy, load_policy

from .conftest import BASE, HERE, FakeClock, sent, trigger_body
from .test_zendesk_faults import api_ticket

SLA = """
sla:
  plans:
    premium:
      tiers:
        L1: {resolution: 2h}
"""


@pytest.fixture
def sla_policy() -> Policy:
    text = (HERE / "policy.yaml").read_text("utf-8") + SLA
    return load_policy(text, source="policy.yaml")


@pytest.fixture
def sla_connector(config: ZendeskConfig, sla_policy: Policy, clock: FakeClock) -> ZendeskConnector:
    return ZendeskConnector(config, sla_policy, clock=clock)


@pytest.mark.parametrize(("value", "expected"), [
    ("open", "open"),        # the API
    ("Pending", "pending"),  # a placeholder's display name
    ("SOLVED", "solved"),    # an event's enum
    ("hold", "hold"),
    ("closed", "closed"),
    ("Waiting on vendor", None),  # a custom status's label, if the placeholder renders that
    ("", None),
    (None, None),
])
def test_status_of(value: Any, expected: str | None) -> None:
    assert status_of(value, "status") == expected


def test_time_of_takes_seconds_and_minutes() -> None:
    assert time_of("2026-11-21T10:00:05Z", "t") == datetime(2026, 11, 21, 10, 0, 5, tzinfo=UTC)
    assert time_of("2026-11-21T10:00Z", "t") == datetime(2026, 11, 21, 10, 0, tzinfo=UTC)
    assert time_of("{{ticket.created_at_with_timestamp}}", "t") is None
    assert time_of("", "t") is None


def test_template_carries_status_and_created_at(policy: Policy) -> None:
    body = template(policy)
    assert body["status"] == "{{ticket.status}}"
    assert body["created_at"] == "{{ticket.created_at_with_timestamp}}"


def test_trigger_body_gives_status_and_created_without_a_request(
    sla_connector: ZendeskConnector, rsps: responses.RequestsMock
) -> None:
    ticket = sla_connector.current_ticket([trigger_body(
        status="Pending", created_at="2026-11-21T11:00:00Z")])
    assert ticket.status == "pending"
    assert ticket.created_at == datetime(2026, 11, 21, 11, 0, tzinfo=UTC)
    assert len(rsps.calls) == 0


@pytest.mark.parametrize("over", [
    {},                                                    # a trigger installed before issue 18
    {"status": "Waiting on vendor", "created_at": "2026-11-21T11:00:00Z"},  # custom label
    {"status": "{{ticket.status}}", "created_at": "2026-11-21T11:00:00Z"},  # unrendered
    {"status": "Open", "created_at": ""},
])
def test_sla_policy_reads_the_ticket_when_the_body_cannot_say(
    sla_connector: ZendeskConnector, rsps: responses.RequestsMock, over: dict[str, Any]
) -> None:
    data = api_ticket(["tier-l1"])  # a settled ticket: no comments read for attachments
    data["ticket"].update(status="hold", created_at="2026-11-21T10:59:59Z")
    rsps.get(f"{BASE}/api/v2/tickets/42.json", json=data)
    ticket = sla_connector.current_ticket([trigger_body(tags="tier-l1", **over)])
    assert ticket.status == "hold"
    assert ticket.created_at == datetime(2026, 11, 21, 10, 59, 59, tzinfo=UTC)
    assert [c.request.method for c in rsps.calls] == ["GET"]


def test_without_sla_an_old_body_costs_no_read(
    connector: ZendeskConnector, rsps: responses.RequestsMock
) -> None:
    ticket = connector.current_ticket([trigger_body()])
    assert (ticket.status, ticket.created_at) == (None, None)
    assert len(rsps.calls) == 0


def test_api_ticket_status_and_created(policy: Policy) -> None:
    data = api_ticket([])
    data["ticket"].update(status="solved", created_at="2026-11-20T08:00:00Z")
    ticket = ticket_from_api(data, policy)
    assert ticket.status == "solved"
    assert ticket.created_at == datetime(2026, 11, 20, 8, 0, tzinfo=UTC)


def test_the_requeue_body_an_sla_due_event_stands_in_with_reads_the_ticket(
    sla_connector: ZendeskConnector, rsps: responses.RequestsMock
) -> None:
    data = api_ticket([])
    data["ticket"].update(status="open", created_at="2026-11-21T10:00:00Z")
    rsps.get(f"{BASE}/api/v2/tickets/42.json", json=data)
    rsps.get(f"{BASE}/api/v2/tickets/42/comments.json", json={"comments": [], "next_page": None})
    ticket = sla_connector.current_ticket(
        [requeue_body("42", "tierdesk:sla-due", now_ms=0)], fresh=True)
    assert (ticket.key, ticket.status) == ("42", "open")


def test_install_lets_solved_tickets_through_with_sla_and_reinstall_is_idempotent(
    sla_connector: ZendeskConnector, sla_policy: Policy, rsps: responses.RequestsMock
) -> None:
    """An account installed before issue 18 gets the new body and condition in one PUT; running
    install again afterwards writes nothing."""
    hook_id = "01GK8E6BKWMJZD2T8Y5AXJQMG5"
    callback = "https://tierdesk.example.com/webhooks/zendesk"
    hook = webhook_spec(callback) | {"id": hook_id}
    old = trigger_spec(hook_id, "{}", bot_user_id=777) | {"id": 360099}
    new = trigger_spec(hook_id, render_template(sla_policy), bot_user_id=777,
                       through_solved=True)
    assert new["conditions"]["all"][0] == {"field": "status", "operator": "less_than",
                                           "value": "closed"}
    reply = reply_trigger_spec(hook_id, render_template(sla_policy, reply=True),
                               loop_guard=loop_guard_condition(777, "user"))
    rsps.get(f"{BASE}/api/v2/webhooks", json={"webhooks": [hook]})
    rsps.get(f"{BASE}/api/v2/webhooks/{hook_id}/signing_secret",
             json={"signing_secret": {"algorithm": "SHA256", "secret": "s"}})
    search = rsps.get(f"{BASE}/api/v2/triggers/search", json={"triggers": [old]},
                      match=[matchers.query_param_matcher({"query": TRIGGER_TITLE})])
    reply_search = rsps.get(
        f"{BASE}/api/v2/triggers/search", json={"triggers": []},
        match=[matchers.query_param_matcher({"query": REPLY_TRIGGER_TITLE})])
    rsps.put(f"{BASE}/api/v2/triggers/360099", json={"trigger": {"id": 360099}})
    rsps.post(f"{BASE}/api/v2/triggers", status=201, json={"trigger": {"id": 360100}})
    result = ZendeskAdmin(sla_connector).install_webhook(callback_url=callback)
    writes = [(method, body) for method, _, body in sent(rsps) if method != "GET"]
    # The main trigger is updated, and the public reply trigger (first_response) created.
    assert writes == [("PUT", {"trigger": new}), ("POST", {"trigger": reply})]
    assert result.reply_trigger_id == "360100"
    rsps.calls.reset()  # type: ignore[no-untyped-call]
    search.body = json.dumps({"triggers": [new | {"id": 360099}]})
    reply_search.body = json.dumps({"triggers": [reply | {"id": 360100}]})
    ZendeskAdmin(sla_connector).install_webhook(callback_url=callback)
    assert [m for m, _, _ in sent(rsps)] == ["GET"] * 4
