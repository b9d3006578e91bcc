"""`tierdesk plan` over the inbox's record: every listed change is what `decide` says under both
policies on the stored snapshot; --exit-code, --apply, the formats and every bad input."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from connectors.base import VENDORS
from tiering import Policy, decide, load_policy
from tiering.plan import tier_key
from webhooks.cli import main
from webhooks.defaults import default_policy_text
from webhooks.inbox.store import Inbox
from webhooks.service import build_connectors
from webhooks.settings import load_settings

NOW = "2026-11-21T12:00:00+00:00"
#: The proposed policy: unmatched tickets start in L0, the standard plan stops at L1.
PROPOSED = (
    default_policy_text()
    .replace("default_tier: L1", "default_tier: L0")
    .replace("  standard:\n    max_tier: L2", "  standard:\n    max_tier: L1")
    .replace("        L2: {time_in_tier: 14h, resolution: 35h}\n", "")
)


def jira_event(key: str, *, labels: list[str], summary: str = "Sync stopped", ts: int,
               email: str = "alice@acme.example", docs: bool = False) -> dict[str, Any]:
    """A full `jira:issue_updated` body (every mapped custom field present, null or set)."""
    fields: dict[str, Any] = {
        "summary": summary, "description": "Nothing syncs.", "labels": labels,
        "priority": {"name": "Medium"}, "reporter": {"accountId": "acc-x", "emailAddress": email},
        "assignee": None, "components": [], "attachment": [{"id": "1"}] if docs else [],
        "updated": "2026-11-20T10:00:00.000+0000",
        "customfield_10101": "Open a project, edit a cell, press Ctrl+S." if docs else None,
        "customfield_10102": "4.2.1 on Windows 11" if docs else None,
        "customfield_10103": {"value": "bugfix"} if docs else None,
        "customfield_10104": None,
    }
    return {"webhookEvent": "jira:issue_updated", "timestamp": ts,
            "user": {"accountId": "acc-agent"}, "issue": {"key": key, "fields": fields}}


def zendesk_trigger(ticket_id: str, *, tags: str, email: str, docs: bool = False,
                    attachments: str = "") -> dict[str, Any]:
    """tierdesk's Zendesk trigger body, rendered (the example policy's template). The example
    policy has SLA clocks, so its body says the status, the creation and the due field (issue
    18), else the connector reads the ticket and the snapshot is not plannable."""
    return {
        "tierdesk": 1, "event_type": "trigger", "ticket_id": ticket_id, "current_user_id": "7",
        "updated_at": "2026-11-20T10:00:00Z", "status": "Open",
        "created_at": "2026-11-20T09:00:00Z", "group_id": "", "assignee_id": "",
        "organization_id": "", "organization_plan": "", "organization_name": "",
        "requester_email": email, "attachments": attachments, "tags": tags,
        "priority": "Normal",
        "fields": {"360001111": "Open a project, edit a cell, press Ctrl+S." if docs else "",
                   "360001112": "4.2.1 on Windows 11" if docs else "",
                   "360001113": "bugfix" if docs else "", "360001114": "",
                   # The example policy's SLA due field (sla.due_field.zendesk), empty.
                   "360001120": ""},
        "subject": "Sync stopped", "description": "Nothing syncs.",
    }


#: (vendor, payload) in arrival order.
EVENTS: list[tuple[str, dict[str, Any]]] = [
    # SUP-1: an older snapshot in L3, the newest without a tier: the newest is planned
    ("jira", jira_event("SUP-1", labels=["tier-l3"], ts=1_000)),
    ("jira", jira_event("SUP-1", labels=[], ts=2_000)),
    # SUP-2: settled in L3 (premium): no policy edit here changes it
    ("jira", jira_event("SUP-2", labels=["tier-l3"], ts=1_500, docs=True)),
    # SUP-3: only a Cloud comment event (trimmed issue): skipped, the backlog would read it
    ("jira", {"webhookEvent": "comment_created", "timestamp": 1_700,
              "comment": {"id": "5", "self": "https://x/rest/api/2/issue/10003/comment/5",
                          "author": {"accountId": "acc-agent"}, "body": "hi",
                          "updated": "2026-11-20T10:00:00.000+0000"},
              "issue": {"key": "SUP-3", "fields": {"summary": "x"}}}),
    # Zendesk 42: a standard customer asking for L2: refused under the proposed plan
    ("zendesk", zendesk_trigger("42", tags="tier-l1 escalate-l2", email="bob@globex.example",
                                docs=True, attachments="+")),
    # Zendesk 43: a backfill body (ticket id only): skipped
    ("zendesk", {"tierdesk": 1, "event_type": "tierdesk:backfill", "ticket_id": "43",
                 "backfill_run": "r1"}),
]


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Settings for both vendors (never called: planning the inbox sends no request), the
    example policy as serve's, an inbox holding EVENTS, the proposed policy in proposed.yaml."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "current.yaml").write_text(default_policy_text(), encoding="utf-8")
    (tmp_path / "proposed.yaml").write_text(PROPOSED, encoding="utf-8")
    url = f"sqlite:///{tmp_path / 'inbox.db'}"
    for key, value in {
        "TIERDESK_POLICY": str(tmp_path / "current.yaml"),
        "TIERDESK_DATABASE_URL": url,
        "TIERDESK_JIRA_URL": "http://127.0.0.1:9", "TIERDESK_JIRA_EMAIL": "bot@x.example",
        "TIERDESK_JIRA_API_TOKEN": "t", "TIERDESK_JIRA_COMMENT_VISIBILITY": "role:Administrators",
        "TIERDESK_ZENDESK_URL": "http://127.0.0.1:9", "TIERDESK_ZENDESK_EMAIL": "bot@x.example",
        "TIERDESK_ZENDESK_API_TOKEN": "t",
    }.items():
        monkeypatch.setenv(key, value)
    inbox = Inbox.connect(url)
    try:
        for vendor, payload in EVENTS:
            assert inbox.enqueue(VENDORS[vendor].classify(payload, {}), payload)
    finally:
        inbox.close()
    return tmp_path


def plan(*args: str, input: str | None = None) -> Result:
    return CliRunner().invoke(main, ["plan", "--now", NOW, *args], input=input)


def _events(env: Path) -> list[tuple[str, str | None, str]]:
    inbox = Inbox.connect(f"sqlite:///{env / 'inbox.db'}")
    try:
        keys = {(v, t) for v, _ in EVENTS for t in inbox.ticket_keys(v)}
        return sorted((e.vendor, e.ticket, e.event_type) for v, t in keys
                      for e in inbox.events_of(v, t))
    finally:
        inbox.close()


def _expected(current: Policy, proposed: Policy) -> dict[str, tuple[str | None, str | None]]:
    """What decide says under both policies on each ticket's newest readable snapshot, for
    the tickets whose outcome differs: key -> (tier before, tier after)."""
    settings = load_settings()
    readers = {"current": build_connectors(settings, current),
               "proposed": build_connectors(settings, proposed)}
    newest: dict[tuple[str, str], Mapping[str, Any]] = {}
    for vendor, payload in EVENTS:  # the newest readable one wins (arrival = time order here)
        ticket = readers["current"][vendor].payload_ticket(payload)
        if ticket is not None:
            newest[(vendor, ticket.key)] = payload
    out = {}
    for (vendor, key), payload in newest.items():
        t = readers["current"][vendor].payload_ticket(payload)
        u = readers["proposed"][vendor].payload_ticket(payload)
        assert t is not None and u == t  # both policies map the same fields
        before = decide(t, current, now=_now())
        after = decide(t, proposed, now=_now())
        if (tier_key(before), before.labels_after(t.labels), before.assign, before.comment) != (
                tier_key(after), after.labels_after(t.labels), after.assign, after.comment):
            out[key] = (before.tier, after.tier)
    return out


def _now() -> Any:
    from datetime import datetime

    return datetime.fromisoformat(NOW)


def test_json_lists_exactly_what_decide_says(env: Path) -> None:
    """Every changed ticket of the inbox record, and only those, with decide's tiers; the
    unreadable snapshots are listed as skipped; nothing is queued or sent."""
    before = _events(env)
    result = plan("--policy", "proposed.yaml", "--format", "json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    current = load_policy(default_policy_text(), source="c")
    proposed = load_policy(PROPOSED, source="p")
    expected = _expected(current, proposed)
    assert {t["ticket"]: (t["tier_before"], t["tier_after"]) for t in doc["tickets"]} == expected
    assert expected == {"SUP-1": ("L1", "L0"), "42": ("L2", "L1")}
    assert {t["ticket"]: t["change"] for t in doc["tickets"]} == {"SUP-1": "de-escalate",
                                                                  "42": "refused"}
    assert doc["source"] == {"kinds": ["inbox"], "since": "30d", "tickets": 3, "skipped": 2}
    assert sorted(s["ticket"] for s in doc["skipped"]) == ["43", "SUP-3"]
    assert doc["summary"]["writes"] == {"jira": 1, "zendesk": 1, "total": 2}
    assert doc["policies"]["current"]["path"].endswith("current.yaml")
    assert doc["generated_at"] == NOW
    assert _events(env) == before


def test_a_policy_against_itself_plans_nothing_and_exits_0(env: Path) -> None:
    """--exit-code: 0 when nothing would change."""
    result = plan("--policy", "current.yaml", "--against", "current.yaml", "--exit-code")
    assert result.exit_code == 0, result.output
    assert "0 would change" in result.stdout


def test_exit_code_2_when_something_would_change(env: Path) -> None:
    """--exit-code: 2 when any ticket would change (the table is printed all the same)."""
    result = plan("--policy", "proposed.yaml", "--exit-code")
    assert result.exit_code == 2, result.output
    assert "jira SUP-1: de-escalate; tier L1 -> L0" in result.stdout
    assert "zendesk 42: refused; tier L2 -> L1" in result.stdout
    assert "Writes to enforce: 2" in result.stdout


def test_apply_queues_exactly_the_changed_tickets(env: Path) -> None:
    """--apply --yes adds one event per changed ticket (a reference the worker reads fresh)
    and none for the unchanged or skipped ones."""
    before = _events(env)
    result = plan("--policy", "proposed.yaml", "--apply", "--yes")
    assert result.exit_code == 0, result.output
    added = sorted(set(_events(env)) - set(before))
    assert added == [("jira", "SUP-1", "tierdesk:backfill"),
                     ("zendesk", "42", "tierdesk:backfill")]
    assert "Queued 2 changed ticket(s)" in result.stderr


def test_apply_asks_first(env: Path) -> None:
    """--apply without --yes asks; answering no queues nothing."""
    before = _events(env)
    result = plan("--policy", "proposed.yaml", "--apply", input="n\n")
    assert result.exit_code == 0, result.output
    assert "Queue the 2 changed ticket(s)" in result.stderr and _events(env) == before


def test_html_report_is_written(env: Path) -> None:
    """--format html --output writes the report renderer's page."""
    result = plan("--policy", "proposed.yaml", "--format", "html", "--output", "plan.html")
    assert result.exit_code == 0, result.output
    page = (env / "plan.html").read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and "SUP-1" in page


