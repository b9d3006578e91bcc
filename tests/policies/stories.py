"""Story files of the reference policies: loading, replaying through `tiering.decide`, checking.

A story file (`deploy/policies/stories/<model>.yaml`) walks tickets through one shipped policy
(`deploy/policies/<model>.yaml`) step by step:

    policy: five-level.yaml
    about: what the story shows
    triage_customer: {organization: "Acme Corp"}     # customer of the triage rows
    triage:                                          # first triage of typical requests
      - {subject: "Invoice 2211 is wrong", route: billing, rule: billing}
      - {subject: "Sync stopped", tier: L1, rule: null}   # null: no rule, the default tier
    tickets:
      - name: crash-climbs-to-l2
        about: ...
        ticket: {key: FL-3, subject: ..., customer: {...}}   # neutral format (tiering/neutral.py)
        steps:
          - say: New ticket                          # the first step is the first triage
            expect: {tier: L1, add: [...], remove: [], assign: L1, missing: [...], note: true}
          - say: The agent fills in the steps to reproduce
            edit: {fields: {steps_to_reproduce: "..."}, attachments: 1, add_labels: [...]}
            expect: {...}

Each step first applies its `edit` (what an agent or the customer changes: labels added or
removed, documentation fields set or cleared with null, the new attachment count), then decides,
then applies the decision as a connector would (labels, assignment to the target key, the note's
key when a note is posted). `expect` states the whole outcome of the decision: the tier (or the
route), labels added and removed, the assignment target (a key of the policy's `targets`, null
for none), the missing documentation fields, whether a note is posted, and optionally the plan,
the suggestions, words the note must contain and a reason. After the last step, deciding again
must change nothing.

Time and the SLA clocks: a ticket is created at `created_at` (default `NOW`) and each step may
first let time pass (`after: 3h`, wall-clock time since the previous step; the step's edit and
decision happen then). An edit may change the ticket's neutral `status` (`pending`: waiting for
the customer) and post the first public agent `reply`. The replay records the history a worker
records (creation, status changes, tier entries, the first reply), computes the clocks of the
ticket's plan and tier (after the engine's decision) with `tiering.sla.sla_for` and merges the
crossed thresholds' actions with `tiering.sla_actions.apply_clocks`, each threshold once, as the
worker does. `expect.clocks` states clocks at the step (state and, optionally, due time), and
`expect.fired` the thresholds acted on by the step's decision (`<clock>:warn0.75`,
`<clock>:breach`).

An end-to-end runner (sandbox, Jira or Zendesk) replays the same data: `load_story(path)` for
each of `story_paths()`, seed the vendor with `vendor_needs(story)` (components, groups, field
ids, customers) and configure tierdesk with `story.policy_path`; then for each `TicketStory`
create `ticket` in the vendor, and for each step apply `edit` through the
vendor API, let tierdesk process the webhook, and compare the vendor's state with
`expected_labels(story, i)` (the managed labels after step i), the target of `expect.assign`
(`policy.targets[key].jira` / `.zendesk`) and the note (posted or not, `expect.note_contains`).
`replay()` gives the same steps through the Python API, for comparison.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr

from tiering import Decision, Policy, Ticket, decide
from tiering.models import FieldValue
from tiering.neutral import ticket_from_dict
from tiering.sla import SlaReport, TicketHistory, TierEntry, sla_for
from tiering.sla_actions import apply_clocks
from tiering.sla_models import Status, parse_duration
from webhooks.defaults import load_policy_file

ROOT = Path(__file__).resolve().parents[2]
POLICIES = ROOT / "deploy" / "policies"
STORIES = POLICIES / "stories"
#: The time every story is decided at (the engine reads no clock).
NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)

FieldIn = StrictStr | StrictInt | float | StrictBool | list[StrictStr] | None


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Edit(_Strict):
    """What changes on the ticket before a step's decision (an agent's or customer's edit)."""

    add_labels: list[StrictStr] = []
    remove_labels: list[StrictStr] = []
    #: Documentation fields by policy name; null clears a field.
    fields: dict[StrictStr, FieldIn] = {}
    #: The ticket's attachment count after the edit (not a delta).
    attachments: Annotated[StrictInt, Field(ge=0)] | None = None
    #: The ticket's new neutral status (an agent sets pending, the customer's answer reopens).
    status: Status | None = None
    #: An agent's first public reply (stops the first_response clock).
    reply: StrictBool = False


