"""End to end over real HTTP and real processes: the sandbox as both vendors, `tierdesk serve`
as a child process, webhooks installed by `tierdesk install`, and the story of `tierdesk demo`
repeated over many tickets under duplicates, reordering, vendor faults and a SIGKILL.

Durations are scaled for CI: the outage lasts TIERDESK_E2E_OUTAGE_SECONDS (default 5; the
issue's 2-minute outage is `TIERDESK_E2E_OUTAGE_SECONDS=120`). A table of figures is printed at
the end of the run (tests/sandbox/conftest.py).
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from connectors.sandbox.server import SandboxHandle, run_in_thread
from tests.sandbox.conftest import E2E_FIGURES
from tiering.models import note_key_in
from webhooks.cli_demo import (
    Case,
    Expect,
    Stack,
    _jira_story,
    _settle,
    _zendesk_story,
    install_stack,
    service,
)

pytestmark = pytest.mark.slow

OUTAGE = float(os.environ.get("TIERDESK_E2E_OUTAGE_SECONDS", "5"))
RETRY_AFTER = 2


@pytest.fixture
def stack(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[tuple[SandboxHandle, Stack]]:
    """Sandbox and service environment; `indirect` params: {"retry_base": s, "env": {...}}."""
    param: dict[str, Any] = getattr(request, "param", {})
    handle = run_in_thread(retry_base=param.get("retry_base", 0.2))
    try:
        yield handle, install_stack(handle, tmp_path, extra_env=param.get("env"))
    finally:
        handle.stop()


def play(handle: SandboxHandle, rounds: int) -> tuple[list[Case], Callable[[], None]]:
    """Create `rounds` copies of the story on both vendors; return the cases and act two."""
    cases: list[Case] = []
    acts: list[Callable[[], None]] = []
    for _ in range(rounds):
        for story in (_jira_story, _zendesk_story):
            made, act2 = story(handle.agent)
            cases += made
            acts.append(lambda act2=act2, made=made: act2(made))

    def second_act() -> None:
        for act in acts:
            act()

    return cases, second_act


def noise(handle: SandboxHandle, cases: list[Case], per_ticket: int) -> int:
    """Agent comments on every ticket (events that change no decision); returns how many."""
    sent = 0
    for n in range(per_ticket):
        for case in cases:
            if case.vendor == "jira":
                handle.agent(
                    "jira",
                    "agent",
                    "POST",
                    f"/rest/api/2/issue/{case.ref}/comment",
                    {"body": f"looking into it ({n})"},
                )
            else:
                handle.agent(
                    "zendesk",
                    "9002",
                    "PUT",
                    f"/api/v2/tickets/{case.ref}.json",
                    {"ticket": {"comment": {"body": f"looking ({n})", "public": True}}},
                )
            sent += 1
    return sent


def problems(cases: list[Case]) -> list[str]:
    return [f"{c.vendor} {c.ref} {c.title}: {p}" for c in cases for p in c.problems]


def diagnose(handle: SandboxHandle, stack: Stack, cases: list[Case]) -> str:
    """What went wrong, for an assertion message: problems, the first bad ticket's vendor
    state, request log and deliveries, tierdesk's decision history, dead letters."""
    bad = [c for c in cases if c.problems]
    lines = problems(cases)
    if bad:
        case = bad[0]
        state = handle.state()
        record = (
            state["jira"]["issues"] if case.vendor == "jira" else state["zendesk"]["tickets"]
        )[case.ref]
        lines.append(json.dumps(record, indent=1, default=str)[:4000])
        needle = f"/{case.ref}" if case.vendor == "jira" else f"/tickets/{case.ref}"
        lines += [
            f"{e.seq} {e.at:.3f} {e.vendor} {e.method} {e.path} {e.status} {e.actor}"
            f" {e.fault or ''}"
            for e in handle.sandbox.log
            if needle in e.path
        ]
        lines += [
            f"delivery {a.at:.3f} {a.event} {a.delivery_id} try {a.attempt} copy {a.copy}"
            f" -> {a.status or a.error}"
            for a in handle.sandbox.deliverer.attempts
            if a.ticket == case.ref and a.vendor == case.vendor
        ]
        lines.append(stack.cli(["explain", case.vendor, case.ref]))
    lines.append(stack.cli(["dead-letters", "list"]))
    return "\n".join(lines)


