"""Zendesk payloads to Tickets: every webhook fixture's whole Ticket, the trigger template round
trip, and when a trigger body is not trusted (one read instead)."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import responses

from connectors.zendesk import ZendeskConnector
from connectors.zendesk.tickets import ticket_from_trigger
from connectors.zendesk.trigger_body import render_template
from connectors.zendesk.webhook import classify as envelope
from tiering import Policy
from tiering.models import Customer, Ticket

from .conftest import BASE, sent, trigger_body

FIXTURES = Path(__file__).parent / "fixtures"


def load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / name).read_text(encoding="utf-8"))
    return data


def api_answer(detail: dict[str, Any], *, email: str, org: str, plan: str | None) -> dict[str, Any]:
    """What `GET /api/v2/tickets/{id}.json?include=users,organizations` answers for the ticket an
    event's `detail` describes (integer ids and lower-case enums, as the REST API has them)."""
    ticket = {
        "id": int(detail["id"]), "subject": detail.get("subject", ""),
        "description": detail.get("description", ""), "tags": detail.get("tags", []),
        "priority": (detail.get("priority") or "").lower() or None,
        "requester_id": int(detail.get("requester_id") or 1),
        "organization_id": int(detail.get("organization_id") or 2),
        "group_id": int(detail["group_id"]) if detail.get("group_id") else None,
        "assignee_id": int(detail["assignee_id"]) if detail.get("assignee_id") else None,
        "updated_at": detail["updated_at"],
        "custom_fields": [{"id": 360001111, "value": "Tap login, enter SSO, spinner forever"},
                          {"id": 360001114, "value": None}],
    }
    return {
        "ticket": ticket,
        "users": [{"id": ticket["requester_id"], "email": email}],
        "organizations": [{"id": ticket["organization_id"], "name": org,
                           "organization_fields": {"support_plan": plan}}],
    }


def _read_event(
    name: str, connector: ZendeskConnector, rsps: responses.RequestsMock, *, attachments: int
) -> Ticket:
    body = load(name)
    body = body.get("body", body)
    detail = body["detail"]
    tid = detail["id"]
    full = {"tags": [], "updated_at": "2024-04-17T17:18:10Z"} | detail
    rsps.get(f"{BASE}/api/v2/tickets/{tid}.json",
             json=api_answer(full, email="dana@globex.example", org="Globex", plan="standard"))
    rsps.get(f"{BASE}/api/v2/tickets/{tid}/comments.json", json={"comments": [
        {"id": 1, "author_id": 1, "body": "log", "attachments": [{"id": 5}] * attachments},
    ]})
    ticket = connector.current_ticket([body])
    assert [(m, p) for m, p, _ in sent(rsps)] == [
        ("GET", f"/api/v2/tickets/{tid}.json?include=users,organizations"),
        ("GET", f"/api/v2/tickets/{tid}/comments.json?sort_order=desc&per_page=100"),
    ]
    return ticket


STEPS = "Tap login, enter SSO, spinner forever"


def test_dust_ticket_created_ticket(
    connector: ZendeskConnector, rsps: responses.RequestsMock
) -> None:
    """ticket.created is partial: one ticket read (+ comments for attachments) gives the Ticket."""
    ticket = _read_event("ticket_created__dust_tt.json", connector, rsps, attachments=1)
    assert ticket == Ticket(
        key="5158", subject="Cannot login to mobile app",
        description="Customer is experiencing login issues with the mobile app",
        labels=frozenset({"mobile", "login"}), priority="high",
        customer=Customer(organization="Globex", email="dana@globex.example", plan="standard"),
        fields={"steps_to_reproduce": STEPS, "reproduced": None}, attachments=1,
        assignee="8447388090494", group="8447320466430", actor="8447388090494",
        updated_at="2025-01-08T10:12:07Z", last_note_key=None,
    )


