"""Vendor-neutral tickets and decisions: the data that flows into and out of the policy engine.

A connector turns a vendor payload into a `Ticket`; `tiering.decide` turns a `Ticket` and a
`Policy` into a `Decision` (the desired state plus reasons); the connector turns the difference
into at most one vendor write. Both types are frozen so they can be logged, compared and replayed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import Any

#: A documentation field's value as read from the vendor: text, a select option, the options of
#: a multi-select, a number, or nothing.
FieldValue = str | int | float | bool | tuple[str, ...] | None

_EMPTY: Mapping[str, FieldValue] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class Customer:
    """Who raised the ticket, as far as entitlement is concerned."""

    organization: str | None = None
    email: str | None = None
    #: A plan name read from the vendor's own record (a Zendesk organization field, say). When
    #: set it takes precedence over the policy's `customers` list.
    plan: str | None = None
    #: Why the vendor sent nothing to identify the customer by (e.g. "Jira sent no reporter
    #: email: the site hides it"), said in the decision's reason instead of "no plan matches".
    unidentified: str | None = None

    @property
    def email_domain(self) -> str | None:
        """The part of the email after the last `@`, lower-cased, or None."""
        if not self.email or "@" not in self.email:
            return None
        return self.email.rsplit("@", 1)[1].strip().lower() or None


@dataclass(frozen=True, slots=True)
class Ticket:
    """One ticket's current state in vendor-neutral terms.

    `key` is the Jira issue key or the Zendesk ticket id as text. `labels` are Jira labels or
    Zendesk tags. `fields` holds the documentation fields by their policy name (already mapped
    from custom field ids by the connector). `last_note_key` is the key of the checklist note that
    tierdesk last posted on this ticket (from the inbox database, or from the note's marker), so
    that an unchanged checklist is not posted twice.

    `assignee`, `group` (Zendesk) and `components` (Jira component names) are who owns the
    ticket now. The engine does not read them; a connector compares them with the decided
    target's ownership to write only the difference.

    `first_reply_at` is the first public agent reply, when the connector can tell (None: not
    known from this read, not "never").

    `status` is the vendor-neutral status (new/open/pending/hold/solved/closed, see
    tiering.sla_models.STATUSES) the connector mapped from the vendor's own, and `created_at`
    when the ticket was created (aware); both None when the vendor sent neither. The SLA clocks
    (tiering.sla) are computed from the statuses the inbox records over time.
    """

    key: str
    subject: str = ""
    description: str = ""
    labels: frozenset[str] = frozenset()
    priority: str | None = None
    customer: Customer = field(default_factory=Customer)
    fields: Mapping[str, FieldValue] = field(default_factory=lambda: _EMPTY)
    attachments: int = 0
    assignee: str | None = None
    group: str | None = None
    components: frozenset[str] = frozenset()
    actor: str | None = None
    updated_at: str | None = None
    last_note_key: str | None = None
    status: str | None = None
    created_at: datetime | None = None
    first_reply_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class ChecklistItem:
    """One documentation requirement and whether the ticket meets it."""

    tier: str
    field: str
    label: str
    done: bool
    #: Why it is not done, in words an agent understands ("missing", "shorter than 20 characters").
    problem: str | None = None


@dataclass(frozen=True, slots=True)
class Decision:
    """The desired state of one ticket under the policy, and why.

    The connector applies `labels_add`, `labels_remove`, the assignment to `assign` (a key of the
    policy's `targets`: a tier name or a route name), the internal `comment` and, when `due_write`,
    the policy's due field (`due_at`; None clears it). When `changed` is false, nothing is to be
    written at all. The `due_*` and `sla_*` fields are set by `tiering.sla_actions.apply_clocks`.
    """

    ticket: str
    tier: str | None
    previous_tier: str | None
    route: str | None = None
    plan: str | None = None
    labels_add: tuple[str, ...] = ()
    labels_remove: tuple[str, ...] = ()
    assign: str | None = None
    missing: tuple[ChecklistItem, ...] = ()
    checklist: tuple[ChecklistItem, ...] = ()
    suggestions: tuple[str, ...] = ()
    comment: str | None = None
    #: Recorded with the posted comment; the next decision compares it with `Ticket.last_note_key`.
    note_key: str | None = None
    reasons: tuple[str, ...] = ()
    #: The `now` the decision was made for (passed in: the engine reads no clock).
    decided_at: datetime | None = None
    #: The next due time of the `sla.due_field` clock, in its calendar's zone, to the minute;
    #: None with `due_write` clears the field (the clock is paused).
    due_at: datetime | None = None
    #: True when the due field must be written: its current value differs from `due_at`.
    due_write: bool = False
    #: The key of the SLA note in `comment` (its `tierdesk-sla:<key>` marker line), or None. A
    #: connector posts `comment` when this is set even if `note_key` is already on the ticket:
    #: an SLA note keeps the checklist's `note_key`, so the checklist is not posted again.
    sla_note_key: str | None = None
    #: The SLA thresholds this decision acts on (`tiering.sla_actions.threshold_key`).
    sla_fired: tuple[str, ...] = ()

    @property
    def changed(self) -> bool:
        """True when applying this decision would change the ticket."""
        return bool(
            self.labels_add or self.labels_remove or self.assign or self.comment or self.due_write
        )

    def labels_after(self, labels: frozenset[str]) -> frozenset[str]:
        """The label set that results from applying this decision to `labels`."""
        return (labels - frozenset(self.labels_remove)) | frozenset(self.labels_add)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view, as `tierdesk decide` prints it."""
        return {
            "ticket": self.ticket,
            "tier": self.tier,
            "previous_tier": self.previous_tier,
            "route": self.route,
            "plan": self.plan,
            "changed": self.changed,
            "labels_add": list(self.labels_add),
            "labels_remove": list(self.labels_remove),
            "assign": self.assign,
            "missing": [
                {"tier": i.tier, "field": i.field, "label": i.label, "problem": i.problem}
                for i in self.missing
            ],
            "checklist": [
                {"tier": i.tier, "field": i.field, "label": i.label, "done": i.done}
                for i in self.checklist
            ],
            "suggestions": list(self.suggestions),
            "comment": self.comment,
            "note_key": self.note_key,
            "reasons": list(self.reasons),
            "decided_at": self.decided_at.isoformat() if self.decided_at else None,
            "due_at": self.due_at.isoformat() if self.due_at else None,
            "due_write": self.due_write,
            "sla_note_key": self.sla_note_key,
            "sla_fired": list(self.sla_fired),
        }


#: Every checklist note tierdesk posts ends with a line `tierdesk-note:<key>`, so a connector that
#: is unsure whether a write landed can find the note on the ticket instead of posting it twice.
NOTE_MARKER = "tierdesk-note:"
_NOTE_RE = re.compile(r"tierdesk-note:([0-9a-f]{8,64})")


def note_key_in(text: str | None) -> str | None:
    """The note key in a comment tierdesk posted, or None for any other comment."""
    if not text:
        return None
    found = _NOTE_RE.findall(text)
    return found[-1] if found else None