def duplicate_notes(handle: SandboxHandle) -> list[str]:
    """Tickets where one checklist note (one note key) was posted more than once."""
    state = handle.state()
    bad: list[str] = []
    for key, issue in state["jira"]["issues"].items():
        keys = [note_key_in(c["body"]) for c in issue["comments"] if c["author"] == "acc-bot"]
        keys = [k for k in keys if k]
        if len(keys) != len(set(keys)):
            bad.append(f"jira {key}: {keys}")
    for tid, ticket in state["zendesk"]["tickets"].items():
        keys = [note_key_in(c["body"]) for c in ticket["comments"] if c["author_id"] == 9001]
        keys = [k for k in keys if k]
        if len(keys) != len(set(keys)):
            bad.append(f"zendesk {tid}: {keys}")
    return bad


def dead_letters(stack: Stack) -> int:
    out = stack.cli(["dead-letters", "list", "--json", "--limit", "100000"])
    return sum(1 for line in out.splitlines() if line.strip().startswith("{"))


def settled_writes(handle: SandboxHandle, cases: list[Case], wait: float = 1.5) -> int:
    """Vendor writes made after the story settled (a loop would keep writing)."""
    before = handle.state()["requests"]
    time.sleep(wait)
    _settle(handle, cases, timeout=5)
    after = handle.state()["requests"]
    return sum(after[v]["writes"] - before[v]["writes"] for v in ("jira", "zendesk"))


def record(
    name: str, handle: SandboxHandle, stack: Stack, cases: list[Case], seconds: float, events: int
) -> dict[str, Any]:
    state = handle.state()
    req = state["requests"]
    row = {
        "scenario": name,
        "tickets": len(cases),
        "agent events": events,
        "deliveries": state["deliveries"]["delivered"],
        "jira r/w": f"{req['jira']['reads']}/{req['jira']['writes']}",
        "zendesk r/w": f"{req['zendesk']['reads']}/{req['zendesk']['writes']}",
        "writes/ticket": round((req["jira"]["writes"] + req["zendesk"]["writes"]) / len(cases), 2),
        "refused by fault": req["jira"]["faulted"] + req["zendesk"]["faulted"],
        "Retry-After violations": state["retry_after_violations"],
        "dead letters": dead_letters(stack),
        "settle s": round(seconds, 1),
    }
    E2E_FIGURES.append(row)
    return row


def run_story(
    handle: SandboxHandle,
    stack: Stack,
    *,
    rounds: int,
    noise_per_ticket: int = 0,
    timeout: float = 90,
    during: Callable[[], None] | None = None,
) -> tuple[list[Case], int, float]:
    """Both acts of the story over `rounds` copies; returns cases, agent events, settle time."""
    started = time.monotonic()
    cases, second_act = play(handle, rounds)
    events = len(cases)
    if during is not None:
        during()
    events += noise(handle, cases, noise_per_ticket)
    _settle(handle, cases, timeout=timeout)
    assert problems(cases) == [], diagnose(handle, stack, cases)
    second_act()
    events += 4 * rounds
    _settle(handle, cases, timeout=timeout)
    assert problems(cases) == [], diagnose(handle, stack, cases)
    return cases, events, time.monotonic() - started


def test_every_decision_kind_through_webhooks_alone(stack: tuple[SandboxHandle, Stack]) -> None:
    """Both vendors, all six kinds: right final state, one note each, writes settle, no loop."""
    handle, st = stack
    with service(st):
        cases, events, seconds = run_story(handle, st, rounds=2)
        assert problems(cases) == []
        assert settled_writes(handle, cases) == 0
        assert duplicate_notes(handle) == []
        row = record("all kinds", handle, st, cases, seconds, events)
    assert row["dead letters"] == 0


