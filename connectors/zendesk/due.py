"""Zendesk's SLA due field (`sla.due_field.zendesk`): a date or a text ticket field.

Written in the decision's one `PUT /api/v2/tickets/{id}.json` as `custom_fields: [{"id": N,
"value": ...}]` (Zendesk "Creating and updating tickets", "Setting custom field values";
facetoe/zenpy #65 shows the same shape), never a request of its own:

- a date field takes `YYYY-MM-DD`; a datetime such as `datetime.now().isoformat()` is refused
  with 422 RecordInvalid, details.base [{"description": "<title> is not valid", "error":
  "InvalidValue", "ticket_field_type": "FieldDate", ...}] while "2020-01-02" is taken
  (facetoe/zenpy #425); the Help Center's own form sends date-only ISO strings to such a field
  (zendesk/copenhagen_theme #423). It is read back in the same form.
- a text field takes any text: tierdesk writes the UTC minute `YYYY-MM-DDTHH:MMZ` (ISO 8601),
  which sorts as text in views.

A paused clock clears the field with `"value": null` (unconfirmed: README). Ticket reads list
every active field in `custom_fields`, null when empty; a field that is not listed is unknown
and never written blind.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC
from typing import Any

from connectors import due
from tiering.models import Decision, FieldValue, Ticket
from tiering.policy import Policy
from tiering.sla_actions import DUE_TIME_FORMAT


def field(policy: Policy) -> tuple[int, due.Kind] | None:
    """The Zendesk ticket field id and its kind, or None when the policy maps none."""
    spec = policy.sla.spec
    if spec is None or spec.due_field is None or spec.due_field.zendesk is None:
        return None
    return spec.due_field.zendesk, "date" if spec.due_field.zendesk_type == "date" else "time"


def field_ids(policy: Policy) -> set[int]:
    """The due field's id, for the trigger body's `fields` (none when not mapped)."""
    found = field(policy)
    return {found[0]} if found else set()


def current(policy: Policy, values_by_id: Mapping[str, Any]) -> dict[str, FieldValue]:
    """The due field's current value for `Ticket.fields` (see connectors.due.current)."""
    found = field(policy)
    if found is None:
        return {}
    fid, kind = found
    return due.current(kind, str(fid) in values_by_id, values_by_id.get(str(fid)))


def write(policy: Policy, ticket: Ticket, decision: Decision) -> dict[str, Any]:
    """The `custom_fields` entry of the update that writes the due time, or {} when it holds."""
    found = field(policy)
    if found is None or not decision.due_write:
        return {}
    fid, kind = found
    if due.holds(kind, ticket, decision):
        return {}
    at = decision.due_at
    if at is None:
        value = None
    elif kind == "date":
        value = at.date().isoformat()
    else:
        value = at.astimezone(UTC).strftime(DUE_TIME_FORMAT)
    return {"custom_fields": [{"id": fid, "value": value}]}
