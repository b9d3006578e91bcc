"""The SLA due field and SLA notes on Jira: folded into the decision's one PUT, none when the
value already holds; the real `jira` client sends every request (`responses` answers)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import responses
import yaml

from connectors.jira import JiraConnector
from tests.connectors.jira.conftest import BASE, HERE, cloud_config, load
from tiering import Policy, decide, load_policy
from tiering.models import Decision, Ticket
from tiering.sla import TicketHistory, sla_for
from tiering.sla_actions import DUE_DATE, DUE_TIME, SLA_MARKER, SLA_NOTES, apply_clocks

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
PUT = f"{BASE}/rest/api/2/issue/KT-22"
GET = f"{BASE}/rest/api/2/issue/KT-22"


def sla_policy(jira: str = "duedate", **sla: Any) -> Policy:
    doc = yaml.safe_load((HERE / "policy.yaml").read_text(encoding="utf-8"))
    doc["calendars"] = {
        "berlin": {"timezone": "Europe/Berlin", "hours": {"mon-sun": ["00:00-24:00"]}},
    }
    doc["sla"] = {
        "plans": {"premium": {"tiers": {"L1": {"resolution": "1d", "time_in_tier": "4h"}}}},
        "due_field": {"clock": "resolution", "jira": jira},
        **sla,
    }
    return load_policy(yaml.safe_dump(doc), source="sla-policy.yaml")


def issue(**fields: Any) -> dict[str, Any]:
    body = load("jira_issue_created__cloud_many_fields.json")
    body["issue"]["fields"].update({"labels": ["tier-l1"], **fields})
    return body


def history(created: datetime, *changes: tuple[datetime, str]) -> TicketHistory:
    return TicketHistory.from_transitions(created, changes, initial="open")


def outcome(c: JiraConnector, pol: Policy, t: Ticket, h: TicketHistory,
            fired: frozenset[str] = frozenset()) -> Decision:
    base = decide(t, pol, now=NOW)
    report = sla_for(h, pol.sla, plan=base.plan, tier=base.tier, priority=t.priority, now=NOW)
    return apply_clocks(t, pol, base, report, fired=fired, now=NOW).decision


def sent(rsps: responses.RequestsMock) -> list[tuple[str, dict[str, Any] | None]]:
    return [(str(call.request.method),
             json.loads(call.request.body) if call.request.body else None)
            for call in rsps.calls]


@pytest.mark.parametrize(("jira", "current", "written"), [
    # duedate is a date: 23 hours from now on a 24/7 calendar (UTC) is 2026-11-22.
    ("duedate", None, "2026-11-22"),
    ("duedate", "2026-11-20", "2026-11-22"),
    # a datetime custom field: seconds, milliseconds, offset without a colon
    ("customfield_10200", None, "2026-11-22T11:00:00.000+0000"),
    ("customfield_10200", "2026-11-22T10:00:00.000+0000", "2026-11-22T11:00:00.000+0000"),
])
def test_due_time_written_in_the_one_put(rsps: responses.RequestsMock, jira: str,
                                         current: str | None, written: str) -> None:
    pol = sla_policy(jira)
    c = JiraConnector(cloud_config(), pol)
    t = c.current_ticket([issue(**{jira: current})])
    assert (DUE_DATE if jira == "duedate" else DUE_TIME) in t.fields
    d = outcome(c, pol, t, history(NOW - timedelta(hours=1)))
    assert d.due_write and d.changed
    rsps.add(responses.PUT, PUT, status=204)
    applied = c.apply(t, d, decide=lambda x: decide(x, pol, now=NOW))
    assert sent(rsps) == [("PUT", {"fields": {jira: written}})]
    assert [call.method for call in applied.calls] == ["PUT"]


@pytest.mark.parametrize(("jira", "current"), [
    ("duedate", "2026-11-22"),
    # Jira may answer in another offset: the same instant is the same value.
    ("customfield_10200", "2026-11-22T12:00:00.000+0100"),
    ("customfield_10200", "2026-11-22T11:00:00.000+0000"),
])
def test_unchanged_due_time_costs_nothing(rsps: responses.RequestsMock, jira: str,
                                          current: str) -> None:
    pol = sla_policy(jira)
    c = JiraConnector(cloud_config(), pol)
    t = c.current_ticket([issue(**{jira: current})])
    d = outcome(c, pol, t, history(NOW - timedelta(hours=1)))
    assert not d.due_write and not d.changed
    applied = c.apply(t, d, decide=lambda x: decide(x, pol, now=NOW))
    assert len(rsps.calls) == 0 and applied.calls == ()


def test_due_date_in_the_calendars_zone(rsps: responses.RequestsMock) -> None:
    """23:30 UTC is the next day in Berlin: duedate is the Berlin date."""
    doc_plans = {"premium": {"calendar": "berlin",
                             "tiers": {"L1": {"resolution": "1d"}}}}
    pol = sla_policy("duedate", plans=doc_plans)
    c = JiraConnector(cloud_config(), pol)
    t = c.current_ticket([issue(duedate=None)])
    d = outcome(c, pol, t, history(NOW - timedelta(hours=12, minutes=30)))
    assert d.due_at is not None and d.due_at.isoformat() == "2026-11-22T00:30:00+01:00"
    rsps.add(responses.PUT, PUT, status=204)
    c.apply(t, d, decide=lambda x: decide(x, pol, now=NOW))
    assert sent(rsps) == [("PUT", {"fields": {"duedate": "2026-11-22"}})]


def test_paused_clock_clears_the_field(rsps: responses.RequestsMock) -> None:
    pol = sla_policy("duedate")
    c = JiraConnector(cloud_config(), pol)
    t = c.current_ticket([issue(duedate="2026-11-22")])
    h = history(NOW - timedelta(hours=2), (NOW - timedelta(hours=1), "pending"))
    d = outcome(c, pol, t, h)
    rsps.add(responses.PUT, PUT, status=204)
    c.apply(t, d, decide=lambda x: decide(x, pol, now=NOW))
    assert sent(rsps) == [("PUT", {"fields": {"duedate": None}})]


def test_due_field_and_labels_share_the_put(rsps: responses.RequestsMock) -> None:
    pol = sla_policy("duedate")
    c = JiraConnector(cloud_config(), pol)
    t = c.current_ticket([issue(labels=[], duedate=None)])  # first triage: tier-l1 to add
    d = outcome(c, pol, t, history(NOW - timedelta(hours=1)))
    rsps.add(responses.PUT, PUT, status=204)
    c.apply(t, d, decide=lambda x: decide(x, pol, now=NOW))
    ((method, body),) = sent(rsps)
    assert method == "PUT"
    assert body is not None and body["fields"]["duedate"] == "2026-11-22"
    assert {"add": "tier-l1"} in body["update"]["labels"]


def test_a_payload_without_the_field_is_never_written_blind(rsps: responses.RequestsMock) -> None:
    pol = sla_policy("customfield_10200")
    c = JiraConnector(cloud_config(), pol)
    t = c.current_ticket([issue()])  # the fixture has no customfield_10200
    assert DUE_TIME not in t.fields
    d = outcome(c, pol, t, history(NOW - timedelta(hours=1)))
    assert not d.due_write and not d.changed


def test_read_issue_asks_for_the_due_field(rsps: responses.RequestsMock) -> None:
    pol = sla_policy("customfield_10200")
    c = JiraConnector(cloud_config(), pol)
    rsps.add(responses.GET, GET, json=issue(customfield_10200=None)["issue"])
    c.read_issue("KT-22")
    assert "customfield_10200" in rsps.calls[0].request.params["fields"].split(",")


def test_sla_note_posted_once_even_when_the_checklist_key_is_kept(
    rsps: responses.RequestsMock,
) -> None:
    """An SLA note keeps the checklist's note key (so the checklist is not posted again): the
    connector posts it because of its own key, and not again once a fresh read shows it."""
    pol = sla_policy("duedate", on_warning={"label": "sla-warning"})
    c = JiraConnector(cloud_config(), pol)
    t = c.current_ticket([issue(duedate="2026-11-22")], last_note_key="0123456789abcdef")
    h = history(NOW - timedelta(hours=3, minutes=30))  # 3.5h of 4h in tier: warning
    d = outcome(c, pol, t, h)
    assert d.sla_note_key is not None and d.note_key == "0123456789abcdef"
    rsps.add(responses.PUT, PUT, status=204)
    applied = c.apply(t, d, decide=lambda x: decide(x, pol, now=NOW))
    ((_, body),) = sent(rsps)
    assert body is not None
    comment = body["update"]["comment"][0]["add"]["body"]
    assert comment.endswith(f"{SLA_MARKER}{d.sla_note_key}")
    assert body["update"]["labels"] == [{"add": "sla-warning"}] and "fields" not in body
    assert applied.note_key == "0123456789abcdef"
    # The write landed but its keys were lost (a crash): a fresh read finds the note.
    fresh = issue(duedate="2026-11-22", labels=["tier-l1", "sla-warning"],
                  comment={"comments": [{"body": comment}], "total": 1})
    again = c.current_ticket([fresh], last_note_key="0123456789abcdef")
    assert again.fields[SLA_NOTES] == (d.sla_note_key,)
    redo = outcome(c, pol, again, h)
    assert redo.sla_note_key is None and not redo.changed
