"""Zendesk ticket JSON to the vendor-neutral `Ticket`: from tierdesk's trigger body or an API read.

Two sources, one result:

- `ticket_from_trigger(body, policy)`: the body `trigger_body.template` produced, no request. It
  returns None when the body cannot be trusted to be complete (salvaged after bad JSON, a key
  the current policy needs is absent because the trigger predates it, a placeholder left
  unrendered), and the connector reads the ticket instead.
- `ticket_from_api(data, policy, ...)`: `GET /api/v2/tickets/{id}.json?include=users,organizations`
  (Zendesk "Side-loading": the requester and organization come in the same answer).

Value conventions: tags as a set; priority lower-cased (trigger placeholders render the display
name "High", events send "HIGH", the API "high"); ids as decimal text; custom field values as
Zendesk gives them (text, the option tag of a drop-down, a tuple for a multi-select, numbers,
booleans), empty text as None.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from connectors.base import PayloadInvalid
from connectors.zendesk import due
from connectors.zendesk.trigger_body import (
    ATTACHMENT_LIQUID,
    REPLY_KEY,
    needs_attachments,
    template,
)
from connectors.zendesk.webhook import id_text, parse_time
from tiering.models import Customer, FieldValue, Ticket
from tiering.policy import Policy
from tiering.sla_models import STATUSES


def _text(value: Any, where: str) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    raise PayloadInvalid(f"{where}: expected text, got {type(value).__name__}")


def tags_of(value: Any, where: str) -> frozenset[str]:
    """Tags from a space-separated placeholder string or a JSON list of strings."""
    if value is None:
        return frozenset()
    if isinstance(value, str):
        return frozenset(value.split())
    if isinstance(value, list) and all(isinstance(t, str) for t in value):
        return frozenset(t for t in value if t)
    raise PayloadInvalid(f"{where}: expected tags as text or a list of strings")


def priority_of(value: Any, where: str) -> str | None:
    """Lower-case priority name, or None for no priority ("", "-")."""
    text = _text(value, where).strip().lower()
    return None if text in ("", "-") else text


def status_of(value: Any, where: str) -> str | None:
    """The neutral status of a Zendesk status: the API's `status` ("open"; always a system
    status, the category of a custom one: Zendesk API reference, "Custom ticket statuses"), a
    placeholder's display name ("Open") or an event's enum ("OPEN"); None for anything else
    (a custom status's own label, if `{{ticket.status}}` renders that: not confirmed)."""
    text = _text(value, where).strip().lower()
    return text if text in STATUSES else None


def time_of(value: Any, where: str) -> datetime | None:
    """An ISO 8601 time as Zendesk writes it (seconds in the API, minutes in placeholders), or
    None when absent or unparsable."""
    text = _text(value, where).strip()
    return parse_time(text) if text else None


def reply_time(body: Mapping[str, Any]) -> datetime | None:
    """The public agent reply a body of the reply trigger (connectors/zendesk/reply_trigger.py)
    marks, or None: another body, or a marker left unrendered or unparsable. Minute precision
    (`{{ticket.updated_at_with_timestamp}}`), so the reply may be recorded up to a minute early."""
    raw = body.get(REPLY_KEY)
    if not isinstance(raw, str) or not raw.strip() or "{{" in raw:
        return None
    return parse_time(raw)


def first_reply_in(payloads: Iterable[Mapping[str, Any]]) -> datetime | None:
    """The earliest reply marked in any of the payloads (a reply is history: whichever delivery
    of a group the ticket is taken from, the marks of the others still hold)."""
    replies = [r for r in (reply_time(p) for p in payloads) if r is not None]
    return min(replies) if replies else None


def field_value(value: Any) -> FieldValue:
    """A custom field's value in `Ticket.fields` terms (lists become tuples; "" is None)."""
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, str):
        return value if value.strip() else None
    if isinstance(value, list):
        return tuple(str(v) for v in value)
    return str(value)


def map_fields(policy: Policy, values_by_id: Mapping[str, Any]) -> dict[str, FieldValue]:
    """Policy field name -> value, for each field the policy maps to a Zendesk field id (and
    the SLA due field's value: connectors/zendesk/due.py)."""
    return {
        name: field_value(values_by_id.get(str(field_id)))
        for name, field_id in policy.zendesk_fields.items()
    } | due.current(policy, values_by_id)


def _placeholder_left(value: Any, placeholder: str) -> bool:
    return isinstance(value, str) and value.strip() == placeholder