class ClockExpect(_Strict):
    """One clock at a step, after its decision."""

    state: StrictStr
    #: The due time (ISO 8601, UTC), or null: none (paused or stopped).
    due: datetime | None = None


class Expect(_Strict):
    """The whole outcome of one decision."""

    tier: StrictStr | None
    route: StrictStr | None = None
    add: list[StrictStr]
    remove: list[StrictStr]
    assign: StrictStr | None
    #: Policy field names of the missing documentation items, in checklist order.
    missing: list[StrictStr]
    note: StrictBool
    plan: StrictStr | None = None
    suggestions: list[StrictStr] | None = None
    note_contains: list[StrictStr] = []
    reason: StrictStr | None = None
    #: Clocks at this step by clock name (first_response, time_in_tier, resolution).
    clocks: dict[StrictStr, ClockExpect] | None = None
    #: The thresholds this decision acts on, as `<clock>:warn<f>` / `<clock>:breach` (the
    #: worker's keys without the start instant); checked whenever the story has clocks.
    fired: list[StrictStr] = []


class Step(_Strict):
    say: Annotated[StrictStr, Field(min_length=1)]
    #: Wall-clock time since the previous step (or the creation), e.g. 3h or 1h30m.
    after: StrictStr | None = None
    edit: Edit | None = None
    expect: Expect

    @property
    def wait(self) -> float:
        return float(parse_duration(self.after)) if self.after else 0.0


class TicketStory(_Strict):
    name: Annotated[StrictStr, Field(min_length=1)]
    about: StrictStr
    #: The ticket as it is created, in the neutral format of `tierdesk decide`.
    ticket: dict[StrictStr, Any]
    #: When the ticket is created (aware; default NOW, when every step is decided).
    created_at: datetime = NOW
    steps: Annotated[list[Step], Field(min_length=1)]

    def first_ticket(self) -> Ticket:
        t = ticket_from_dict(self.ticket, source=self.name)
        return replace(t, status=t.status or "new", created_at=self.created_at)

    def step_at(self, index: int) -> datetime:
        """The instant step `index` is decided at."""
        return self.created_at + timedelta(seconds=sum(s.wait for s in self.steps[:index + 1]))

    @property
    def timed(self) -> bool:
        """True when time passes in this story (a step waits): an end-to-end replay in real
        time cannot play it."""
        return any(s.after for s in self.steps)


class TriageRow(_Strict):
    """A new request and where first triage puts it: a tier or a route, and by which rule."""

    subject: StrictStr
    description: StrictStr = ""
    priority: StrictStr | None = None
    tier: StrictStr | None = None
    route: StrictStr | None = None
    #: The rule that matched, or null when no rule matched (the default tier).
    rule: StrictStr | None


class Story(_Strict):
    policy: StrictStr
    about: StrictStr
    triage_customer: dict[StrictStr, StrictStr] = {}
    triage: list[TriageRow] = []
    tickets: Annotated[list[TicketStory], Field(min_length=1)]

    @property
    def policy_path(self) -> Path:
        return POLICIES / self.policy


def load_story(path: Path) -> Story:
    """A story file validated into a `Story` (pydantic names the key of any mistake)."""
    return Story.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))


def story_paths() -> list[Path]:
    return sorted(STORIES.glob("*.yaml"))


@cache
def policy_of(story_policy: str) -> Policy:
    """The shipped policy a story names, loaded once."""
    path = POLICIES / story_policy
    # With the ICS files its calendars name (deploy/policies/holidays/), as `serve` reads them.
    return load_policy_file(path)


def apply_edit(t: Ticket, edit: Edit | None) -> Ticket:
    """The ticket after an agent's or customer's edit."""
    if edit is None:
        return t
    fields: dict[str, FieldValue] = dict(t.fields)
    for name, value in edit.fields.items():
        if value is None:
            fields.pop(name, None)
        else:
            fields[name] = tuple(value) if isinstance(value, list) else value
    return replace(
        t,
        labels=(t.labels - frozenset(edit.remove_labels)) | frozenset(edit.add_labels),
        fields=fields,
        attachments=t.attachments if edit.attachments is None else edit.attachments,
        status=edit.status or t.status,
    )