@pytest.mark.parametrize(("args", "says"), [
    # a bad policy: every problem, as `policy check` lists them
    (["--policy", "bad.yaml"], "problem(s); the policy was refused"),
    (["--policy", "missing.yaml"], "missing.yaml: no such policy file"),
    (["--policy", "proposed.yaml", "--against", "bad.yaml"], "problem(s); the policy was"),
    (["--policy", "proposed.yaml", "--since", "30x"], "--since: '30x' is not a time window"),
    (["--policy", "proposed.yaml", "--since", "0d"], "is not a time window"),
    (["--policy", "proposed.yaml", "--format", "html"], "give --output FILE"),
    (["--policy", "proposed.yaml", "--rate", "jira=fast"], "--rate 'jira=fast'"),
    (["--policy", "proposed.yaml", "--rate", "asana=5"], "VENDOR=WRITES_PER_MINUTE"),
    (["--policy", "proposed.yaml", "--rate", "jira=nan"], "positive, finite number"),
    (["--policy", "proposed.yaml", "--rate", "zendesk=inf"], "positive, finite number"),
    (["--policy", "proposed.yaml", "--yes"], "--yes only goes with --apply"),
    (["--policy", "proposed.yaml", "--now", "yesterday"], "--now: 'yesterday'"),
    (["--policy", "proposed.yaml", "--format", "xml"], "Invalid value for '--format'"),
    (["--policy", "proposed.yaml", "--jira-jql", " "], "--jira-jql: give a JQL query"),
    (["--policy", "proposed.yaml", "--zendesk-query", ""], "--zendesk-query: give a Zendesk"),
    ([], "Missing option '--policy'"),
])
def test_bad_input_is_a_clear_error_exit_1(env: Path, args: list[str], says: str) -> None:
    """Each bad input exits 1 (never 2, which means "would change") saying what is wrong."""
    (env / "bad.yaml").write_text("version: 1\ntiers: [L1]\ndefault_tier: L9\nfoo: 1\n",
                                  encoding="utf-8")
    result = plan(*args)
    assert result.exit_code == 1, result.output
    assert says in result.stderr


