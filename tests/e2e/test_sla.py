"""SLA clocks end to end (issue 18): the sandbox and `tierdesk serve` as real processes, the
example policy with second-scale targets on the 24/7 calendar, on Jira and Zendesk at once.

A how-to question lands in L0 (deploy/policy.example.yaml's how-to rule); its L0 resolution
target here is 16 s, warned at 50 %: the warning label and note come at 8 s, the breach at 16 s
escalates it one tier (L0 -> L1, the standard plan allows it and L1 has no documentation gate).
Durable timers fire them; the service hears of nothing else meanwhile. Every wait is bounded
and polls the sandbox's state; no assertion is about how long something took (the lag is a
figure).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.e2e.conftest import Stack, example_policy_with_sla, running_stack
from tests.e2e.harness import (
    JIRA_AGENT,
    VENDORS,
    ZENDESK_AGENT,
    SandboxClient,
    figure,
)
from tests.e2e.story import Case, bot_comment_bodies, create
from tiering.sla_actions import SLA_MARKER

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

#: The Zendesk date field the due time goes to (sandbox/seed.json "SLA due").
ZENDESK_DUE = 360001120
TARGET = 16.0
WARN = 0.5
SLA = f"""
sla:
  calendar: 24x7
  warn_at: [{WARN}]
  pause:
    first_response: []
    time_in_tier: [pending]
    resolution: [pending]
  statuses:
    jira:
      names: {{"Waiting for customer": pending}}
  plans:
    standard:
      tiers:
        L0: {{resolution: {int(TARGET)}s}}
        L1: {{resolution: 1h}}
  on_warning: {{label: sla-warning, note: true}}
  on_breach: {{label: sla-breached, note: true, escalate: next}}
  due_field: {{clock: resolution, jira: duedate, zendesk: {ZENDESK_DUE}, zendesk_type: date}}
"""


def sla_policy(workdir: Path) -> Path:
    """The example policy with its calendars and sla sections replaced by second-scale ones."""
    return example_policy_with_sla(workdir, "policy.sla.yaml", SLA)


@pytest.fixture(scope="module")
def sla_stack() -> Iterator[Stack]:
    with running_stack(sla_policy, prefix="tierdesk-e2e-sla-") as running:
        yield running


def labels(client: SandboxClient, case: Case) -> set[str]:
    state = client.state()
    if case.vendor == "jira":
        return set(state["jira"]["issues"][case.ref]["labels"])
    return set(state["zendesk"]["tickets"][case.ref]["tags"])


def sla_notes(client: SandboxClient, case: Case) -> list[str]:
    return [b for b in bot_comment_bodies(client.state(), case) if SLA_MARKER in b]


def wait_for(what: str, check: Callable[[], bool], stack: Stack, timeout: float = 60.0) -> float:
    """Poll until `check()`; return when (monotonic). Fails with the service log otherwise."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return time.monotonic()
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}\nservice log:\n{stack.service.logs()}")


def due_field(client: SandboxClient, case: Case) -> str | None:
    """The due field as the vendor's API reads it: Jira `duedate`, the Zendesk date field."""
    if case.vendor == "jira":
        answer = client.agent("jira", JIRA_AGENT, "GET",
                              f"/rest/api/2/issue/{case.ref}?fields=duedate")
        value = answer.body["fields"]["duedate"]
    else:
        answer = client.agent("zendesk", ZENDESK_AGENT, "GET",
                              f"/api/v2/tickets/{case.ref}.json")
        value = next((f["value"] for f in answer.body["ticket"]["custom_fields"]
                      if f["id"] == ZENDESK_DUE), None)
    return str(value) if value else None


def set_status(client: SandboxClient, case: Case, status: str) -> None:
    """The agent moves the ticket: Jira by a transition, Zendesk by the status field."""
    if case.vendor == "jira":
        ids = {"pending": "41", "open": "21", "solved": "31"}
        answer = client.agent("jira", JIRA_AGENT, "POST",
                              f"/rest/api/2/issue/{case.ref}/transitions",
                              {"transition": {"id": ids[status]}})
        assert answer.status == 204, answer.body
        return
    answer = client.agent("zendesk", ZENDESK_AGENT, "PUT", f"/api/v2/tickets/{case.ref}.json",
                          {"ticket": {"status": status}})
    assert answer.status == 200, answer.body


def test_warning_then_breach_escalates_one_tier_on_both_vendors(sla_stack: Stack) -> None:
    """At 50 % the warning label and one note; at the target the breach label, one note, and
    one tier up (L0 -> L1); nothing more afterwards."""
    stack = sla_stack
    client = stack.client
    started = time.monotonic()
    cases = [create(client, vendor, "suggest") for vendor in VENDORS]
    breach_day = datetime.now(UTC) + timedelta(seconds=TARGET)
    for case in cases:
        wait_for(f"{case.vendor} {case.ref} triaged to L0",
                 lambda c=case: "tier-l0" in labels(client, c), stack)
        # The due field holds the resolution clock's due date (24/7 calendar: UTC).
        assert due_field(client, case) in {
            (breach_day + timedelta(seconds=s)).date().isoformat() for s in (-5, 5)}
    warned = {c.vendor: wait_for(f"{c.vendor} {c.ref} warning",
                                 lambda c=c: "sla-warning" in labels(client, c), stack)
              for c in cases}
    for case in cases:
        [note] = sla_notes(client, case)
        assert "passed 50% of its target" in note
    breached = {c.vendor: wait_for(f"{c.vendor} {c.ref} breach",
                                   lambda c=c: "sla-breached" in labels(client, c), stack)
                for c in cases}
    for case in cases:
        now = labels(client, case)
        assert {"sla-warning", "sla-breached", "tier-l1"} <= now and "tier-l0" not in now
        notes = sla_notes(client, case)
        assert len(notes) == 2 and "is breached" in notes[1] and "Escalated from L0 to L1" in (
            notes[1])
    # Quiet afterwards: no further SLA note (the L1 target is an hour away).
    time.sleep(3)
    assert [len(sla_notes(client, c)) for c in cases] == [2, 2]
    for vendor in VENDORS:
        figure("sla[e2e]", f"{vendor} warning seen after creation, s (due {TARGET * WARN:g})",
               f"{warned[vendor] - started:.2f}")
        figure("sla[e2e]", f"{vendor} breach seen after creation, s (due {TARGET:g})",
               f"{breached[vendor] - started:.2f}")