def apply_decision(t: Ticket, d: Decision) -> Ticket:
    """The ticket after a connector applied `d`: labels, assignment (target key), note key."""
    return replace(
        t,
        labels=d.labels_after(t.labels),
        assignee=d.assign or t.assignee,
        last_note_key=d.note_key if d.comment else t.last_note_key,
    )


@dataclass(frozen=True)
class StepRun:
    """One replayed step: the ticket decided on, the decision (the engine's merged with the SLA
    actions), and the ticket after applying it; the engine's own decision, the instant, the
    clocks and the threshold keys acted on."""

    index: int
    step: Step
    before: Ticket
    decision: Decision
    after: Ticket
    engine: Decision | None = None
    at: datetime = NOW
    clocks: SlaReport | None = None
    fired: frozenset[str] = frozenset()


Decide = Callable[[Ticket, Policy, datetime], Decision]


def _decide(t: Ticket, p: Policy, now: datetime) -> Decision:
    return decide(t, p, now=now)


@dataclass
class _Clocks:
    """The history a worker records of one ticket, and the thresholds acted on."""

    created_at: datetime
    statuses: list[tuple[datetime, str]]
    tiers: list[TierEntry]
    reply: datetime | None = None
    fired: frozenset[str] = frozenset()

    def history(self) -> TicketHistory:
        return TicketHistory.from_transitions(
            self.created_at, self.statuses, initial=self.statuses[0][1], tiers=self.tiers,
            first_reply_at=self.reply)

    def enter(self, tier: str | None, at: datetime) -> None:
        if tier is not None and (not self.tiers or self.tiers[-1].tier != tier):
            self.tiers.append(TierEntry(tier, at))


def _with_clocks(t: Ticket, policy: Policy, d: Decision, rec: _Clocks, at: datetime
                 ) -> tuple[Decision, SlaReport | None, frozenset[str]]:
    """The engine's decision `d` merged with the SLA actions due at `at` (as the worker does)."""
    if not policy.sla.enabled:
        return d, None, frozenset()
    rec.enter(d.tier, at)
    report = sla_for(rec.history(), policy.sla, plan=d.plan, tier=d.tier, priority=t.priority,
                     now=at)
    outcome = apply_clocks(t, policy, d, report, fired=rec.fired, now=at)
    rec.fired |= outcome.fired
    final = outcome.decision
    if final.tier != d.tier:  # the breach escalated the ticket
        rec.enter(final.tier, at)
    return final, report, outcome.fired


def _runs(story: TicketStory, policy: Policy, decide_fn: Decide, *, again: bool
          ) -> Iterator[StepRun]:
    t = story.first_ticket()
    rec = _Clocks(story.created_at, [(story.created_at, t.status or "new")], [])
    for i, step in enumerate(story.steps):
        at = story.step_at(i)
        before = apply_edit(t, step.edit)
        if before.status != t.status and before.status is not None:
            rec.statuses.append((at, before.status))
        if step.edit is not None and step.edit.reply and rec.reply is None:
            rec.reply = at
        engine = decide_fn(before, policy, at)
        d, report, fired = _with_clocks(before, policy, engine, rec, at)
        t = apply_decision(before, d)
        yield StepRun(i, step, before, d, t, engine, at, report, fired)
    if again:
        at = story.step_at(len(story.steps) - 1)
        engine = decide_fn(t, policy, at)
        d, report, fired = _with_clocks(t, policy, engine, rec, at)
        yield StepRun(len(story.steps), story.steps[-1], t, d, apply_decision(t, d), engine, at,
                      report, fired)


def replay(story: TicketStory, policy: Policy, decide_fn: Decide = _decide) -> Iterator[StepRun]:
    """Walk the ticket through every step: wait, edit, decide (with the SLA actions), apply."""
    yield from _runs(story, policy, decide_fn, again=False)


def decide_again(story: TicketStory, policy: Policy) -> Decision:
    """The decision after the last step, at the same instant, with every threshold already
    acted on remembered: it must change nothing."""
    *_, last = _runs(story, policy, _decide, again=True)
    return last.decision


