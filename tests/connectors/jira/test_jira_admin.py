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

from connectors.jira.admin import JiraAdmin
from connectors.retry import READ_ATTEMPTS
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


INFO = f"{BASE}/rest/api/2/serverInfo"
DC10_HOOKS = f"{DC_BASE}/rest/jira-webhook/1.0/webhooks"
EVENTS = ["jira:issue_created", "jira:issue_updated", "comment_created", "comment_updated"]


def cloud_info(rsps: responses.RequestsMock) -> None:
    rsps.get(INFO, json={"deploymentType": "Cloud", "versionNumbers": [1001, 0, 0],
                         "version": "1001.0.0-SNAPSHOT"})


def test_install_creates_webhook_with_fresh_secret(
    env: Path, rsps: responses.RequestsMock
) -> None:
    """No webhook of that name and no secret configured: serverInfo, one GET, one POST for the
    four events; the secret printed is the one sent."""
    cloud_info(rsps)
    rsps.get(HOOKS, json=[{"name": "someone-else", "self": f"{HOOKS}/3"}])
    rsps.post(HOOKS, status=201, json={"self": f"{HOOKS}/9", "name": "tierdesk"})
    result = cli("install", "jira", "--callback-url", "https://td.example.com/webhooks/jira",
                 "--jql", "project in (SUP, OPS)")
    assert result.exit_code == 0, result.output
    secret = re.search(r"^TIERDESK_JIRA_WEBHOOK_SECRET=(\S+)$", result.output, re.M)
    assert secret is not None and len(secret.group(1)) >= 40
    assert bodies(rsps) == [
        ("GET", INFO, None),
        ("GET", HOOKS, None),
        ("POST", HOOKS, {
            "name": "tierdesk", "url": "https://td.example.com/webhooks/jira",
            "events": EVENTS, "excludeBody": False, "secret": secret.group(1),
            "filters": {"issue-related-events-section": "project in (SUP, OPS)"},
        }),
    ]
    assert "created on Cloud" in result.output