def test_bad_policy_lists_every_problem(env: Path) -> None:
    """A bad proposed policy: each problem on its own line with file and key, then the count."""
    (env / "bad.yaml").write_text("version: 1\ntiers: [L1]\ndefault_tier: L9\nfoo: 1\n",
                                  encoding="utf-8")
    result = plan("--policy", "bad.yaml")
    lines = [x for x in result.stderr.splitlines() if x.startswith("bad.yaml:")]
    assert len(lines) >= 3 and "default_tier" in result.stderr and "foo" in result.stderr


def test_no_inbox_is_a_clear_error(env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An inbox that does not exist is refused (and not created)."""
    monkeypatch.setenv("TIERDESK_DATABASE_URL", f"sqlite:///{env / 'none.db'}")
    result = plan("--policy", "proposed.yaml")
    assert result.exit_code == 1 and "cannot read the inbox: no inbox database" in result.stderr
    assert not (env / "none.db").exists()


def test_since_window_leaves_old_events_out(env: Path) -> None:
    """Events received before the window do not count (received_at is tierdesk's clock)."""
    result = plan("--policy", "proposed.yaml", "--format", "json", "--since", "1s",
                  "--now", "2100-01-01T00:00:00+00:00")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["source"]["tickets"] == 0


@pytest.fixture(autouse=True)
def _no_network(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Planning the inbox sends no vendor request: any attempt fails the test."""
    import requests

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError(f"vendor request during an inbox plan: {args[:3]}")

    monkeypatch.setattr(requests.Session, "send", refuse)
    yield
