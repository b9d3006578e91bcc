"""Table tests: one row per case for every decision semantic of the policy engine."""

from __future__ import annotations

from typing import Any

import pytest

from tests.tiering.conftest import DOCS_L2, DOCS_L3, applied, run, ticket
from tiering import Policy

# Each row: id, ticket arguments, expected (tier, previous, labels_add, labels_remove, assign,
# missing fields, comment wanted). A row's number is the step of `decide` it pins (the steps are
# listed in tiering/engine.py's docstring).
ROWS: list[tuple[str, dict[str, Any], tuple[Any, ...]]] = [
    # 1. current tier comes from the tier label; nothing to do for a settled ticket
    ("settled-l2", {"labels": ("tier-l2",)},
     ("L2", "L2", (), (), None, (), False)),
    # 1. two tier labels: the highest wins and the other is removed (exactly one tier label)
    ("two-tier-labels", {"labels": ("tier-l1", "tier-l2")},
     ("L2", "L2", (), ("tier-l1",), None, (), False)),
    # 1. tier labels are matched regardless of case
    ("label-case", {"labels": ("Tier-L2",)},
     ("L2", "L2", (), (), None, (), False)),
    # 2. an agent's request with complete documentation is granted and the request removed
    ("request-granted", {"labels": ("tier-l1", "escalate-l2"), "fields": DOCS_L2, "attachments": 1},
     ("L2", "L1", ("tier-l2",), ("escalate-l2", "tier-l1"), "L2", (), False)),
    # 2. the highest request wins; every request label goes once granted
    ("highest-request", {"labels": ("tier-l2", "escalate-l3", "escalate-l4"), "fields": DOCS_L3,
                         "attachments": 1},
     ("L4", "L2", ("tier-l4", "vendor-engaged"), ("escalate-l3", "escalate-l4", "tier-l2"), "L4",
      (), False)),
    # 2. a request for the tier the ticket is already in (or below) is simply removed
    ("request-already-met", {"labels": ("tier-l3", "escalate-l2")},
     ("L3", "L3", (), ("escalate-l2",), None, (), False)),
    # 4. first triage by rule: password reset lands in L1 and is assigned there
    ("rule-password", {"subject": "Locked out", "description": "please help"},
     ("L1", None, ("tier-l1",), (), "L1", (), False)),
    # 4. first triage by rule with suggestions: L0, no target, a note with the links
    ("rule-how-to", {"subject": "How do I export?"},
     ("L0", None, ("tier-l0",), (), None, (), True)),
    # 4. no rule: default tier
    ("default-tier", {},
     ("L1", None, ("tier-l1",), (), "L1", (), False)),
    # 4. rules never move a ticket that already has a tier
    ("rule-ignored-with-tier", {"labels": ("tier-l1",), "subject": "How do I export?"},
     ("L1", "L1", (), (), None, (), False)),
    # 4. a rule's priority condition must hold too (crash at low priority is not L2)
    ("rule-priority", {"subject": "App crash", "priority": "low"},
     ("L1", None, ("tier-l1",), (), "L1", (), False)),
    # 5. entitlement: plan caps an agent's request; request removed, flag added, note says why
    ("request-over-plan", {"labels": ("tier-l1", "escalate-l3"), "org": "Initech"},
     ("L1", "L1", ("tier-entitlement-exceeded",), ("escalate-l3",), None, (), True)),
    # 3, 5. entitlement by email domain (standard: up to L2) caps an L3 request at L2
    ("request-capped-at-l2", {"labels": ("tier-l1", "escalate-l3"), "org": None,
                              "email": "x@globex.example", "fields": DOCS_L2, "attachments": 1},
     ("L2", "L1", ("tier-entitlement-exceeded", "tier-l2"), ("escalate-l3", "tier-l1"), "L2", (),
      True)),
    # 5. a rule's tier above the plan is capped too (basic customer's crash)
    ("rule-over-plan", {"subject": "crash", "priority": "high", "org": "Initech"},
     ("L1", None, ("tier-entitlement-exceeded", "tier-l1"), (), "L1", (), True)),
    # 3. unknown customer: unverified, at most L1, a note on first triage
    ("unverified", {"org": None, "email": "a@nowhere.example"},
     ("L1", None, ("tier-l1", "tier-unverified"), (), "L1", (), True)),
    # 5. unverified customer asking for L2: refused at L1
    ("unverified-request", {"labels": ("tier-l1", "tier-unverified", "escalate-l2"), "org": None,
                            "fields": DOCS_L2, "attachments": 1},
     ("L1", "L1", ("tier-entitlement-exceeded",), ("escalate-l2",), None, (), True)),
    # 3. a plan from the vendor's organization record wins over the customers list
    ("vendor-plan-wins", {"labels": ("tier-l1", "escalate-l2"), "org": "Initech",
                          "plan": "standard", "fields": DOCS_L2, "attachments": 1},
     ("L2", "L1", ("tier-l2",), ("escalate-l2", "tier-l1"), "L2", (), False)),
    # 3. a vendor plan the policy does not define is ignored: the customers list decides
    ("vendor-plan-unknown-listed", {"labels": ("tier-l1",), "org": "Acme Corp", "plan": "gold"},
     ("L1", "L1", (), (), None, (), False)),
    # 3. ...and with no listed match either, the customer is unverified
    ("vendor-plan-unknown", {"labels": ("tier-l1",), "org": "Hooli", "plan": "gold"},
     ("L1", "L1", ("tier-unverified",), (), None, (), False)),
    # 6. documentation gate: a premium crash is asked up to L2 but stays in L1 with a checklist
    ("docs-missing-rule", {"subject": "App crash", "priority": "high"},
     ("L1", None, ("escalate-l2", "tier-docs-missing", "tier-l1"), (), "L1",
      ("steps_to_reproduce", "product_version", "diagnostics", "category"), True)),
    # 6. documentation gate on an agent's request keeps the request label
    ("docs-missing-request", {"labels": ("tier-l1", "escalate-l2"),
                              "fields": {"steps_to_reproduce": "too short"}},
     ("L1", "L1", ("tier-docs-missing",), (), None,
      ("steps_to_reproduce", "product_version", "diagnostics", "category"), True)),
    # 6. L3 needs L2's documentation and its own: stops at L2 when only L2's is complete
    ("docs-partial-l3", {"labels": ("tier-l1", "escalate-l3"), "fields": DOCS_L2,
                         "attachments": 1},
     ("L2", "L1", ("tier-docs-missing", "tier-l2"), ("tier-l1",), "L2", ("reproduced",), True)),
    # 6. pattern and one_of are checked, not just presence
    ("docs-wrong-form", {"labels": ("tier-l1", "escalate-l2"), "attachments": 1,
                         "fields": {**DOCS_L2, "product_version": "latest", "category": "other"}},
     ("L1", "L1", ("tier-docs-missing",), (), None, ("product_version", "category"), True)),
    # 6. a multi-select value satisfies one_of when any option is allowed
    ("docs-multiselect", {"labels": ("tier-l1", "escalate-l2"), "attachments": 1,
                          "fields": {**DOCS_L2, "category": ("api", "bugfix")}},
     ("L2", "L1", ("tier-l2",), ("escalate-l2", "tier-l1"), "L2", (), False)),
    # 6. once documentation is complete the ticket escalates by itself, flags cleared
    ("docs-complete", {"labels": ("tier-l1", "escalate-l2", "tier-docs-missing"),
                       "fields": DOCS_L2, "attachments": 1, "last_note_key": "0123456789abcdef"},
     ("L2", "L1", ("tier-l2",), ("escalate-l2", "tier-docs-missing", "tier-l1"), "L2", (), True)),
    # 5. never de-escalate: a ticket in L3 whose customer only has L1 stays in L3, flagged
    ("no-deescalation", {"labels": ("tier-l3",), "org": "Initech"},
     ("L3", "L3", ("tier-entitlement-exceeded",), (), None, (), False)),
    # 8. an agent's own assignment within a tier is left alone (no assign when tier is unchanged)
    ("keep-assignment", {"labels": ("tier-l2", "customer-vip")},
     ("L2", "L2", (), (), None, (), False)),
    # 7. labels agents set are never removed
    ("foreign-labels-kept", {"labels": ("tier-l1", "vip", "escalate-l2"), "fields": DOCS_L2,
                             "attachments": 1},
     ("L2", "L1", ("tier-l2",), ("escalate-l2", "tier-l1"), "L2", (), False)),
    # 4. a route rule hands the ticket to billing, with no tier
    ("route", {"subject": "Invoice for October"},
     (None, None, ("tier-route-billing",), (), "billing", (), False)),
    # 4. a routed ticket is not triaged again
    ("routed-stays", {"subject": "Invoice for October", "labels": ("tier-route-billing",)},
     (None, None, (), (), None, (), False)),
    # 4. a routed ticket an agent escalates leaves the route and gets a tier
    ("route-escalated", {"subject": "Invoice", "labels": ("tier-route-billing", "escalate-l2"),
                         "fields": DOCS_L2, "attachments": 1},
     ("L2", None, ("tier-l2",), ("escalate-l2", "tier-route-billing"), "L2", (), False)),
    # 6. a requirement with `when` applies while its condition holds: a bug report needs
    #    "reproduced" before L3
    ("docs-when-applies", {"labels": ("tier-l2", "escalate-l3"), "fields": DOCS_L2,
                           "attachments": 1},
     ("L2", "L2", ("tier-docs-missing",), (), None, ("reproduced",), True)),
    # 6. ...and not otherwise: an improvement enters L3 without it
    ("docs-when-not", {"labels": ("tier-l2", "escalate-l3"),
                       "fields": {**DOCS_L2, "category": "improvement"}, "attachments": 1},
     ("L3", "L2", ("tier-l3",), ("escalate-l3", "tier-l2"), "L3", (), False)),
    # 6. a condition on a multi-select holds when any option is one of its values
    ("docs-when-multiselect", {"labels": ("tier-l2", "escalate-l3"),
                               "fields": {**DOCS_L2, "category": ("api", "bugfix")},
                               "attachments": 1},
     ("L2", "L2", ("tier-docs-missing",), (), None, ("reproduced",), True)),
    # 7. entering a tier adds its target's labels (targets.L4.labels: [vendor-engaged])
    ("target-labels-added", {"labels": ("tier-l3", "escalate-l4"), "fields": DOCS_L3,
                             "attachments": 1},
     ("L4", "L3", ("tier-l4", "vendor-engaged"), ("escalate-l4", "tier-l3"), "L4", (), False)),
    # 7. a ticket in the tier keeps them: nothing to write
    ("target-labels-kept", {"labels": ("tier-l4", "vendor-engaged")},
     ("L4", "L4", (), (), None, (), False)),
    # 7. a ticket in the tier that lost them gets them back (they are managed like tier labels)
    ("target-labels-restored", {"labels": ("tier-l4",)},
     ("L4", "L4", ("vendor-engaged",), (), None, (), False)),
    # 7. another tier's target label goes (they are removed on leaving the tier)
    ("target-labels-removed", {"labels": ("tier-l2", "vendor-engaged")},
     ("L2", "L2", (), ("vendor-engaged",), None, (), False)),
    # 2, 4. an agent's route-billing on a ticket in a tier routes it: tier and request go
    ("route-request", {"labels": ("tier-l2", "route-billing")},
     (None, "L2", ("tier-route-billing",), ("route-billing", "tier-l2"), "billing", (), False)),
    # 2, 4. ...whatever managed labels it carries (requests, flags)
    ("route-request-flags", {"labels": ("tier-l1", "escalate-l2", "tier-docs-missing",
                                        "route-billing", "vip")},
     (None, "L1", ("tier-route-billing",),
      ("escalate-l2", "route-billing", "tier-docs-missing", "tier-l1"), "billing", (), False)),
    # 2, 4. a new ticket an agent routes by label goes to billing without triage
    ("route-request-new", {"labels": ("route-billing",), "subject": "App crash",
                           "priority": "high"},
     (None, None, ("tier-route-billing",), ("route-billing",), "billing", (), False)),
    # 2, 4. on a ticket routed there already, only the request label goes (no reassignment)
    ("route-request-again", {"labels": ("tier-route-billing", "route-billing")},
     (None, None, (), ("route-billing",), None, (), False)),
    # 9. a checklist different from the last one posted (another note key) is posted
    ("checklist-new", {"labels": ("tier-l1", "escalate-l2", "tier-docs-missing"),
                             "last_note_key": "d6b0e8f2dd2f4f3c"},
     ("L1", "L1", (), (), None,
      ("steps_to_reproduce", "product_version", "diagnostics", "category"), True)),
]


