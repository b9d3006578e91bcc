"""The SLA due field's values both connectors share: reading a vendor value into `Ticket.fields`
(tiering.sla_actions.DUE_DATE / DUE_TIME) and the value a decision writes.

A field holds either a date (`date`: Jira `duedate`, a Zendesk date field) or an instant
(`time`: a Jira datetime custom field, a Zendesk text field). The vendor formats themselves, with
their sources, are in connectors/jira/due.py and connectors/zendesk/due.py.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from typing import Literal

from tiering.models import Decision, FieldValue, Ticket
from tiering.sla_actions import DUE_DATE, DUE_TIME, DUE_TIME_FORMAT, SLA_NOTES, sla_note_keys_in

Kind = Literal["date", "time"]
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def parse_date(value: object) -> str | None:
    """`YYYY-MM-DD` as given when it is a real date, else None."""
    if not isinstance(value, str) or not _DATE.match(value.strip()):
        return None
    try:
        return date.fromisoformat(value.strip()).isoformat()
    except ValueError:
        return None


def parse_instant(value: object) -> str | None:
    """An ISO 8601 instant with an offset (`2026-11-17T09:00:00.000+0100`, `...+01:00`,
    `2026-11-17T08:00Z`) as UTC `YYYY-MM-DDTHH:MMZ`, or None when it is not one."""
    if not isinstance(value, str) or "T" not in value:
        return None
    text = value.strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        return None
    if at.tzinfo is None:
        return None
    return at.astimezone(UTC).strftime(DUE_TIME_FORMAT)


def current(kind: Kind, present: bool, value: object) -> dict[str, FieldValue]:
    """The `Ticket.fields` entry for the due field's current value: nothing when the vendor did
    not send the field (unknown: no write is decided), None when it is empty, the normalised
    value, or (an instant field only) the raw text an agent typed, so it is overwritten. A date
    the vendor sent in another form than YYYY-MM-DD is taken as unknown: no write."""
    if not present:
        return {}
    if value is None or value == "":
        return {DUE_DATE if kind == "date" else DUE_TIME: None}
    if kind == "date":
        parsed = parse_date(value)
        return {} if parsed is None else {DUE_DATE: parsed}
    instant = parse_instant(value)
    if instant is not None:
        return {DUE_TIME: instant}
    return {DUE_TIME: str(value)} if isinstance(value, str) else {}


def holds(kind: Kind, ticket: Ticket, decision: Decision) -> bool:
    """True when the ticket's due field already has the decision's value (no write needed)."""
    key = DUE_DATE if kind == "date" else DUE_TIME
    if key not in ticket.fields:
        return True  # not read: never write blind
    return ticket.fields[key] == normalised(kind, decision.due_at)


def normalised(kind: Kind, at: datetime | None) -> str | None:
    """`at` as `current` reads it back: the date in `at`'s own zone, or the UTC minute."""
    if at is None:
        return None
    return at.date().isoformat() if kind == "date" else at.astimezone(UTC).strftime(
        DUE_TIME_FORMAT
    )


def with_sla_notes(fields: dict[str, FieldValue], texts: list[str | None]) -> None:
    """Add the SLA note keys found in comment `texts` (see tiering.sla_actions.SLA_NOTES), when
    there are any (no key and an empty one mean the same: no SLA note seen)."""
    found = tuple(k for text in texts for k in sla_note_keys_in(text))
    if found:
        fields[SLA_NOTES] = found


def sla_note_due(ticket: Ticket, decision: Decision) -> bool:
    """True when the decision carries an SLA note that is not on the ticket yet."""
    key = decision.sla_note_key
    if key is None or not decision.comment:
        return False
    seen = ticket.fields.get(SLA_NOTES)
    return not (isinstance(seen, tuple) and key in seen)