def clock_mismatches(e: Expect, d: Decision, clocks: SlaReport | None) -> list[str]:
    """What in the step's clocks and fired thresholds differs from `e.clocks` / `e.fired`."""
    out: list[str] = []
    fired = sorted(k.split("@")[0] + ":" + k.rsplit(":", 1)[1] for k in d.sla_fired)
    if clocks is not None and fired != sorted(e.fired):
        out.append(f"fired: expected {sorted(e.fired)!r}, got {fired!r}")
    for name, want in (e.clocks or {}).items():
        got = clocks.clock(name) if clocks is not None else None
        if got is None:
            out.append(f"clocks.{name}: expected {want.state}, the ticket has no such clock")
            continue
        if got.state != want.state:
            out.append(f"clocks.{name}.state: expected {want.state}, got {got.state}")
        if "due" in want.model_fields_set and got.due != want.due:
            out.append(f"clocks.{name}.due: expected {want.due}, got {got.due}")
    return out


def mismatches(e: Expect, d: Decision, clocks: SlaReport | None = None) -> list[str]:
    """What in `d` differs from `e`, one line each (empty when the decision is as expected)."""
    got: dict[str, Any] = {
        "tier": d.tier,
        "route": d.route,
        "add": list(d.labels_add),
        "remove": list(d.labels_remove),
        "assign": d.assign,
        "missing": [i.field for i in d.missing],
        "note": d.comment is not None,
    }
    want: dict[str, Any] = {k: getattr(e, k) for k in got}
    if "plan" in e.model_fields_set:
        got["plan"], want["plan"] = d.plan, e.plan
    if e.suggestions is not None:
        got["suggestions"], want["suggestions"] = list(d.suggestions), e.suggestions
    out = [f"{k}: expected {want[k]!r}, got {got[k]!r}" for k in got if got[k] != want[k]]
    out += clock_mismatches(e, d, clocks)
    for words in e.note_contains:
        if d.comment is None or words not in d.comment:
            out.append(f"note: expected it to contain {words!r}, got {d.comment!r}")
    if e.reason is not None and not any(e.reason in r for r in d.reasons):
        out.append(f"reasons: expected one containing {e.reason!r}, got {list(d.reasons)!r}")
    return out


def expected_labels(story: TicketStory, upto: int) -> frozenset[str]:
    """The ticket's labels after step `upto`, from the story data alone (no engine involved)."""
    labels = frozenset(story.first_ticket().labels)
    for step in story.steps[: upto + 1]:
        if step.edit is not None:
            labels = (labels - frozenset(step.edit.remove_labels)) | frozenset(
                step.edit.add_labels
            )
        labels = (labels - frozenset(step.expect.remove)) | frozenset(step.expect.add)
    return labels


def to_neutral(t: Ticket) -> dict[str, Any]:
    """`t` in the neutral format `tierdesk decide` reads (the inverse of ticket_from_dict)."""
    return {
        "key": t.key,
        "subject": t.subject,
        "description": t.description,
        "labels": sorted(t.labels),
        "priority": t.priority,
        "customer": {
            "organization": t.customer.organization,
            "email": t.customer.email,
            "plan": t.customer.plan,
        },
        "fields": {k: list(v) if isinstance(v, tuple) else v for k, v in t.fields.items()},
        "attachments": t.attachments,
        "assignee": t.assignee,
        "last_note_key": t.last_note_key,
    }


def vendor_needs(story: Story) -> dict[str, dict[str, list[Any]]]:
    """What a Jira or Zendesk site (or the sandbox seed) must hold to replay `story` end to end:
    the targets' components, assignees and groups, the documentation fields' ids, and the
    organizations and emails of the story's customers. Each list is sorted and without repeats."""
    policy = policy_of(story.policy)
    jira_components = {t.jira.component for t in policy.targets.values()
                       if t.jira is not None and t.jira.component}
    jira_assignees = {t.jira.assignee for t in policy.targets.values()
                      if t.jira is not None and t.jira.assignee}
    groups = {t.zendesk.group_id for t in policy.targets.values()
              if t.zendesk is not None and t.zendesk.group_id is not None}
    agents = {t.zendesk.assignee_id for t in policy.targets.values()
              if t.zendesk is not None and t.zendesk.assignee_id is not None}
    customers = [t.first_ticket().customer for t in story.tickets]
    return {
        "jira": {
            "components": sorted(jira_components),
            "assignees": sorted(jira_assignees),
            "fields": sorted(policy.jira_fields.values()),
        },
        "zendesk": {
            "group_ids": sorted(groups),
            "assignee_ids": sorted(agents),
            "fields": sorted(policy.zendesk_fields.values()),
        },
        "customers": {
            "organizations": sorted({c.organization for c in customers if c.organization}),
            "emails": sorted({c.email for c in customers if c.email}),
        },
    }