@pytest.mark.parametrize(("case", "kwargs", "expected"), ROWS, ids=[r[0] for r in ROWS])
def test_decision_table(policy: Policy, case: str, kwargs: dict[str, Any],
                        expected: tuple[Any, ...]) -> None:
    """Each row pins one semantic: tier, labels added/removed, assignment, missing items, note."""
    tier, previous, add, remove, assign, missing, note = expected
    d = run(ticket(**kwargs), policy)
    assert d.tier == tier
    assert d.previous_tier == previous
    assert d.labels_add == add
    assert d.labels_remove == remove
    assert d.assign == assign
    assert tuple(i.field for i in d.missing) == missing
    assert (d.comment is not None) == note, d.comment
    assert d.reasons, "every decision explains itself"


def test_unchanged_checklist_is_not_posted_twice(policy: Policy) -> None:
    """A checklist note is posted once; the same missing list later posts nothing."""
    t = ticket(labels=("tier-l1", "escalate-l2"))
    first = run(t, policy)
    assert first.comment is not None and first.note_key is not None
    again = run(applied(t, first), policy)
    assert again.comment is None
    assert not again.changed


def test_checklist_reposted_when_missing_list_changes(policy: Policy) -> None:
    """When an agent fills in one item, a new checklist with that item ticked is posted."""
    t = ticket(labels=("tier-l1", "escalate-l2"))
    first = run(t, policy)
    t2 = applied(t, first)
    t3 = ticket(labels=tuple(t2.labels),
                fields={"steps_to_reproduce": DOCS_L2["steps_to_reproduce"]},
                last_note_key=t2.last_note_key)
    second = run(t3, policy)
    assert second.comment is not None
    assert "✔ Steps to reproduce" in second.comment
    assert "1 of 4 done" in second.comment
    assert second.note_key != first.note_key
    assert second.labels_add == () and second.labels_remove == ()


