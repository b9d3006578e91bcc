"""The SLA due field and SLA notes on Zendesk: `custom_fields` in the decision's one PUT (real
zenpy code on `responses`), nothing when the value holds, the sandbox's date-field rule."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
import responses
import yaml

from connectors.zendesk import ZendeskConnector
from connectors.zendesk.config import ZendeskConfig
from connectors.zendesk.trigger_body import template
from sandbox.wire import ApiError
from sandbox.zendesk.fields import check_custom_fields
from tiering import Policy, decide, load_policy
from tiering.models import Decision, Ticket
from tiering.sla import TicketHistory, sla_for
from tiering.sla_actions import DUE_DATE, DUE_TIME, SLA_MARKER, SLA_NOTES, apply_clocks

from .conftest import BASE, HERE, NOW, FakeClock, decider, sent, trigger_body

PUT_42 = f"{BASE}/api/v2/tickets/42.json"
DUE = 360001120


def sla_policy(kind: str = "date", **sla: Any) -> Policy:
    doc = yaml.safe_load((HERE / "policy.yaml").read_text("utf-8"))
    doc["sla"] = {
        "plans": {"premium": {"tiers": {"L1": {"resolution": "1d", "time_in_tier": "4h"}}}},
        "due_field": {"clock": "resolution", "zendesk": DUE, "zendesk_type": kind},
        **sla,
    }
    return load_policy(yaml.safe_dump(doc), source="sla-policy.yaml")


def connector_for(pol: Policy, config: ZendeskConfig) -> ZendeskConnector:
    return ZendeskConnector(config, pol, clock=FakeClock())


def body(due: str, **over: Any) -> dict[str, Any]:
    # With SLA clocks a trigger body must say the status and creation (issue-18-core), else
    # the connector reads the ticket.
    over = {"status": "Open", "created_at": "2026-11-21T10:00:00Z", **over}
    return trigger_body(tags="tier-l1", group_id="100",
                        fields={"360001111": "", "360001114": "", str(DUE): due}, **over)


def outcome(pol: Policy, t: Ticket, created: datetime,
            *changes: tuple[datetime, str]) -> Decision:
    h = TicketHistory.from_transitions(created, changes, initial="open")
    base = decide(t, pol, now=NOW)
    report = sla_for(h, pol.sla, plan=base.plan, tier=base.tier, priority=t.priority, now=NOW)
    return apply_clocks(t, pol, base, report, fired=frozenset(), now=NOW).decision


def _ok(rsps: responses.RequestsMock) -> None:
    rsps.put(PUT_42, json={"ticket": {"id": 42}, "audit": {"id": 1, "events": []}})


def test_trigger_body_carries_the_due_field() -> None:
    assert template(sla_policy())["fields"][str(DUE)] == f"{{{{ticket.ticket_field_{DUE}}}}}"


@pytest.mark.parametrize(("kind", "current", "written"), [
    ("date", "", "2026-11-22"),
    ("date", "2026-11-20", "2026-11-22"),
    ("text", "", "2026-11-22T11:00Z"),
    ("text", "by Friday", "2026-11-22T11:00Z"),  # an agent's text is overwritten
])
def test_due_time_written_in_the_one_put(rsps: responses.RequestsMock, config: ZendeskConfig,
                                         kind: str, current: str, written: str) -> None:
    pol = sla_policy(kind)
    c = connector_for(pol, config)
    t = c.current_ticket([body(current)])
    assert (DUE_DATE if kind == "date" else DUE_TIME) in t.fields
    d = outcome(pol, t, NOW - timedelta(hours=1))
    _ok(rsps)
    applied = c.apply(t, d, decide=decider(pol))
    assert sent(rsps) == [("PUT", "/api/v2/tickets/42.json", {"ticket": {
        "id": 42, "custom_fields": [{"id": DUE, "value": written}]}})]
    assert applied.wrote and [call.method for call in applied.calls] == ["PUT"]


@pytest.mark.parametrize(("kind", "current"), [
    ("date", "2026-11-22"), ("text", "2026-11-22T11:00Z"),
])
def test_unchanged_due_time_costs_nothing(rsps: responses.RequestsMock, config: ZendeskConfig,
                                          kind: str, current: str) -> None:
    pol = sla_policy(kind)
    c = connector_for(pol, config)
    t = c.current_ticket([body(current)])
    d = outcome(pol, t, NOW - timedelta(hours=1))
    assert not d.changed
    applied = c.apply(t, d, decide=decider(pol))
    assert len(rsps.calls) == 0 and applied.calls == ()


def test_a_date_in_another_form_is_unknown_and_never_rewritten(config: ZendeskConfig) -> None:
    """Were a trigger to render a date field otherwise than YYYY-MM-DD, nothing is written
    rather than the same date over and over."""
    pol = sla_policy("date")
    t = connector_for(pol, config).current_ticket([body("November 22, 2026")])
    assert DUE_DATE not in t.fields
    assert not outcome(pol, t, NOW - timedelta(hours=1)).changed


def test_paused_clock_clears_the_field(rsps: responses.RequestsMock,
                                       config: ZendeskConfig) -> None:
    pol = sla_policy("date")
    c = connector_for(pol, config)
    t = c.current_ticket([body("2026-11-22")])
    d = outcome(pol, t, NOW - timedelta(hours=2), (NOW - timedelta(hours=1), "pending"))
    _ok(rsps)
    c.apply(t, d, decide=decider(pol))
    assert sent(rsps) == [("PUT", "/api/v2/tickets/42.json", {"ticket": {
        "id": 42, "custom_fields": [{"id": DUE, "value": None}]}})]


def test_sla_note_tags_and_due_field_share_the_put(rsps: responses.RequestsMock,
                                                    config: ZendeskConfig) -> None:
    pol = sla_policy("date")
    c = connector_for(pol, config)
    t = c.current_ticket([body("")], last_note_key="0123456789abcdef")
    d = outcome(pol, t, NOW - timedelta(hours=3, minutes=30))  # 3.5h of 4h: warning
    assert d.note_key == "0123456789abcdef" and d.sla_note_key is not None
    _ok(rsps)
    applied = c.apply(t, d, decide=decider(pol))
    ((method, _, sent_body),) = sent(rsps)
    ticket = sent_body["ticket"]
    assert method == "PUT"
    assert ticket["tags"] == ["sla-warning", "tier-l1"] and ticket["safe_update"] is True
    assert ticket["custom_fields"] == [{"id": DUE, "value": "2026-11-22"}]
    assert ticket["comment"]["public"] is False
    assert ticket["comment"]["body"].endswith(f"{SLA_MARKER}{d.sla_note_key}")
    assert applied.note_key == "0123456789abcdef"  # the checklist's key stays the last note


def test_fresh_read_finds_the_sla_note(rsps: responses.RequestsMock,
                                       config: ZendeskConfig) -> None:
    pol = sla_policy("date")
    c = connector_for(pol, config)
    note = f"tierdesk: ...\n\n{SLA_MARKER}0123456789abcdef"
    rsps.get(f"{BASE}/api/v2/tickets/42.json", json={"ticket": {
        "id": 42, "tags": ["tier-l1"], "custom_fields": [{"id": DUE, "value": "2026-11-22"}],
        "updated_at": "2026-11-21T11:59:58Z", "subject": "s", "description": "d"}})
    rsps.get(f"{BASE}/api/v2/tickets/42/comments.json", json={"comments": [
        {"id": 1, "author_id": 777, "body": note, "attachments": []}]})
    t = c.read_ticket("42", fresh=True)
    assert t.fields[SLA_NOTES] == ("0123456789abcdef",)
    assert t.fields[DUE_DATE] == "2026-11-22"


class _Site:
    def __init__(self) -> None:
        from sandbox.zendesk.seed import ZendeskFieldSeed
        self.fields = {DUE: ZendeskFieldSeed(id=DUE, title="SLA due", type="date"),
                       1: ZendeskFieldSeed(id=1, title="Notes", type="text")}


@pytest.mark.parametrize("value", ["2026-11-22", None, ""])
def test_sandbox_date_field_takes_a_date(value: str | None) -> None:
    check_custom_fields(_Site(), {"custom_fields": [{"id": DUE, "value": value},
                                                     {"id": 1, "value": "anything"}]})


@pytest.mark.parametrize("value", ["2026-11-22T11:00:00", "2026-11-22T11:00Z", "22.11.2026",
                                   "2026-02-30", 20261122])
def test_sandbox_date_field_refuses_what_zendesk_refuses(value: object) -> None:
    with pytest.raises(ApiError) as refused:
        check_custom_fields(_Site(), {"custom_fields": [{"id": str(DUE), "value": value}]})
    assert refused.value.status == 422
    assert refused.value.body["details"]["base"] == [{
        "description": "SLA due is not valid", "error": "InvalidValue",
        "ticket_field_id": DUE, "ticket_field_type": "FieldDate"}]
