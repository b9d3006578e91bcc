"""`tierdesk explain` shows each SLA clock recomputed from the inbox's history under the policy
in force; `tierdesk sla list [--at-risk] [--vendor V]` lists open clocks soonest first."""

from __future__ import annotations

import json
import os
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from connectors.base import VENDORS, Envelope
from tiering.sla import sla_for
from webhooks.cli import main
from webhooks.cli.sla import span
from webhooks.defaults import load_policy_file
from webhooks.inbox.records import DecisionRecord, SlaMark, SlaTimer, SlaWrite
from webhooks.inbox.store import Inbox

#: The partner model's calendar with first-response targets (the reference policy leaves them
#: out until the service records the first public reply): several clocks per ticket.
POLICY = """\
version: 1
tiers: [L1, L2, L3]
default_tier: L1
plans:
  vendor-standard: {max_tier: L3}
  vendor-premier: {max_tier: L3}
calendars:
  partner-office:
    timezone: Europe/Berlin
    hours: {mon-fri: ["08:00-18:00"]}
    holidays: {country: DE, subdivision: BY, yearly: ["12-24", "12-31"]}
sla:
  calendar: partner-office
  warn_at: [0.75]
  plans:
    vendor-standard:
      tiers:
        L1: {first_response: 2h, time_in_tier: 4h}
    vendor-premier:
      tiers:
        L1:
          first_response: 1h
          time_in_tier: 2h
          priority: {urgent: {first_response: 15m, time_in_tier: 1h}}
"""
#: Monday 23 November 2026, 08:30 in Munich (the partner's office opens at 08:00).
T0 = datetime(2026, 11, 23, 7, 30, tzinfo=UTC)
NOW = T0 + timedelta(minutes=90)
START = int(T0.timestamp())


@pytest.fixture
def policy_path(tmp_path: Path) -> Path:
    path = tmp_path / "partner.yaml"
    path.write_text(POLICY, encoding="utf-8")
    return path