def test_note_text_lists_items_reasons_and_marker(policy: Policy) -> None:
    """The note names every item, ticked or not, why, and ends with the tierdesk marker."""
    d = run(ticket(subject="App crash", priority="high"), policy)
    assert d.comment is not None
    assert d.comment.splitlines()[-1] == f"tierdesk-note:{d.note_key}"
    assert "Checklist for L2 (0 of 4 done):" in d.comment
    assert "✘ Steps to reproduce — missing" in d.comment
    assert "✘ Logs, traces or screenshots attached — no attachment yet" in d.comment
    assert 'Why: rule "crash"; plan premium (up to L4).' in d.comment


def test_how_to_note_carries_suggestions(policy: Policy) -> None:
    """An L0 rule's self-help links go into the agent's note."""
    d = run(ticket(subject="Where can I find the export?"), policy)
    assert d.suggestions == ("https://docs.example.com/faq", "https://docs.example.com/release-notes")
    assert d.comment is not None and "- https://docs.example.com/faq" in d.comment


def test_refusal_note_says_why(policy: Policy) -> None:
    """A refused escalation is explained in the note with the plan and its limit."""
    d = run(ticket(labels=("tier-l1", "escalate-l3"), org="Initech"), policy)
    assert d.comment is not None
    assert "L3 is beyond what plan basic allows (L1)" in d.comment
    assert "the escalation request was refused" in d.comment