def ticket_from_trigger(
    body: Mapping[str, Any],
    policy: Policy,
    *,
    last_note_key: str | None = None,
    clocks: bool = True,
) -> tuple[Ticket, str | None] | None:
    """The ticket in tierdesk's trigger body and the organization id whose plan still has to be
    looked up (None when the body settles it), or None when the body is incomplete. `clocks`
    False (a caller that measures no SLA clock, `tierdesk plan`): a body without the status and
    creation is complete enough."""
    if body.get("partial"):
        return None
    expected = template(policy)
    for key in ("ticket_id", "tags", "updated_at", "fields"):
        if key not in body or _placeholder_left(body.get(key), str(expected.get(key))):
            return None
    fields = body["fields"]
    if not isinstance(fields, Mapping):
        raise PayloadInvalid(f"fields: expected an object, got {type(fields).__name__}")
    placeholders: Mapping[str, str] = expected["fields"]
    for field_id, placeholder in placeholders.items():
        if field_id not in fields or _placeholder_left(fields[field_id], placeholder):
            return None
    attachments = 0
    if needs_attachments(policy):
        raw = body.get("attachments")
        if not isinstance(raw, str) or "{%" in raw or raw == ATTACHMENT_LIQUID:
            return None
        attachments = raw.count("+")
    status = status_of(body.get("status"), "status")
    created = time_of(body.get("created_at"), "created_at")
    if clocks and policy.sla.enabled and (status is None or created is None):
        # A trigger installed before the SLA keys, or a status the body cannot say in neutral
        # terms (a custom status's label): the API read has both (one request).
        return None
    ticket_key = id_text(body.get("ticket_id"), "ticket_id", required=True)
    assert ticket_key is not None
    org_id = id_text(body.get("organization_id"), "organization_id")
    plan: str | None = None
    lookup: str | None = None
    plan_field = policy.doc.entitlement.zendesk_organization_field
    if plan_field:
        raw_plan = body.get("organization_plan")
        if isinstance(raw_plan, str) and raw_plan.strip() and not _placeholder_left(
            raw_plan, str(expected.get("organization_plan"))
        ):
            plan = raw_plan.strip()
        elif org_id is not None:
            # Empty or unrendered: the organization record says (cached per TTL).
            lookup = org_id
    org_name = _text(body.get("organization_name"), "organization_name").strip() or None
    email = _text(body.get("requester_email"), "requester_email").strip() or None
    updated = _text(body.get("updated_at"), "updated_at").strip() or None
    ticket = Ticket(
        key=ticket_key,
        subject=_text(body.get("subject"), "subject"),
        description=_text(body.get("description"), "description"),
        labels=tags_of(body.get("tags"), "tags"),
        priority=priority_of(body.get("priority"), "priority"),
        customer=Customer(organization=org_name, email=email, plan=plan),
        fields=map_fields(policy, {str(k): v for k, v in fields.items()}),
        attachments=attachments,
        assignee=id_text(body.get("assignee_id"), "assignee_id"),
        group=id_text(body.get("group_id"), "group_id"),
        actor=id_text(body.get("current_user_id"), "current_user_id"),
        updated_at=updated,
        last_note_key=last_note_key,
        status=status,
        created_at=created,
        first_reply_at=reply_time(body),
    )
    return ticket, lookup


def _find(items: Any, ident: Any) -> Mapping[str, Any] | None:
    if ident is None or not isinstance(items, list):
        return None
    for item in items:
        if isinstance(item, Mapping) and item.get("id") == ident:
            return item
    return None


def plan_of(organization: Mapping[str, Any] | None, policy: Policy) -> str | None:
    """The plan named in an organization's `organization_fields` under the policy's key."""
    key = policy.doc.entitlement.zendesk_organization_field
    if not key or organization is None:
        return None
    values = organization.get("organization_fields")
    if not isinstance(values, Mapping):
        return None
    value = values.get(key)
    if value is None or isinstance(value, bool):
        return None
    text = str(value).strip()
    return text or None


def custom_field_values(ticket: Mapping[str, Any]) -> dict[str, Any]:
    """`custom_fields: [{"id": 1, "value": ...}]` as a mapping from id text to value."""
    out: dict[str, Any] = {}
    items = ticket.get("custom_fields")
    for item in items if isinstance(items, list) else ():
        if isinstance(item, Mapping) and item.get("id") is not None:
            out[str(item["id"])] = item.get("value")
    return out


def ticket_from_api(
    data: Mapping[str, Any],
    policy: Policy,
    *,
    actor: str | None = None,
    attachments: int = 0,
    plan: str | None = None,
    last_note_key: str | None = None,
) -> Ticket:
    """The ticket in a `GET /api/v2/tickets/{id}.json?include=users,organizations` answer.

    `plan` (from the organization cache) is used when the sideloaded organization has none."""
    ticket = data.get("ticket")
    if not isinstance(ticket, Mapping):
        raise PayloadInvalid("Zendesk ticket answer has no `ticket` object")
    key = id_text(ticket.get("id"), "ticket.id", required=True)
    assert key is not None
    requester = _find(data.get("users"), ticket.get("requester_id"))
    organization = _find(data.get("organizations"), ticket.get("organization_id"))
    email = requester.get("email") if requester else None
    org_name = organization.get("name") if organization else None
    return Ticket(
        key=key,
        subject=_text(ticket.get("subject"), "ticket.subject"),
        description=_text(ticket.get("description"), "ticket.description"),
        labels=tags_of(ticket.get("tags"), "ticket.tags"),
        priority=priority_of(ticket.get("priority"), "ticket.priority"),
        customer=Customer(
            organization=org_name if isinstance(org_name, str) and org_name else None,
            email=email if isinstance(email, str) and email else None,
            plan=plan_of(organization, policy) or plan,
        ),
        fields=map_fields(policy, custom_field_values(ticket)),
        attachments=attachments,
        assignee=id_text(ticket.get("assignee_id"), "ticket.assignee_id"),
        group=id_text(ticket.get("group_id"), "ticket.group_id"),
        actor=actor,
        updated_at=_text(ticket.get("updated_at"), "ticket.updated_at") or None,
        last_note_key=last_note_key,
        status=status_of(ticket.get("status"), "ticket.status"),
        created_at=time_of(ticket.get("created_at"), "ticket.created_at"),
    )


def count_attachments(comments: Iterable[Mapping[str, Any]]) -> int:
    """Attachments on the given comments (inline images excluded, as Zendesk lists them)."""
    total = 0
    for comment in comments:
        items = comment.get("attachments")
        if isinstance(items, list):
            total += sum(1 for a in items if isinstance(a, Mapping) and not a.get("inline"))
    return total
