"""`tierdesk plan` over the sandbox's live backlog (Jira and Zendesk over real HTTP): each listed
change is what `decide` says under both policies on the ticket the vendor holds now; planning
writes nothing; --apply queues exactly the changed tickets' backfill items."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import requests
from click.testing import CliRunner

from connectors.jira.admin import JiraAdmin
from connectors.jira.config import JiraConfig
from connectors.jira.tickets import ticket_from_issue
from connectors.zendesk import ZendeskConnector
from connectors.zendesk.admin import ZendeskAdmin
from connectors.zendesk.config import ZendeskConfig
from tiering import Policy, Ticket, decide, load_policy
from tiering.plan import PlanInput, compare
from webhooks.cli import main
from webhooks.defaults import default_policy_text
from webhooks.inbox.store import Inbox

sandbox_server = pytest.importorskip("sandbox.server")

NOW = "2026-11-21T12:00:00+00:00"
AGENT = ("agent@tierdesk.example/token", "sandbox-token")
#: Unmatched tickets start in L0; the how-to rule suggests another page.
PROPOSED = (default_policy_text().replace("default_tier: L1", "default_tier: L0")
            .replace('"https://docs.example.com/faq"', '"https://docs.example.com/help"'))
#: Besides, L1 needs a product version: the policies read attachments and fields alike, but
#: their documentation differs, so each policy's own search runs.
PROPOSED_DOCS = PROPOSED.replace(
    "documentation:\n  L2:\n",
    "documentation:\n  L1:\n    - {field: product_version, label: \"Version\","
    " pattern: '^\\d+\\.\\d+'}\n  L2:\n")


@pytest.fixture
def sandbox(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Any]:
    """A running sandbox with a few more Jira issues and Zendesk tickets, and the settings of
    both vendors pointing at it."""
    handle = sandbox_server.run_in_thread(retry_base=0.05)
    try:
        for summary in ("Sync stopped", "How do I export a report", "Invoice is wrong"):
            made = handle.agent("jira", "acc-globex", "POST", "/rest/api/2/issue", {"fields": {
                "project": {"key": "SUP"}, "issuetype": {"name": "Task"}, "summary": summary}})
            assert made.status == 201, made
        for subject in ("Sync stopped", "Refund please"):
            made_z = requests.post(
                f"{handle.zendesk_url}/api/v2/tickets.json", auth=AGENT, timeout=5,
                json={"ticket": {"subject": subject, "requester_id": 9101,
                                 "comment": {"body": "Nothing works since Monday."}}})
            assert made_z.status_code == 201, made_z.text
        assert handle.wait_for_deliveries(10)
        monkeypatch.chdir(tmp_path)
        (tmp_path / "current.yaml").write_text(default_policy_text(), encoding="utf-8")
        (tmp_path / "proposed.yaml").write_text(PROPOSED, encoding="utf-8")
        (tmp_path / "proposed-docs.yaml").write_text(PROPOSED_DOCS, encoding="utf-8")
        for key, value in {
            "TIERDESK_POLICY": str(tmp_path / "current.yaml"),
            "TIERDESK_DATABASE_URL": f"sqlite:///{tmp_path / 'inbox.db'}",
            "TIERDESK_JIRA_URL": handle.jira_url, "TIERDESK_JIRA_EMAIL": "bot@tierdesk.example",
            "TIERDESK_JIRA_API_TOKEN": "sandbox-token", "TIERDESK_JIRA_ACCOUNT_ID": "acc-bot",
            "TIERDESK_JIRA_COMMENT_VISIBILITY": "role:Administrators",
            "TIERDESK_ZENDESK_URL": handle.zendesk_url,
            "TIERDESK_ZENDESK_EMAIL": "bot@tierdesk.example",
            "TIERDESK_ZENDESK_API_TOKEN": "sandbox-token", "TIERDESK_ZENDESK_USER_ID": "9001",
        }.items():
            monkeypatch.setenv(key, value)
        yield handle
    finally:
        handle.stop()


def _vendor_state(handle: Any) -> Any:
    state = handle.state()
    return state["jira"], state["zendesk"]


def _expected(handle: Any, current: Policy, proposed: Policy) -> dict[str, tuple[Any, ...]]:
    """decide under both policies on every ticket the vendors hold, read with each policy's
    own mapping: ticket -> (change, tier before, tier after) for those whose outcome differs."""
    now = datetime.fromisoformat(NOW)
    jira = JiraConfig(base_url=handle.jira_url, email="bot@tierdesk.example",
                      api_token="sandbox-token", bot_account_id="acc-bot", timeout=5.0,
                      comment_visibility=("role", "Administrators"))
    zendesk = ZendeskConfig(base_url=handle.zendesk_url, email="bot@tierdesk.example",
                            api_token="sandbox-token", bot_user_id=9001, timeout=5.0)
    inputs: list[PlanInput] = []
    for issue in JiraAdmin.from_config(jira, proposed).search_tickets("project = SUP"):
        inputs.append(PlanInput("jira", ticket_from_issue(issue, policy=current, config=jira),
                                ticket_from_issue(issue, policy=proposed, config=jira)))
    read: dict[str, dict[str, Ticket]] = {}
    for name, policy in (("current", current), ("proposed", proposed)):
        admin = ZendeskAdmin(ZendeskConnector(zendesk, policy))
        read[name] = {item.ticket.key: item.ticket for item in admin.backfill_items(
            query="status<solved", decide=lambda t, p=policy: decide(t, p, now=now))
            if item.ticket is not None}
    inputs += [PlanInput("zendesk", t, read["proposed"][k]) for k, t in read["current"].items()]
    out = {}
    for item in inputs:
        _, _, change = compare(item, current, proposed, now=now)
        if change is not None:
            out[change.ticket] = (change.change, change.tier_before, change.tier_after,
                                  change.labels_added, change.labels_removed, change.note)
    return out


def _run(*args: str) -> Any:
    return CliRunner().invoke(main, ["plan", "--now", NOW, "--jira-jql", "project = SUP",
                                     "--zendesk-query", "status<solved", *args])


@pytest.mark.parametrize("proposed_file", ["proposed.yaml", "proposed-docs.yaml"])
def test_backlog_plan_is_what_decide_says_and_writes_nothing(sandbox: Any,
                                                             proposed_file: str) -> None:
    """Every ticket of both backlogs whose outcome differs is listed with decide's outputs
    under both policies, no other; the vendors' tickets are untouched; nothing is queued."""
    text = PROPOSED if proposed_file == "proposed.yaml" else PROPOSED_DOCS
    before = _vendor_state(sandbox)
    result = _run("--policy", proposed_file, "--format", "json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    expected = _expected(sandbox, load_policy(default_policy_text(), source="c"),
                         load_policy(text, source="p"))
    got = {t["ticket"]: (t["change"], t["tier_before"], t["tier_after"],
                         tuple(t["labels_added"]), tuple(t["labels_removed"]), t["note"])
           for t in doc["tickets"]}
    assert got == expected and len(got) >= 3
    assert doc["source"]["kinds"] == ["backlog"] and doc["source"]["since"] is None
    assert doc["source"]["tickets"] == 4 + 3 and doc["skipped"] == []
    # one estimate per vendor, from its count and read rate (connectors/rates.py)
    assert result.stderr.count("tierdesk plan: reading about") == 2
    assert "reading about 4 jira ticket(s)" in result.stderr
    assert _vendor_state(sandbox) == before
    assert not (Path.cwd() / "inbox.db").exists()


