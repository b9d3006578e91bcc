"""Shared fixtures for the policy engine tests: the example policy and a ticket builder."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest

from tiering import Decision, Policy, Ticket, decide, load_policy
from tiering.models import Customer
from webhooks.defaults import default_policy_text

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)

DOCS_L2 = {
    "steps_to_reproduce": "Open a project, edit a cell, press Ctrl+S.",
    "product_version": "4.2.1 on Windows 11",
    "category": "bugfix",
}
DOCS_L3 = {**DOCS_L2, "reproduced": "yes"}


@pytest.fixture(scope="session")
def policy() -> Policy:
    return load_policy(default_policy_text(), source="policy.example.yaml")


def ticket(
    *,
    labels: tuple[str, ...] = (),
    subject: str = "Sync stopped",
    description: str = "Nothing syncs.",
    priority: str | None = "medium",
    org: str | None = "Acme Corp",
    email: str | None = None,
    plan: str | None = None,
    fields: dict[str, Any] | None = None,
    attachments: int = 0,
    last_note_key: str | None = None,
    key: str = "SUP-1",
) -> Ticket:
    """A ticket with sensible defaults: a premium customer, no tier, nothing documented."""
    return Ticket(
        key=key,
        subject=subject,
        description=description,
        labels=frozenset(labels),
        priority=priority,
        customer=Customer(organization=org, email=email, plan=plan),
        fields=dict(fields or {}),
        attachments=attachments,
        last_note_key=last_note_key,
    )


def applied(t: Ticket, d: Decision) -> Ticket:
    """The ticket as it is after a connector applied `d` (labels, assignee, note)."""
    return replace(
        t,
        labels=d.labels_after(t.labels),
        assignee=d.assign or t.assignee,
        last_note_key=d.note_key if d.comment else t.last_note_key,
    )


def run(t: Ticket, p: Policy) -> Decision:
    return decide(t, p, now=NOW)
