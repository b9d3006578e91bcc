"""What the issue found accepted in silence, now refused against the sandbox as the vendors do:
a wrong API token at install, a target that does not exist, an assignee outside the group."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from connectors.base import ConfigurationRejected, CredentialsRejected
from connectors.jira import JiraConnector
from connectors.jira.admin import JiraAdmin
from connectors.jira.config import JiraConfig
from connectors.zendesk import ZendeskConnector
from connectors.zendesk.config import ZendeskConfig
from sandbox.server import SandboxHandle, run_in_thread
from tiering import decide
from tiering.policy import Policy, load_policy
from webhooks.defaults import EXAMPLE_POLICY_SOURCE, default_policy_text

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


@pytest.fixture
def sandbox() -> Iterator[SandboxHandle]:
    with run_in_thread() as handle:
        yield handle


def policy_with(old: str, new: str) -> Policy:
    text, source = default_policy_text(), EXAMPLE_POLICY_SOURCE
    assert old in text
    return load_policy(text.replace(old, new), source=source)


def test_install_jira_with_a_wrong_token_is_refused(sandbox: SandboxHandle) -> None:
    """`install jira` with a wrong API token no longer reports 'created': Jira's 401 comes back
    as CredentialsRejected naming the settings, and no webhook exists."""
    config = JiraConfig(base_url=sandbox.jira_url, email="admin@tierdesk.example",
                        api_token="wrong", public_comments=True, timeout=5.0)
    with pytest.raises(CredentialsRejected) as err:
        JiraAdmin.from_config(config).install_webhook(
            callback_url="https://td.example/webhooks/jira")
    assert "TIERDESK_JIRA_API_TOKEN" in str(err.value)
    assert sandbox.state()["jira"]["webhooks"] == []


def test_jira_target_nobody_is_a_configuration_refusal(sandbox: SandboxHandle) -> None:
    """A policy targeting `acc-nobody` is refused by the edit (400, errors.assignee) and named
    as targets.L1.jira.assignee; the issue is unchanged."""
    policy = policy_with('L1: {jira: {assignee: "acc-l1"}', 'L1: {jira: {assignee: "acc-nobody"}')
    config = JiraConfig(base_url=sandbox.jira_url, email="bot@tierdesk.example",
                        api_token="sandbox-token", bot_account_id="acc-bot",
                        comment_visibility=("role", "Administrators"), timeout=5.0)
    connector = JiraConnector(config, policy)
    issue = connector.read_issue("SUP-1")
    ticket = connector.current_ticket([{"webhookEvent": "tierdesk:backfill", "issue": issue}])
    # SUP-1 is a how-to question (L0, no target): an agent asks for L1, whose target is wrong.
    ticket = dataclasses.replace(ticket, labels=frozenset({"escalate-l1"}))
    decision = decide(ticket, policy, now=NOW)
    with pytest.raises(ConfigurationRejected) as err:
        connector.apply(ticket, decision, decide=lambda t: decision)
    assert err.value.reason == "unknown-target"
    assert str(err.value).startswith("targets.L1.jira.assignee:")
    assert sandbox.state()["jira"]["issues"]["SUP-1"]["labels"] == []


def test_zendesk_group_999_is_a_configuration_refusal(sandbox: SandboxHandle) -> None:
    """A policy targeting Zendesk group 999 is refused (422 Group: is invalid) and named as
    targets.L0...group_id; the ticket is unchanged."""
    text, source = default_policy_text(), EXAMPLE_POLICY_SOURCE
    policy = load_policy(text.replace("zendesk: {group_id: 100}", "zendesk: {group_id: 999}"),
                         source=source)
    config = ZendeskConfig(base_url=sandbox.zendesk_url, email="bot@tierdesk.example",
                           api_token="sandbox-token", bot_user_id=9001, timeout=5.0)
    connector = ZendeskConnector(config, policy)
    ticket = connector.read_ticket("1", actor=None, last_note_key=None)
    labels = frozenset({*ticket.labels, "escalate-l1"})
    ticket = dataclasses.replace(ticket, labels=labels)
    decision = decide(ticket, policy, now=NOW)
    assert decision.assign == "L1", decision
    with pytest.raises(ConfigurationRejected) as err:
        connector.apply(ticket, decision, decide=lambda t: decide(t, policy, now=NOW))
    assert err.value.reason == "unknown-target"
    assert str(err.value).startswith("targets.L1.zendesk.group_id: Zendesk has no group 999")
    assert sandbox.state()["zendesk"]["tickets"]["1"]["group_id"] is None
