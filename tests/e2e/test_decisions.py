"""Every decision kind on both vendors through webhooks alone, and loops that settle.

The sandbox and `tierdesk serve` are separate processes; tickets are created and edited only
through the sandbox's scripted agents, so tierdesk hears of every change as a signed webhook
and answers with vendor API writes, whose own webhooks come back to it (Jira) or are held back
by the trigger's loop guard (Zendesk).
"""

from __future__ import annotations

import json

import pytest

from tests.e2e.conftest import Stack
from tests.e2e.harness import Traffic, figure
from tests.e2e.story import (
    FINAL,
    FIRST,
    KINDS,
    OWNERS,
    Case,
    Expect,
    comment,
    create,
    document,
    duplicate_notes,
    second_act,
    view,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

#: Writes tierdesk makes per ticket over the whole story: one per changing decision.
#: Jira "docs" is documented in two agent requests (fields, then the attachment upload), each
#: a changing decision (checklist progress, then L2); Zendesk documents in one ticket update.
EXPECTED_WRITES = {
    "jira": {"triage": 1, "suggest": 1, "docs": 3, "entitlement": 2, "route": 1,
             "unverified": 1, "quiet": 1},
    "zendesk": {"triage": 1, "suggest": 1, "docs": 2, "entitlement": 2, "route": 1,
                "unverified": 1, "quiet": 1},
}


def _problems(stack: Stack, cases: list[Case], expect: dict[str, Expect]) -> list[str]:
    state = stack.client.state()
    out: list[str] = []
    for c in cases:
        for p in expect[c.kind].owned_by(OWNERS[c.vendor]).problems(view(state, c)):
            out.append(f"{c.vendor} {c.ref} ({c.kind}): {p}")
    return out


@pytest.mark.parametrize("vendor", ["jira", "zendesk"])
def test_every_decision_kind_reaches_its_final_state_by_webhooks_alone(
    quiet_stack: Stack, vendor: str
) -> None:
    """Each decision kind ends as the policy says, with exactly one write per changing decision,
    none for tierdesk's own echoes or an unrelated agent comment, and every note posted once."""
    stack = quiet_stack
    client = stack.client
    mark = client.last_seq()
    decisions_before = len(stack.inbox.decisions())
    cases = [create(client, vendor, kind) for kind in KINDS]
    stack.settle()
    assert _problems(stack, cases, FIRST) == []

    # Act 2: documentation (Jira: fields, settle, attachment), the L3 request, a comment.
    by_kind = {c.kind: c for c in cases}
    if vendor == "jira":
        document(client, by_kind["docs"], step="fields")
        stack.settle()
        assert "(3 of 4 done)" in view(client.state(), by_kind["docs"]).notes[-1]
        document(client, by_kind["docs"], step="attachment")
    else:
        second_act(client, by_kind["docs"])
    second_act(client, by_kind["entitlement"])
    quiet_mark = client.last_seq()
    comment(client, by_kind["quiet"], "Thanks, trying the reset link now.")
    stack.settle()
    assert _problems(stack, cases, FINAL) == []

    # Loops settle: another quiet period brings no write at all.
    settled_mark = client.last_seq()
    stack.settle()
    assert Traffic.since(client, settled_mark).writes() == []

    traffic = Traffic.since(client, mark)
    writes = {c.kind: len(traffic.writes(vendor, ticket=c.ref)) for c in cases}
    assert writes == EXPECTED_WRITES[vendor]
    # The quiet ticket's comment was evaluated (an "unchanged" decision) and wrote nothing.
    quiet = by_kind["quiet"]
    assert Traffic.since(client, quiet_mark).writes(vendor, ticket=quiet.ref) == []
    records = stack.inbox.decisions()[decisions_before:]
    outcomes = [r["outcome"] for r in records if r["ticket"] == quiet.ref and r["vendor"] == vendor]
    assert outcomes[-1] == "unchanged"
    state = client.state()
    assert {c.ref: duplicate_notes(state, c) for c in cases} == {c.ref: [] for c in cases}
    applied = [r for r in records if r["vendor"] == vendor and r["outcome"] == "applied"]
    # Each applied decision made exactly one vendor write.
    assert all(
        sum(1 for call in json.loads(r["calls"]) if call["method"] in ("PUT", "POST")) == 1
        for r in applied
    )
    own = [r for r in records if r["vendor"] == vendor and r["outcome"] == "own-event"]
    if vendor == "jira":
        # Jira sends tierdesk's own writes back (issue_updated + comment_created): all dropped
        # without a request.
        assert own and all(json.loads(r["calls"]) == [] for r in own)
    else:
        # The Zendesk trigger's loop guard (current_user is_not the bot) keeps them at home.
        assert own == []
    reads = len(traffic.reads(vendor))
    total_writes = sum(writes.values())
    figure(f"decisions[{vendor}]", "tickets / changing decisions", f"{len(cases)} / {total_writes}")
    figure(f"decisions[{vendor}]", "vendor writes / reads", f"{total_writes} / {reads}")
    figure(f"decisions[{vendor}]", "echo events dropped without a request", len(own))
