"""tiering/plan.py: each ticket decided under two policies; only changed outcomes are listed, each
of one kind, and the aggregate counts every ticket."""

from __future__ import annotations

from dataclasses import replace
from functools import cache

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.tiering.conftest import DOCS_L2, DOCS_L3, NOW, ticket
from tests.tiering.test_engine_properties import SETTINGS, tickets
from tiering import Decision, Policy, Ticket, decide, load_policy
from tiering.plan import (
    CHANGE_KINDS,
    NO_TIER,
    PlanInput,
    compare,
    one_write,
    plan_change,
    tier_key,
)
from webhooks.defaults import default_policy_text

#: Edits of the example policy, each one or more (text in the example, its replacement).
EDITS: dict[str, tuple[tuple[str, str], ...]] = {
    # the crash rule triages to L3 instead of L2
    "crash-to-l3": (("priority_in: [highest, high, urgent]}\n    tier: L2",
                    "priority_in: [highest, high, urgent]}\n    tier: L3"),),
    # unmatched tickets start in L0 instead of L1
    "default-l0": (("default_tier: L1", "default_tier: L0"),),
    # the standard plan covers L1 only
    "standard-l1": (("  standard:\n    max_tier: L2", "  standard:\n    max_tier: L1"),
                    ("        L2: {time_in_tier: 14h, resolution: 35h}\n", "")),
    # L1 needs a product version
    "l1-needs-version": ((
        "documentation:\n  L2:\n",
        "documentation:\n  L1:\n    - {field: product_version, label: \"Version\","
        " pattern: '^\\d+\\.\\d+'}\n  L2:\n"),),
    # billing tickets are no longer routed
    "no-billing-route": (("    route: billing\n", "    tier: L1\n"),
                         ("    by_label: true\n", ""),
                         ('  billing: {jira: {assignee: "acc-billing"},'
                          ' zendesk: {group_id: 900}}\n', "")),
    # the how-to rule suggests another page
    "how-to-links": (('"https://docs.example.com/faq"', '"https://docs.example.com/help"'),),
    # L1 tickets also carry a queue label
    "l1-label": (('L1: {jira: {assignee: "acc-l1"}, zendesk: {group_id: 100}}',
                 'L1: {jira: {assignee: "acc-l1"}, zendesk: {group_id: 100},'
                 ' labels: [l1-queue]}'),),
    # L2 loses its target: a ticket entering L2 is no longer assigned
    "no-l2-target": (('  L2: {jira: {assignee: "acc-l2"}, zendesk: {group_id: 200}}\n', ""),),
}


@cache
def edited(name: str) -> Policy:
    text = default_policy_text()
    for old, new in EDITS[name]:
        assert text.count(old) == 1, (name, old)
        text = text.replace(old, new)
    return load_policy(text, source=f"{name}.yaml")


CRASH = ticket(subject="App crash", description="stack trace attached", priority="high",
               fields=DOCS_L3, attachments=1)
PLAIN = ticket(subject="Sync stopped", description="Nothing syncs.")
GLOBEX_ESCALATION = ticket(org=None, email="a@globex.example", labels=("tier-l1", "escalate-l2"),
                           fields=DOCS_L2, attachments=1)
INVOICE = ticket(subject="Invoice wrong", description="Please fix the invoice.")
HOW_TO = ticket(subject="How do I export", description="how do i export a report")
IN_L2 = ticket(labels=("tier-l1", "escalate-l2"), fields=DOCS_L2, attachments=1)

