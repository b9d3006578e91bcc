"""`diff_policies` and `tierdesk policy diff`: differences of meaning between two policies, one
line each, and nothing for a change of comments or layout."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from tiering import load_policy
from tiering.diff import diff_policies
from webhooks.cli import main
from webhooks.defaults import default_policy_text

EXAMPLE = default_policy_text()


def _changed(mutate: Any) -> str:
    data = yaml.safe_load(EXAMPLE)
    mutate(data)
    return yaml.safe_dump(data, sort_keys=False)


def _rule(name: str) -> Any:
    def find(d: dict[str, Any]) -> dict[str, Any]:
        return next(r for r in d["rules"] if r["name"] == name)
    return find


def _move_last_rule_first(d: dict[str, Any]) -> None:
    d["rules"].insert(0, d["rules"].pop())


# Each row: a change to the example policy and the exact lines the diff prints.
ROWS: list[tuple[str, Any, list[str]]] = [
    # layout and comments only: nothing differs
    ("layout", lambda d: None, []),
    # a default written out is the same policy
    ("explicit-default", lambda d: d["rules"][0]["when"].update(whole_words=False), []),
    # a rule's target tier changes
    ("rule-tier", lambda d: _rule("crash")(d).update(tier="L3"),
     ['rules["crash"].tier: "L2" → "L3"']),
    # a rule is added, at its position, with its outcome and conditions
    ("rule-added", lambda d: d["rules"].insert(1, {"name": "sso", "when": {"text_any": ["sso"]},
                                                  "tier": "L2"}),
     ['rules: "sso" added at rules[1] (tier L2, when {text_any: ["sso"]})']),
    # a rule is removed
    ("rule-removed", lambda d: d["rules"].pop(0),
     ['rules: "password-reset" removed (was rules[0])']),
    # rules reordered: rules are told apart by name, and the diff says so
    ("rule-moved", _move_last_rule_first,
     ["rules: order changed (rules are told apart by name; the first match wins): crash,"
      " password-reset, how-to, billing (was password-reset, how-to, billing, crash)"]),
    # a rule renamed with the same content is a rename, not a removal and an addition
    ("rule-renamed", lambda d: _rule("how-to")(d).update(name="usage"),
     ['rules: "how-to" renamed to "usage" (same conditions and outcome)']),
    # a rule's conditions change
    ("rule-when", lambda d: _rule("crash")(d)["when"].update(priority_in=["urgent"]),
     ['rules["crash"].when.priority_in: ["highest", "high", "urgent"] → ["urgent"]']),
    # a target changes
    ("target", lambda d: d["targets"]["L2"]["zendesk"].update(group_id=250),
     ["targets.L2.zendesk.group_id: 200 → 250"]),
    # a target is added
    ("target-added", lambda d: d["targets"].update(L0={"zendesk": {"group_id": 50}}),
     ["targets.L0: added {zendesk: {group_id: 50}}"]),
    # a plan changes what it covers
    ("plan", lambda d: d["plans"]["standard"].update(max_tier="L3"),
     ['plans.standard.max_tier: "L2" → "L3"']),
    # a plan is added
    ("plan-added", lambda d: d["plans"].update(gold={"max_tier": "L4"}),
     ['plans.gold: added {max_tier: "L4"}']),
    # a tier is added at the top
    ("tier-added", lambda d: d["tiers"].append("L5"), ['tiers: "L5" added']),
    # a customer changes plan (customers are told apart by their match)
    ("customer", lambda d: d["customers"][2].update(plan="standard"),
     ['customers[organization "Initech"].plan: "basic" → "standard"']),
    # a requirement is tightened (requirements are told apart by tier and field)
    ("requirement", lambda d: d["documentation"]["L2"][0].update(min_length=40),
     ['documentation.L2[field "steps_to_reproduce"].min_length: 20 → 40']),
    # a field moves in Jira
    ("field", lambda d: d["fields"]["category"].update(jira="customfield_1"),
     ['fields.category.jira: "customfield_10103" → "customfield_1"']),
    # the default tier changes
    ("default-tier", lambda d: d.update(default_tier="L0"), ['default_tier: "L1" → "L0"']),
    # an SLA target changes; durations read as written
    ("sla", lambda d: d["sla"]["plans"]["premium"]["tiers"]["L2"].update(resolution="2d"),
     ["sla.plans.premium.tiers.L2.resolution: 1d → 2d"]),
]


@pytest.mark.parametrize(("case", "mutate", "expected"), ROWS, ids=[r[0] for r in ROWS])
def test_diff_table(case: str, mutate: Any, expected: list[str]) -> None:
    """Each change to the example policy gives exactly these lines, and nothing else."""
    old = load_policy(EXAMPLE, source="old.yaml")
    new = load_policy(_changed(mutate), source="new.yaml")
    assert diff_policies(old, new) == expected


def _write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


# Each row: the new policy, the options, the exit code and the output expected.
CLI_ROWS = [
    # the same policy: exit 0 and says so
    (EXAMPLE, [], 0, "no semantic differences"),
    # the same policy with --exit-code: still 0
    (EXAMPLE, ["--exit-code"], 0, "no semantic differences"),
    # a difference: exit 0 without --exit-code
    (EXAMPLE.replace("group_id: 200", "group_id: 250"), [], 0,
     "targets.L2.zendesk.group_id: 200 → 250"),
    # a difference with --exit-code: exit 2, as git diff --exit-code
    (EXAMPLE.replace("group_id: 200", "group_id: 250"), ["--exit-code"], 2,
     "targets.L2.zendesk.group_id: 200 → 250"),
    # an invalid file: its policy-check problems, exit 1 (even with --exit-code)
    (EXAMPLE.replace("default_tier: L1", "default_tier: L9"), ["--exit-code"], 1,
     'default_tier: unknown tier "L9"'),
]


@pytest.mark.parametrize(("text", "options", "code", "output"), CLI_ROWS)
def test_policy_diff_command(tmp_path: Path, text: str, options: list[str], code: int,
                             output: str) -> None:
    """`tierdesk policy diff OLD NEW` prints the differences and exits 0, 2 or 1."""
    old = _write(tmp_path, "old.yaml", EXAMPLE)
    new = _write(tmp_path, "new.yaml", text)
    result = CliRunner().invoke(main, ["policy", "diff", *options, old, new])
    assert result.exit_code == code, result.output
    assert output in result.output


def test_policy_diff_missing_file(tmp_path: Path) -> None:
    """A missing file is named, with exit 1."""
    old = _write(tmp_path, "old.yaml", EXAMPLE)
    result = CliRunner().invoke(main, ["policy", "diff", old, str(tmp_path / "nope.yaml")])
    assert result.exit_code == 1
    assert "nope.yaml: no such policy file" in result.output