def test_duplicates_and_reordering(stack: tuple[SandboxHandle, Stack]) -> None:
    """Every delivery three times, each copy delayed at random up to 1 s: same final state,
    each checklist note exactly once."""
    handle, st = stack
    handle.set_faults(
        {v: {"webhooks": {"duplicate": 3, "delay_seconds": 1.0}} for v in ("jira", "zendesk")}
    )
    with service(st):
        cases, events, seconds = run_story(handle, st, rounds=2)
        assert problems(cases) == []
        assert duplicate_notes(handle) == []
        assert settled_writes(handle, cases, wait=2.5) == 0
        row = record("3x duplicates, reordered", handle, st, cases, seconds, events)
    assert row["dead letters"] == 0


def test_outage_and_429_storm_during_a_burst(stack: tuple[SandboxHandle, Stack]) -> None:
    """A Jira 503 outage and a Zendesk 429 storm while a burst arrives: all applied after
    recovery, Retry-After never undercut, nothing dead-lettered."""
    handle, st = stack

    def faults() -> None:
        handle.set_faults(
            {
                "jira": {"unavailable": {"seconds": OUTAGE}},
                "zendesk": {"rate_limit": {"seconds": OUTAGE, "retry_after": RETRY_AFTER}},
            }
        )

    with service(st):
        cases, events, seconds = run_story(
            handle, st, rounds=6, noise_per_ticket=10, timeout=90 + OUTAGE, during=faults
        )
        assert problems(cases) == []
        assert duplicate_notes(handle) == []
        row = record(f"{OUTAGE:g}s 503 + 429 storm", handle, st, cases, seconds, events)
        violations = handle.state()["faults"]["zendesk"]["violations"]
    assert row["refused by fault"] > 0
    assert row["dead letters"] == 0
    # A request sent well after the 429 (more than half a second) undercuts Retry-After: fail.
    late = [v for v in violations if v["since_refusal"] > 0.5]
    assert late == []
    if violations:
        # Requests of claims already in progress when another thread got the 429 arrive within
        # milliseconds of it: the worker pauses new claims of the vendor, not requests of
        # claims in flight (webhooks/worker.py). Shown as xfail until the worker checks the
        # pause before each request.
        pytest.xfail(
            f"{len(violations)} request(s) of in-flight claims right after a 429"
            f" ({max(v['since_refusal'] for v in violations) * 1000:.0f} ms after it at most)"
        )


# Deliveries refused while the service is down are retried by the vendor for a while
# (retry_base 3 s: Zendesk's three retries span about 21 s, longer than a restart on a busy
# CI machine; a delivery the vendor gives up on is lost for real and needs a backfill). The
# killed process's claims are taken over once their lease ends (5 s instead of 120 s).
@pytest.mark.parametrize(
    "stack", [{"retry_base": 3.0, "env": {"TIERDESK_LEASE_SECONDS": "5"}}], indirect=True
)
def test_sigkill_mid_burst_and_restart(stack: tuple[SandboxHandle, Stack]) -> None:
    """`tierdesk serve` killed with SIGKILL mid-burst and restarted: every acknowledged event
    is applied exactly once (final states right, no note twice)."""
    handle, st = stack
    started = time.monotonic()
    with service(st) as proc:
        cases, second_act = play(handle, rounds=4)
        events = len(cases) + noise(handle, cases, 3)
        time.sleep(0.3)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    with service(st):
        _settle(handle, cases, timeout=90)
        assert problems(cases) == [], diagnose(handle, st, cases)
        second_act()
        _settle(handle, cases, timeout=90)
        assert problems(cases) == [], diagnose(handle, st, cases)
        assert duplicate_notes(handle) == []
        row = record("SIGKILL + restart", handle, st, cases, time.monotonic() - started, events)
    assert row["dead letters"] == 0
    gave_up = handle.state()["deliveries"]["gave_up"]
    assert gave_up == 0, json.dumps(handle.sandbox.deliverer.gave_up[:3], default=str)