# (edit, ticket, kind, tier before, tier after, labels added, labels removed)
TABLE = [
    # a rule now triages higher: escalate L2 -> L3, with L3's component target
    ("crash-to-l3", CRASH, "escalate", "L2", "L3", ("tier-l3",), ("tier-l2",)),
    # the default tier drops: de-escalate L1 -> L0
    ("default-l0", PLAIN, "de-escalate", "L1", "L0", ("tier-l0",), ("tier-l1",)),
    # the plan no longer covers the requested L2: refused, stays in L1 with the flag
    ("standard-l1", GLOBEX_ESCALATION, "refused", "L2", "L1",
     ("tier-entitlement-exceeded", "tier-l1"), ("tier-l2",)),
    # L1 now needs documentation: the ticket waits in L0 for it
    ("l1-needs-version", PLAIN, "waiting-for-documentation", "L1", "L0",
     ("escalate-l1", "tier-docs-missing", "tier-l0"), ("tier-l1",)),
    # billing is no longer a route: the route changes, the ticket gets a tier
    ("no-billing-route", INVOICE, "route", None, "L1", ("tier-l1",), ("tier-route-billing",)),
    # the how-to note names another page: only the note differs
    ("how-to-links", HOW_TO, "labels-or-note", "L0", "L0", (), ()),
    # L1 gains a target label: only the labels differ
    ("l1-label", PLAIN, "labels-or-note", "L1", "L1", ("l1-queue",), ()),
    # L2 has no target any more: same tier, another assignment
    ("no-l2-target", IN_L2, "route", "L2", "L2", (), ()),
]


@pytest.mark.parametrize(("edit", "t", "kind", "before", "after", "added", "removed"), TABLE,
                         ids=[f"{row[0]}-{row[2]}" for row in TABLE])
def test_change_table(policy: Policy, edit: str, t: Ticket, kind: str, before: str | None,
                      after: str | None, added: tuple[str, ...], removed: tuple[str, ...]) -> None:
    """Each policy edit changes the ticket's outcome in the expected way, described exactly."""
    proposed = edited(edit)
    old, new, change = compare(PlanInput("jira", t), policy, proposed, now=NOW)
    assert change is not None
    assert (change.change, change.tier_before, change.tier_after) == (kind, before, after)
    assert (change.labels_added, change.labels_removed) == (added, removed)
    assert (change.before, change.after) == (old, new)
    assert change.target_before == old.assign and change.target_after == new.assign
    assert change.note == new.comment
    assert change.reasons == tuple(r for r in new.reasons if r not in old.reasons)
    assert change.writes == (1 if new.changed else 0)


@pytest.mark.parametrize("edit", sorted(EDITS))
def test_an_edit_leaves_unaffected_tickets_out(policy: Policy, edit: str) -> None:
    """A ticket already settled in L3 (premium, documented) is unaffected by every edit."""
    settled = ticket(labels=("tier-l3",), fields=DOCS_L3, attachments=1)
    assert compare(PlanInput("jira", settled), policy, edited(edit), now=NOW)[2] is None


def test_plan_aggregates_every_ticket(policy: Policy) -> None:
    """Distribution, transitions, kinds, writes and enforce time over changed and unchanged."""
    proposed = edited("default-l0")
    items = [PlanInput("jira", replace(PLAIN, key="SUP-1")),
             PlanInput("zendesk", replace(PLAIN, key="7")),
             PlanInput("jira", replace(CRASH, key="SUP-2")),
             PlanInput("zendesk", replace(INVOICE, key="8"))]
    plan = plan_change(items, policy, proposed, now=NOW, rates={"jira": 60.0, "zendesk": 100.0})
    assert plan.tickets == 4 and plan.changed == 2
    assert dict(plan.tiers_before) == {"L1": 2, "L2": 1, "route:billing": 1}
    assert dict(plan.tiers_after) == {"L0": 2, "L2": 1, "route:billing": 1}
    assert dict(plan.transitions) == {("L1", "L0"): 2}
    assert dict(plan.kinds) == {"de-escalate": 2}
    assert dict(plan.writes) == {"jira": 1, "zendesk": 1}
    assert plan.enforce_seconds() == {"jira": 1.0, "zendesk": 0.6}
    assert [c.ticket for c in plan.changes] == ["SUP-1", "7"]


