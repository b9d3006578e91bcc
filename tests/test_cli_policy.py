"""`tierdesk policy check` and `tierdesk decide` as an admin runs them, on the shipped examples."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from webhooks.cli import main

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "deploy" / "examples"
POLICY = str(ROOT / "deploy" / "policy.example.yaml")
NOW = "2026-11-21T12:00:00+00:00"


def _decide(*args: str) -> Any:
    result = CliRunner().invoke(main, ["decide", "--policy", POLICY, "--now", NOW, *args])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_policy_check_ok_prints_summary() -> None:
    """A valid policy prints a one-line summary and exits 0."""
    result = CliRunner().invoke(main, ["policy", "check", POLICY])
    assert result.exit_code == 0
    assert result.output.strip().endswith(
        "OK: 5 tiers (L0, L1, L2, L3, L4), 3 plans, 3 customers, 4 rules,"
        " 5 documentation requirements, 5 targets; 1 calendars, SLA targets for 2 plans")


def test_policy_check_bad_lists_errors_and_exits_1(tmp_path: Path) -> None:
    """A bad policy prints every error with file and key path and exits 1."""
    bad = tmp_path / "bad.yaml"
    text = Path(POLICY).read_text(encoding="utf-8")
    bad.write_text(text.replace("group_id: 300", 'group_id: "three"'), encoding="utf-8")
    result = CliRunner().invoke(main, ["policy", "check", str(bad)])
    assert result.exit_code == 1
    assert f'{bad}: targets.L3.zendesk.group_id: expected an integer, got "three"' in result.output
    assert "1 problem(s); the policy was refused." in result.output


def test_policy_check_lists_type_and_name_problems_together(tmp_path: Path) -> None:
    """A type error no longer hides the unknown names: both come out of one `policy check`."""
    bad = tmp_path / "bad.yaml"
    text = Path(POLICY).read_text(encoding="utf-8")
    bad.write_text(text.replace("group_id: 300", 'group_id: "three"')
                   .replace("plan: standard", "plan: standrad"), encoding="utf-8")
    result = CliRunner().invoke(main, ["policy", "check", str(bad)])
    assert result.exit_code == 1
    assert [line.split(" (line ")[0] for line in result.output.splitlines()] == [
        f'{bad}: customers[1].plan: unknown plan "standrad" (plans are: basic, standard,'
        ' premium); did you mean "standard"?',
        f'{bad}: targets.L3.zendesk.group_id: expected an integer, got "three"',
        f"{bad}: 2 problem(s); the policy was refused.",
    ]


def test_policy_check_missing_file() -> None:
    """A missing file is named, with exit 1."""
    result = CliRunner().invoke(main, ["policy", "check", "nope.yaml"])
    assert result.exit_code == 1
    assert "nope.yaml: no such policy file" in result.output


# Each row: an example ticket shipped under deploy/examples and the decision it must give.
EXAMPLE_ROWS = [
    # an L0 how-to question gets self-help suggestions, no assignment
    ("how-to.json", "L0", ["tier-l0"], [], None, 0, True),
    # a password reset lands in L1
    ("password-reset.json", "L1", ["tier-l1"], [], "L1", 0, False),
    # a premium crash is asked up to L2 but lacks documentation: L1, checklist, request label
    ("crash-premium.json", "L1", ["escalate-l2", "tier-docs-missing", "tier-l1"], [], "L1", 4,
     True),
    # once documented it escalates by itself
    ("crash-premium-documented.json", "L2", ["tier-l2"],
     ["escalate-l2", "tier-docs-missing", "tier-l1"], "L2", 0, True),
    # a basic-plan customer's L3 request is refused with the reason
    ("escalate-l3-basic.json", "L1", ["tier-entitlement-exceeded"], ["escalate-l3"], None, 0,
     True),
    # an invoice question is routed to billing, no tier
    ("invoice.json", None, ["tier-route-billing"], [], "billing", 0, False),
    # an unknown customer is marked unverified
    ("unknown-customer.json", "L1", ["tier-l1", "tier-unverified"], [], "L1", 0, True),
    # a settled ticket: nothing to write
    ("settled-l2.json", "L2", [], [], None, 0, False),
    # the highest of two requests wins
    # (and L4's target label, vendor-engaged)
    ("escalate-two-requests.json", "L4", ["tier-l4", "vendor-engaged"],
     ["escalate-l3", "escalate-l4", "tier-l2"], "L4", 0, False),
]


@pytest.mark.parametrize(("name", "tier", "add", "remove", "assign", "missing", "note"),
                         EXAMPLE_ROWS, ids=[r[0] for r in EXAMPLE_ROWS])
def test_decide_examples(name: str, tier: str | None, add: list[str], remove: list[str],
                         assign: str | None, missing: int, note: bool) -> None:
    """Each shipped example ticket shows its semantic in `tierdesk decide` output."""
    out = _decide(str(EXAMPLES / name))
    assert (out["tier"], out["labels_add"], out["labels_remove"], out["assign"]) == (
        tier, add, remove, assign)
    assert len(out["missing"]) == missing
    assert (out["comment"] is not None) == note
    assert out["reasons"] and all(isinstance(r, str) for r in out["reasons"])


def test_every_example_is_covered() -> None:
    """No example ticket ships without a row above."""
    assert {p.name for p in EXAMPLES.glob("*.json")} == {r[0] for r in EXAMPLE_ROWS}


def test_decide_several_tickets_prints_a_list() -> None:
    """Several ticket files give a JSON list in the same order."""
    out = _decide(str(EXAMPLES / "how-to.json"), str(EXAMPLES / "invoice.json"))
    assert [d["ticket"] for d in out] == ["SUP-1", "SUP-5"]


def test_decide_embedded_policy_by_default() -> None:
    """Without --policy the embedded example policy is used."""
    result = CliRunner().invoke(main, ["decide", "--now", NOW, str(EXAMPLES / "invoice.json")])
    assert result.exit_code == 0
    assert json.loads(result.output)["route"] == "billing"


@pytest.mark.parametrize(("content", "message"), [
    # broken JSON says where
    ('{"key": ', "not valid JSON: Expecting value (line 1, column 9)"),
    # a wrong type says which key and what was expected
    ('{"key": "A-1", "labels": "tier-l1"}', "labels: expected a list, got \"tier-l1\""),
    # a missing key says so
    ('{"subject": "x"}', "key: required key is missing"),
    # an unknown key is not silently ignored
    ('{"key": "A-1", "labelz": []}', "labelz: unknown key"),
])
def test_decide_bad_ticket_file(tmp_path: Path, content: str, message: str) -> None:
    """A bad ticket file is refused with what is wrong, exit code 1."""
    f = tmp_path / "t.json"
    f.write_text(content, encoding="utf-8")
    result = CliRunner().invoke(main, ["decide", "--policy", POLICY, str(f)])
    assert result.exit_code == 1
    assert message in result.output
