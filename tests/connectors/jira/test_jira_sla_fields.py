"""Jira status and created for the SLA clocks: the neutral status by the policy's names and the
status category, the creation time, the fields read, and the reference payload's fresh read."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
import responses

from connectors.base import PayloadInvalid
from connectors.jira import JiraConnector
from connectors.jira.tickets import (
    fields_to_read,
    status_of,
    ticket_from_issue,
    time_of,
)
from connectors.jira.webhook import requeue_body
from tiering.policy import Policy, load_policy

from .conftest import BASE, HERE, cloud_config, load, policy

SLA = """
sla:
  statuses:
    jira:
      names: {"Waiting for customer": pending}
  plans:
    premium:
      tiers:
        L1: {resolution: 2h}
"""


def sla_policy() -> Policy:
    return load_policy((HERE / "policy.yaml").read_text("utf-8") + SLA, source="policy.yaml")


def status(name: str | None, category: str | None) -> dict[str, Any]:
    out: dict[str, Any] = {"status": {"name": name, "id": "1"}}
    if category is not None:
        out["status"]["statusCategory"] = {"id": 4, "key": category, "name": "x"}
    return out


@pytest.mark.parametrize(("fields", "expected"), [
    (status("To Do", "new"), "new"),
    (status("In Progress", "indeterminate"), "open"),
    (status("Waiting for customer", "indeterminate"), "pending"),  # by name first
    (status("Done", "done"), "solved"),
    (status("Open", None), None),  # Server payload without a category, name not listed
    ({}, None),
])
def test_status_of(fields: dict[str, Any], expected: str | None) -> None:
    assert status_of(fields, sla_policy()) == expected


def test_status_of_refuses_a_malformed_status() -> None:
    with pytest.raises(PayloadInvalid, match=r"issue\.fields\.status"):
        status_of({"status": "Open"}, sla_policy())


def test_time_of() -> None:
    assert time_of("2026-01-05T10:00:00.000+0000", "f") == datetime(2026, 1, 5, 10, tzinfo=UTC)
    assert time_of("2019-02-15T19:01:52.971-0800", "f") == datetime(
        2019, 2, 16, 3, 1, 52, 971000, tzinfo=UTC)
    assert time_of(None, "f") is None
    with pytest.raises(PayloadInvalid, match="not a Jira datetime"):
        time_of("yesterday", "issue.fields.created")
    with pytest.raises(PayloadInvalid, match="no time zone"):
        time_of("2026-01-05T10:00:00", "issue.fields.created")


def test_fields_read_include_status_and_created_only_with_sla() -> None:
    config = cloud_config()
    assert "status" not in fields_to_read(policy(), config)
    wanted = fields_to_read(sla_policy(), config)
    assert wanted[9:11] == ["status", "created"]


def test_payload_status_and_created() -> None:
    issue = load("jira_issue_created__cloud.json")["issue"]
    ticket = ticket_from_issue(issue, policy=sla_policy(), config=cloud_config())
    assert ticket.status == "new"
    assert ticket.created_at == datetime(2019, 2, 16, 3, 1, 52, 971000, tzinfo=UTC)


def test_the_requeue_body_an_sla_due_event_stands_in_with_reads_the_issue(
    rsps: responses.RequestsMock,
) -> None:
    connector = JiraConnector(cloud_config(), sla_policy())
    issue = load("jira_issue_created__cloud.json")["issue"]
    issue["fields"]["status"] = status("Waiting for customer", "indeterminate")["status"]
    rsps.get(f"{BASE}/rest/api/2/issue/TES-41", json=issue)
    ticket = connector.current_ticket([requeue_body("TES-41", "tierdesk:sla-due", now_ms=0)],
                                    fresh=True)
    assert (ticket.key, ticket.status) == ("TES-41", "pending")
    assert len(rsps.calls) == 1


def comment(author: str, created: str, **over: Any) -> dict[str, Any]:
    return {"id": "1", "author": {"accountId": author}, "body": "hi", "created": created,
            **over}


def test_first_reply_is_the_earliest_public_comment_by_someone_else() -> None:
    config = cloud_config()
    issue = load("jira_issue_created__cloud.json")["issue"]
    reporter = issue["fields"]["reporter"]["accountId"]
    issue["fields"]["comment"] = {"comments": [
        comment(reporter, "2026-01-05T09:00:00.000+0000"),             # the customer
        comment("agent-1", "2026-01-05T09:30:00.000+0000", jsdPublic=False),  # JSM internal
        comment("agent-1", "2026-01-05T09:40:00.000+0000",
                visibility={"type": "role", "value": "Administrators"}),
        comment(config.bot_account_id or "bot", "2026-01-05T09:45:00.000+0000"),  # tierdesk
        comment("agent-2", "2026-01-05T10:15:00.000+0000"),
        comment("agent-1", "2026-01-05T10:00:00.000+0000", jsdPublic=True),
    ], "total": 6}
    text = (HERE / "policy.yaml").read_text("utf-8") + SLA.replace(
        "L1: {resolution: 2h}", "L1: {first_response: 1h}")
    replies = load_policy(text, source="p.yaml")
    ticket = ticket_from_issue(issue, policy=replies, config=config)
    assert ticket.first_reply_at == datetime(2026, 1, 5, 10, 0, tzinfo=UTC)
    # Without a first_response target nothing is looked for.
    assert ticket_from_issue(issue, policy=sla_policy(), config=config).first_reply_at is None
    issue["fields"]["comment"]["comments"] = issue["fields"]["comment"]["comments"][:4]
    assert ticket_from_issue(issue, policy=replies, config=config).first_reply_at is None


def test_a_first_response_target_reads_the_comments() -> None:
    text = (HERE / "policy.yaml").read_text("utf-8") + SLA.replace(
        "L1: {resolution: 2h}", "L1: {first_response: 1h}")
    wanted = fields_to_read(load_policy(text, source="p.yaml"), cloud_config())
    assert "comment" in wanted
    assert "comment" not in fields_to_read(sla_policy(), cloud_config())