@pytest.fixture
def db(tmp_path: Path, policy_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"sqlite:///{tmp_path}/cli.db"
    monkeypatch.setenv("TIERDESK_DATABASE_URL", url)
    monkeypatch.setenv("TIERDESK_POLICY", str(policy_path))
    monkeypatch.chdir(tmp_path)
    for name in ("JIRA_URL", "ZENDESK_URL", "ZENDESK_SUBDOMAIN", "PORT"):
        monkeypatch.delenv("TIERDESK_" + name, raising=False)
    return url


def ts(minutes: float) -> float:
    return (T0 + timedelta(minutes=minutes)).timestamp()


def _decided(box: Inbox, vendor: str, ticket: str, record: DecisionRecord,
             sla: SlaWrite | None = None) -> None:
    """One webhook of the ticket, evaluated: the decision (and SLA write) recorded."""
    box.enqueue(Envelope(vendor=vendor, event_type="e", handled=True, ticket=ticket,
                         delivery_id=f"d-{ticket}"), {})
    claim = box.claim(lease_seconds=30)
    assert claim is not None
    box.complete(claim, record=record, sla=sla)


def _ticket(url: str, vendor: str, ticket: str, *, plan: str, priority: str | None,
            statuses: list[tuple[float, str]], fired: tuple[str, ...] = (),
            with_timer: bool = True) -> None:
    """A ticket created at T0 in L1 with these (minutes after T0, status) changes; its timer
    computed as the worker would (at NOW, under the partner policy)."""
    box = Inbox.connect(url)
    marks = [SlaMark("created", ts(0)), SlaMark("tier", ts(0), "L1"),
             *(SlaMark("status", ts(m), s) for m, s in statuses)]
    _decided(box, vendor, ticket, DecisionRecord(
        vendor=vendor, ticket=ticket, outcome="applied", event_ids=(), tier_after="L1",
        decision={"plan": plan, "tier": "L1"}), SlaWrite(marks=tuple(marks), fired=fired))
    if with_timer:
        policy = load_policy_file(Path(os.environ["TIERDESK_POLICY"]))
        history = box.sla_history(vendor, ticket)
        assert history is not None
        report = sla_for(history, policy.sla, plan=plan, tier="L1", priority=priority, now=NOW)
        due = [c.due for c in report.clocks if c.due is not None]
        box.set_timer(SlaTimer(
            vendor=vendor, ticket=ticket,
            due_at=report.next_change.timestamp() if report.next_change else None,
            breach_at=min(due).timestamp() if due else None, policy_digest=policy.digest,
            plan=plan, tier="L1", priority=priority,
            clocks=tuple(c.to_dict() for c in report.clocks),
            open_clocks=sum(c.state != "stopped" for c in report.clocks)))
    box.close()


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


def test_span() -> None:
    assert [span(s) for s in (0, 20, 90, 3600, 5400, 45 * 3600 + 60, -600)] == [
        "0s", "20s", "1m30s", "1h", "1h30m", "45h1m", "-10m"]


def test_explain_json_shows_each_clock_computed_from_the_history(db: str) -> None:
    """Premier, L1: new 30 min, waiting for the customer 30 min, open again 30 min.

    time_in_tier (2h, pending pauses it): 60 min elapsed, 30 min paused, due in 60 min at
    10:00Z; its 75 % (90 min) falls at 09:30Z. first_response (1h, never paused): 90 min
    elapsed, its 75 % crossed at 08:15Z and breached at 08:30Z, both acted on."""
    _ticket(db, "jira", "PT-1", plan="vendor-premier", priority=None,
            statuses=[(0, "new"), (30, "pending"), (60, "open")],
            fired=(f"first_response@{START}:warn0.75", f"first_response@{START}:breach",
                   # A time_in_tier run that started earlier (another tier entry).
                   f"time_in_tier@{START - 600}:breach"))
    code, out = run("explain", "jira", "PT-1", "--json", "--now", NOW.isoformat())
    assert code == 0, out
    sla = json.loads(out)["sla"]
    assert (sla["plan"], sla["tier"], sla["priority"], sla["basis"]) == (
        "vendor-premier", "L1", None, "timer")
    clocks = {c["clock"]: c for c in sla["clocks"]}
    assert set(clocks) == {"first_response", "time_in_tier"}
    tit = clocks["time_in_tier"]
    assert (tit["state"], tit["elapsed_seconds"], tit["paused_seconds"]) == ("running", 3600, 1800)
    assert tit["due"] == "2026-11-23T10:00:00+00:00"
    assert tit["calendar"] == "partner-office"
    assert tit["source"] == "sla.plans.vendor-premier.tiers.L1.time_in_tier"
    assert [(t["fraction"], t["crossed_at"], t["fired"]) for t in tit["thresholds"]] == [
        (0.75, None, False), (1.0, None, False)]
    assert tit["next_change"] == "2026-11-23T09:30:00+00:00"
    fr = clocks["first_response"]
    assert (fr["state"], fr["elapsed_seconds"], fr["paused_seconds"]) == ("breached", 5400, 0)
    assert [(t["fraction"], t["crossed_at"], t["fired_key"]) for t in fr["thresholds"]] == [
        (0.75, "2026-11-23T08:15:00+00:00", f"first_response@{START}:warn0.75"),
        (1.0, "2026-11-23T08:30:00+00:00", f"first_response@{START}:breach")]
    assert sla["fired_elsewhere"] == [f"time_in_tier@{START - 600}:breach"]


def test_explain_text_shows_state_elapsed_paused_due_thresholds_and_why(db: str) -> None:
    _ticket(db, "jira", "PT-1", plan="vendor-premier", priority="urgent",
            statuses=[(0, "new"), (30, "pending"), (60, "open")],
            fired=(f"first_response@{START}:warn0.75",))
    code, out = run("explain", "jira", "PT-1", "--now", NOW.isoformat())
    assert code == 0, out
    lines = out.splitlines()
    digest = load_policy_file(Path(os.environ["TIERDESK_POLICY"])).digest[:12]
    assert lines[1] == (f"SLA clocks at 2026-11-23 09:00:00Z (policy {digest}, plan"
                        " vendor-premier, tier L1, priority urgent; from its timer):")
    # Urgent: time_in_tier 1h (60 min elapsed: breached at 09:00Z), first_response 15m.
    tit = lines.index("  time_in_tier   breached  elapsed 1h of 1h, paused 30m, due"
                      " 2026-11-23 09:00:00Z (partner-office)")
    assert lines[tit + 1].split("why: ")[1] == (
        "sla.plans.vendor-premier.tiers.L1.priority.urgent.time_in_tier;"
        " started 2026-11-23 07:30:00Z")
    assert lines[tit + 2].endswith(
        "thresholds: 75% crossed 2026-11-23 08:45:00Z; breach crossed 2026-11-23 09:00:00Z")
    fr = next(i for i, line in enumerate(lines) if line.startswith("  first_response"))
    assert "breached  elapsed 1h30m of 15m, paused 0s" in lines[fr]
    assert ("75% crossed 2026-11-23 07:41:15Z, acted on; breach crossed 2026-11-23 07:45:00Z"
            in lines[fr + 2])


def test_explain_says_why_a_ticket_has_no_clocks(db: str, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    # Known to the inbox by a decision, but no SLA history recorded.
    box = Inbox.connect(db)
    _decided(box, "zendesk", "7", DecisionRecord(vendor="zendesk", ticket="7", outcome="applied",
                                                 event_ids=(), decision={"plan": "vendor-premier"}))
    box.close()
    code, out = run("explain", "zendesk", "7", "--json")
    assert code == 0 and "recorded no SLA history" in json.loads(out)["sla"]["none_because"]
    code, out = run("explain", "zendesk", "7")
    assert "SLA clocks: none (the inbox has recorded no SLA history" in out
    # A policy without an sla section.
    plain = tmp_path / "plain.yaml"
    plain.write_text("version: 1\ntiers: [L1, L2]\ndefault_tier: L1\n", encoding="utf-8")
    monkeypatch.setenv("TIERDESK_POLICY", str(plain))
    code, out = run("explain", "zendesk", "7")
    assert code == 0 and f"SLA is not configured: the policy ({plain}) has no sla.plans" in out
    # A policy that cannot be loaded: the decisions are still shown.
    monkeypatch.setenv("TIERDESK_POLICY", str(tmp_path / "missing.yaml"))
    code, out = run("explain", "zendesk", "7")
    assert code == 0 and "SLA clocks: cannot load the policy to compute them" in out
    assert "applied" in out


def _rows(out: str) -> list[tuple[str, ...]]:
    lines = out.splitlines()
    assert lines[0].split() == ["DUE", "LEFT", "STATE", "CLOCK", "VENDOR", "TICKET", "TIER",
                                "PLAN"]
    return [tuple(line.split()) for line in lines[1:-1]]


def _three(db: str) -> None:
    # Standard: first_response 2h (due 09:30Z, 75 % at 09:00Z), time_in_tier 4h (due 11:30Z,
    # 75 % at 10:30Z).
    _ticket(db, "jira", "PT-1", plan="vendor-standard", priority=None, statuses=[(0, "open")])
    # Premier, waiting for the customer since 08:00Z: time_in_tier paused; first_response
    # (never paused) breached at 08:30Z.
    _ticket(db, "zendesk", "12", plan="vendor-premier", priority=None,
            statuses=[(0, "new"), (30, "pending")])
    # Solved: every clock stopped, nothing open.
    _ticket(db, "zendesk", "13", plan="vendor-premier", priority=None,
            statuses=[(0, "open"), (20, "solved")])


def test_sla_list_shows_open_clocks_soonest_due_first(db: str) -> None:
    _three(db)
    code, out = run("sla", "list", "--now", NOW.isoformat())
    assert code == 0, out
    assert _rows(out) == [
        ("2026-11-23", "08:30:00Z", "-30m", "breached", "first_response", "zendesk", "12", "L1",
         "vendor-premier"),
        # 90 min of 2h: its 75 % is now.
        ("2026-11-23", "09:30:00Z", "30m", "warning", "first_response", "jira", "PT-1", "L1",
         "vendor-standard"),
        ("2026-11-23", "11:30:00Z", "2h30m", "running", "time_in_tier", "jira", "PT-1", "L1",
         "vendor-standard"),
        ("-", "-", "paused", "time_in_tier", "zendesk", "12", "L1", "vendor-premier"),
    ]
    assert out.splitlines()[-1].startswith("(4 clocks;")
    code, out = run("sla", "list", "--vendor", "jira", "--now", NOW.isoformat())
    assert [r[5] for r in _rows(out)] == ["jira", "jira"]


def test_sla_list_at_risk_is_warning_breached_or_due_within_the_window(db: str) -> None:
    _three(db)
    code, out = run("sla", "list", "--at-risk", "--now", NOW.isoformat())
    assert code == 0, out
    # Breached, and a warning; PT-1's time_in_tier (due in 2h30m) is not within the hour, and
    # a paused clock has no due time.
    assert [(r[4], r[5], r[6]) for r in _rows(out)] == [
        ("first_response", "zendesk", "12"), ("first_response", "jira", "PT-1")]
    code, out = run("sla", "list", "--at-risk", "--within", "3h", "--now", NOW.isoformat())
    assert [(r[4], r[6]) for r in _rows(out)] == [
        ("first_response", "12"), ("first_response", "PT-1"), ("time_in_tier", "PT-1")]
    # 40 minutes later PT-1's first_response, stored as a warning, is past its due time: it is
    # reported as breached, though the worker has not recomputed it yet.
    later = (NOW + timedelta(minutes=40)).isoformat()
    code, out = run("sla", "list", "--at-risk", "--within", "1m", "--json", "--now", later)
    rows: list[dict[str, Any]] = json.loads(out)["clocks"]
    assert [(r["ticket"], r["clock"], r["state"], r["state_now"]) for r in rows] == [
        ("12", "first_response", "breached", "breached"),
        ("PT-1", "first_response", "warning", "breached"),
    ]
    code, out = run("sla", "list", "--at-risk", "--within", "soon")
    assert code == 2 and "--within" in out and "is not a duration" in out


def test_sla_list_warning_from_a_stored_next_change(db: str) -> None:
    _three(db)
    # 10:35Z: PT-1's time_in_tier, stored as running, passed its 75 % (3h of 4h) at 10:30Z.
    at = (NOW + timedelta(minutes=95)).isoformat()
    code, out = run("sla", "list", "--at-risk", "--within", "1m", "--now", at)
    assert code == 0, out
    assert [(r[3], r[4], r[6]) for r in _rows(out)] == [
        ("breached", "first_response", "12"), ("breached", "first_response", "PT-1"),
        ("warning", "time_in_tier", "PT-1")]


def test_sla_list_says_when_there_is_nothing(db: str, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    Inbox.connect(db).close()
    code, out = run("sla", "list")
    assert code == 0 and out.startswith("No open SLA clocks in SQLite file ")
    code, out = run("sla", "list", "--at-risk", "--vendor", "zendesk")
    assert "No at-risk SLA clocks of zendesk in" in out
    assert "(at risk: warning, breached or due within 1h)" in out
    plain = tmp_path / "plain.yaml"
    plain.write_text("version: 1\ntiers: [L1, L2]\ndefault_tier: L1\n", encoding="utf-8")
    monkeypatch.setenv("TIERDESK_POLICY", str(plain))
    code, out = run("sla", "list")
    assert out.startswith(f"SLA is not configured: the policy ({plain}) has no sla.plans")
    code, out = run("sla", "list", "--json")
    assert json.loads(out)["sla_configured"] is False


def test_sla_list_never_creates_a_database(tmp_path: Path, db: str) -> None:
    code, out = run("sla", "list")
    assert code == 2 and "nothing was created" in out and not (tmp_path / "cli.db").exists()


def test_explain_says_first_response_is_not_measured_on_a_vendor_that_lists_it(
    db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A vendor that lists first_response in its unmeasured_clocks (connectors.base VENDORS;
    none does today, so Zendesk is made one here) leaves it out and explain says so instead
    of a breach; Jira runs it under the same policy."""
    monkeypatch.setitem(VENDORS, "zendesk",  # type: ignore[index]
                        replace(VENDORS["zendesk"],
                                unmeasured_clocks=frozenset({"first_response"})))
    for vendor, ticket in (("jira", "PT-9"), ("zendesk", "9")):
        _ticket(db, vendor, ticket, plan="vendor-premier", priority=None,
                statuses=[(0, "open")], with_timer=False)
    code, out = run("explain", "zendesk", "9", "--now", NOW.isoformat(), "--json")
    sla = json.loads(out)["sla"]
    assert code == 0 and sla["unmeasured"] == ["first_response"]
    assert [c["clock"] for c in sla["clocks"]] == ["time_in_tier"]
    code, out = run("explain", "zendesk", "9", "--now", NOW.isoformat())
    assert "first_response not measured on this vendor yet" in " ".join(out.split())
    code, out = run("explain", "jira", "PT-9", "--now", NOW.isoformat(), "--json")
    sla = json.loads(out)["sla"]
    assert sla["unmeasured"] == []
    assert sorted(c["clock"] for c in sla["clocks"]) == ["first_response", "time_in_tier"]


def test_explain_measures_first_response_on_zendesk(db: str) -> None:
    """Zendesk's public reply trigger marks the first public agent reply
    (connectors/zendesk/reply_trigger.py), so Zendesk runs first_response like Jira."""
    _ticket(db, "zendesk", "10", plan="vendor-premier", priority=None,
            statuses=[(0, "open")], with_timer=False)
    code, out = run("explain", "zendesk", "10", "--now", NOW.isoformat(), "--json")
    sla = json.loads(out)["sla"]
    assert code == 0 and sla["unmeasured"] == []
    assert sorted(c["clock"] for c in sla["clocks"]) == ["first_response", "time_in_tier"]
