"""A customer cannot choose their plan through free text in a trigger body: duplicate keys make
the body untrusted (the ticket is read from the API), and the template sends every
entitlement-relevant key before any free text."""

from __future__ import annotations

import json
import re

import orjson
import responses

from connectors.zendesk import ZendeskConnector
from connectors.zendesk.trigger_body import render_template, template
from connectors.zendesk.webhook import parse as parse_body
from tiering import Policy, decide

from .conftest import BASE, NOW, sent
from .test_zendesk_faults import api_ticket

#: What a bronze (basic-plan) Initech customer writes as the subject.
INJECTED_SUBJECT = 'help", "organization_name": "Acme Corp", "organization_plan": "premium", "x": "'


def _render_unescaped(policy: Policy, subject: str) -> bytes:
    """The trigger body as Zendesk would send it if it did NOT JSON-escape placeholder values
    (not confirmed either way; see connectors/zendesk/README.md)."""
    values = {
        "ticket.id": "42", "current_user.id": "11", "ticket.updated_at_with_timestamp":
        "2026-11-21T11:59:58Z", "ticket.group.id": "100", "ticket.assignee.id": "",
        "ticket.organization.id": "9002", "ticket.organization.custom_fields.support_plan":
        "basic", "ticket.organization.name": "Initech", "ticket.requester.email":
        "bob@initech.example", "ticket.tags": "tier-l1 escalate-l4", "ticket.priority": "High",
        "ticket.title": subject, "ticket.description": "It crashes",
    }

    def fill(m: re.Match[str]) -> str:
        return values.get(m.group(1), "")

    text = re.sub(r"\{\{([^}]+)\}\}", fill, render_template(policy))
    text = re.sub(r"\{%.*?%\}\+?", "", text)  # no attachments
    return text.encode("utf-8")


def test_injected_keys_would_override_the_plan_without_duplicate_detection(
    policy: Policy,
) -> None:
    """The attack is real: a last-duplicate-wins parser reads the customer's chosen plan."""
    raw = _render_unescaped(policy, INJECTED_SUBJECT)
    naive = orjson.loads(raw)
    assert (naive["organization_name"], naive["organization_plan"]) == ("Acme Corp", "premium")


def test_duplicate_keys_make_the_trigger_body_partial(policy: Policy) -> None:
    """A trigger body with any repeated key keeps only its routing keys and is marked partial."""
    body = parse_body(_render_unescaped(policy, INJECTED_SUBJECT))
    assert body == {"tierdesk": 1, "event_type": "trigger", "ticket_id": "42",
                    "current_user_id": "11", "updated_at": "2026-11-21T11:59:58Z",
                    "partial": True}


def test_clean_trigger_body_is_trusted(policy: Policy) -> None:
    """The same body with an ordinary subject is parsed whole (no read needed)."""
    body = parse_body(_render_unescaped(policy, "Export crashes"))
    assert "partial" not in body
    assert (body["organization_name"], body["organization_plan"], body["subject"]) == (
        "Initech", "basic", "Export crashes")


def test_injected_body_is_decided_from_the_api(
    connector: ZendeskConnector, policy: Policy, rsps: responses.RequestsMock
) -> None:
    """The untrusted body costs one sideloaded read (plus the comments for the attachment
    count of an escalation request); the plan comes from Initech's organization, so the
    escalate-l4 request is refused instead of reaching L4."""
    api = api_ticket(["tier-l1", "escalate-l4"])
    api["ticket"]["organization_id"] = 9002
    api["organizations"] = [{"id": 9002, "name": "Initech",
                             "organization_fields": {"support_plan": "basic"}}]
    rsps.get(f"{BASE}/api/v2/tickets/42.json", json=api)
    rsps.get(f"{BASE}/api/v2/tickets/42/comments.json", json={"comments": []})
    ticket = connector.current_ticket([parse_body(_render_unescaped(policy, INJECTED_SUBJECT))])
    assert (ticket.customer.organization, ticket.customer.plan) == ("Initech", "basic")
    decision = decide(ticket, policy, now=NOW)
    assert decision.tier == "L1"
    assert "tier-entitlement-exceeded" in decision.labels_add
    assert [(m, p) for m, p, _ in sent(rsps)] == [
        ("GET", "/api/v2/tickets/42.json?include=users,organizations"),
        ("GET", "/api/v2/tickets/42/comments.json?sort_order=desc&per_page=100"),
    ]


def test_entitlement_keys_come_before_free_text(policy: Policy) -> None:
    """The template's key order: routing keys, then organization, plan, requester, attachments,
    tags, priority and documentation fields, and only then subject and description."""
    keys = list(template(policy))
    assert keys == [
        "tierdesk", "event_type", "ticket_id", "current_user_id", "updated_at", "status",
        "created_at", "group_id",
        "assignee_id", "organization_id", "organization_plan", "organization_name",
        "requester_email", "attachments", "tags", "priority", "fields", "subject",
        "description",
    ]
    rendered = render_template(policy)
    assert rendered.index('"description"') > rendered.index('"subject"') > rendered.index(
        '"fields"')
    assert json.loads(rendered)["subject"] == "{{ticket.title}}"
