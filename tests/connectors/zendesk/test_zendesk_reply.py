"""The public reply trigger (connectors/zendesk/reply_trigger.py): its spec and body, the reply
marker parsed into `Ticket.first_reply_at` with no request, kept through salvage, reads and
groups of deliveries, and `install` creating it idempotently (`--dry-run` lists it)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import responses
from responses import matchers

from connectors.zendesk import ZendeskConnector, webhook
from connectors.zendesk.admin import TRIGGER_TITLE, ZendeskAdmin, loop_guard_condition
from connectors.zendesk.reply_trigger import (
    REPLY_CONDITIONS,
    REPLY_TRIGGER_TITLE,
    reply_trigger_spec,
)
from connectors.zendesk.tickets import first_reply_in, reply_time
from connectors.zendesk.trigger_body import REPLY_KEY, render_template, template
from tiering import Policy

from .conftest import BASE, BOT, sent, trigger_body
from .test_zendesk_faults import api_ticket
from .test_zendesk_sla_fields import sla_connector, sla_policy  # noqa: F401 (fixtures)

REPLY = "2026-11-21T11:59Z"  # minute precision, as Zendesk documents the placeholder
AT = datetime(2026, 11, 21, 11, 59, tzinfo=UTC)
HOOK = "01GK8E6BKWMJZD2T8Y5AXJQMG5"
CALLBACK = "https://tierdesk.example.com/webhooks/zendesk"


def test_reply_body_is_the_main_body_plus_the_marker_among_the_routing_keys(
    policy: Policy,
) -> None:
    """Same keys in the same order, plus REPLY_KEY right after updated_at (digits and ASCII,
    before any free text, so salvage keeps it)."""
    main, reply = list(template(policy)), list(template(policy, reply=True))
    assert [k for k in reply if k != REPLY_KEY] == main
    assert reply.index(REPLY_KEY) == main.index("updated_at") + 1
    assert template(policy, reply=True)[REPLY_KEY] == "{{ticket.updated_at_with_timestamp}}"


def test_reply_trigger_spec_states_the_documented_conditions() -> None:
    """A public comment, by anyone but an end user, on a change (not a creation), and the
    main trigger's loop guard; the same webhook, the reply body."""
    guard = loop_guard_condition(BOT, "user")
    spec = reply_trigger_spec(HOOK, "{body}", loop_guard=guard)
    assert spec == {
        "title": REPLY_TRIGGER_TITLE,
        "description": spec["description"],
        "active": True,
        "conditions": {"all": [
            {"field": "update_type", "operator": "is", "value": "Change"},
            {"field": "comment_is_public", "operator": "is", "value": "true"},
            {"field": "role", "operator": "is_not", "value": "end_user"},
            {"field": "current_user", "operator": "is_not", "value": str(BOT)},
        ], "any": []},
        "actions": [{"field": "notification_webhook", "value": [HOOK, "{body}"]}],
    }
    api = reply_trigger_spec(HOOK, "{}", loop_guard=loop_guard_condition(None, "api"))
    assert api["conditions"]["all"] == [
        *REPLY_CONDITIONS, {"field": "current_via_id", "operator": "is_not", "value": "5"}]


def test_reply_time_parses_the_marker_and_nothing_else() -> None:
    """Minutes or seconds; an absent, empty or unrendered marker is no reply."""
    assert reply_time({REPLY_KEY: REPLY}) == AT
    assert reply_time({REPLY_KEY: "2026-11-21T11:59:30Z"}) == AT.replace(second=30)
    for body in ({}, {REPLY_KEY: ""}, {REPLY_KEY: "{{ticket.updated_at_with_timestamp}}"},
                 {REPLY_KEY: 5}):
        assert reply_time(body) is None
    assert first_reply_in([{}, {REPLY_KEY: "2026-11-21T12:03Z"}, {REPLY_KEY: REPLY}]) == AT
    assert first_reply_in([{}]) is None


def test_a_reply_body_gives_first_reply_at_with_no_request(
    connector: ZendeskConnector, rsps: responses.RequestsMock
) -> None:
    """The reply trigger's body is complete: the ticket, with its first reply, costs 0 reads;
    the main trigger's body has none."""
    ticket = connector.current_ticket([trigger_body(**{REPLY_KEY: REPLY})])
    assert ticket.first_reply_at == AT and sent(rsps) == []
    assert connector.current_ticket([trigger_body()]).first_reply_at is None


def test_the_reply_survives_a_group_ending_with_the_main_triggers_body(
    connector: ZendeskConnector, rsps: responses.RequestsMock
) -> None:
    """Both triggers fire on a public agent reply; claimed together, the decision is on the
    newest payload (maybe the main trigger's) and still carries the reply."""
    ticket = connector.current_ticket([trigger_body(**{REPLY_KEY: REPLY}), trigger_body()])
    assert ticket.first_reply_at == AT and sent(rsps) == []


