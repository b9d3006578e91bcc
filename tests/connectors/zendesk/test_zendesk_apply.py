"""Zendesk decisions to requests: exact method, path, JSON body and count per decision kind."""

from __future__ import annotations

from typing import Any

import pytest
import responses

from connectors.base import Call
from connectors.zendesk import ZendeskConnector
from connectors.zendesk import webhook as zendesk_webhook
from connectors.zendesk.config import ZendeskConfig
from tiering import Policy, decide
from tiering.models import Decision, Ticket
from tiering.policy import load_policy

from .conftest import BASE, BOT, HERE, NOW, FakeClock, decider, sent, trigger_body

PUT_42 = f"{BASE}/api/v2/tickets/42.json"
STAMP = "2026-11-21T11:59:58Z"


def _ok(rsps: responses.RequestsMock) -> None:
    rsps.put(PUT_42, json={"ticket": {"id": 42}, "audit": {"id": 1, "events": []}})


DOCS_NOTE = (
    "tierdesk: L2 needs documentation before this ticket can move up (it stays in L1 for now)."
    "\n\nChecklist for L2 (0 of 2 done):\n✘ Steps to reproduce — missing\n"
    "✘ Logs attached — no attachment yet\n\nComplete the missing items; the ticket moves to L2"
    " by itself.\n\nWhy: plan premium (up to L4).\n\ntierdesk-note:2dad25c362215742"
)
REFUSAL_NOTE = (
    "tierdesk: ticket 42 is in L1.\n\nEntitlement: L2 is beyond what plan basic allows (L1):"
    " the escalation request was refused; the ticket stays in L1.\n\nWhy: plan basic (up to L1)."
    "\n\ntierdesk-note:792a50ea0540c6d1"
)

# One row per decision kind: the trigger body Zendesk sent, and the exact requests that follow.
KINDS: list[tuple[str, dict[str, Any], list[tuple[str, str, Any]]]] = [
    # First triage: no tier yet, nothing matches a rule -> default L1, L1's group.
    ("first_triage", trigger_body(group_id=""), [
        ("PUT", "/api/v2/tickets/42.json", {"ticket": {
            "id": 42, "tags": ["tier-l1"], "group_id": 100,
            "safe_update": True, "updated_stamp": STAMP}}),
    ]),
    # Escalation granted: documentation complete, premium plan -> L2 and L2's group.
    ("escalation_granted", trigger_body(
        tags="tier-l1 escalate-l2 vip", attachments="++",
        fields={"360001111": "Open the app, click export, crash", "360001114": ""},
    ), [
        ("PUT", "/api/v2/tickets/42.json", {"ticket": {
            "id": 42, "tags": ["tier-l2", "vip"], "group_id": 200,
            "safe_update": True, "updated_stamp": STAMP}}),
    ]),
    # Documentation missing: stays L1, docs-missing tag, checklist as an internal note.
    ("documentation_missing", trigger_body(tags="tier-l1 escalate-l2"), [
        ("PUT", "/api/v2/tickets/42.json", {"ticket": {
            "id": 42, "tags": ["escalate-l2", "tier-docs-missing", "tier-l1"],
            "comment": {"body": DOCS_NOTE, "public": False},
            "safe_update": True, "updated_stamp": STAMP}}),
    ]),
    # Entitlement exceeded: the plan (from the organization field) caps at L1; refusal note.
    ("entitlement_exceeded", trigger_body(
        tags="tier-l1 escalate-l2", organization_plan="basic", organization_name="Initech",
    ), [
        ("PUT", "/api/v2/tickets/42.json", {"ticket": {
            "id": 42, "tags": ["tier-entitlement-exceeded", "tier-l1"],
            "comment": {"body": REFUSAL_NOTE, "public": False},
            "safe_update": True, "updated_stamp": STAMP}}),
    ]),
    # Route: a billing question gets the route tag and the billing group, no tier.
    ("route", trigger_body(subject="Refund for invoice 7", group_id=""), [
        ("PUT", "/api/v2/tickets/42.json", {"ticket": {
            "id": 42, "tags": ["tier-route-billing"], "group_id": 900,
            "safe_update": True, "updated_stamp": STAMP}}),
    ]),
    # No change: the ticket already has its tier: not a single request.
    ("no_change", trigger_body(tags="tier-l1"), []),
]


