"""Zendesk's first_response clock end to end: the sandbox and `tierdesk serve` as real
processes, webhooks and both triggers installed by `tierdesk install zendesk`, the example
policy with a second-scale first_response target on the 24/7 calendar.

A how-to question lands in L0 for the standard plan (Globex). Its first_response target is
60 s, warned at 50 % (a margin for the steps before the reply on a loaded machine). On one
ticket the requester writes back and an agent adds an internal note (neither stops the clock),
then an agent replies publicly: the public reply trigger's delivery stops the clock, `explain`
shows it stopped and `sla list` no longer lists it, tierdesk writes nothing for the two
deliveries of that update, and the warning never fires. A second ticket, never answered, warns
and breaches. Every wait is bounded and polls; no assertion is about how long something took.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import Stack, example_policy_with_sla, running_stack
from tests.e2e.harness import REPO, TIERDESK, ZENDESK_AGENT, SandboxClient, Traffic
from tests.e2e.story import Case, bot_comment_bodies, create
from tiering.sla_actions import SLA_MARKER

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

TARGET = 60
WARN = 0.5
#: The Globex requester of a "suggest" ticket on Zendesk (tests/e2e/story.py _CUSTOMER).
REQUESTER = "9102"
SLA = f"""
sla:
  calendar: 24x7
  warn_at: [{WARN}]
  plans:
    standard:
      tiers:
        L0: {{first_response: {TARGET}s}}
  on_warning: {{label: sla-warning, note: true}}
  on_breach: {{label: sla-breached, note: true}}
"""


def reply_policy(workdir: Path) -> Path:
    """The example policy with its calendars and sla sections replaced by a first_response
    target in seconds."""
    return example_policy_with_sla(workdir, "policy.first-reply.yaml", SLA)


@pytest.fixture(scope="module")
def reply_stack() -> Iterator[Stack]:
    with running_stack(reply_policy, prefix="tierdesk-e2e-reply-") as running:
        yield running


def cli(stack: Stack, *args: str) -> Any:
    """Run a `tierdesk` command against the service's inbox; its JSON answer."""
    done = subprocess.run([*TIERDESK, *args, "--json"], cwd=REPO, env=stack.service.env,
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads(done.stdout)


def first_response(stack: Stack, case: Case) -> dict[str, Any] | None:
    """The ticket's first_response clock as `tierdesk explain` recomputes it, or None."""
    sla = cli(stack, "explain", "zendesk", case.ref)["sla"]
    return next((c for c in sla["clocks"] if c["clock"] == "first_response"), None)


def listed(stack: Stack, case: Case) -> set[str]:
    """The ticket's open clocks as `tierdesk sla list` shows them."""
    rows = cli(stack, "sla", "list", "--vendor", "zendesk")["clocks"]
    return {r["clock"] for r in rows if r["ticket"] == case.ref}


def tags(client: SandboxClient, case: Case) -> set[str]:
    return set(client.state()["zendesk"]["tickets"][case.ref]["tags"])


def wait_for(what: str, check: Callable[[], bool], stack: Stack, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}\nservice log:\n{stack.service.logs()}")


def comment(client: SandboxClient, who: str, case: Case, body: str, *, public: bool) -> None:
    answer = client.agent("zendesk", who, "PUT", f"/api/v2/tickets/{case.ref}.json",
                          {"ticket": {"comment": {"body": body, "public": public}}})
    assert answer.status == 200, answer.body


def test_a_public_agent_reply_stops_first_response_and_nothing_else_does(
    reply_stack: Stack,
) -> None:
    """End-user comment and internal note: still running; the agent's public reply: stopped
    at the reply, gone from `sla list`, no write for its deliveries, never warned. The ticket
    nobody answers warns at 50 % and breaches."""
    stack, client = reply_stack, reply_stack.client
    answered = create(client, "zendesk", "suggest", tag="answered")
    silent = create(client, "zendesk", "suggest", tag="silent")
    for case in (answered, silent):
        wait_for(f"{case.ref} triaged to L0", lambda c=case: "tier-l0" in tags(client, c), stack)

    # The requester writes back; an agent leaves an internal note: neither is a reply.
    comment(client, REQUESTER, answered, "Any news?", public=True)
    comment(client, ZENDESK_AGENT, answered, "Asked L2 about it", public=False)
    stack.settle()
    clock = first_response(stack, answered)
    assert clock is not None and clock["state"] == "running", clock
    assert listed(stack, answered) == {"first_response"}

    # The agent replies publicly: both triggers fire; the reply trigger's body stops the clock.
    mark = client.last_seq()
    deliveries = client.delivery_mark()
    event_mark = stack.inbox.last_id()
    comment(client, ZENDESK_AGENT, answered, "Schedules are under Reports > Export.",
            public=True)
    replied_at = client.state()["zendesk"]["tickets"][answered.ref]["updated_at"]
    wait_for("the reply recorded", lambda: (first_response(stack, answered) or {}).get(
        "state") == "stopped", stack)
    stack.settle()
    sent = [d for d in client.deliveries(deliveries) if d["ticket"] == answered.ref]
    assert len(sent) == 2, sent  # the main trigger and the public reply trigger
    bodies = [json.loads(r["payload"]) for r in stack.inbox._rows(
        "SELECT payload FROM tierdesk_events WHERE id > ? AND ticket = ? ORDER BY id",
        (event_mark, answered.ref))]
    marked = [b for b in bodies if "public_reply_at" in b]
    assert len(bodies) == 2 and len(marked) == 1, bodies
    assert marked[0]["public_reply_at"] == replied_at
    assert Traffic.since(client, mark).writes("zendesk", ticket=answered.ref) == []
    clock = first_response(stack, answered)
    assert clock is not None
    assert datetime.fromisoformat(clock["started_at"]) <= datetime.fromisoformat(
        replied_at.replace("Z", "+00:00"))
    assert listed(stack, answered) == set()

    # The silent ticket, created after the answered one, warns and then breaches: the answered
    # one's warning and breach instants have passed by then, and nothing fired for it.
    wait_for("the silent ticket's warning", lambda: "sla-warning" in tags(client, silent),
             stack, timeout=120)
    wait_for("the silent ticket's breach", lambda: "sla-breached" in tags(client, silent),
             stack, timeout=120)
    stack.settle()
    assert not {"sla-warning", "sla-breached"} & tags(client, answered)
    assert [b for b in bot_comment_bodies(client.state(), answered) if SLA_MARKER in b] == []
    assert cli(stack, "explain", "zendesk", answered.ref)["sla"]["fired"] == []
    assert len([b for b in bot_comment_bodies(client.state(), silent) if SLA_MARKER in b]) == 2
    silent_clock = first_response(stack, silent)
    assert silent_clock is not None and silent_clock["state"] == "breached", silent_clock