def test_a_paused_ticket_does_not_fire_and_resumes_when_reopened(sla_stack: Stack) -> None:
    """Waiting for the customer from the start: nothing fires past the target; reopened, the
    clock resumes and the warning and breach come."""
    stack = sla_stack
    client = stack.client
    cases = [create(client, vendor, "suggest") for vendor in VENDORS]
    for case in cases:
        wait_for(f"{case.vendor} {case.ref} triaged",
                 lambda c=case: "tier-l0" in labels(client, c), stack)
        set_status(client, case, "pending")
    paused_at = time.monotonic()
    stack.settle()
    for case in cases:
        # No due time while the customer is awaited: the field is cleared.
        assert due_field(client, case) is None, case
    # Well past the target (16 s) had the clock run.
    time.sleep(max(0.0, TARGET + 4 - (time.monotonic() - paused_at)))
    for case in cases:
        assert not labels(client, case) & {"sla-warning", "sla-breached"}, case
        assert sla_notes(client, case) == []
    for case in cases:
        set_status(client, case, "open")
    for case in cases:
        wait_for(f"{case.vendor} {case.ref} due date written again",
                 lambda c=case: due_field(client, c) is not None, stack)
        wait_for(f"{case.vendor} {case.ref} warning after reopening",
                 lambda c=case: "sla-warning" in labels(client, c), stack)
        wait_for(f"{case.vendor} {case.ref} breach after reopening",
                 lambda c=case: "sla-breached" in labels(client, c), stack)
        assert len(sla_notes(client, case)) == 2


def test_solving_stops_the_clock(sla_stack: Stack) -> None:
    """A ticket solved before its warning never warns."""
    stack = sla_stack
    client = stack.client
    cases = [create(client, vendor, "suggest") for vendor in VENDORS]
    for case in cases:
        wait_for(f"{case.vendor} {case.ref} triaged",
                 lambda c=case: "tier-l0" in labels(client, c), stack)
        set_status(client, case, "solved")
    stack.settle()
    time.sleep(TARGET + 2)
    for case in cases:
        assert not labels(client, case) & {"sla-warning", "sla-breached"}, case


def test_sigkill_in_the_firing_window_fires_each_threshold_once(sla_stack: Stack) -> None:
    """The service is killed (SIGKILL) just after each due instant, while it fires, and
    restarted: no threshold is acted on twice. A threshold fires late rather than twice; a
    warning whose breach is also due by the time the service is back is recorded, not acted on
    (tiering/sla_actions.py), so the ticket gets one breach note and at most one warning note."""
    stack = sla_stack
    client = stack.client
    cases = [create(client, vendor, "suggest") for vendor in VENDORS]
    created = time.monotonic()
    for case in cases:
        wait_for(f"{case.vendor} {case.ref} triaged",
                 lambda c=case: "tier-l0" in labels(client, c), stack)
    kills = 0
    for due in (TARGET * WARN, TARGET):
        if time.monotonic() > created + due:
            continue  # the restart took longer than the time to this instant
        time.sleep(max(0.0, created + due + 0.08 - time.monotonic()))
        stack.service.kill()
        kills += 1
        stack.service.start()
    for case in cases:
        wait_for(f"{case.vendor} {case.ref} breach after the restarts",
                 lambda c=case: "sla-breached" in labels(client, c), stack, timeout=90)
    stack.settle()
    time.sleep(2)
    warned = 0
    for case in cases:
        notes = sla_notes(client, case)
        breach = [n for n in notes if "is breached" in n]
        warning = [n for n in notes if "passed 50%" in n]
        assert len(breach) == 1 and len(warning) <= 1 and len(notes) == len(breach) + len(
            warning), notes
        warned += len(warning)
        assert "tier-l1" in labels(client, case) and "tier-l0" not in labels(client, case)
        fired = {r["threshold_key"] for r in stack.inbox._rows(
            "SELECT threshold_key FROM tierdesk_sla_fired WHERE vendor = ? AND ticket = ?",
            (case.vendor, case.ref))}
        assert {k.rsplit(":", 1)[1] for k in fired} == {"warn0.5", "breach"}
    figure("sla[e2e]", "SIGKILLs in the firing window / thresholds acted on twice",
           f"{kills} / 0")
    figure("sla[e2e]", "warnings acted on after the kills (others superseded by the breach)",
           f"{warned} of {len(cases)}")