def test_install_rerun_keeps_the_receivers_secret(
    env: Path, rsps: responses.RequestsMock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Run twice against an existing webhook: each run PUTs to it by its id with the secret the
    receiver holds (TIERDESK_JIRA_WEBHOOK_SECRET), never a new one; none creates a duplicate."""
    monkeypatch.setenv("TIERDESK_JIRA_WEBHOOK_SECRET", "receiver-secret-1")
    cloud_info(rsps)
    rsps.get(HOOKS, json=[{"name": "other", "self": f"{HOOKS}/3"},
                          {"name": "tierdesk", "self": f"{HOOKS}/7"}])
    rsps.put(f"{HOOKS}/7", json={"name": "tierdesk", "self": f"{HOOKS}/7"})
    first = cli("install", "jira", "--callback-url", "https://td.example.com/webhooks/jira")
    second = cli("install", "jira", "--callback-url", "https://td.example.com/webhooks/jira")
    assert first.exit_code == second.exit_code == 0, first.output
    methods = [(m, u) for m, u, _ in bodies(rsps)]
    assert methods == [("GET", INFO), ("GET", HOOKS), ("PUT", f"{HOOKS}/7")] * 2
    sent = [b for m, _, b in bodies(rsps) if m == "PUT"]
    assert "filters" not in sent[0]
    assert [b["secret"] for b in sent] == ["receiver-secret-1", "receiver-secret-1"]
    assert "keeps TIERDESK_JIRA_WEBHOOK_SECRET" in second.output
    assert "receiver-secret-1" not in second.output  # a secret is never printed back


def test_install_rerun_without_a_secret_refuses(
    env: Path, rsps: responses.RequestsMock
) -> None:
    """An existing webhook but no TIERDESK_JIRA_WEBHOOK_SECRET: no write (a new secret would
    lock the receiver out); the error says what to set or to pass --rotate-secret."""
    cloud_info(rsps)
    rsps.get(HOOKS, json=[{"name": "tierdesk", "self": f"{HOOKS}/7"}])
    result = cli("install", "jira", "--callback-url", "https://td.example.com/webhooks/jira")
    assert result.exit_code == 2
    assert "cannot read its secret back" in result.output
    assert "--rotate-secret" in result.output
    assert [m for m, _, _ in bodies(rsps)] == ["GET", "GET"]


def test_rotate_secret_needs_the_overlap_first(
    env: Path, rsps: responses.RequestsMock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--rotate-secret without TIERDESK_JIRA_WEBHOOK_SECRET_PREVIOUS sends nothing and says
    how to start the overlap; with it, the PUT carries the new secret."""
    monkeypatch.setenv("TIERDESK_JIRA_WEBHOOK_SECRET", "new-secret-2")
    refused = cli("install", "jira", "--callback-url", "https://td.example.com/webhooks/jira",
                  "--rotate-secret")
    assert refused.exit_code == 2
    assert "TIERDESK_JIRA_WEBHOOK_SECRET_PREVIOUS" in refused.output
    assert len(rsps.calls) == 0
    monkeypatch.setenv("TIERDESK_JIRA_WEBHOOK_SECRET_PREVIOUS", "old-secret-1")
    cloud_info(rsps)
    rsps.get(HOOKS, json=[{"name": "tierdesk", "self": f"{HOOKS}/7"}])
    rsps.put(f"{HOOKS}/7", json={"name": "tierdesk", "self": f"{HOOKS}/7"})
    rotated = cli("install", "jira", "--callback-url", "https://td.example.com/webhooks/jira",
                  "--rotate-secret")
    assert rotated.exit_code == 0, rotated.output
    assert bodies(rsps)[-1][2]["secret"] == "new-secret-2"
    assert "unset TIERDESK_JIRA_WEBHOOK_SECRET_PREVIOUS" in rotated.output


@pytest.mark.parametrize(
    ("info", "path"),
    [
        # Cloud: the admin webhook resource
        ({"deploymentType": "Cloud", "versionNumbers": [1001, 0, 0]},
         "/rest/webhooks/1.0/webhook"),
        # Data Center 9.12: still the old resource
        ({"deploymentType": "Server", "versionNumbers": [9, 12, 0]},
         "/rest/webhooks/1.0/webhook"),
        # Data Center 10.0 and later: the moved resource
        ({"deploymentType": "Server", "versionNumbers": [10, 3, 6]},
         "/rest/jira-webhook/1.0/webhooks"),
    ],
)
def test_webhook_api_follows_server_info(info: dict[str, Any], path: str) -> None:
    """The webhook API is chosen from serverInfo's deploymentType and major version."""
    from connectors.jira.admin import webhook_api_for

    assert webhook_api_for(info).path == path


def test_install_on_data_center_10(
    env: Path, rsps: responses.RequestsMock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DC 10: the body carries configuration.SECRET (no top-level secret); a rerun finds the
    webhook by its numeric id (no `self`) and PUTs to /rest/jira-webhook/1.0/webhooks/{id}."""
    monkeypatch.setenv("TIERDESK_JIRA_URL", DC_BASE)
    monkeypatch.setenv("TIERDESK_JIRA_DEPLOYMENT", "datacenter")
    monkeypatch.setenv("TIERDESK_JIRA_WEBHOOK_SECRET", "dc-secret-1")
    rsps.get(f"{DC_BASE}/rest/api/2/serverInfo",
             json={"deploymentType": "Server", "versionNumbers": [10, 3, 6]})
    rsps.get(DC10_HOOKS, json=[])
    rsps.post(DC10_HOOKS, status=201, json={"id": 42, "name": "tierdesk"})
    first = cli("install", "jira", "--callback-url", "https://td.example.com/webhooks/jira")
    assert first.exit_code == 0, first.output
    assert "created on Data Center 10.3.6" in first.output
    assert f"{DC10_HOOKS}/42" in first.output
    rsps.get(DC10_HOOKS, json=[{"id": 42, "name": "tierdesk"}])
    rsps.put(f"{DC10_HOOKS}/42", json={"id": 42, "name": "tierdesk"})
    second = cli("install", "jira", "--callback-url", "https://td.example.com/webhooks/jira")
    assert second.exit_code == 0, second.output
    calls = bodies(rsps)
    assert [(m, u) for m, u, _ in calls][-2:] == [("GET", DC10_HOOKS), ("PUT", f"{DC10_HOOKS}/42")]
    body = {"name": "tierdesk", "url": "https://td.example.com/webhooks/jira", "events": EVENTS,
            "active": True, "configuration": {"SECRET": "dc-secret-1", "EXCLUDE_BODY": "false"}}
    assert calls[2][2] == body and calls[-1][2] == body


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
    cloud_info(rsps)
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
    from webhooks.inbox.store import Inbox

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
    env: Path, rsps: responses.RequestsMock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A 429 mid-backfill stops with how far it got and the retry hint, after waiting out
    Retry-After between its read attempts (the waits are recorded, not slept: 4 x 30 s)."""
    waits: list[float] = []
    monkeypatch.setitem(JiraAdmin.__init__.__kwdefaults__, "sleep", waits.append)
    rsps.post(f"{BASE}/rest/api/2/search/approximate-count", json={"count": 2})
    rsps.get(f"{BASE}/rest/api/2/search/jql", status=429, headers={"Retry-After": "30"})
    result = cli("backfill", "jira", "--jql", "project = KT")
    assert result.exit_code == 1
    assert "backfill stopped after 0 ticket(s)" in result.output
    assert "retry after 30 s" in result.output
    assert len(waits) == READ_ATTEMPTS - 1 and min(waits) >= 30


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
