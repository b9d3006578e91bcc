"""`load_policy` reports every problem of a file in one pass: a refused type no longer hides the
unknown keys, tiers, plans and fields around it."""

from __future__ import annotations

import pytest

from tiering import PolicyError, load_policy

#: Several problems of each kind: unknown keys, bad types, unknown tiers, plans and fields.
MANY = """\
version: 1
tiers: [L1, L2, L3]
default_tier: L1
plans:
  basic: {max_tier: L1}
  premium: {max_tier: L5}
  gold: {max_tier: 3}
customers:
  - match: {organization: Acme}
    plan: premum
  - match: {organization: Initech}
    plan: basic
    colour: red
default_plan: platinum
rules:
  - name: reset
    when: {text_any: [password], priority_inn: [high]}
    tier: l2
  - name: crash
    when: {text_any: crash}
    tier: L3
  - name: vip
    when: {plan_in: [basic, premiun]}
    tier: L4
documentation:
  L2:
    - {field: steps, label: Steps, min_length: "twenty"}
    - {field: verison, label: Version}
  L3:
    - {field: reproducd, label: Reproduced, one_of: ["yes"]}
fields:
  steps: {jira: customfield_1}
  version: {jira: customfield_2}
  reproduced: {jira: customfield_3, zendesk: "abc"}
targets:
  L1: {zendesk: {group_id: 100}}
  L2: {zendesk: {group_idd: 200}}
entitlment: {unverified_max_tier: L1}
"""

EXPECTED = [
    'p.yaml: plans.premium.max_tier: unknown tier "L5" (tiers are: L1, L2, L3) (line 6)',
    'p.yaml: plans.gold.max_tier: expected a string, got 3 (line 7)',
    # gold is set aside (its max_tier is refused), so the usable plans are listed
    'p.yaml: customers[0].plan: unknown plan "premum" (plans are: basic, premium);'
    ' did you mean "premium"? (line 10)',
    "p.yaml: customers[1].colour: unknown key (check its spelling against the policy"
    " reference) (line 13)",
    'p.yaml: default_plan: unknown plan "platinum" (plans are: basic, premium) (line 14)',
    'p.yaml: rules[0].when.priority_inn: unknown key; did you mean "priority_in"? (line 17)',
    'p.yaml: rules[0].tier: unknown tier "l2" (tiers are: L1, L2, L3); did you mean "L2"?'
    " (line 18)",
    'p.yaml: rules[1].when.text_any: expected a list, got "crash" (line 20)',
    'p.yaml: rules[2].when.plan_in[1]: unknown plan "premiun" (plans are: basic, premium);'
    ' did you mean "premium"? (line 23)',
    'p.yaml: rules[2].tier: unknown tier "L4" (tiers are: L1, L2, L3) (line 24)',
    'p.yaml: documentation.L2[0].min_length: expected an integer, got "twenty" (line 27)',
    'p.yaml: documentation.L2[1].field: unknown field "verison": map it under fields (or set'
    ' attachment: true for an attachment requirement); did you mean "version"? (line 28)',
    'p.yaml: documentation.L3[0].field: unknown field "reproducd": map it under fields (or set'
    ' attachment: true for an attachment requirement); did you mean "reproduced"? (line 30)',
    'p.yaml: fields.reproduced.zendesk: expected an integer, got "abc" (line 34)',
    'p.yaml: targets.L2.zendesk.group_idd: unknown key; did you mean "group_id"? (line 37)',
    'p.yaml: entitlment: unknown key; did you mean "entitlement"? (line 38)',
]


def test_every_problem_is_reported_at_once() -> None:
    """Unknown keys, bad types, unknown tiers, plans and fields all come out of one load, in
    file order, each with its key path, line and (where a name is close) a did-you-mean."""
    with pytest.raises(PolicyError) as info:
        load_policy(MANY, source="p.yaml")
    assert info.value.lines == EXPECTED


# Each row: a policy whose refused value would, checked naively, cause a second, misleading
# problem; only the real one is reported.
SYMPTOMS = [
    # a refused group id leaves `zendesk: {}`, which must not also read "give group_id"
    ("targets:\n  L1: {zendesk: {group_id: one}}\n",
     ['p.yaml: targets.L1.zendesk.group_id: expected an integer, got "one" (line 7)']),
    # a plan whose max_tier is refused still exists: its customer's plan is not "unknown"
    ("plans: {gold: {max_tier: [L1]}}\ncustomers:\n  - {match: {email: a@b.example}, plan: gold}\n",
     ["p.yaml: plans.gold.max_tier: expected a string, got a list (line 6)"]),
    # a refused attachment flag does not turn the requirement into an unknown field
    ("documentation:\n  L1:\n    - {field: logs, label: Logs, attachment: 'yes'}\n",
     ['p.yaml: documentation.L1[0].attachment: expected true or false, got "yes" (line 8)']),
    # a wrong default_tier type is one problem, and the rest is still checked
    ("default_tier: 1\nplans: {x: {max_tier: L9}}\n",
     ["p.yaml: default_tier: expected a string, got 1 (line 5)",
      'p.yaml: plans.x.max_tier: unknown tier "L9" (tiers are: L1, L2) (line 6)']),
    # a refused rule (tier and route) keeps the later rules' indexes in their messages
    ("rules:\n  - {name: a, when: {text_any: [x]}, tier: L1, route: r}\n"
     "  - {name: b, when: {text_any: [y]}, tier: L7}\n",
     ["p.yaml: rules[0]: give exactly one of tier or route (line 7)",
      'p.yaml: rules[1].tier: unknown tier "L7" (tiers are: L1, L2) (line 8)']),
]


@pytest.mark.parametrize(("extra", "expected"), SYMPTOMS)
def test_a_refused_value_causes_no_second_problem(extra: str, expected: list[str]) -> None:
    """The checks of meaning skip what a structural problem already explains."""
    base = "version: 1\ntiers: [L1, L2]\ndefault_tier: L1\ndefault_plan: null\nfields: {}\n"
    text = base.replace("default_tier: L1\n", "") if extra.startswith("default_tier") else base
    with pytest.raises(PolicyError) as info:
        load_policy(text + extra, source="p.yaml")
    assert info.value.lines == expected


def test_missing_tiers_reports_structure_only() -> None:
    """Without `tiers` the names cannot be checked: the structural problems are all listed."""
    with pytest.raises(PolicyError) as info:
        load_policy("version: 2\ndefault_tier: L1\nrulez: []\n", source="p.yaml")
    assert info.value.lines == [
        "p.yaml: tiers: required key is missing",
        "p.yaml: version: expected 1, got 2 (line 1)",
        'p.yaml: rulez: unknown key; did you mean "rules"? (line 3)',
    ]
