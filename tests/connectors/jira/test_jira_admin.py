"""`tierdesk install jira` and `tierdesk backfill jira`, with `responses` standing in for Jira."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import responses
from click.testing import CliRunner, Result
from responses import matchers

from tests.connectors.jira.conftest import BASE, DC_BASE, HERE, load
from webhooks.cli import main

HOOKS = f"{BASE}/rest/webhooks/1.0/webhook"
READ_FIELDS = (
    "summary,description,labels,priority,reporter,assignee,components,attachment,updated,"
    "customfield_10067,customfield_10068,customfield_10074,customfield_10072,"
    "customfield_10071,customfield_10080,customfield_10106"
)


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Cloud Jira settings, the test policy and a SQLite inbox in a temporary directory."""
    monkeypatch.chdir(tmp_path)  # no stray .env is read
    for name, value in {
        "TIERDESK_JIRA_URL": BASE,
        "TIERDESK_JIRA_EMAIL": "bot@example.com",
        "TIERDESK_JIRA_API_TOKEN": "token-123",
        "TIERDESK_JIRA_ACCOUNT_ID": "bot-account",
        "TIERDESK_JIRA_COMMENT_VISIBILITY": "role:Administrators",
        "TIERDESK_POLICY": str(HERE / "policy.yaml"),
        "TIERDESK_DATABASE_URL": f"sqlite:///{tmp_path / 'inbox.db'}",
    }.items():
        monkeypatch.setenv(name, value)
    return tmp_path


