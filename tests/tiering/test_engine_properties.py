"""Property tests: for any ticket, the decision respects entitlement, documentation and tier
order, is deterministic and idempotent."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.tiering.conftest import DOCS_L3, applied, run
from tiering import Policy, Ticket
from tiering.engine import _requirement_problem
from tiering.models import Customer

MANAGED = [
    "tier-l0", "tier-l1", "tier-l2", "tier-l3", "tier-l4", "escalate-l2", "escalate-l3",
    "escalate-l4", "tier-docs-missing", "tier-entitlement-exceeded", "tier-unverified",
    "tier-route-billing", "vendor-engaged", "route-billing",
]
PHRASES = ["password reset", "how do i", "invoice", "crash", "stack trace", "sync", "data loss",
           "where can i find", "refund", ""]

field_values: st.SearchStrategy[Any] = st.one_of(
    st.none(), st.text(max_size=30), st.sampled_from(["4.2", "latest", "bugfix", "yes", "no"]),
    st.integers(-5, 5), st.tuples(st.sampled_from(["api", "other", "ivr"])),
)

tickets = st.builds(
    lambda labels, extra, words, priority, org, email, plan, docs, fields, attachments, note:
    Ticket(
        key="SUP-1",
        subject=" ".join(words[:2]),
        description=" ".join(words[2:]),
        labels=frozenset(labels) | frozenset(extra),
        priority=priority,
        customer=Customer(organization=org, email=email, plan=plan),
        fields={**(DOCS_L3 if docs else {}), **fields},
        attachments=attachments,
        last_note_key=note,
    ),
    st.sets(st.sampled_from(MANAGED), max_size=5),
    st.sets(st.sampled_from(["vip", "Tier-L2", "ESCALATE-L3", "customer-x"]), max_size=2),
    st.lists(st.sampled_from(PHRASES), min_size=1, max_size=5),
    st.sampled_from([None, "low", "medium", "high", "urgent", "High"]),
    st.sampled_from([None, "Acme Corp", "Initech", "Hooli", "acme corp"]),
    st.sampled_from([None, "a@globex.example", "b@unknown.example", "not-an-email"]),
    st.sampled_from([None, "basic", "standard", "premium", "gold"]),
    st.booleans(),
    st.dictionaries(st.sampled_from(["steps_to_reproduce", "product_version", "category",
                                     "reproduced"]), field_values, max_size=2),
    st.integers(0, 2),
    st.sampled_from([None, "0123456789abcdef"]),
)

SETTINGS = settings(max_examples=400, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])


def _rank(policy: Policy, tier: str | None) -> int:
    return -1 if tier is None else policy.rank[tier]


@SETTINGS
@given(t=tickets)
def test_never_exceeds_entitlement(policy: Policy, t: Ticket) -> None:
    """The resulting tier is within the plan, unless an agent had already put it higher."""
    d = run(t, policy)
    if d.tier is None:
        return
    cap = policy.plans[d.plan].max_tier if d.plan else policy.unverified_max_tier
    assert _rank(policy, d.tier) <= max(_rank(policy, cap), _rank(policy, d.previous_tier))


@SETTINGS
@given(t=tickets)
def test_never_enters_a_tier_with_missing_documentation(policy: Policy, t: Ticket) -> None:
    """A tier that is entered has every requirement of it and the tiers below it met."""
    d = run(t, policy)
    if d.tier is None or d.tier == d.previous_tier:
        return
    if d.previous_tier is None and policy.rank[d.tier] <= policy.rank[policy.default_tier]:
        return  # first triage into a tier without requirements
    assert all(_requirement_problem(r, t) is None for r in policy.requirements[d.tier])


@SETTINGS
@given(t=tickets)
def test_never_lowers_a_tier(policy: Policy, t: Ticket) -> None:
    """tierdesk never moves a ticket to a lower tier by itself (an agent's route request takes
    it out of support, which is no tier rather than a lower one)."""
    d = run(t, policy)
    if d.previous_tier is not None and d.route is None:
        assert d.tier is not None
        assert _rank(policy, d.tier) >= _rank(policy, d.previous_tier)


@SETTINGS
@given(t=tickets)
def test_deterministic(policy: Policy, t: Ticket) -> None:
    """The same ticket and policy give the same decision."""
    assert run(t, policy) == run(t, policy)


@SETTINGS
@given(t=tickets)
def test_idempotent(policy: Policy, t: Ticket) -> None:
    """Once a decision is applied, deciding again changes nothing."""
    d = run(t, policy)
    again = run(applied(t, d), policy)
    assert not again.changed, (d.to_dict(), again.to_dict())


@SETTINGS
@given(t=tickets)
def test_exactly_one_tier_label_after_applying(policy: Policy, t: Ticket) -> None:
    """After a decision is applied the ticket carries exactly one tier label (or none if routed)."""
    d = run(t, policy)
    labels = {x.lower() for x in d.labels_after(t.labels)}
    tier_labels = labels & set(policy.tier_label.values())
    if d.tier is None:
        assert tier_labels == set()
    else:
        assert tier_labels == {policy.tier_label[d.tier]}


@SETTINGS
@given(t=tickets)
def test_labels_agents_set_are_kept(policy: Policy, t: Ticket) -> None:
    """Only labels tierdesk manages are ever removed."""
    d = run(t, policy)
    managed = policy.managed_labels
    assert all(label.lower() in managed for label in d.labels_remove)


@SETTINGS
@given(t=tickets, assignee=st.sampled_from([None, "acc-l2", "agent-7"]),
       group=st.sampled_from([None, "360001"]),
       components=st.sets(st.sampled_from(["Engineering", "Vendor", "Customer Portal"])))
def test_owner_does_not_change_the_decision(
    policy: Policy, t: Ticket, assignee: str | None, group: str | None, components: set[str]
) -> None:
    """The engine ignores who owns the ticket (assignee, group, components): connectors read
    them only to write the difference to the target's ownership."""
    owned = replace(t, assignee=assignee, group=group, components=frozenset(components))
    assert run(owned, policy) == run(t, policy)