def test_backlog_apply_queues_the_changed_tickets_backfill_items(sandbox: Any) -> None:
    """--apply --yes enqueues the backfill item of each changed ticket, and nothing else."""
    result = _run("--policy", "proposed.yaml", "--format", "json", "--apply", "--yes")
    assert result.exit_code == 0, result.output
    changed = sorted((t["vendor"], t["ticket"]) for t in json.loads(result.stdout)["tickets"])
    inbox = Inbox.connect(f"sqlite:///{Path.cwd() / 'inbox.db'}")
    try:
        queued = sorted((v, key) for v in ("jira", "zendesk") for key in inbox.ticket_keys(v)
                        for e in inbox.events_of(v, key) if e.event_type == "tierdesk:backfill")
    finally:
        inbox.close()
    assert queued == changed and changed


def test_backlog_exit_code(sandbox: Any) -> None:
    """--exit-code over the backlog: 2 with changes, 0 for a policy against itself."""
    assert _run("--policy", "proposed.yaml", "--exit-code").exit_code == 2
    same = _run("--policy", "current.yaml", "--exit-code")
    assert same.exit_code == 0, same.output


def test_backlog_waits_out_a_rate_limit(sandbox: Any) -> None:
    """Jira answering 429 with Retry-After to the count and the first search page: the plan
    waits as told (the sandbox records no early retry) and completes with every issue."""
    sandbox.set_faults({"jira": {"rate_limit": {"requests": 2, "retry_after": 1}}})
    result = CliRunner().invoke(main, ["plan", "--now", NOW, "--jira-jql", "project = SUP",
                                       "--policy", "proposed.yaml", "--format", "json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["source"]["tickets"] == 4
    assert sandbox.state()["retry_after_violations"] == 0
    assert "reading about 4 jira ticket(s)" in result.stderr  # the count, retried


def test_requeue_bodies_make_the_worker_read_fresh(sandbox: Any) -> None:
    """What --apply queues for an inbox ticket names the ticket only: each connector reads it
    from the vendor (one request for the ticket) instead of trusting a stored snapshot."""
    from connectors.base import VENDORS
    from connectors.jira import JiraConnector

    policy = load_policy(default_policy_text(), source="c")
    jira = JiraConnector(JiraConfig(base_url=sandbox.jira_url, email="bot@tierdesk.example",
                                    api_token="sandbox-token", bot_account_id="acc-bot",
                                    comment_visibility=("role", "Administrators")), policy)
    zendesk = ZendeskConnector(ZendeskConfig(base_url=sandbox.zendesk_url,
                                             email="bot@tierdesk.example",
                                             api_token="sandbox-token", bot_user_id=9001),
                               policy)
    for vendor, connector, key in (("jira", jira, "SUP-1"), ("zendesk", zendesk, "1")):
        body = VENDORS[vendor].requeue_body(key, "run-1", now_ms=1_800_000_000_000)
        envelope = VENDORS[vendor].classify(body, {})
        assert envelope.handled and envelope.ticket == key
        assert connector.payload_ticket(body) is None  # no snapshot in it
        ticket = connector.current_ticket([body])
        assert ticket.key == key
        reads = [c for c in connector.recorder.calls if c.method == "GET"]
        assert reads and reads[0].path.endswith((f"/issue/{key}", f"/tickets/{key}.json"))