def cli(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def bodies(rsps: responses.RequestsMock) -> list[tuple[str, str, Any]]:
    return [(c.request.method, c.request.url,
             json.loads(c.request.body) if c.request.body else None) for c in rsps.calls]


def test_install_creates_webhook_with_fresh_secret(
    env: Path, rsps: responses.RequestsMock
) -> None:
    """No webhook of that name: one GET then one POST for the four events; the secret printed
    is the one sent."""
    rsps.get(HOOKS, json=[{"name": "someone-else", "self": f"{HOOKS}/3"}])
    rsps.post(HOOKS, status=201, json={"self": f"{HOOKS}/9", "name": "tierdesk"})
    result = cli("install", "jira", "--callback-url", "https://td.example.com/webhooks/jira",
                 "--jql", "project in (SUP, OPS)")
    assert result.exit_code == 0, result.output
    secret = re.search(r"^TIERDESK_JIRA_WEBHOOK_SECRET=(\S+)$", result.output, re.M)
    assert secret is not None and len(secret.group(1)) >= 40
    assert bodies(rsps) == [
        ("GET", HOOKS, None),
        ("POST", HOOKS, {
            "name": "tierdesk", "url": "https://td.example.com/webhooks/jira",
            "events": ["jira:issue_created", "jira:issue_updated", "comment_created",
                       "comment_updated"],
            "excludeBody": False, "secret": secret.group(1),
            "filters": {"issue-related-events-section": "project in (SUP, OPS)"},
        }),
    ]
    assert "created" in result.output


def test_install_updates_existing_webhook_by_name(
    env: Path, rsps: responses.RequestsMock
) -> None:
    """Run twice against an existing webhook: each run PUTs to it; none creates a duplicate."""
    rsps.get(HOOKS, json=[{"name": "other", "self": f"{HOOKS}/3"},
                          {"name": "tierdesk", "self": f"{HOOKS}/7"}])
    rsps.put(f"{HOOKS}/7", json={"name": "tierdesk", "self": f"{HOOKS}/7"})
    first = cli("install", "jira", "--callback-url", "https://td.example.com/webhooks/jira")
    second = cli("install", "jira", "--callback-url", "https://td.example.com/webhooks/jira")
    assert first.exit_code == second.exit_code == 0
    methods = [(m, u) for m, u, _ in bodies(rsps)]
    assert methods == [("GET", HOOKS), ("PUT", f"{HOOKS}/7")] * 2
    sent = [b for m, _, b in bodies(rsps) if m == "PUT"]
    assert "filters" not in sent[0]
    assert sent[0]["secret"] != sent[1]["secret"]  # a fresh secret each time
    assert "updated" in second.output


def test_install_dry_run_sends_nothing(env: Path, rsps: responses.RequestsMock) -> None:
    """--dry-run prints the request body (secret withheld) and makes no request."""
    result = cli("install", "jira", "--callback-url", "https://td.example.com/webhooks/jira",
                 "--dry-run")
    assert result.exit_code == 0, result.output
    assert len(rsps.calls) == 0
    assert '"url": "https://td.example.com/webhooks/jira"' in result.output
    assert "TIERDESK_JIRA_WEBHOOK_SECRET" not in result.output


def test_install_refuses_relative_callback_url(env: Path, rsps: responses.RequestsMock) -> None:
    """A callback URL that is not absolute http(s) is a usage error naming the option."""
    result = cli("install", "jira", "--callback-url", "/webhooks/jira")
    assert result.exit_code == 2
    assert "--callback-url '/webhooks/jira': give the absolute URL" in result.output
    assert len(rsps.calls) == 0


def test_install_without_jira_settings_explains(
    env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without TIERDESK_JIRA_URL the command says which settings to set."""
    monkeypatch.delenv("TIERDESK_JIRA_URL")
    result = cli("install", "jira", "--callback-url", "https://td.example.com/webhooks/jira")
    assert result.exit_code == 1
    assert "Jira is not configured: set TIERDESK_JIRA_URL" in result.output


def test_install_reports_jira_rejection(env: Path, rsps: responses.RequestsMock) -> None:
    """A 403 (not an admin) ends with Jira's own message, exit 1."""
    rsps.get(HOOKS, status=403, json={"errorMessages": ["Only Jira admins can do this."]})
    result = cli("install", "jira", "--callback-url", "https://td.example.com/webhooks/jira")
    assert result.exit_code == 1
    assert "rejected (403): Only Jira admins can do this." in result.output


def _issues() -> list[dict[str, Any]]:
    many = load("jira_issue_created__cloud_many_fields.json")["issue"]
    labels = load("jira_issue_updated__cloud_labels.json")["issue"]
    labels["fields"]["labels"] = ["tier-l1", "escalate-l2"]
    labels["fields"]["reporter"]["emailAddress"] = "ann@example.com"  # premium
    settled = json.loads(json.dumps(many))
    settled["key"] = "KT-23"
    settled["fields"]["labels"] = ["tier-l1"]
    settled["fields"]["assignee"] = {"accountId": "acc-l1"}
    return [many, labels, settled]


def _cloud_search(rsps: responses.RequestsMock) -> None:
    issues = _issues()
    rsps.post(f"{BASE}/rest/api/2/search/approximate-count", json={"count": 3},
              match=[matchers.json_params_matcher({"jql": "project = KT"})])
    base = {"jql": "project = KT", "fields": READ_FIELDS, "maxResults": "2"}
    rsps.get(f"{BASE}/rest/api/2/search/jql",
             json={"issues": issues[2:], "isLast": True},
             match=[matchers.query_param_matcher({**base, "nextPageToken": "page-2"})])
    rsps.get(f"{BASE}/rest/api/2/search/jql",
             json={"issues": issues[:2], "nextPageToken": "page-2", "isLast": False},
             match=[matchers.query_param_matcher(base)])


def test_backfill_enqueues_every_issue(env: Path, rsps: responses.RequestsMock) -> None:
    """Pages through the search (fields limited to the policy's) and queues each issue."""
    from webhooks.inbox import Inbox

    _cloud_search(rsps)
    result = cli("backfill", "jira", "--jql", "project = KT", "--page-size", "2")
    assert result.exit_code == 0, result.output
    assert "Backfill: 3 ticket(s): 3 queued, 0 already queued, 0 skipped." in result.output
    assert "Jira issues" not in result.output  # no stray heading when not on a terminal
    assert len(rsps.calls) == 3 and all(c.request.method != "PUT" for c in rsps.calls)
    inbox = Inbox.connect(f"sqlite:///{env / 'inbox.db'}")
    stored = inbox.events_of("jira", "KT-22")
    assert len(stored) == 1
    assert stored[0].payload["webhookEvent"] == "tierdesk:backfill"
    assert stored[0].payload["issue"]["key"] == "KT-22"
    assert [len(inbox.events_of("jira", k)) for k in ("TES-41", "KT-23")] == [1, 1]


def test_backfill_dry_run_prints_changes_and_writes_nothing(
    env: Path, rsps: responses.RequestsMock
) -> None:
    """--dry-run prints, per issue, tier, labels, assignment and missing items; no inbox write."""
    _cloud_search(rsps)
    result = cli("backfill", "jira", "--jql", "project = KT", "--page-size", "2", "--dry-run")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert "KT-22: tier - -> L1; labels +tier-l1; assign L1 (acc-l1)" in lines
    assert ("TES-41: tier L1 -> L1; labels +tier-docs-missing; missing: Steps to reproduce"
            " (missing); Affected environments (missing); checklist note") in lines
    assert "KT-23: no change (tier L1)" in lines
    assert "Dry run: 3 ticket(s): 2 would change, 1 unchanged, 0 skipped." in result.output
    assert not (env / "inbox.db").exists()
    assert all(c.request.method in ("GET", "POST") for c in rsps.calls)
    assert [c.request.url.split("?")[0] for c in rsps.calls if c.request.method == "POST"] == [
        f"{BASE}/rest/api/2/search/approximate-count"]


def test_backfill_data_center_pages_by_start_at(
    env: Path, monkeypatch: pytest.MonkeyPatch, rsps: responses.RequestsMock
) -> None:
    """Data Center: /rest/api/2/search with startAt/total paging and a total for the bar."""
    monkeypatch.setenv("TIERDESK_JIRA_URL", DC_BASE)
    monkeypatch.setenv("TIERDESK_JIRA_DEPLOYMENT", "datacenter")
    monkeypatch.setenv("TIERDESK_JIRA_PAT", "pat-secret")
    issues = _issues()
    url = f"{DC_BASE}/rest/api/2/search"
    rsps.get(url, json={"total": 3, "startAt": 0, "maxResults": 0, "issues": []},
             match=[matchers.query_param_matcher(
                 {"jql": "project = KT", "maxResults": "0", "fields": "key"})])
    base = {"jql": "project = KT", "fields": READ_FIELDS, "maxResults": "2"}
    rsps.get(url, json={"total": 3, "startAt": 0, "issues": issues[:2]},
             match=[matchers.query_param_matcher({**base, "startAt": "0"})])
    rsps.get(url, json={"total": 3, "startAt": 2, "issues": issues[2:]},
             match=[matchers.query_param_matcher({**base, "startAt": "2"})])
    result = cli("backfill", "jira", "--jql", "project = KT", "--page-size", "2")
    assert result.exit_code == 0, result.output
    assert "3 queued" in result.output
    assert len(rsps.calls) == 3


def test_backfill_skips_unreadable_issue_and_says_why(
    env: Path, rsps: responses.RequestsMock
) -> None:
    """An issue with malformed JSON is skipped with the reason; the others are queued."""
    bad = {"key": "KT-99", "fields": {"labels": "oops"}}
    rsps.post(f"{BASE}/rest/api/2/search/approximate-count", json={"count": 2})
    rsps.get(f"{BASE}/rest/api/2/search/jql",
             json={"issues": [_issues()[0], bad], "isLast": True})
    result = cli("backfill", "jira", "--jql", "project = KT", "--dry-run")
    assert result.exit_code == 0, result.output
    assert "KT-99: skipped: issue.fields.labels: expected a list, got str" in result.output
    assert "1 would change, 0 unchanged, 1 skipped" in result.output


def test_backfill_stops_with_clear_error_on_rate_limit(
    env: Path, rsps: responses.RequestsMock
) -> None:
    """A 429 mid-backfill stops with how far it got and the retry hint."""
    rsps.post(f"{BASE}/rest/api/2/search/approximate-count", json={"count": 2})
    rsps.get(f"{BASE}/rest/api/2/search/jql", status=429, headers={"Retry-After": "30"})
    result = cli("backfill", "jira", "--jql", "project = KT")
    assert result.exit_code == 1
    assert "backfill stopped after 0 ticket(s)" in result.output
    assert "retry after 30 s" in result.output


def test_backfill_requires_non_empty_jql(env: Path, rsps: responses.RequestsMock) -> None:
    """An empty --jql is refused before any search is made."""
    result = cli("backfill", "jira", "--jql", "  ", "--dry-run")
    assert result.exit_code == 2
    assert "--jql: give a JQL query" in result.output
    assert len(rsps.calls) == 0


def test_backfill_works_without_a_count(env: Path, rsps: responses.RequestsMock) -> None:
    """If Jira cannot count the matches, the backfill runs with an open-ended progress bar."""
    rsps.post(f"{BASE}/rest/api/2/search/approximate-count", status=404,
              json={"errorMessages": ["Not found"]})
    rsps.get(f"{BASE}/rest/api/2/search/jql", json={"issues": _issues()[:1], "isLast": True})
    result = cli("backfill", "jira", "--jql", "project = KT")
    assert result.exit_code == 0, result.output
    assert "1 queued" in result.output


def test_backfill_reports_unusable_inbox(
    env: Path, monkeypatch: pytest.MonkeyPatch, rsps: responses.RequestsMock
) -> None:
    """A database URL that cannot be opened is a one-line error before any search."""
    monkeypatch.setenv("TIERDESK_DATABASE_URL", "sqlite:////nonexistent-dir/x/inbox.db")
    result = cli("backfill", "jira", "--jql", "project = KT")
    assert result.exit_code == 1
    assert "cannot open the inbox" in result.output
    assert len(rsps.calls) == 0
