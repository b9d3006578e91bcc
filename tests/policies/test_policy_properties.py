"""Property tests on the five reference policies: for any ticket, each decision keeps one tier
label, respects the plan and the documentation gate, and is idempotent."""

from __future__ import annotations

from functools import cache
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.policies.stories import (
    NOW,
    STORIES,
    apply_decision,
    load_story,
    policy_of,
    story_paths,
)
from tiering import Policy, Ticket, decide
from tiering.engine import _requirement_problem
from tiering.models import Customer, FieldValue

MODELS = [p.stem for p in story_paths()]
SETTINGS = settings(max_examples=250, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow])


@cache
def _valid_values(model: str) -> dict[str, list[FieldValue]]:
    """Field values the model's story writes (valid ones), per field."""
    out: dict[str, list[FieldValue]] = {}
    for t in load_story(STORIES / f"{model}.yaml").tickets:
        for step in t.steps:
            for name, value in (step.edit.fields.items() if step.edit else ()):
                if value is not None:
                    out.setdefault(name, []).append(
                        tuple(value) if isinstance(value, list) else value)
    return out


@cache
def tickets(policy: Policy, model: str) -> st.SearchStrategy[Ticket]:
    """Tickets mixing the policy's own labels, rule terms, customers and documentation."""
    managed = sorted(policy.managed_labels)
    terms = sorted({t for r in policy.rules for t in (*(r.text_any or ()), *(r.text_all or ()))})
    customers = policy.doc.customers
    orgs = [c.match.organization for c in customers if c.match.organization] + ["Unknown Ltd"]
    emails = [f"a@{c.match.email_domain}" for c in customers if c.match.email_domain]
    emails += ["x@unknown.example", "not-an-email"]
    valid = _valid_values(model)
    fields = sorted({r.field for reqs in policy.requirements.values() for r in reqs
                     if not r.attachment})
    value = {f: st.sampled_from([*valid.get(f, []), "", "x", "no"]) for f in fields}
    # The last value a story writes to a field is the one that satisfies it; drawing the full
    # set half of the time makes tickets that really climb, not only ones that are held back.
    complete: dict[str, FieldValue] = {f: valid[f][-1] for f in fields if f in valid}
    # The plan that reaches highest, drawn more often so that requests are not mostly refused.
    top = max(policy.plans, key=lambda n: policy.rank[policy.plans[n].max_tier])
    docs = st.one_of(st.just(complete), st.fixed_dictionaries({}, optional=value))
    return st.builds(
        lambda labels, extra, words, priority, org, email, plan, docs, attachments, note: Ticket(
            key="P-1",
            subject=" ".join(words[:2]),
            description=" ".join(words[2:]),
            labels=frozenset(labels) | frozenset(extra),
            priority=priority,
            customer=Customer(organization=org, email=email, plan=plan),
            fields=docs,
            attachments=attachments,
            last_note_key=note,
        ),
        st.sets(st.sampled_from(managed), max_size=4),
        st.sets(st.sampled_from(["vip", "Tier-L2", "ESCALATE-L3", "customer-x"]), max_size=2),
        st.lists(st.sampled_from([*terms, "nas", "sync stopped", ""]), min_size=1, max_size=5),
        st.sampled_from([None, "low", "medium", "high", "urgent"]),
        st.sampled_from([None, *orgs]),
        st.sampled_from([None, *emails]),
        st.sampled_from([None, top, top, *policy.plans, "gold"]),
        docs,
        st.integers(0, 2),
        st.sampled_from([None, "0123456789abcdef"]),
    )


def _check(policy: Policy, t: Ticket) -> None:
    d = decide(t, policy, now=NOW)
    after = apply_decision(t, d)
    # Labels are matched regardless of case; an agent's "Tier-L2" alone counts as tier-l2.
    tier_labels = {x.lower() for x in after.labels if x.lower() in policy.tier_by_label}
    # exactly one tier label, the decided one (or none for a routed ticket)
    if d.tier is not None:
        assert tier_labels == {policy.tier_label[d.tier]}, (t, d.to_dict())
    else:
        assert d.route is not None and not tier_labels, (t, d.to_dict())
        return
    rank = policy.rank
    # never beyond the plan, unless an agent had already put it higher
    cap = policy.plans[d.plan].max_tier if d.plan else policy.unverified_max_tier
    prev = rank[d.previous_tier] if d.previous_tier else -1
    assert rank[d.tier] <= max(rank[cap], prev), (t, d.to_dict())
    # never lowered, and a tier entered has all its documentation
    assert rank[d.tier] >= prev
    if d.tier != d.previous_tier and d.previous_tier is not None:
        problems = [_requirement_problem(r, t) for r in policy.requirements[d.tier]]
        assert problems == [None] * len(problems), (t, d.to_dict())
    # idempotent: deciding on the applied result writes nothing
    again = decide(after, policy, now=NOW)
    assert not again.changed, (t, d.to_dict(), again.to_dict())


@pytest.mark.parametrize("model", MODELS)
def test_reference_policy_properties(model: str) -> None:
    """Any ticket under the model: one tier label, within the plan, documented, idempotent."""
    policy = policy_of(f"{model}.yaml")

    @SETTINGS
    @given(t=tickets(policy, model))
    def check(t: Ticket) -> None:
        _check(policy, t)

    check()


PARTNER = "partner-three-level.yaml"


@SETTINGS
@given(data=st.data())
def test_partner_unentitled_never_reach_l3(data: Any) -> None:
    """Under the partner model only a vendor contract lets a ticket enter L3."""
    policy = policy_of(PARTNER)
    t = data.draw(tickets(policy, "partner-three-level"))
    d = decide(t, policy, now=NOW)
    if d.tier == "L3" and d.previous_tier != "L3":
        assert d.plan in {"vendor-standard", "vendor-premier"}, d.to_dict()
