"""The five reference policies: each passes `tierdesk policy check`, and each story walks its
tickets through the policy with the outcome of every step asserted (Python API and CLI)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest
from click.testing import CliRunner
from pydantic import ValidationError

from tests.policies.stories import (
    NOW,
    POLICIES,
    StepRun,
    Story,
    TicketStory,
    TriageRow,
    decide_again,
    expected_labels,
    load_story,
    mismatches,
    policy_of,
    replay,
    story_paths,
    to_neutral,
    vendor_needs,
)
from tiering import decide
from tiering.models import Customer, Ticket
from webhooks.cli import main

MODELS = ["dispatch-line", "external-vendor", "five-level", "hosting-three-level",
          "partner-three-level"]

STORIES: dict[str, Story] = {p.stem: load_story(p) for p in story_paths()}
TICKETS = [(model, t) for model, s in STORIES.items() for t in s.tickets]
TRIAGE = [(model, i, row) for model, s in STORIES.items() for i, row in enumerate(s.triage)]


def test_every_model_ships_a_policy_and_a_story() -> None:
    """deploy/policies holds exactly the five models, each with a story of the same name."""
    assert sorted(p.stem for p in POLICIES.glob("*.yaml")) == MODELS
    assert sorted(STORIES) == MODELS
    assert all(STORIES[m].policy == f"{m}.yaml" for m in MODELS)


@pytest.mark.parametrize("model", MODELS)
def test_policy_check_passes(model: str) -> None:
    """`tierdesk policy check` accepts the shipped policy and prints its one-line summary."""
    path = str(POLICIES / f"{model}.yaml")
    result = CliRunner().invoke(main, ["policy", "check", path])
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"{path}: OK: ")


def test_policy_check_real_command_on_all_five() -> None:
    """The installed `tierdesk` command checks all five files in one run with exit code 0."""
    exe = Path(sys.executable).with_name("tierdesk")
    assert exe.exists(), f"{exe} is missing: install the project into the venv (pip install -e .)"
    files = [str(POLICIES / f"{m}.yaml") for m in MODELS]
    done = subprocess.run([str(exe), "policy", "check", *files], capture_output=True, text=True,
                          timeout=60, env={**os.environ, "NO_COLOR": "1"}, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert [line.split(": OK: ")[0] for line in done.stdout.splitlines()] == files


def test_ticket_keys_are_unique() -> None:
    """No two story tickets share a key, so an end-to-end runner can create them all at once."""
    keys = [str(t.ticket["key"]) for _, t in TICKETS]
    assert len(keys) == len(set(keys))


def _triage_ticket(story: Story, index: int, row: TriageRow) -> Ticket:
    c = story.triage_customer
    return Ticket(key=f"T-{index}", subject=row.subject, description=row.description,
                  priority=row.priority,
                  customer=Customer(organization=c.get("organization"), email=c.get("email"),
                                    plan=c.get("plan")))


@pytest.mark.parametrize(("model", "index", "row"), TRIAGE,
                         ids=[f"{m}-{i}" for m, i, _ in TRIAGE])
def test_first_triage(model: str, index: int, row: TriageRow) -> None:
    """A new request lands in the tier (or route) the story's triage table says, by that rule."""
    story = STORIES[model]
    policy = policy_of(story.policy)
    d = decide(_triage_ticket(story, index, row), policy, now=NOW)
    assert (d.tier, d.route) == (row.tier, row.route), d.reasons
    expected = f'Rule "{row.rule}" matched' if row.rule else "No rule matched"
    assert any(r.startswith(expected) for r in d.reasons), d.reasons


def _story_id(item: tuple[str, TicketStory]) -> str:
    return f"{item[0]}:{item[1].name}"


@pytest.mark.parametrize(("model", "story"), TICKETS, ids=[_story_id(x) for x in TICKETS])
def test_story(model: str, story: TicketStory) -> None:
    """Every step of the story decides exactly as stated, and deciding again changes nothing."""
    policy = policy_of(STORIES[model].policy)
    failures: list[str] = []
    last = None
    for run in replay(story, policy):
        failures += [f"step {run.index} ({run.step.say}): {m}"
                     for m in mismatches(run.step.expect, run.decision, run.clocks)]
        last = run.after
    assert not failures, "\n".join(failures)
    assert last is not None
    again = decide_again(story, policy)
    assert not again.changed, again.to_dict()


@pytest.mark.parametrize(("model", "story"), TICKETS, ids=[_story_id(x) for x in TICKETS])
def test_story_labels_follow_from_the_data(model: str, story: TicketStory) -> None:
    """`expected_labels` (what an end-to-end runner checks) equals the replayed labels."""
    policy = policy_of(STORIES[model].policy)
    for run in replay(story, policy):
        assert expected_labels(story, run.index) == run.after.labels, run.step.say