def test_write_cost_comes_from_the_caller(policy: Policy) -> None:
    """The cost function sees the vendor, the proposed ticket and decision; no rate: 0 s."""
    seen: list[tuple[str, str, bool]] = []

    def cost(vendor: str, t: Ticket, d: Decision) -> int:
        seen.append((vendor, t.key, d.changed))
        return 2

    plan = plan_change([PlanInput("zendesk", PLAIN)], policy, edited("default-l0"), now=NOW,
                       cost=cost)
    assert seen == [("zendesk", "SUP-1", True)]
    assert dict(plan.writes) == {"zendesk": 2} and plan.enforce_seconds() == {"zendesk": 0.0}


def test_the_proposed_policy_reads_its_own_ticket(policy: Policy) -> None:
    """A PlanInput's proposed ticket (another field mapping) is what the proposed policy sees."""
    missing_docs = ticket(labels=("tier-l1", "escalate-l2"), attachments=1)
    item = PlanInput("jira", missing_docs, proposed=replace(missing_docs, fields=DOCS_L2))
    _, after, change = compare(item, policy, policy, now=NOW)
    assert change is not None and after.tier == "L2" and change.change == "escalate"


def test_tier_key() -> None:
    """Distribution keys: the tier, route:<name> for a routed ticket, (none) for neither."""
    assert tier_key(Decision(ticket="a", tier="L1", previous_tier=None)) == "L1"
    assert tier_key(Decision(ticket="a", tier=None, previous_tier=None,
                             route="billing")) == "route:billing"
    assert tier_key(Decision(ticket="a", tier=None, previous_tier=None)) == NO_TIER


def _numbered(ts: list[Ticket]) -> list[PlanInput]:
    return [PlanInput("jira" if i % 2 else "zendesk", replace(t, key=f"T-{i}"))
            for i, t in enumerate(ts)]


@SETTINGS
@given(ts=st.lists(tickets, max_size=8))
def test_a_policy_against_itself_changes_nothing(policy: Policy, ts: list[Ticket]) -> None:
    """Plan of a policy against itself is empty, and the two distributions are equal."""
    plan = plan_change(_numbered(ts), policy, policy, now=NOW)
    assert plan.changes == [] and not plan.transitions and not plan.writes
    assert plan.tiers_before == plan.tiers_after and plan.tickets == len(ts)


@SETTINGS
@given(ts=st.lists(tickets, max_size=6), edit=st.sampled_from(sorted(EDITS)))
def test_every_change_is_what_decide_says(policy: Policy, ts: list[Ticket], edit: str) -> None:
    """Each listed change is exactly the two decisions `decide` makes; a ticket is listed iff
    the states the two decisions leave differ; counts add up."""
    proposed = edited(edit)
    items = _numbered(ts)
    plan = plan_change(items, policy, proposed, now=NOW)
    by_key = {c.ticket: c for c in plan.changes}
    for item in items:
        old = decide(item.ticket, policy, now=NOW)
        new = decide(item.ticket, proposed, now=NOW)
        labels_old = old.labels_after(item.ticket.labels)
        labels_new = new.labels_after(item.ticket.labels)
        differs = (old.tier, old.route, labels_old, old.assign, old.comment, old.missing) != (
            new.tier, new.route, labels_new, new.assign, new.comment, new.missing)
        change = by_key.get(item.ticket.key)
        assert (change is not None) == differs
        if change is None:
            continue
        assert change.before == old and change.after == new
        assert (change.tier_before, change.tier_after) == (old.tier, new.tier)
        assert set(change.labels_added) == labels_new - labels_old
        assert set(change.labels_removed) == labels_old - labels_new
        assert (change.target_before, change.target_after) == (old.assign, new.assign)
        assert change.note == new.comment
        assert change.change in CHANGE_KINDS
        assert change.writes == one_write(item.vendor, item.ticket, new)
    assert sum(plan.kinds.values()) == plan.changed
    assert sum(plan.tiers_before.values()) == sum(plan.tiers_after.values()) == len(items)
    moved = sum(1 for c in plan.changes if tier_key(c.before) != tier_key(c.after))
    assert sum(plan.transitions.values()) == moved