def test_a_salvaged_reply_body_keeps_its_marker_through_the_read(
    connector: ZendeskConnector, rsps: responses.RequestsMock
) -> None:
    """Free text that breaks the JSON makes the body partial (one read of the ticket); the
    reply marker is a routing key, salvaged with the ticket id, and kept on the read ticket."""
    raw = ('{"tierdesk": 1, "event_type": "trigger", "ticket_id": "42",'
           ' "current_user_id": "501", "updated_at": "2026-11-21T11:59Z",'
           f' "{REPLY_KEY}": "{REPLY}", "subject": "broken "quote""}}').encode()
    body = webhook.parse(raw)
    assert body["partial"] is True and body[REPLY_KEY] == REPLY
    rsps.get(f"{BASE}/api/v2/tickets/42.json", json=api_ticket(["tier-l1"]))
    ticket = connector.current_ticket([body])
    assert ticket.first_reply_at == AT
    assert [m for m, _, _ in sent(rsps)] == ["GET"]


def test_a_fresh_read_keeps_the_reply_the_payload_marked(
    connector: ZendeskConnector, rsps: responses.RequestsMock
) -> None:
    """A delivery decided on a fresh read (out of order, retried): the API's ticket has no
    reply, the payload's marker still counts."""
    rsps.get(f"{BASE}/api/v2/tickets/42.json", json=api_ticket(["tier-l1"]))
    rsps.get(f"{BASE}/api/v2/tickets/42/comments.json", json={"comments": []})
    ticket = connector.current_ticket([trigger_body(**{REPLY_KEY: REPLY})], fresh=True)
    assert ticket.first_reply_at == AT


def _account(rsps: responses.RequestsMock, policy: Policy, *, reply: list[Any]) -> Any:
    hook = {"id": HOOK, "name": "tierdesk", "endpoint": CALLBACK, "http_method": "POST",
            "request_format": "json", "status": "active",
            "subscriptions": ["conditional_ticket_events"],
            "description": "tierdesk receiver: tiered-support evaluation of ticket changes"}
    from connectors.zendesk.admin import trigger_spec

    main = trigger_spec(HOOK, render_template(policy), bot_user_id=BOT,
                        through_solved=True) | {"id": 360099}
    rsps.get(f"{BASE}/api/v2/webhooks", json={"webhooks": [hook]})
    rsps.get(f"{BASE}/api/v2/webhooks/{HOOK}/signing_secret",
             json={"signing_secret": {"algorithm": "SHA256", "secret": "s"}})
    rsps.get(f"{BASE}/api/v2/triggers/search", json={"triggers": [main]},
             match=[matchers.query_param_matcher({"query": TRIGGER_TITLE})])
    return rsps.get(f"{BASE}/api/v2/triggers/search", json={"triggers": reply},
                    match=[matchers.query_param_matcher({"query": REPLY_TRIGGER_TITLE})])


def test_dry_run_lists_the_reply_trigger_and_sends_no_write(
    sla_connector: ZendeskConnector, sla_policy: Policy,  # noqa: F811
    rsps: responses.RequestsMock,
) -> None:
    """With SLA clocks and no reply trigger yet, --dry-run plans exactly its POST."""
    _account(rsps, sla_policy, reply=[])
    result = ZendeskAdmin(sla_connector).install_webhook(callback_url=CALLBACK, dry_run=True)
    wanted = reply_trigger_spec(HOOK, render_template(sla_policy, reply=True),
                                loop_guard=loop_guard_condition(BOT, "user"))
    assert [(r.method, r.path, r.body) for r in result.writes] == [
        ("POST", "/api/v2/triggers", {"trigger": wanted})]
    assert all(m == "GET" for m, _, _ in sent(rsps))


def test_a_stale_or_inactive_reply_trigger_is_put_whole_once(
    sla_connector: ZendeskConnector, sla_policy: Policy,  # noqa: F811
    rsps: responses.RequestsMock,
) -> None:
    """A reply trigger deactivated by hand or sending an old body is PUT back; a rerun on the
    result writes nothing."""
    wanted = reply_trigger_spec(HOOK, render_template(sla_policy, reply=True),
                                loop_guard=loop_guard_condition(BOT, "user"))
    search = _account(rsps, sla_policy, reply=[wanted | {"id": 360100, "active": False}])
    rsps.put(f"{BASE}/api/v2/triggers/360100", json={"trigger": {"id": 360100}})
    ZendeskAdmin(sla_connector).install_webhook(callback_url=CALLBACK)
    assert [(m, p, b) for m, p, b in sent(rsps) if m != "GET"] == [
        ("PUT", "/api/v2/triggers/360100", {"trigger": wanted})]
    rsps.calls.reset()  # type: ignore[no-untyped-call]
    search.body = json.dumps({"triggers": [wanted | {"id": 360100}]})
    ZendeskAdmin(sla_connector).install_webhook(callback_url=CALLBACK)
    assert all(m == "GET" for m, _, _ in sent(rsps))


def test_without_sla_clocks_install_makes_no_reply_trigger(
    connector: ZendeskConnector, policy: Policy, rsps: responses.RequestsMock
) -> None:
    """A policy without an `sla` section measures no clock: no reply trigger, not even read
    (it would cost one webhook invocation per agent reply for nothing)."""
    _account(rsps, policy, reply=[])
    rsps.put(f"{BASE}/api/v2/triggers/360099", json={"trigger": {"id": 360099}})
    result = ZendeskAdmin(connector).install_webhook(callback_url=CALLBACK)
    assert result.reply_trigger_id is None
    assert not any("public+reply" in p for _, p, _ in sent(rsps))
    assert not any(r.path == "/api/v2/triggers" for r in result.writes)
