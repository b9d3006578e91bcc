"""Policy loading: valid files compile, every kind of mistake is refused with file, path and why."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from tiering import PolicyError, load_policy
from webhooks.defaults import default_policy_text

EXAMPLE = default_policy_text()


def _edit(mutate: object) -> str:
    data = yaml.safe_load(EXAMPLE)
    assert callable(mutate)
    mutate(data)
    return yaml.safe_dump(data, sort_keys=False)


def test_example_policy_loads() -> None:
    """The shipped example policy is valid and summarised in one line."""
    p = load_policy(EXAMPLE, source="policy.yaml")
    assert p.summary() == (
        "policy.yaml: OK: 5 tiers (L0, L1, L2, L3, L4), 3 plans, 3 customers, 4 rules,"
        " 5 documentation requirements, 5 targets; 1 calendars, SLA targets for 2 plans"
    )
    assert len(p.digest) == 64


def test_deploy_copy_is_the_embedded_policy() -> None:
    """deploy/policy.example.yaml is exactly the policy embedded in the package."""
    root = Path(__file__).resolve().parents[2]
    assert (root / "deploy" / "policy.example.yaml").read_text(encoding="utf-8") == EXAMPLE


def _set(path: str, value: object):  # type: ignore[no-untyped-def]
    def mutate(d: dict) -> None:  # type: ignore[type-arg]
        *parents, last = path.split("/")
        for p in parents:
            d = d[int(p)] if isinstance(d, list) else d[p]
        if isinstance(d, list):
            d[int(last)] = value
        else:
            d[last] = value
    return mutate


def _del(path: str):  # type: ignore[no-untyped-def]
    def mutate(d: dict) -> None:  # type: ignore[type-arg]
        *parents, last = path.split("/")
        for p in parents:
            d = d[int(p)] if isinstance(d, list) else d[p]
        del d[last]
    return mutate


def _append_rule(rule: dict) -> object:  # type: ignore[type-arg]
    def mutate(d: dict) -> None:  # type: ignore[type-arg]
        d["rules"].append(rule)
    return mutate


# Each row: a mistake, and the exact message it must produce (file: path: what was expected).
BAD = [
    # a wrong type names the key path and what was expected
    ("targets/L3/zendesk/group_id", _set("targets/L3/zendesk/group_id", "three"),
     'policy.yaml: targets.L3.zendesk.group_id: expected an integer, got "three"'),
    # an unknown tier in a plan
    ("plan-tier", _set("plans/basic/max_tier", "L9"),
     'policy.yaml: plans.basic.max_tier: unknown tier "L9" (tiers are: L0, L1, L2, L3, L4)'),
    # an unknown default tier
    ("default-tier", _set("default_tier", "L7"),
     'policy.yaml: default_tier: unknown tier "L7" (tiers are: L0, L1, L2, L3, L4)'),
    # an unknown plan for a customer
    ("customer-plan", _set("customers/0/plan", "gold"),
     'policy.yaml: customers[0].plan: unknown plan "gold" (plans are: basic, standard, premium)'),
    # an unknown default plan
    ("default-plan", _set("default_plan", "gold"),
     'policy.yaml: default_plan: unknown plan "gold" (plans are: basic, standard, premium)'),
    # a documentation field that is not mapped
    ("doc-field", _set("documentation/L3/0/field", "lab_result"),
     'policy.yaml: documentation.L3[0].field: unknown field "lab_result": map it under fields'
     " (or set attachment: true for an attachment requirement)"),
    # an invalid regular expression
    ("regex", _set("documentation/L2/1/pattern", "(["),
     "policy.yaml: documentation.L2[1].pattern: invalid regular expression: missing ]: ["),
    # a rule that can never match because an earlier rule catches everything it would
    ("shadowed-rule", _append_rule({"name": "reset2", "when": {"text_any": ["password reset now"]},
                                    "tier": "L2"}),
     'policy.yaml: rules[4].when: can never match: rules[0] ("password-reset") comes first and'
     " matches every ticket this rule matches"),
    # a rule with an empty condition list can never match
    ("empty-list", _append_rule({"name": "nothing", "when": {"text_any": []}, "tier": "L2"}),
     "policy.yaml: rules[4].when.text_any: an empty list can never match; remove the key or add"
     " values"),
    # a rule must set a tier or a route, not both
    ("tier-and-route", _append_rule({"name": "both", "when": {"text_any": ["zz"]}, "tier": "L2",
                                     "route": "billing"}),
     "policy.yaml: rules[4]: give exactly one of tier or route"),
    # by_label is a route's option, not a tier's
    ("by-label-tier", _set("rules/0/by_label", True),
     "policy.yaml: rules[0]: by_label goes with route, not with tier"),
    # a route needs a target
    ("route-target", _append_rule({"name": "sales", "when": {"text_any": ["quote"]},
                                   "route": "sales"}),
     'policy.yaml: rules[4].route: route "sales" has no entry under targets (add targets.sales)'),
    # a misspelt key is not silently ignored, and the closest allowed key is named
    ("typo", _set("rules/0/tierr", "L1"),
     'policy.yaml: rules[0].tierr: unknown key; did you mean "tier"?'),
    # an unknown key like no allowed one is sent to the policy reference
    ("unknown-key", _set("rules/0/colour", "red"),
     "policy.yaml: rules[0].colour: unknown key (check its spelling against the policy"
     " reference)"),
    # a misspelt plan is named with the plan it probably means
    ("plan-typo", _set("customers/0/plan", "premum"),
     'policy.yaml: customers[0].plan: unknown plan "premum" (plans are: basic, standard,'
     ' premium); did you mean "premium"?'),
    # a missing required key
    ("missing", _del("tiers"), "policy.yaml: tiers: required key is missing"),
    # the format version
    ("version", _set("version", 2), "policy.yaml: version: expected 1, got 2"),
    # a customer match must say how to match
    ("match-empty", _set("customers/0/match", {}),
     "policy.yaml: customers[0].match: give exactly one of organization, email_domain or email"
     " (got none)"),
    # a duplicate customer entry can never be used
    ("dup-customer", _set("customers/1", {"match": {"organization": "acme corp"},
                                           "plan": "basic"}),
     "policy.yaml: customers[1].match: never used: customers[0] already matches organization"
     " 'acme corp'"),
    # a target that is neither a tier nor a route
    ("stray-target", _set("targets/sales", {"zendesk": {"group_id": 5}}),
     'policy.yaml: targets.sales: "sales" is neither a tier nor a route used by a rule'
     " (tiers are: L0, L1, L2, L3, L4)"),
    # a requirement's condition names a field that exists
    ("when-field", _set("documentation/L3/0/when", {"field": "categroy"}),
     'policy.yaml: documentation.L3[0].when.field: unknown field "categroy": map it under'
     ' fields; did you mean "category"?'),
    # ...and not its own field
    ("when-own-field", _set("documentation/L3/0/when", {"field": "reproduced"}),
     "policy.yaml: documentation.L3[0].when.field: a requirement cannot depend on its own field"),
    # a target's extra label may not be one of tierdesk's own
    ("target-label-own", _set("targets/L4/labels", ["tier-l2"]),
     'policy.yaml: targets.L4.labels[0]: "tier-l2" is one of tierdesk\'s own labels; choose'
     " another name"),
    # ...nor listed twice
    ("target-label-twice", _set("targets/L4/labels", ["x", "X"]),
     'policy.yaml: targets.L4.labels[1]: label "X" is listed twice'),
    # tier names end up in labels and must be label-safe
    ("tier-name", _set("tiers/0", "L 0"),
     'policy.yaml: tiers[0]: "L 0" is not a valid name: use letters, digits, \'-\', \'_\' or'
     " '.', starting with a letter or digit"),
]


@pytest.mark.parametrize(("case", "mutate", "message"), BAD, ids=[b[0] for b in BAD])
def test_bad_policy_is_refused_with_a_clear_message(case: str, mutate: object,
                                                    message: str) -> None:
    """Each mistake is refused and named by file, key path and what was expected."""
    with pytest.raises(PolicyError) as info:
        load_policy(_edit(mutate), source="policy.yaml")
    rendered = [re.sub(r" \(line \d+\)$", "", line) for line in info.value.lines]
    assert message in rendered, rendered


def test_every_error_is_listed_with_its_line() -> None:
    """Several mistakes are all reported, each with the line it is on."""
    text = EXAMPLE.replace("max_tier: L1\n", "max_tier: L9\n", 1).replace(
        "default_tier: L1", "default_tier: L8")
    with pytest.raises(PolicyError) as info:
        load_policy(text, source="p.yaml")
    lines = info.value.lines
    assert len(lines) == 2
    default_line = EXAMPLE.splitlines().index("default_tier: L1") + 1
    assert (
        'p.yaml: default_tier: unknown tier "L8" (tiers are: L0, L1, L2, L3, L4)'
        f" (line {default_line})"
    ) in lines


def test_invalid_yaml_names_the_line() -> None:
    """Broken YAML is refused with the parser's complaint and the line."""
    with pytest.raises(PolicyError) as info:
        load_policy("version: 1\ntiers: [L0, L1\n", source="p.yaml")
    assert info.value.lines[0].startswith("p.yaml: not valid YAML:")
    assert info.value.lines[0].endswith("(line 3)")


def test_non_mapping_is_refused() -> None:
    """A file that is not a mapping of keys is refused with what it is instead."""
    with pytest.raises(PolicyError) as info:
        load_policy("- a\n- b\n", source="p.yaml")
    assert info.value.lines == ["p.yaml: expected a mapping of policy keys, got a list (line 1)"]
