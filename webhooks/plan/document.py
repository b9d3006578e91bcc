"""The `tierdesk plan` JSON document (format `tierdesk-plan/1`): built from a Plan, and its text.

The format is stable: a new version of it may only add keys; a key removed or whose meaning
changes makes a new `format` (`tierdesk-plan/2`). The document (docs/admin-guide.md, "Reviewing a
policy change: tierdesk plan", describes every key):

    {"format": "tierdesk-plan/1", "generated_at": "2026-11-21T12:00:00+00:00",
     "policies": {"current": {"path", "digest"}, "proposed": {"path", "digest"}},
     "source": {"kinds": ["inbox", "backlog"], "since": "30d" | null, "tickets": int,
                "skipped": int},
     "summary": {"tickets", "changed", "tiers_before", "tiers_after",
                 "transitions": [{"from", "to", "count"}], "changes": {kind: int},
                 "writes": {vendor: int, "total": int},
                 "enforce_seconds": {vendor: float, "total": float},
                 "rates": {vendor: {"writes_per_minute": float, "source": str}}},
     "tickets": [{"vendor", "ticket", "change", "tier_before", "tier_after", "route_before",
                  "route_after", "labels_added", "labels_removed", "target_before",
                  "target_after", "note", "reasons", "reasons_before", "writes"}],
     "skipped": [{"vendor", "ticket", "reason"}]}

A routed ticket (handed to billing, sales ...) has no tier: its `tier_*` is null and its
`route_*` names the route, as the distribution counts it (`route:<name>`). `route_before` and
`route_after` came after the first documents of this format; being added keys (null: not
routed), they keep it `tierdesk-plan/1`, and a reader of an older document takes them as null.

Order is part of the format: `dumps` sorts every object's keys; tickets and skipped tickets are
sorted by vendor, then key in natural order (SUP-9 before SUP-10), transitions by (from, to).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from tiering.plan import CHANGE_KINDS, Plan, TicketChange
from tiering.policy import Policy

FORMAT = "tierdesk-plan/1"

_DIGITS = re.compile(r"(\d+)")


@dataclass(frozen=True, slots=True)
class Skipped:
    """A ticket a source could not plan, and why (it is listed, never silently dropped)."""

    vendor: str
    ticket: str
    reason: str


@dataclass(frozen=True, slots=True)
class Rate:
    """A vendor's write rate used for `enforce_seconds`, and where the figure comes from."""

    writes_per_minute: float
    source: str


def natural_key(vendor: str, ticket: str) -> tuple[str, tuple[tuple[int, int | str], ...]]:
    """Sort key: vendor, then the ticket key with its numbers compared as numbers."""
    parts = tuple((0, int(p)) if p.isdigit() else (1, p) for p in _DIGITS.split(ticket) if p)
    return vendor, parts


def _policy_ref(policy: Policy) -> dict[str, str]:
    return {"path": policy.source, "digest": policy.digest}


def _ticket(change: TicketChange) -> dict[str, Any]:
    return {
        "vendor": change.vendor,
        "ticket": change.ticket,
        "change": change.change,
        "tier_before": change.tier_before,
        "tier_after": change.tier_after,
        "route_before": change.route_before,
        "route_after": change.route_after,
        "labels_added": list(change.labels_added),
        "labels_removed": list(change.labels_removed),
        "target_before": change.target_before,
        "target_after": change.target_after,
        "note": change.note,
        "reasons": list(change.reasons),
        "reasons_before": list(change.reasons_before),
        "writes": change.writes,
    }


def plan_document(
    plan: Plan,
    *,
    current: Policy,
    proposed: Policy,
    kinds: Sequence[str],
    since: str | None,
    generated_at: datetime,
    rates: Mapping[str, Rate],
    skipped: Sequence[Skipped] = (),
) -> dict[str, Any]:
    """The JSON-ready document of `plan` (the module docstring's shape). Pure."""
    vendors = sorted(set(plan.writes) | set(plan.vendors))
    writes: dict[str, int] = {v: plan.writes.get(v, 0) for v in vendors}
    seconds = plan.enforce_seconds()
    enforce: dict[str, float] = {v: seconds.get(v, 0.0) for v in vendors}
    summary = {
        "tickets": plan.tickets,
        "changed": plan.changed,
        "tiers_before": dict(sorted(plan.tiers_before.items())),
        "tiers_after": dict(sorted(plan.tiers_after.items())),
        "transitions": [
            {"from": a, "to": b, "count": n} for (a, b), n in sorted(plan.transitions.items())
        ],
        "changes": {kind: plan.kinds.get(kind, 0) for kind in CHANGE_KINDS},
        "writes": {**writes, "total": sum(writes.values())},
        "enforce_seconds": {**enforce, "total": round(sum(enforce.values()), 3)},
        "rates": {v: {"writes_per_minute": r.writes_per_minute, "source": r.source}
                  for v, r in sorted(rates.items()) if v in vendors},
    }
    changes = sorted(plan.changes, key=lambda c: natural_key(c.vendor, c.ticket))
    return {
        "format": FORMAT,
        "generated_at": generated_at.isoformat(),
        "policies": {"current": _policy_ref(current), "proposed": _policy_ref(proposed)},
        "source": {"kinds": sorted(set(kinds)), "since": since, "tickets": plan.tickets,
                   "skipped": len(skipped)},
        "summary": summary,
        "tickets": [_ticket(c) for c in changes],
        "skipped": [
            {"vendor": s.vendor, "ticket": s.ticket, "reason": s.reason}
            for s in sorted(skipped, key=lambda s: natural_key(s.vendor, s.ticket))
        ],
    }


def dumps(document: Mapping[str, Any]) -> str:
    """The document as `--format json` prints it: keys sorted, indented, one final newline."""
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
