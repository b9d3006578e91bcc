"""Jira's SLA due field (`sla.due_field.jira`): `duedate` (a date) or a datetime custom field.

Formats (Atlassian, "Field input formats", developer.atlassian.com/server/jira-servicedesk/info/
field-input-formats, and "Jira REST API examples", developer.atlassian.com/server/jira/platform/
jira-rest-api-examples):

- `duedate` "is a date in 'YYYY-MM-DD' format": `"duedate": "2015-11-18"`;
- a date time picker custom field "is a datetime in ISO 8601 'YYYY-MM-DDThh:mm:ss.sTZD' format":
  `"customfield_11442": "2015-11-18T14:39:00.000+1100"`. The offset is written without a colon:
  `+00:00` is refused with "Error parsing time" (sooperset/mcp-atlassian #863, Jira Cloud);
- a value that is not a string is refused with "Operation value must be a string"
  (AtlassianPS/JiraPS #173 for `duedate`, getsentry/sentry-plugins #185 for a date time field).

Both are read back in the same forms (GET issue `fields.duedate`, `fields.customfield_N`). A
paused clock clears the field with `null` (unconfirmed for these two field types: README).
The write is part of the decision's one `PUT /rest/api/2/issue/{key}` (`fields`), never a request
of its own.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from connectors import due
from tiering.models import Decision, FieldValue, Ticket
from tiering.policy import Policy

DUE_DATE_FIELD = "duedate"


def field_id(policy: Policy) -> str | None:
    """The Jira field that holds the due time, or None when the policy maps none for Jira."""
    spec = policy.sla.spec
    return spec.due_field.jira if spec is not None and spec.due_field is not None else None


def kind(field: str) -> due.Kind:
    return "date" if field == DUE_DATE_FIELD else "time"


def read_fields(policy: Policy) -> list[str]:
    """The due field, for `GET issue?fields=...` (none when not mapped)."""
    field = field_id(policy)
    return [field] if field else []


def current(policy: Policy, fields: Mapping[str, Any]) -> dict[str, FieldValue]:
    """The due field's current value for `Ticket.fields` (see connectors.due.current)."""
    field = field_id(policy)
    if field is None:
        return {}
    return due.current(kind(field), field in fields, fields.get(field))


def write(policy: Policy, ticket: Ticket, decision: Decision) -> dict[str, Any]:
    """The `fields` entry of the edit that writes the due time, or {} when it holds."""
    field = field_id(policy)
    if field is None or not decision.due_write or due.holds(kind(field), ticket, decision):
        return {}
    at = decision.due_at
    if at is None:
        return {field: None}
    if field == DUE_DATE_FIELD:
        return {field: at.date().isoformat()}
    # 2015-11-18T14:39:00.000+1100: seconds, milliseconds and an offset without a colon.
    return {field: at.strftime("%Y-%m-%dT%H:%M:%S.000%z")}


def sla_notes(fields: Mapping[str, Any]) -> dict[str, FieldValue]:
    """The SLA note keys in the issue's comments, when the payload or read carried them (a fresh
    read asks for `comment`): {} otherwise, so nothing is assumed about notes not seen."""
    comment = fields.get("comment")
    if not isinstance(comment, Mapping) or not isinstance(comment.get("comments"), list):
        return {}
    from connectors.jira.tickets import adf_text  # the body may be ADF on API v3 / Cloud events

    texts: list[str | None] = []
    for entry in comment["comments"]:
        if isinstance(entry, Mapping):
            body = entry.get("body")
            texts.append(body if isinstance(body, str) else adf_text(body))
    out: dict[str, FieldValue] = {}
    due.with_sla_notes(out, texts)
    return out