@pytest.mark.parametrize(("kind", "body", "expected"), KINDS, ids=[k[0] for k in KINDS])
def test_decision_kind_requests(
    kind: str,
    body: dict[str, Any],
    expected: list[tuple[str, str, Any]],
    connector: ZendeskConnector,
    policy: Policy,
    rsps: responses.RequestsMock,
) -> None:
    """A trigger body costs 0 reads and exactly the listed writes (1 PUT, or none)."""
    _ok(rsps)
    ticket = connector.current_ticket([body])
    decision = decide(ticket, policy, now=NOW)
    applied = connector.apply(ticket, decision, decide=decider(policy))
    assert sent(rsps) == expected
    assert applied.wrote is bool(expected)
    assert [(c.method, c.path, c.status) for c in applied.calls] == [
        (m, p, 200) for m, p, _ in expected
    ]


def test_own_update_changes_nothing_further(
    connector: ZendeskConnector, policy: Policy, rsps: responses.RequestsMock
) -> None:
    """Deciding again on the state tierdesk just wrote makes no request (loop safety)."""
    _ok(rsps)
    body = trigger_body(tags="tier-l1 escalate-l2")
    ticket = connector.current_ticket([body])
    first = connector.apply(ticket, decide(ticket, policy, now=NOW), decide=decider(policy))
    after = trigger_body(
        tags=" ".join(sent(rsps)[0][2]["ticket"]["tags"]), current_user_id=str(BOT),
    )
    again = connector.current_ticket([after], last_note_key=first.note_key)
    applied = connector.apply(again, decide(again, policy, now=NOW), decide=decider(policy))
    assert applied.calls == () and not applied.wrote
    assert len(rsps.calls) == 1


def test_bot_events_are_own(connector: ZendeskConnector, rsps: responses.RequestsMock) -> None:
    """An event whose actor is the bot user is recognised as own, without any request."""
    env = zendesk_webhook.classify(trigger_body(current_user_id=str(BOT)), {})
    assert connector.is_own_event(env) is True
    assert connector.is_own_event(zendesk_webhook.classify(trigger_body(), {})) is False
    assert len(rsps.calls) == 0


def test_note_already_posted_is_not_resent(
    connector: ZendeskConnector, policy: Policy, rsps: responses.RequestsMock
) -> None:
    """A decision whose note key is already on the ticket sends the tags only."""
    _ok(rsps)
    ticket = connector.current_ticket(
        [trigger_body(tags="tier-l1 escalate-l2")], last_note_key="0000000000000000"
    )
    decision = decide(ticket, policy, now=NOW)
    assert decision.note_key is not None
    ticket = connector.current_ticket(
        [trigger_body(tags="tier-l1 escalate-l2")], last_note_key=decision.note_key
    )
    forced = decision  # the engine would not comment again; the connector must not either
    connector.apply(ticket, forced, decide=decider(policy))
    assert sent(rsps) == [("PUT", "/api/v2/tickets/42.json", {"ticket": {
        "id": 42, "tags": ["escalate-l2", "tier-docs-missing", "tier-l1"],
        "safe_update": True, "updated_stamp": STAMP}})]


def test_assignment_only_carries_no_collision_guard(
    connector: ZendeskConnector, policy: Policy, rsps: responses.RequestsMock
) -> None:
    """An assignment to a target with an agent sends group and assignee, no tags, no stamp."""
    _ok(rsps)
    ticket = connector.current_ticket([trigger_body(tags="tier-l2", group_id="100")])
    decision = decide(ticket, policy, now=NOW)
    from dataclasses import replace

    moved = replace(decision, assign="L3", labels_add=(), labels_remove=())
    applied = connector.apply(ticket, moved, decide=decider(policy))
    assert sent(rsps) == [("PUT", "/api/v2/tickets/42.json", {"ticket": {
        "id": 42, "group_id": 300, "assignee_id": 3001}})]
    assert applied.calls == (Call("PUT", "/api/v2/tickets/42.json", 200, "update ticket 42"),)


def test_group_move_unassigns_agent(
    connector: ZendeskConnector, policy: Policy, rsps: responses.RequestsMock
) -> None:
    """Moving to a group-only target clears the old agent (Zendesk refuses a foreign assignee)."""
    _ok(rsps)
    ticket = connector.current_ticket([trigger_body(
        tags="tier-l1 escalate-l2", assignee_id="55", attachments="+",
        fields={"360001111": "Open the app, click export, crash", "360001114": ""},
    )])
    connector.apply(ticket, decide(ticket, policy, now=NOW), decide=decider(policy))
    assert sent(rsps)[0][2]["ticket"]["assignee_id"] is None
    assert sent(rsps)[0][2]["ticket"]["group_id"] == 200


