"""Faults over real processes: duplicated and reordered deliveries, a vendor outage and a 429
storm during a burst, and `tierdesk serve` killed with SIGKILL mid-burst.

Scale comes from TIERDESK_E2E_OUTAGE_SECONDS and TIERDESK_E2E_BURST (tests/e2e/conftest.py).
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

import pytest

from tests.e2e.conftest import Stack, burst_size, outage_seconds
from tests.e2e.harness import SandboxClient, Traffic, figure, ticket_of
from tests.e2e.story import (
    FINAL,
    FIRST,
    KINDS,
    OWNERS,
    Case,
    Expect,
    comment,
    create,
    duplicate_notes,
    second_act,
    view,
)
from tests.e2e.test_decisions import EXPECTED_WRITES

pytestmark = pytest.mark.slow

#: Kinds that reach their final state in one decision (used for bursts).
ONE_STEP = ("triage", "suggest", "route", "unverified")


def _check(client: SandboxClient, cases: list[Case], expect: dict[str, Expect]) -> list[str]:
    state = client.state()
    out: list[str] = []
    for c in cases:
        out += [f"{c.vendor} {c.ref} ({c.kind}): {p}"
                for p in expect[c.kind].owned_by(OWNERS[c.vendor]).problems(view(state, c))]
        out += [f"{c.vendor} {c.ref}: note {k} posted twice" for k in duplicate_notes(state, c)]
    return out


def _delivery_key(inbox_delivery_id: str) -> str:
    # The receiver stores Zendesk invocations as "invocation:<id>"; Jira ids are kept as sent.
    return inbox_delivery_id.rsplit(":", 1)[-1]


@pytest.mark.timeout(240)
def test_duplicated_and_reordered_deliveries_apply_once(quiet_stack: Stack) -> None:
    """Every delivery sent three times, each copy after a random delay (so out of order): the
    final states are right, each note is posted once, and no decision writes twice."""
    stack = quiet_stack
    client = stack.client
    webhooks = {"webhooks": {"duplicate": 3, "delay_seconds": 1.5}}
    client.set_faults({"jira": webhooks, "zendesk": webhooks})
    mark = client.last_seq()
    attempts_before = client.delivery_mark()
    first = stack.inbox.last_id()
    cases = [create(client, vendor, kind, tag="dup") for vendor in ("jira", "zendesk")
             for kind in KINDS]
    stack.settle()
    assert _check(client, cases, FIRST) == []
    for c in cases:
        second_act(client, c)
    for c in cases:
        if c.kind == "quiet":
            comment(client, c, "Any news?")
    stack.settle()
    assert _check(client, cases, FINAL) == []

    traffic = Traffic.since(client, mark)
    for c in cases:
        writes = len(traffic.writes(c.vendor, ticket=c.ref))
        # Copies never add writes; coalesced events may save one.
        assert 1 <= writes <= EXPECTED_WRITES[c.vendor][c.kind], (c, writes)
    attempts = client.deliveries(after=attempts_before)
    copies = Counter(a["delivery_id"] for a in attempts if a["status"] is not None)
    stored = stack.inbox.events(after=first)
    stored_ids = Counter(_delivery_key(e["delivery_id"]) for e in stored)
    assert copies and all(n >= 3 for n in copies.values())
    # Each delivery stored exactly once however many copies arrived.
    assert set(stored_ids) == set(copies) and set(stored_ids.values()) == {1}
    assert stack.inbox.dead(after=first) == []
    figure("duplicates", "deliveries / copies sent", f"{len(copies)} / {sum(copies.values())}")
    figure("duplicates", "events stored", len(stored))
    figure("duplicates", "tierdesk writes / tickets", f"{len(traffic.writes())} / {len(cases)}")


def _burst(client: SandboxClient, events: int, tag: str) -> list[Case]:
    """`events` agent actions over both vendors: each ticket created, then commented twice."""
    cases: list[Case] = []
    per_ticket = 3
    tickets = max(2, events // per_ticket)
    for i in range(tickets):
        vendor = ("jira", "zendesk")[i % 2]
        cases.append(create(client, vendor, ONE_STEP[(i // 2) % len(ONE_STEP)], tag=f"{tag}{i}"))
    for round_ in range(per_ticket - 1):
        for c in cases:
            comment(client, c, f"Follow-up {round_ + 1} from the customer.")
    return cases


@dataclass
class StormRun:
    """What one burst through an outage and a 429 storm left behind."""

    cases: list[Case]
    state: dict[str, Any]
    traffic: Traffic
    dead: list[dict[str, Any]]
    retry_after: int


@pytest.fixture(scope="module")
def storm_run(stack: Stack) -> StormRun:
    """A burst of events while the vendors first answer 503 (the outage), then 429 (the storm)."""
    client = stack.client
    client.clear_faults()
    stack.settle()
    outage = outage_seconds()
    storm = 10.0
    retry_after = 2
    mark = client.last_seq()
    first = stack.inbox.last_id()
    # Jira's outage answers a bare 503 (backoff); Zendesk's carries Retry-After. The storm of
    # 429s follows the outage (`rate_limit.seconds` counts from the same start).
    client.set_faults({
        "jira": {"unavailable": {"seconds": outage},
                 "rate_limit": {"seconds": outage + storm, "retry_after": retry_after}},
        "zendesk": {"unavailable": {"seconds": outage, "retry_after": retry_after},
                    "rate_limit": {"seconds": outage + storm, "retry_after": retry_after}},
    })
    started = time.monotonic()
    try:
        cases = _burst(client, burst_size(), "storm")
        sent = time.monotonic() - started
        stack.settle(timeout=outage + storm + 600)
    finally:
        state = client.state()
        client.clear_faults()
    recovered = time.monotonic() - started - outage - storm
    run = StormRun(cases, state, Traffic.since(client, mark), stack.inbox.dead(after=first),
                   retry_after)
    refused = {v: state["faults"][v]["answered"] for v in ("jira", "zendesk")}
    events = sum(1 for _ in cases) * 3
    figure("outage+storm", "burst events / tickets", f"{events} / {len(cases)}")
    figure("outage+storm", "outage / storm seconds", f"{outage:.0f} / {storm:.0f}")
    figure("outage+storm", "burst sent in", f"{sent:.1f} s")
    figure("outage+storm", "settled after the storm ended", f"{recovered:.1f} s")
    figure("outage+storm", "refused (503 / 429)", "; ".join(
        f"{v} {r.get('unavailable', 0)} / {r.get('rate limited', 0)}" for v, r in refused.items()))
    figure("outage+storm", "Retry-After violations (referee)", state["retry_after_violations"])
    for v in [v for f in state["faults"].values() for v in f["violations"]][:5]:
        figure("outage+storm", "  violation",
               f"{v['vendor']} {v['method']} {v['path']} {retry_after - v['early_by']:.3f} s"
               " after the refusal")
    figure("outage+storm", "dead letters", len(run.dead))
    figure("outage+storm", "tierdesk writes / reads",
           f"{len(run.traffic.writes())} / {len(run.traffic.reads())}")
    return run


@pytest.mark.timeout(900)
def test_outage_and_429_storm_during_a_burst_apply_everything_after_recovery(
    storm_run: StormRun, quiet_stack: Stack
) -> None:
    """After a 503 outage and a 429 storm during a burst, every ticket reaches its state with
    exactly one write and one note, and nothing is dead-lettered."""
    run = storm_run
    assert _check(quiet_stack.client, run.cases, FIRST) == []
    assert run.dead == []
    for c in run.cases:
        assert len(run.traffic.writes(c.vendor, ticket=c.ref)) == 1, c
    refused = {v: run.state["faults"][v]["answered"] for v in ("jira", "zendesk")}
    # Both faults really hit: the outage on each vendor, the storm on at least one (with a long
    # outage, one vendor's backoff can carry every retry past the storm's few seconds).
    assert all(r.get("unavailable") for r in refused.values()), refused
    assert any(r.get("rate limited") for r in refused.values()), refused


@pytest.mark.timeout(900)
def test_retry_after_is_never_undercut_by_any_thread(storm_run: StormRun) -> None:
    """The sandbox's referee counts no request at all before a Retry-After has passed, with
    several worker threads: each vendor line (connectors/http.py, TIERDESK_VENDOR_CONCURRENCY=1)
    has one request on the wire at a time and reads the refusal before the next may start."""
    assert storm_run.state["retry_after_violations"] == 0, [
        f["violations"] for f in storm_run.state["faults"].values()]


@pytest.mark.timeout(600)
def test_sigkill_mid_burst_applies_every_acknowledged_event_exactly_once(
    quiet_stack: Stack,
) -> None:
    """`tierdesk serve` SIGKILLed while a burst arrives and restarted on the same inbox: every
    delivery it acknowledged (202) is processed, and every ticket gets exactly one write."""
    stack = quiet_stack
    client = stack.client
    mark = client.last_seq()
    attempts_before = client.delivery_mark()
    first = stack.inbox.last_id()
    tickets = max(4, burst_size() // 2)
    cases: list[Case] = []
    failures: list[BaseException] = []

    def play() -> None:
        try:
            for i in range(tickets):
                vendor = ("jira", "zendesk")[i % 2]
                cases.append(create(client, vendor, ONE_STEP[(i // 2) % len(ONE_STEP)],
                                    tag=f"crash{i}"))
                time.sleep(0.02)
        except BaseException as exc:  # surfaced below
            failures.append(exc)

    player = threading.Thread(target=play)
    player.start()
    deadline = time.monotonic() + 60
    while len(stack.inbox.events(after=first)) < tickets // 3 and time.monotonic() < deadline:
        time.sleep(0.02)
    stack.service.kill()
    killed_at_events = len(stack.inbox.events(after=first))
    stack.service.start()
    player.join(timeout=120)
    assert not failures, failures
    stack.settle(timeout=180)

    attempts = client.deliveries(after=attempts_before)
    acked = {a["delivery_id"] for a in attempts if a["status"] == 202}
    given_up = {a["delivery_id"] for a in attempts} - {
        a["delivery_id"] for a in attempts if a["status"] is not None and a["status"] < 300}
    stored = {_delivery_key(e["delivery_id"]): e for e in stack.inbox.events(after=first)}
    # Every acknowledged delivery is in the inbox, processed (never pending or dead).
    assert acked <= set(stored)
    assert {stored[d]["status"] for d in acked} <= {"done", "ignored"}
    assert stack.inbox.dead(after=first) == []
    acked_tickets = {(stored[d]["vendor"], stored[d]["ticket"]) for d in acked}
    done = [c for c in cases if (c.vendor, c.ref) in acked_tickets]
    assert done and _check(client, done, FIRST) == []
    traffic = Traffic.since(client, mark)
    writes = {(c.vendor, c.ref): len(traffic.writes(c.vendor, ticket=c.ref)) for c in done}
    twice = {k: v for k, v in writes.items() if v != 1}
    assert twice == {}, json.dumps([
        (k, [e for e in traffic.entries if ticket_of(e["vendor"], e["path"]) == k[1]
             and e["vendor"] == k[0]],
         [d for d in stack.inbox.decisions() if (d["vendor"], d["ticket"]) == k],
         [e for e in stack.inbox.events(after=first) if (e["vendor"], e["ticket"]) == k])
        for k in twice], indent=1)
    reclaimed = sum(1 for e in stack.inbox.events(after=first) if e["claims"] > 1)
    figure("crash", "tickets created / acknowledged", f"{len(cases)} / {len(acked_tickets)}")
    figure("crash", "events stored when killed", killed_at_events)
    figure("crash", "deliveries the vendor gave up on while down", len(given_up))
    figure("crash", "events claimed again after the restart", reclaimed)
    figure("crash", "writes per acknowledged ticket", 1)
