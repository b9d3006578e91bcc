"""Shared builders for the SLA action tests: a policy with 24/7 targets, histories, reports."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import yaml

from tiering import Decision, Policy, Ticket, decide, load_policy
from tiering.models import Customer
from tiering.sla import SlaReport, StatusInterval, TicketHistory, TierEntry, sla_for
from tiering.sla_actions import DUE_DATE, DUE_TIME, DUE_TIME_FORMAT
from webhooks.defaults import default_policy_text

H = 3600
T0 = datetime(2026, 11, 16, 8, 0, tzinfo=UTC)
DOCS_L2 = {
    "steps_to_reproduce": "Open a project, edit a cell, press Ctrl+S.",
    "product_version": "4.2.1 on Windows 11",
    "category": "improvement",
}

#: 24/7 targets (hours) for every plan of the example policy, so the arithmetic is plain.
SLA_PLANS = {
    "basic": {"tiers": {"L1": {"time_in_tier": "4h", "resolution": "8h"}}},
    "standard": {"tiers": {
        "L1": {"first_response": "1h", "time_in_tier": "4h", "resolution": "1d"},
        "L2": {"time_in_tier": "8h", "resolution": "1d"},
    }},
    "premium": {"tiers": {
        "L0": {"time_in_tier": "2h"},
        "L1": {"first_response": "1h", "time_in_tier": "4h", "resolution": "1d",
               "priority": {"urgent": {"resolution": "8h"}}},
        "L2": {"time_in_tier": "8h", "resolution": "1d"},
        "L3": {"time_in_tier": "2d"},
        "L4": {"time_in_tier": "5d"},
    }},
}


def make_policy(**sla: Any) -> Policy:
    """The example policy with 24/7 targets and `sla` keys replaced (on_warning, on_breach ...)."""
    doc = yaml.safe_load(default_policy_text())
    doc["calendars"] = {}
    section = {
        "calendar": "24x7",
        "warn_at": [0.75],
        "plans": SLA_PLANS,
        "on_warning": {"label": "sla-warning", "note": True},
        "on_breach": {"label": "sla-breached", "note": True, "escalate": "next"},
        "due_field": {"clock": "resolution", "jira": "duedate", "zendesk": 360001120},
    }
    section.update(sla)
    doc["sla"] = {k: v for k, v in section.items() if v is not None}
    return load_policy(yaml.safe_dump(doc), source="test-sla-policy.yaml")


def at(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


def ticket(
    *,
    tier: str | None = "L1",
    org: str | None = "Acme Corp",
    email: str | None = None,
    fields: dict[str, Any] | None = None,
    labels: tuple[str, ...] = (),
    attachments: int = 1,
    last_note_key: str | None = None,
    priority: str | None = "normal",
    key: str = "SUP-1",
) -> Ticket:
    tier_labels = (f"tier-{tier.lower()}",) if tier else ()
    return Ticket(
        key=key,
        subject="Sync stopped",
        description="Nothing syncs.",
        labels=frozenset(tier_labels + labels),
        priority=priority,
        customer=Customer(organization=org, email=email),
        fields=dict(fields or {}),
        attachments=attachments,
        last_note_key=last_note_key,
    )


def history(*steps: tuple[float, str], tier_at: float = 0.0, tier: str = "L1",
            reply: float | None = None) -> TicketHistory:
    """Statuses as (hours after T0, status) changes from creation at the first step."""
    ivs = tuple(
        StatusInterval(s, at(h), at(steps[i + 1][0]) if i + 1 < len(steps) else None)
        for i, (h, s) in enumerate(steps)
    )
    return TicketHistory(created_at=at(steps[0][0]), statuses=ivs,
                         tiers=(TierEntry(tier, at(tier_at)),),
                         first_reply_at=None if reply is None else at(reply))


def report_for(policy: Policy, t: Ticket, h: TicketHistory, now: datetime) -> SlaReport:
    d = decide(t, policy, now=now)
    return sla_for(h, policy.sla, plan=d.plan, tier=d.previous_tier or d.tier,
                   priority=t.priority, now=now)


def applied(t: Ticket, d: Decision, *, due_kind: str | None = None) -> Ticket:
    """The ticket after a connector applied `d`: labels, assignee, note key, due field."""
    fields = dict(t.fields)
    if d.due_write:
        value = None
        if d.due_at is not None:
            value = (d.due_at.date().isoformat() if due_kind == "date"
                     else d.due_at.astimezone(UTC).strftime(DUE_TIME_FORMAT))
        fields[DUE_DATE if due_kind == "date" else DUE_TIME] = value
    return replace(
        t,
        labels=d.labels_after(t.labels),
        assignee=d.assign or t.assignee,
        last_note_key=d.note_key if d.comment else t.last_note_key,
        fields=fields,
    )