def test_no_change_decision_makes_no_write(policy: Policy) -> None:
    """A settled ticket yields a decision with nothing to write and says so."""
    d = run(ticket(labels=("tier-l2",)), policy)
    assert not d.changed
    assert d.reasons[-1] == "The ticket already matches the policy: nothing to write."


def test_decision_json_has_documented_keys(policy: Policy) -> None:
    """The JSON view carries at least the keys `tierdesk decide` documents."""
    out = run(ticket(subject="App crash", priority="high"), policy).to_dict()
    for key in ("tier", "previous_tier", "labels_add", "labels_remove", "assign", "missing",
                "comment", "reasons"):
        assert key in out
    assert out["missing"][0] == {"tier": "L2", "field": "steps_to_reproduce",
                                 "label": "Steps to reproduce", "problem": "missing"}


def test_whole_words_rule_ignores_terms_inside_words() -> None:
    """With whole_words, "nas" matches "our NAS died" but not "a nasty bug"."""
    from tiering import load_policy

    p = load_policy(
        "version: 1\ntiers: [L1, L2]\ndefault_tier: L1\ndefault_plan: all\n"
        "plans: {all: {max_tier: L2}}\n"
        "rules:\n  - name: nas\n    when: {text_any: [nas], whole_words: true}\n    tier: L2\n",
        source="p.yaml",
    )
    assert run(ticket(subject="Our NAS died", org=None), p).tier == "L2"
    assert run(ticket(subject="NAS", org=None), p).tier == "L2"
    assert run(ticket(subject="a nasty bug", org=None), p).tier == "L1"
    assert run(ticket(subject="see nas-01, please", org=None), p).tier == "L2"
