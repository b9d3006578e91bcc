"""Out-of-order Jira deliveries over real processes, made deterministic with the sandbox's
hold/release: the sandbox as the vendor, `tierdesk serve` as a child process, webhooks
installed by `tierdesk install` (the set-up of `tierdesk demo`).

The broad end-to-end and fault suite (all decision kinds, duplicates, outage and 429 storm,
SIGKILL) lives in tests/e2e/; these two pin one ordering each.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from sandbox.demo import Stack, install_stack, service, settle
from sandbox.server import SandboxHandle, run_in_thread
from sandbox.story import Case, Expect
from tiering.models import note_key_in

pytestmark = pytest.mark.slow


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[tuple[SandboxHandle, Stack]]:
    handle = run_in_thread(retry_base=0.2)
    try:
        yield handle, install_stack(handle, tmp_path)
    finally:
        handle.stop()


def diagnose(handle: SandboxHandle, stack: Stack, cases: list[Case]) -> str:
    """What went wrong, for an assertion message: problems, the ticket's vendor state, its
    requests and deliveries, tierdesk's decision history, dead letters."""
    lines = [f"{c.vendor} {c.ref} {c.title}: {p}" for c in cases for p in c.problems]
    for case in cases:
        issue = handle.state()["jira"]["issues"][case.ref]
        lines.append(json.dumps(issue, indent=1, default=str)[:4000])
        lines += [
            f"{e.seq} {e.at:.3f} {e.vendor} {e.method} {e.path} {e.status} {e.actor}"
            f" {e.fault or ''}"
            for e in handle.sandbox.log
            if f"/{case.ref}" in e.path
        ]
        lines += [
            f"delivery {a.at:.3f} {a.event} {a.delivery_id} try {a.attempt}"
            f" -> {a.status or a.error}"
            for a in handle.sandbox.deliverer.attempts
            if a.ticket == case.ref
        ]
        lines.append(stack.cli(["explain", case.vendor, case.ref]))
    lines.append(stack.cli(["dead-letters", "list"]))
    return "\n".join(lines)


def duplicate_notes(handle: SandboxHandle) -> list[str]:
    """Jira issues where one checklist note (one note key) was posted more than once."""
    bad: list[str] = []
    for key, issue in handle.state()["jira"]["issues"].items():
        keys = [note_key_in(c["body"]) for c in issue["comments"] if c["author"] == "acc-bot"]
        keys = [k for k in keys if k]
        if len(keys) != len(set(keys)):
            bad.append(f"jira {key}: {keys}")
    return bad


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
        settle(handle, [case], timeout=4)
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
        settle(handle, [case], timeout=4)
        assert case.problems == []
        assert handle.wait_for_deliveries(timeout=30)
        time.sleep(2.0)  # let the worker act on the late deliveries
        settle(handle, [case], timeout=1)
        assert case.problems == [], diagnose(handle, st, [case])
        assert duplicate_notes(handle) == [], diagnose(handle, st, [case])


def test_a_stale_snapshot_after_a_fresh_read_is_not_applied(
    stack: tuple[SandboxHandle, Stack],
) -> None:
    """The order seen in the burst tests, made deterministic: the L3 refusal comes from a
    fresh read triggered by an older comment event, then a full issue snapshot taken before
    tierdesk's first write arrives. It must not re-triage the ticket from that snapshot (it
    did until 38e50b7: the outdated first note was posted a second time)."""
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
        settle(handle, [case], timeout=2.5)
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
        settle(handle, [case], timeout=5)
        assert case.problems == [], diagnose(handle, st, [case])
        assert duplicate_notes(handle) == [], diagnose(handle, st, [case])
