"""The Jira connector and admin tasks against the sandbox's in-memory Jira over real HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from connectors.jira import JiraConfig, JiraConnector
from connectors.jira.admin import JiraAdmin
from sandbox.server import SandboxHandle, run_in_thread
from tiering import decide, load_policy
from tiering.policy import Policy
from webhooks.defaults import default_policy_text

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


@pytest.fixture
def sandbox() -> Iterator[SandboxHandle]:
    """A running sandbox (seeded SUP project, users and issues)."""
    handle = run_in_thread(retry_base=0.05)
    try:
        yield handle
    finally:
        handle.stop()


def example_policy() -> Policy:
    return load_policy(default_policy_text(), source="example")


def config(sandbox: SandboxHandle, **over: Any) -> JiraConfig:
    values: dict[str, Any] = {"base_url": sandbox.jira_url, "email": "bot@tierdesk.example",
                              "api_token": "sandbox-token", "bot_account_id": "acc-bot",
                              "timeout": 5.0}
    values.update(over)
    return JiraConfig(**values)


def backfill_body(connector: JiraConnector, key: str) -> dict[str, Any]:
    return {"webhookEvent": "tierdesk:backfill", "issue": dict(connector.read_issue(key))}


def test_decision_round_trip_on_sandbox(sandbox: SandboxHandle) -> None:
    """Read SUP-1, apply its first-triage decision in one PUT, then the fresh state is settled."""
    policy = example_policy()
    connector = JiraConnector(config(sandbox, comment_visibility=("role", "Administrators")),
                              policy)
    ticket = connector.current_ticket([backfill_body(connector, "SUP-1")])
    decision = decide(ticket, policy, now=NOW)
    assert decision.changed
    applied = connector.apply(ticket, decision, decide=lambda t: decision)
    assert applied.wrote and [c.method for c in applied.calls] == ["PUT"]
    again = connector.current_ticket([backfill_body(connector, "SUP-1")], fresh=True)
    assert again.labels >= frozenset(decision.labels_add)
    assert again.last_note_key == (decision.note_key if decision.comment else None)
    second = decide(again, policy, now=NOW)
    assert not second.changed
    assert not connector.apply(again, second, decide=lambda t: second).wrote


def test_install_is_idempotent_on_sandbox(sandbox: SandboxHandle) -> None:
    """Installing twice leaves one webhook of that name, updated in place with the same
    secret."""
    admin = JiraAdmin.from_config(config(sandbox, email="admin@tierdesk.example"))
    client = admin.client
    first = admin.install_webhook(callback_url="https://td.example/webhooks/jira",
                                  jql="project = SUP")
    second = admin.install_webhook(callback_url="https://td.example/webhooks/jira",
                                   jql="project = SUP", secret=first.secret)
    assert second.secret == first.secret and second.webhook_id == first.webhook_id
    assert (first.action, second.action) == ("created", "updated")
    hooks = client._session.get(sandbox.jira_url + "/rest/webhooks/1.0/webhook").json()
    assert [h["name"] for h in hooks].count("tierdesk") == 1


def test_backfill_search_pages_on_sandbox(sandbox: SandboxHandle) -> None:
    """search_tickets pages through every SUP issue with only the policy's fields."""
    policy = example_policy()
    cfg = config(sandbox)
    for n in range(4):
        created = sandbox.agent("jira", "acc-globex", "POST", "/rest/api/2/issue", {"fields": {
            "project": {"key": "SUP"}, "issuetype": {"name": "Task"}, "summary": f"Issue {n}"}})
        assert created.status == 201, created
    issues = list(JiraAdmin.from_config(cfg, policy).search_tickets("project = SUP",
                                                                    page_size=2))
    keys = [i["key"] for i in issues]
    assert sorted(keys) == ["SUP-1", "SUP-2", "SUP-3", "SUP-4", "SUP-5"]
    assert all("labels" in i["fields"] for i in issues)


SITES = [
    # Cloud: the admin webhook resource, top-level secret, entries with `self`
    ("Cloud", "9.12.0", "/rest/webhooks/1.0/webhook", "/rest/jira-webhook/1.0/webhooks"),
    # Data Center 9: still the old resource
    ("Server", "9.12.0", "/rest/webhooks/1.0/webhook", "/rest/jira-webhook/1.0/webhooks"),
    # Data Center 10: the moved resource; the old one answers 404
    ("Server", "10.3.6", "/rest/jira-webhook/1.0/webhooks", "/rest/webhooks/1.0/webhook"),
]


@pytest.mark.parametrize(("deployment", "version", "served", "absent"), SITES,
                         ids=["cloud", "dc9", "dc10"])
def test_install_picks_the_sites_webhook_api(
    deployment: str, version: str, served: str, absent: str
) -> None:
    """install reads serverInfo and registers on the API the site serves; a rerun finds the one
    webhook again by its id and keeps its secret; the other API is a 404; the webhook signs."""
    import json

    import requests

    from sandbox.state import default_seed_text

    seed = json.loads(default_seed_text())
    seed["jira"]["deployment"] = deployment
    seed["jira"]["version"] = version
    with run_in_thread(seed=seed) as handle:
        admin = JiraAdmin.from_config(config(handle, email="admin@tierdesk.example"))
        first = admin.install_webhook(callback_url="https://td.example/webhooks/jira",
                                      secret="s" * 40)
        second = admin.install_webhook(callback_url="https://td.example/webhooks/jira",
                                       secret="s" * 40)
        assert first.api is not None and first.api.path == served
        assert (first.action, second.action) == ("created", "updated")
        assert first.webhook_id == second.webhook_id is not None
        hooks = handle.state()["jira"]["webhooks"]
        assert [(h["name"], h["signed"]) for h in hooks] == [("tierdesk", True)]
        other = requests.get(handle.jira_url + absent,
                             auth=("admin@tierdesk.example", "sandbox-token"), timeout=5)
        assert other.status_code == 404


def test_dc10_ignores_a_top_level_secret() -> None:
    """DC 10 stores no secret from a top-level `secret` (reported silently ignored), so such a
    webhook would deliver unsigned: the sandbox does the same."""
    import json

    import requests

    from sandbox.state import default_seed_text

    seed = json.loads(default_seed_text())
    seed["jira"].update(deployment="Server", version="10.0.1")
    with run_in_thread(seed=seed) as handle:
        created = requests.post(
            handle.jira_url + "/rest/jira-webhook/1.0/webhooks",
            auth=("admin@tierdesk.example", "sandbox-token"), timeout=5,
            json={"name": "old-style", "url": "https://td.example/x",
                  "events": ["jira:issue_updated"], "secret": "s" * 40},
        )
        assert created.status_code == 201
        assert isinstance(created.json()["id"], int) and "self" not in created.json()
        assert handle.state()["jira"]["webhooks"][0]["signed"] is False