def test_dust_comment_added_ticket(
    connector: ZendeskConnector, rsps: responses.RequestsMock
) -> None:
    """ticket.comment_added: the actor is the event's actor, the rest comes from the read."""
    ticket = _read_event("ticket_comment_added__dust_tt.json", connector, rsps, attachments=0)
    assert ticket == Ticket(
        key="5158", subject="Cannot login to mobile app",
        description="Customer is experiencing login issues with the mobile app",
        labels=frozenset({"mobile", "login", "priority-support"}), priority="high",
        customer=Customer(organization="Globex", email="dana@globex.example", plan="standard"),
        fields={"steps_to_reproduce": STEPS, "reproduced": None}, attachments=0,
        assignee="8447388090494", group="8447320466430", actor="8447388090495",
        updated_at="2025-01-08T14:25:30Z", last_note_key=None,
    )


def test_dust_status_changed_ticket(
    connector: ZendeskConnector, rsps: responses.RequestsMock
) -> None:
    """ticket.status_changed reads the ticket like any ticket event."""
    ticket = _read_event("ticket_status_changed__dust_tt.json", connector, rsps, attachments=2)
    assert ticket == Ticket(
        key="5158", subject="Cannot login to mobile app",
        description="Customer is experiencing login issues with the mobile app",
        labels=frozenset({"mobile", "login", "priority-support"}), priority="high",
        customer=Customer(organization="Globex", email="dana@globex.example", plan="standard"),
        fields={"steps_to_reproduce": STEPS, "reproduced": None}, attachments=2,
        assignee="8447388090494", group="8447320466430", actor="8447388090494",
        updated_at="2025-01-08T16:45:20Z", last_note_key=None,
    )


def test_prismatic_ticket_created_ticket(
    connector: ZendeskConnector, rsps: responses.RequestsMock
) -> None:
    """A minimal ticket.created (no actor, no tags) still yields the whole Ticket from one read."""
    ticket = _read_event(
        "ticket_created__prismatic_with_headers.json", connector, rsps, attachments=0
    )
    assert ticket == Ticket(
        key="35436", subject="", description="", labels=frozenset(), priority=None,
        customer=Customer(organization="Globex", email="dana@globex.example", plan="standard"),
        fields={"steps_to_reproduce": STEPS, "reproduced": None}, attachments=0,
        assignee=None, group=None, actor=None, updated_at="2024-04-17T17:18:10Z",
        last_note_key=None,
    )


def test_tierdesk_trigger_fixture_ticket(
    connector: ZendeskConnector, rsps: responses.RequestsMock
) -> None:
    """tierdesk's own rendered trigger body gives the whole Ticket with no request at all."""
    ticket = connector.current_ticket([load("trigger__tierdesk_example.json")])
    assert ticket == Ticket(
        key="35436", subject='Export crashes with "Out of memory"',
        description="Since 4.2 the export crashes.\nLogs attached.",
        labels=frozenset({"enterprise", "tier-l1", "escalate-l2"}), priority="high",
        customer=Customer(organization="Acme Corp", email="ops@acme.example", plan="premium"),
        fields={
            "steps_to_reproduce": '1. Open Reports\n2. Click "Export"\n3. The app crashes',
            "reproduced": None,
        },
        attachments=2, assignee=None, group="98738", actor="20978392",
        updated_at="2026-11-21T09:41Z", last_note_key=None,
    )
    assert len(rsps.calls) == 0


def _render(template_text: str, values: dict[str, str]) -> str:
    """Fill a template as Zendesk would, JSON-escaping each value (what a JSON webhook needs)."""

    def fill(match: re.Match[str]) -> str:
        return json.dumps(values.get(match.group(0), ""))[1:-1]

    return re.sub(r"\{\{[^}]+\}\}|\{%.*?%\}(?:.*?\{% endfor %\}){2}", fill, template_text)


