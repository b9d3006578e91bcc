"""What a policy change would do to tickets: each decided under two policies, the differences.

`plan_change(items, current, proposed, now=..., rates=...)` is pure: it decides every ticket under
the current and the proposed policy with the same `now` and keeps a `TicketChange` only for the
tickets whose outcome differs. The outcome of a decision is the state it leaves: the tier (or
route), the label set after it, the assignment target, the note it posts, the documentation it
waits for. A change is described by the two decisions themselves (`before`, `after`): tier before
and after, the labels the proposed outcome adds and removes compared with the current one, the
target of each, the note the proposed policy would post and the reasons that differ.

Each change has one kind (`CHANGE_KINDS`), the first that applies in this order:

1. `route`: the route differs (handed to another team, or back from one);
2. `refused`: the proposed outcome carries `tier-entitlement-exceeded` and the current one not
   (a plan no longer covers the tier asked for);
3. `waiting-for-documentation`: the proposed outcome waits for documentation the current one
   does not (`tier-docs-missing`, a missing checklist item);
4. `escalate` / `de-escalate`: the tier is higher / lower (ranked by the proposed policy's tier
   order, else the current one's);
5. `route` again: same tier, another assignment target;
6. `labels-or-note`: only labels or the note differ.

The aggregate counts every ticket, changed or not: the tier distribution under each policy (a
routed ticket counts as `route:<name>`, a ticket without tier or route as `(none)`), the
transitions between them (only those whose two sides differ), the changes per kind, and the
writes enforcing the proposed policy on the changed tickets would cost per vendor with the time
they take at the given write rates. The cost of one ticket comes from the caller (a connector's
own write planning); without it, each changed decision costs the one write a connector sends
for it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from tiering.engine import DOCS_MISSING, ENTITLEMENT_EXCEEDED, decide
from tiering.models import Decision, Ticket
from tiering.policy import Policy

#: Every kind of change, in the order the documents list them.
CHANGE_KINDS = ("escalate", "de-escalate", "refused", "waiting-for-documentation", "route",
                "labels-or-note")
#: The distribution key of a decision with neither tier nor route.
NO_TIER = "(none)"

#: The writes enforcing `decision` on `ticket` would send to `vendor`.
WriteCost = Callable[[str, Ticket, Decision], int]


def one_write(vendor: str, ticket: Ticket, decision: Decision) -> int:
    """A connector's rule without its details: one write for a decision that changes the
    ticket, none otherwise (connectors/base.py, `apply`)."""
    return 1 if decision.changed else 0


@dataclass(frozen=True, slots=True)
class PlanInput:
    """One ticket to plan: the vendor, the ticket as the current policy reads it and, when the
    proposed policy maps fields differently, as the proposed policy reads it."""

    vendor: str
    ticket: Ticket
    proposed: Ticket | None = None

    @property
    def proposed_ticket(self) -> Ticket:
        return self.proposed if self.proposed is not None else self.ticket


@dataclass(frozen=True, slots=True)
class TicketChange:
    """One ticket whose outcome differs between the two policies."""

    vendor: str
    ticket: str
    change: str
    #: The decision under the current policy, and under the proposed one.
    before: Decision
    after: Decision
    #: Labels the proposed outcome has and the current one has not, and the reverse.
    labels_added: tuple[str, ...]
    labels_removed: tuple[str, ...]
    #: The proposed decision's reasons the current one has not, and the reverse.
    reasons: tuple[str, ...]
    reasons_before: tuple[str, ...]
    #: Writes enforcing the proposed decision would send.
    writes: int

    @property
    def tier_before(self) -> str | None:
        return self.before.tier

    @property
    def tier_after(self) -> str | None:
        return self.after.tier

    @property
    def route_before(self) -> str | None:
        """The route (billing, sales ...) the current policy hands the ticket to; None: none."""
        return self.before.route

    @property
    def route_after(self) -> str | None:
        return self.after.route

    @property
    def target_before(self) -> str | None:
        return self.before.assign

    @property
    def target_after(self) -> str | None:
        return self.after.assign

    @property
    def note(self) -> str | None:
        """The note the proposed policy would post (None: none)."""
        return self.after.comment


@dataclass
class Plan:
    """What the proposed policy would change, ticket by ticket and in aggregate."""

    tickets: int = 0
    changes: list[TicketChange] = field(default_factory=list)
    tiers_before: Counter[str] = field(default_factory=Counter)
    tiers_after: Counter[str] = field(default_factory=Counter)
    transitions: Counter[tuple[str, str]] = field(default_factory=Counter)
    kinds: Counter[str] = field(default_factory=Counter)
    #: Tickets seen per vendor (changed or not).
    vendors: Counter[str] = field(default_factory=Counter)
    writes: Counter[str] = field(default_factory=Counter)
    #: Writes per minute each vendor allows, as given to `plan_change`.
    rates: Mapping[str, float] = field(default_factory=dict)

    @property
    def changed(self) -> int:
        return len(self.changes)

    def enforce_seconds(self) -> dict[str, float]:
        """Seconds the writes take per vendor at its write rate (no rate given: 0, with the
        writes still counted)."""
        out: dict[str, float] = {}
        for vendor, count in sorted(self.writes.items()):
            rate = self.rates.get(vendor)
            out[vendor] = round(count * 60.0 / rate, 3) if rate else 0.0
        return out


def outcome_key(tier: str | None, route: str | None) -> str:
    """The distribution key of a tier and a route (a routed decision has no tier): the tier,
    `route:<name>` or `(none)`."""
    if tier is not None:
        return tier
    if route is not None:
        return f"route:{route}"
    return NO_TIER


def tier_key(decision: Decision) -> str:
    """The distribution key of a decision: its tier, `route:<name>` or `(none)`."""
    return outcome_key(decision.tier, decision.route)


def _outcome(ticket: Ticket, decision: Decision) -> tuple[object, ...]:
    """The state `decision` leaves on `ticket`: what two decisions are compared by."""
    return (decision.tier, decision.route, decision.labels_after(ticket.labels), decision.assign,
            decision.comment, tuple((m.tier, m.field, m.problem) for m in decision.missing))


def _tier_order(current: Policy, proposed: Policy, a: str, b: str) -> int | None:
    """-1, 0 or 1 as tier `a` is below, equal to or above `b`; None when no policy has both."""
    for policy in (proposed, current):
        if a in policy.rank and b in policy.rank:
            ra, rb = policy.rank[a], policy.rank[b]
            return (ra > rb) - (ra < rb)
    return None


def change_kind(before: Decision, after: Decision, *, labels_before: frozenset[str],
                labels_after: frozenset[str], current: Policy, proposed: Policy) -> str:
    """The kind of a change (the module docstring's order); `labels_*` are the label sets the
    two decisions leave."""
    if before.route != after.route:
        return "route"
    if ENTITLEMENT_EXCEEDED in labels_after and ENTITLEMENT_EXCEEDED not in labels_before:
        return "refused"
    waits_after = bool(after.missing) or DOCS_MISSING in labels_after
    waits_before = bool(before.missing) or DOCS_MISSING in labels_before
    if waits_after and not waits_before:
        return "waiting-for-documentation"
    if before.tier != after.tier and before.tier is not None and after.tier is not None:
        order = _tier_order(current, proposed, after.tier, before.tier)
        if order is None:
            return "route"
        return "escalate" if order > 0 else "de-escalate"
    if before.assign != after.assign:
        return "route"
    return "labels-or-note"


def compare(item: PlanInput, current: Policy, proposed: Policy, *, now: datetime,
            cost: WriteCost = one_write) -> tuple[Decision, Decision, TicketChange | None]:
    """Both decisions on one ticket, and the change between them (None when the outcome is the
    same)."""
    before = decide(item.ticket, current, now=now)
    proposed_ticket = item.proposed_ticket
    after = decide(proposed_ticket, proposed, now=now)
    if _outcome(item.ticket, before) == _outcome(proposed_ticket, after):
        return before, after, None
    labels_before = before.labels_after(item.ticket.labels)
    labels_after = after.labels_after(proposed_ticket.labels)
    old_reasons = set(before.reasons)
    new_reasons = set(after.reasons)
    change = TicketChange(
        vendor=item.vendor,
        ticket=item.ticket.key,
        change=change_kind(before, after, labels_before=labels_before,
                           labels_after=labels_after, current=current, proposed=proposed),
        before=before,
        after=after,
        labels_added=tuple(sorted(labels_after - labels_before)),
        labels_removed=tuple(sorted(labels_before - labels_after)),
        reasons=tuple(r for r in after.reasons if r not in old_reasons),
        reasons_before=tuple(r for r in before.reasons if r not in new_reasons),
        writes=cost(item.vendor, proposed_ticket, after),
    )
    return before, after, change


def plan_change(items: Iterable[PlanInput], current: Policy, proposed: Policy, *,
                now: datetime, rates: Mapping[str, float] | None = None,
                cost: WriteCost = one_write) -> Plan:
    """Decide every item under both policies (same `now`) and gather what would change.

    `rates` are the writes per minute each vendor allows (for `Plan.enforce_seconds`); `cost`
    says how many writes enforcing a proposed decision sends."""
    plan = Plan(rates=dict(rates or {}))
    for item in items:
        before, after, change = compare(item, current, proposed, now=now, cost=cost)
        plan.tickets += 1
        plan.vendors[item.vendor] += 1
        old, new = tier_key(before), tier_key(after)
        plan.tiers_before[old] += 1
        plan.tiers_after[new] += 1
        if old != new:
            plan.transitions[(old, new)] += 1
        if change is not None:
            plan.changes.append(change)
            plan.kinds[change.change] += 1
            plan.writes[item.vendor] += change.writes
    return plan