def test_minute_precision_stamp_reads_once_before_tags_write(
    connector: ZendeskConnector, policy: Policy, rsps: responses.RequestsMock
) -> None:
    """A trigger stamp to the minute (as Zendesk documents it) cannot guard a tags write: one
    plain read of the ticket first, then one PUT stamped with the exact `updated_at`."""
    from .test_zendesk_faults import api_ticket

    _ok(rsps)
    rsps.get(PUT_42, json=api_ticket(["tier-l1", "escalate-l2", "vip"], "2026-11-21T11:59:41Z"))
    ticket = connector.current_ticket(
        [trigger_body(tags="tier-l1 escalate-l2", updated_at="2026-11-21T11:59Z")]
    )
    applied = connector.apply(ticket, decide(ticket, policy, now=NOW), decide=decider(policy))
    calls = sent(rsps)
    assert [(m, p) for m, p, _ in calls] == [
        ("GET", "/api/v2/tickets/42.json"), ("PUT", "/api/v2/tickets/42.json"),
    ]
    assert calls[1][2] == {"ticket": {
        "id": 42, "tags": ["escalate-l2", "tier-docs-missing", "tier-l1", "vip"],
        "comment": {"body": DOCS_NOTE, "public": False},
        "safe_update": True, "updated_stamp": "2026-11-21T11:59:41Z"}}
    assert [c.purpose for c in applied.calls] == ["refresh ticket 42", "update ticket 42"]


def test_minute_precision_stamp_no_change_makes_no_request(
    connector: ZendeskConnector, policy: Policy, rsps: responses.RequestsMock
) -> None:
    """The extra read is only for tags writes: an unchanged ticket still costs nothing."""
    body = trigger_body(tags="tier-l1", updated_at="2026-11-21T11:59Z")
    ticket = connector.current_ticket([body])
    applied = connector.apply(ticket, decide(ticket, policy, now=NOW), decide=decider(policy))
    assert applied.calls == () and len(rsps.calls) == 0


def test_calls_are_counted_per_worker_thread(
    connector: ZendeskConnector, policy: Policy, rsps: responses.RequestsMock
) -> None:
    """Worker threads share one connector; each decision's Applied.calls holds only its own."""
    import threading

    for tid in range(100, 108):
        rsps.put(f"{BASE}/api/v2/tickets/{tid}.json", json={"ticket": {"id": tid}})
    results: dict[int, list[tuple[str, str]]] = {}
    start = threading.Barrier(8)

    def work(tid: int) -> None:
        start.wait()
        for _ in range(5):
            ticket = connector.current_ticket([trigger_body(ticket_id=str(tid), group_id="")])
            applied = connector.apply(ticket, decide(ticket, policy, now=NOW),
                                      decide=decider(policy))
            results.setdefault(tid, []).extend((c.method, c.path) for c in applied.calls)

    threads = [threading.Thread(target=work, args=(tid,)) for tid in range(100, 108)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == {
        tid: [("PUT", f"/api/v2/tickets/{tid}.json")] * 5 for tid in range(100, 108)
    }


@pytest.mark.parametrize(("assignee", "cleared"), [("3001", True), ("55", False)])
def test_same_group_tier_change_hands_the_previous_target_assignee_to_the_queue(
    config: ZendeskConfig, clock: FakeClock, rsps: responses.RequestsMock, assignee: str,
    cleared: bool,
) -> None:
    """L3 (group 300, agent 3001) to an L4 in the same group with no agent: the L3 agent's
    ticket goes to the group queue; an agent who took it by hand (55) keeps it."""
    text = (HERE / "policy.yaml").read_text("utf-8").replace(
        "L4: {zendesk: {group_id: 400}}", "L4: {zendesk: {group_id: 300}}")
    policy = load_policy(text, source="policy.yaml")
    connector = ZendeskConnector(config, policy, clock=clock)
    ticket = Ticket(key="42", labels=frozenset({"tier-l3"}), group="300", assignee=assignee)
    decision = Decision(ticket="42", tier="L4", previous_tier="L3", assign="L4")
    body = connector.plan(ticket, decision)
    if cleared:
        assert body == {"assignee_id": None}
    else:
        assert body is None