def test_rendered_template_parses(policy: Policy) -> None:
    """The installed trigger body, filled with awkward values, is JSON the parser accepts."""
    text = render_template(policy)
    liquid = re.search(r"\{%.*?%\}(?:.*?\{% endfor %\}){2}", text)
    assert liquid is not None
    values = {
        "{{ticket.id}}": "77", "{{current_user.id}}": "12",
        "{{ticket.updated_at_with_timestamp}}": "2026-11-21T10:00Z",
        "{{ticket.status}}": "Pending", "{{ticket.created_at_with_timestamp}}": "2026-11-21T09:58Z",
        "{{ticket.group.id}}": "", "{{ticket.assignee.id}}": "", "{{ticket.organization.id}}": "5",
        "{{ticket.tags}}": "tier-l1 foo", "{{ticket.priority}}": "Urgent",
        liquid.group(0): "+",
        "{{ticket.organization.custom_fields.support_plan}}": "standard",
        "{{ticket.ticket_field_360001111}}": 'a "quoted"\tstep\nand \\ more',
        "{{ticket.ticket_field_360001114}}": "yes",
        "{{ticket.requester.email}}": "x@y.example", "{{ticket.organization.name}}": "Y & Co",
        "{{ticket.title}}": "Crash {{not a placeholder}}", "{{ticket.description}}": "line1\nline2",
    }
    body = json.loads(_render(text, values))
    assert envelope(body, {}).ticket == "77"
    found = ticket_from_trigger(body, policy)
    assert found is not None
    ticket, lookup = found
    assert lookup is None
    assert ticket == Ticket(
        key="77", subject="Crash {{not a placeholder}}", description="line1\nline2",
        labels=frozenset({"tier-l1", "foo"}), priority="urgent",
        customer=Customer(organization="Y & Co", email="x@y.example", plan="standard"),
        fields={"steps_to_reproduce": 'a "quoted"\tstep\nand \\ more', "reproduced": "yes"},
        attachments=1, assignee=None, group=None, actor="12", updated_at="2026-11-21T10:00Z",
        status="pending", created_at=datetime(2026, 11, 21, 9, 58, tzinfo=UTC),
    )


@pytest.mark.parametrize(
    "change",
    [
        # Salvaged from broken JSON: only the routing keys are known.
        {"partial": True},
        # The policy maps a field the installed trigger does not send (reinstall pending).
        {"fields": {"360001111": "x"}},
        # A placeholder Zendesk did not render.
        {"fields": {"360001111": "{{ticket.ticket_field_360001111}}", "360001114": ""}},
        {"tags": "{{ticket.tags}}"},
        # The attachment Liquid came back unrendered: the count is unknown.
        {"attachments": "{% for comment in ticket.comments %}"},
        {"attachments": None},
    ],
)
def test_incomplete_trigger_body_reads_ticket(change: dict[str, Any], policy: Policy) -> None:
    """A trigger body that cannot be trusted to be complete makes the connector read instead."""
    assert ticket_from_trigger(trigger_body() | change, policy) is None


def test_incomplete_trigger_body_costs_one_read(
    connector: ZendeskConnector, rsps: responses.RequestsMock
) -> None:
    """The fallback for an incomplete trigger body is one sideloaded read; a settled ticket (a
    tier, no escalation request) needs no attachment count, so its comments are not read."""
    from .test_zendesk_faults import api_ticket

    rsps.get(f"{BASE}/api/v2/tickets/42.json", json=api_ticket(["tier-l1"]))
    ticket = connector.current_ticket([trigger_body(partial=True)])
    assert ticket.labels == frozenset({"tier-l1"}) and ticket.actor == "501"
    assert [(m, p) for m, p, _ in sent(rsps)] == [
        ("GET", "/api/v2/tickets/42.json?include=users,organizations"),
    ]


def test_escalation_request_reads_comments_for_attachments(
    connector: ZendeskConnector, rsps: responses.RequestsMock
) -> None:
    """With an escalate-* request the attachment count matters: the comments are read too."""
    from .test_zendesk_faults import api_ticket

    rsps.get(f"{BASE}/api/v2/tickets/42.json", json=api_ticket(["tier-l1", "escalate-l2"]))
    rsps.get(f"{BASE}/api/v2/tickets/42/comments.json", json={"comments": [
        {"id": 3, "author_id": 11, "body": "logs", "attachments": [{"id": 1}, {"id": 2}]},
        {"id": 2, "author_id": 11, "body": "pic", "attachments": [{"id": 3, "inline": True}]},
    ]})
    ticket = connector.current_ticket([trigger_body(partial=True)])
    assert ticket.attachments == 2
    assert len(rsps.calls) == 2