@pytest.mark.parametrize(("model", "story"), TICKETS, ids=[_story_id(x) for x in TICKETS])
def test_story_through_the_cli(model: str, story: TicketStory, tmp_path: Path) -> None:
    """`tierdesk decide --policy <model>.yaml` prints, for every step's ticket, the same decision
    as the Python API's engine (the SLA actions are the worker's, not `decide`'s)."""
    policy = policy_of(STORIES[model].policy)
    runs = list(replay(story, policy))
    by_time: dict[datetime, list[StepRun]] = {}
    for run in runs:
        by_time.setdefault(run.at, []).append(run)
    for at, group in by_time.items():
        files = []
        for run in group:
            f = tmp_path / f"step-{run.index}.json"
            f.write_text(json.dumps(to_neutral(run.before)), encoding="utf-8")
            files.append(str(f))
        result = CliRunner().invoke(main, ["decide", "--policy",
                                           str(POLICIES / STORIES[model].policy),
                                           "--now", at.isoformat(), *files])
        assert result.exit_code == 0, result.output
        out = json.loads(result.output)
        printed = out if isinstance(out, list) else [out]
        assert printed == [run.engine.to_dict() for run in group if run.engine is not None]


@pytest.mark.parametrize("model", MODELS)
def test_every_rule_is_exercised(model: str) -> None:
    """Each rule of the policy is the deciding rule of some triage row or story step."""
    story = STORIES[model]
    policy = policy_of(story.policy)
    used = {row.rule for row in story.triage if row.rule}
    for t in story.tickets:
        for run in replay(t, policy):
            used |= {r.name for r in policy.rules if any(
                x.startswith(f'Rule "{r.name}" matched') for x in run.decision.reasons)}
    assert used == {r.name for r in policy.rules}


def test_story_file_typo_is_named(tmp_path: Path) -> None:
    """A misspelt key in a story file is refused with its path, not silently ignored."""
    text = (POLICIES / "stories" / "five-level.yaml").read_text(encoding="utf-8")
    bad = tmp_path / "bad.yaml"
    bad.write_text(text.replace("remove: [escalate-l1, tier-l0]", "remvoe: []", 1),
                   encoding="utf-8")
    with pytest.raises(ValidationError) as err:
        load_story(bad)
    assert "tickets.0.steps.1.expect.remvoe\n  Extra inputs are not permitted" in str(err.value)


@pytest.mark.parametrize("model", MODELS)
def test_shipped_sample_ticket_is_a_story_ticket(model: str) -> None:
    """The sample ticket a policy's header suggests trying is a story's first ticket, and
    `tierdesk decide` on it gives that story's first decision."""
    sample = POLICIES / "stories" / f"{model}.ticket.json"
    data = json.loads(sample.read_text(encoding="utf-8"))
    story = next(t for t in STORIES[model].tickets if t.ticket == data)
    assert str(sample.relative_to(POLICIES.parents[1])) in (
        POLICIES / f"{model}.yaml").read_text(encoding="utf-8")
    result = CliRunner().invoke(main, ["decide", "--policy", str(POLICIES / f"{model}.yaml"),
                                       "--now", NOW.isoformat(), str(sample)])
    assert result.exit_code == 0, result.output
    first = next(replay(story, policy_of(STORIES[model].policy)))
    assert first.engine is not None and json.loads(result.output) == first.engine.to_dict()
    assert not mismatches(first.step.expect, first.decision, first.clocks)


def test_vendor_needs_lists_what_a_replay_requires() -> None:
    """`vendor_needs` lists the partner story's targets, field ids and customers exactly."""
    assert vendor_needs(STORIES["partner-three-level"]) == {
        "jira": {
            "components": ["Partner L1", "Partner L2 (certified)", "Vendor Backline"],
            "assignees": ["acc-licensing"],
            "fields": ["customfield_10201", "customfield_10202", "customfield_10203",
                       "customfield_10204", "customfield_10205", "customfield_10206"],
        },
        "zendesk": {
            "group_ids": [1100, 1200, 1300, 1900],
            "assignee_ids": [],
            "fields": [360002201, 360002202, 360002203, 360002204, 360002205, 360002206],
        },
        "customers": {
            "organizations": ["Contoso Manufacturing", "Northwind Traders"],
            "emails": ["admin@unknown-customer.example", "it@contoso.example",
                       "it@fabrikam.example", "ops@northwind.example"],
        },
    }


@pytest.mark.parametrize("model", MODELS)
def test_every_target_is_assigned(model: str) -> None:
    """Each target of the policy receives a ticket in some story step or triage row."""
    story = STORIES[model]
    policy = policy_of(story.policy)
    assigned = {decide(_triage_ticket(story, i, row), policy, now=NOW).assign
                for i, row in enumerate(story.triage)}
    assigned |= {run.decision.assign for t in story.tickets for run in replay(t, policy)}
    assert set(policy.targets) <= assigned
