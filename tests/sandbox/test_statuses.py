"""Ticket statuses in both sandboxes (issue 18): Jira's transitions endpoint and the
issue_generic webhook it sends, statusCategory in issue JSON; Zendesk status changes through
the API, the trigger's status placeholders and "less than" condition, and the rule that a
ticket never goes back to New."""

from __future__ import annotations

import requests
from jira import JIRA

from sandbox.jira.records import TRANSITIONS
from sandbox.server import SandboxHandle
from tests.sandbox.test_jira_webhooks import register
from tests.webhook_receiver import Receiver

BOT = ("bot@tierdesk.example", "sandbox-token")


def test_jira_transitions_list_and_change_the_status(
    sandbox: SandboxHandle, jira_client: JIRA, receiver: Receiver
) -> None:
    register(jira_client, sandbox.jira_url, receiver, ["jira:issue_updated"])
    issue = jira_client.issue("SUP-1", fields="status")
    assert issue.raw["fields"]["status"]["name"] == "To Do"
    assert issue.raw["fields"]["status"]["statusCategory"]["key"] == "new"
    listed = jira_client.transitions("SUP-1")
    assert {t["name"] for t in listed} == set(TRANSITIONS.values()) - {"To Do"}
    waiting = next(t for t in listed if t["name"] == "Waiting for customer")
    assert waiting["to"]["statusCategory"] == {
        "self": f"{sandbox.jira_url}/rest/api/2/statuscategory/4", "id": 4,
        "key": "indeterminate", "name": "In Progress"}
    response = sandbox.agent("jira", "agent", "POST", "/rest/api/2/issue/SUP-1/transitions",
                             {"transition": {"id": waiting["id"]}})
    assert response.status == 204
    [call] = receiver.wait_for(1)
    body = call.json()
    assert body["issue_event_type_name"] == "issue_generic"
    assert body["issue"]["fields"]["status"]["name"] == "Waiting for customer"
    assert body["changelog"]["items"] == [{
        "field": "status", "fieldtype": "jira", "fieldId": "status", "from": "10000",
        "fromString": "To Do", "to": "10002", "toString": "Waiting for customer"}]
    assert body["issue"]["fields"]["updated"] != issue.raw["fields"].get("updated")


def test_jira_transition_refusals(sandbox: SandboxHandle) -> None:
    def post(body: object) -> tuple[int, str]:
        r = sandbox.agent("jira", "agent", "POST", "/rest/api/2/issue/SUP-1/transitions", body)
        return r.status, str(r.body)

    status, text = post({})
    assert status == 400 and "No transition specified" in text
    status, text = post({"transition": {"id": "99"}})
    assert status == 400 and "'99' is not valid" in text
    status, text = post({"transition": {"id": "11"}})  # To Do -> To Do: not offered
    assert status == 400 and "'11' is not valid" in text
    status, text = post({"transition": {"id": "21"}, "fields": {"summary": "x"}})
    assert status == 400 and "no screen" in text
    assert sandbox.agent("jira", "agent", "GET", "/rest/api/2/issue/SUP-404/transitions"
                         ).status == 404


def test_zendesk_status_change_reaches_the_trigger_body(
    sandbox: SandboxHandle, receiver: Receiver
) -> None:
    hook = requests.post(f"{sandbox.zendesk_url}/api/v2/webhooks", auth=BOT, timeout=5, json={
        "webhook": {"name": "tierdesk", "endpoint": receiver.url + "/webhooks/zendesk",
                    "http_method": "POST", "request_format": "json", "status": "active",
                    "subscriptions": ["conditional_ticket_events"]}}).json()["webhook"]["id"]
    template = ('{"ticket_id": "{{ticket.id}}", "status": "{{ticket.status}}",'
                ' "created_at": "{{ticket.created_at_with_timestamp}}"}')
    trigger = requests.post(f"{sandbox.zendesk_url}/api/v2/triggers.json", auth=BOT, timeout=5,
                            json={"trigger": {"title": "tierdesk", "conditions": {
                                "all": [{"field": "status", "operator": "less_than",
                                         "value": "closed"}],
                                "any": [{"field": "update_type", "operator": "is",
                                         "value": "Change"}]},
                                "actions": [{"field": "notification_webhook",
                                             "value": [hook, template]}]}})
    assert trigger.status_code == 201
    for status in ("pending", "open", "solved"):
        r = sandbox.agent("zendesk", "agent@tierdesk.example", "PUT", "/api/v2/tickets/1",
                          {"ticket": {"status": status}})
        assert r.status == 200
    calls = receiver.wait_for(3)
    created = requests.get(f"{sandbox.zendesk_url}/api/v2/tickets/1.json", auth=BOT,
                           timeout=5).json()["ticket"]["created_at"]
    # Deliveries run concurrently: their order is not the order of the changes.
    assert sorted(c.json()["status"] for c in calls) == ["Open", "Pending", "Solved"]
    assert {c.json()["created_at"] for c in calls} == {created}


def test_zendesk_ticket_never_goes_back_to_new(sandbox: SandboxHandle) -> None:
    r = sandbox.agent("zendesk", "agent@tierdesk.example", "PUT", "/api/v2/tickets/1",
                      {"ticket": {"status": "open"}})
    assert r.status == 200
    r = sandbox.agent("zendesk", "agent@tierdesk.example", "PUT", "/api/v2/tickets/1",
                      {"ticket": {"status": "new"}})
    assert r.status == 422 and "only the initial status" in str(r.body)