def test_a_late_stale_delivery_does_not_undo_a_newer_decision(
    stack: tuple[SandboxHandle, Stack],
) -> None:
    """A Jira delivery that arrives after tierdesk already acted on newer state (vendors give
    no ordering guarantee) must not re-post an outdated checklist note or undo the decision.

    Deterministic: the create and a comment made right after it are held, then sent 5 s
    apart; between them the ticket is triaged and the agent's L3 request is refused."""
    handle, st = stack
    with service(st):
        handle.hold_deliveries()
        created = handle.agent(
            "jira",
            "agent",
            "POST",
            "/rest/api/2/issue",
            {
                "fields": {
                    "project": {"key": "SUP"},
                    "summary": "Dashboard shows no data",
                    "issuetype": {"name": "Task"},
                    "reporter": {"accountId": "acc-unknown"},
                }
            },
        )
        key = created.body["key"]
        handle.agent(
            "jira",
            "agent",
            "POST",
            f"/rest/api/2/issue/{key}/comment",
            {"body": "Customer called again."},
        )
        handle.release_deliveries(order="fifo", spacing=5.0)
        case = Case("jira", "triaged", key, Expect(has=frozenset({"tier-l1"})))
        _settle(handle, [case], timeout=4)
        assert case.problems == []
        handle.agent(
            "jira",
            "agent",
            "PUT",
            f"/rest/api/2/issue/{key}",
            {"update": {"labels": [{"add": "escalate-l3"}]}},
        )
        case.expect = Expect(
            has=frozenset({"tier-l1", "tier-entitlement-exceeded"}),
            lacks=frozenset({"escalate-l3"}),
            note="refused",
        )
        _settle(handle, [case], timeout=4)
        assert case.problems == []
        assert handle.wait_for_deliveries(timeout=30)
        time.sleep(2.0)  # let the worker act on the late deliveries
        _settle(handle, [case], timeout=1)
        assert case.problems == [], diagnose(handle, st, [case])
        assert duplicate_notes(handle) == [], diagnose(handle, st, [case])


@pytest.mark.xfail(
    strict=True,
    reason="known bug, found by this test: a Jira payload snapshot older than tierdesk's own"
    " last write (or than a fresh read) is decided on as current: the ticket is triaged again"
    " and the outdated first note is posted a second time. The worker/connector must treat a"
    " payload whose issue.fields.updated is older than the state it last acted on as stale"
    " (read fresh). Remove this marker when fixed.",
)
def test_a_stale_snapshot_after_a_fresh_read_is_not_applied(
    stack: tuple[SandboxHandle, Stack],
) -> None:
    """The order seen in the burst tests, made deterministic: the L3 refusal comes from a
    fresh read triggered by an older comment event, then a full issue snapshot taken before
    tierdesk's first write arrives. It must not re-triage the ticket from that snapshot."""
    handle, st = stack
    with service(st):
        handle.hold_deliveries()
        created = handle.agent(
            "jira",
            "agent",
            "POST",
            "/rest/api/2/issue",
            {
                "fields": {
                    "project": {"key": "SUP"},
                    "summary": "Dashboard shows no data",
                    "issuetype": {"name": "Task"},
                    "reporter": {"accountId": "acc-unknown"},
                }
            },
        )
        key = created.body["key"]
        for n in (1, 2):
            handle.agent(
                "jira",
                "agent",
                "POST",
                f"/rest/api/2/issue/{key}/comment",
                {"body": f"Customer called again ({n})."},
            )
        # Sent 3 s apart: created, updated(1), comment_created(1), updated(2), comment_created(2)
        assert handle.release_deliveries(order="fifo", spacing=3.0) == 5
        handle.hold_deliveries()  # the agent's L3 request below is delivered last
        case = Case("jira", "triaged", key, Expect(has=frozenset({"tier-l1"})))
        _settle(handle, [case], timeout=2.5)
        assert case.problems == []
        handle.agent(
            "jira",
            "agent",
            "PUT",
            f"/rest/api/2/issue/{key}",
            {"update": {"labels": [{"add": "escalate-l3"}]}},
        )
        time.sleep(11)  # the held older deliveries arrive meanwhile
        handle.release_deliveries()
        assert handle.wait_for_deliveries(timeout=30)
        time.sleep(2.0)
        case.expect = Expect(
            has=frozenset({"tier-l1", "tier-entitlement-exceeded"}),
            lacks=frozenset({"escalate-l3"}),
            note="refused",
        )
        _settle(handle, [case], timeout=5)
        assert case.problems == [], diagnose(handle, st, [case])
        assert duplicate_notes(handle) == [], diagnose(handle, st, [case])
