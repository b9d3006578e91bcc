"""Jira payload -> Ticket: every captured payload's whole Ticket, the one read, field types."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
import responses
from responses import matchers

from connectors.base import PayloadInvalid
from connectors.jira import JiraConnector
from connectors.jira.tickets import field_value, fields_to_read, ticket_from_issue
from tests.connectors.jira.conftest import BASE, cloud_config, load, policy
from tiering.models import Customer, Ticket

NO_FIELDS: dict[str, Any] = {
    "steps": None, "environments": None, "severity": None, "count": None, "tags": None,
    "owner": None, "points": None,
}
#: What the test policy reads: base fields, then its custom fields in policy order.
READ_FIELDS = (
    "summary,description,labels,priority,reporter,assignee,components,attachment,updated,"
    "customfield_10067,customfield_10068,customfield_10074,customfield_10072,"
    "customfield_10071,customfield_10080,customfield_10106"
)

def jira_dt(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


#: Server's old payload has status "Open" without a statusCategory: no neutral status unless the
#: policy names it (sla.statuses.jira.names).
FULL_PAYLOADS = [
    ("jira_issue_created__cloud.json", Ticket(
        key="TES-41", subject="Unit test summary",
        description="Unit test description, not that long", labels=frozenset({"test-label"}),
        priority="High", customer=Customer(email="some-instance-test@gmail.com"),
        fields=NO_FIELDS, attachments=0, assignee=None, components=frozenset({"COMP-1"}),
        actor="5c5f880629be9642ba529340", updated_at="2019-02-15T19:01:52.971-0800",
        status='new', created_at=jira_dt("2019-02-15T19:01:52.971-0800"),
    )),
    # Every custom field type: text, multi-select, select, number, labels, user.
    ("jira_issue_created__cloud_many_fields.json", Ticket(
        key="KT-22", subject="Lots of fields selected", description="The good description",
        labels=frozenset({"Label1", "Label2"}), priority="Medium",
        customer=Customer(email="user@example.com"),
        fields={"steps": "evevedvedvb", "environments": ("1", "2"), "severity": "A",
                "count": 23, "tags": ("value1", "value2"), "owner": "sample.user",
                "points": None},
        attachments=0, assignee="5cedcb4355a88a0fc86388ba", components=frozenset(),
        actor="5cedcb4355a88a0fc86388ba", updated_at="2019-08-27T12:43:24.193-0700",
        status='new', created_at=jira_dt("2019-08-27T12:43:24.193-0700"),
    )),
    ("jira_issue_created__zulip_server.json", Ticket(
        key="BUG-15", subject="New bug with hook", description="Fix me please",
        labels=frozenset(), priority="Major", customer=Customer(email="othello@zulip.com"),
        fields=NO_FIELDS, attachments=0, assignee=None, components=frozenset(),
        actor="99:27935d01-92a7-4687-8272-a9b8d3b2ae2e",
        updated_at="2013-03-27T16:53:58.301+0000",
        status=None, created_at=jira_dt("2013-03-27T16:53:58.301+0000"),
    )),
    ("jira_issue_updated__cloud_custom_field.json", Ticket(
        key="TES-14", subject="v", description=" s", labels=frozenset({"Pickles"}),
        priority="Medium", customer=Customer(email="test@example.com"),
        fields={**NO_FIELDS, "steps": "ffv", "environments": ("1",), "count": 12},
        attachments=0, assignee="5cedcb4355a88a0fc86388ba", components=frozenset(),
        actor="5cedcb4355a88a0fc86388ba", updated_at="2019-08-11T18:49:13.412-0700",
        status='new', created_at=jira_dt("2019-07-17T17:59:42.002-0700"),
    )),
    ("jira_issue_updated__cloud_labels.json", Ticket(
        key="TES-41", subject="Unit test summary 1",
        description="Unit test description, not that long, a little longer now",
        labels=frozenset({"sad", "test-label"}), priority="High",
        customer=Customer(email="some-instance-test@gmail.com"), fields=NO_FIELDS,
        attachments=0, assignee=None, components=frozenset({"COMP-1"}),
        actor="5c5f880629be9642ba529340", updated_at="2019-02-16T13:12:10.037-0800",
        status='new', created_at=jira_dt("2019-02-15T19:01:52.971-0800"),
    )),
    # Data Center: users by name; a float custom field (story points).
    ("jira_issue_updated__server_commented.json", Ticket(
        key="PRJX-14",
        subject='As a user, I can find important items on the board by using the customisable'
        ' "Quick Filters" above >> Try clicking the "Only My Issues" Quick Filter above',
        description="*Creating Quick Filters*\n\nYou can add your own Quick Filters in the board"
        " configuration (select *Board > Configure*)",
        labels=frozenset(), priority="Medium", customer=Customer(email="craig@mattermost.com"),
        fields={**NO_FIELDS, "points": 3.0}, attachments=0, assignee="levbrouk",
        components=frozenset(), actor="levbrouk", updated_at="2019-06-04T00:10:21.326+0000",
        status='new', created_at=jira_dt("2018-05-15T11:39:29.303+0000"),
    )),
]


@pytest.mark.parametrize(("name", "expected"), FULL_PAYLOADS)
def test_full_payload_ticket_without_requests(
    name: str, expected: Ticket, connector: JiraConnector, rsps: responses.RequestsMock
) -> None:
    """A full issue payload maps to the whole expected Ticket with zero requests."""
    assert connector.current_ticket([load(name)]) == expected
    assert len(rsps.calls) == 0


def _get_response(source: str, *, key: str | None = None) -> dict[str, Any]:
    """A GET issue answer built from a full fixture, limited to the fields the policy reads."""
    issue = load(source)["issue"]
    wanted = READ_FIELDS.split(",")
    return {"id": issue["id"], "key": key or issue["key"],
            "fields": {k: v for k, v in issue["fields"].items() if k in wanted}}


COMMENT_PAYLOADS = [
    # Cloud comment events: trimmed issue without labels -> one read by key.
    ("comment_created__cloud_mention_user.json", "TES-41", "jira_issue_updated__cloud_labels.json",
     "5c5f880629be9642ba529340"),
    ("comment_updated__cloud.json", "TES-41", "jira_issue_updated__cloud_labels.json",
     "5c5f880629be9642ba529340"),
    # Server comment events: no issue at all -> one read by the numeric id from comment.self.
    ("comment_created__server.json", "10013", "jira_issue_updated__server_commented.json",
     "levbrouk"),
    ("comment_updated__server.json", "10013", "jira_issue_updated__server_commented.json",
     "levbrouk"),
]


@pytest.mark.parametrize(("name", "ref", "source", "actor"), COMMENT_PAYLOADS)
def test_comment_payload_costs_one_read(
    name: str, ref: str, source: str, actor: str,
    connector: JiraConnector, rsps: responses.RequestsMock,
) -> None:
    """A comment event reads the issue once, with only the policy's fields, and maps it fully."""
    rsps.get(f"{BASE}/rest/api/2/issue/{ref}", json=_get_response(source),
             match=[matchers.query_param_matcher({"fields": READ_FIELDS})])
    got = connector.current_ticket([load(name)])
    expected = dict(FULL_PAYLOADS)[source]
    # Without SLA clocks in the policy the read leaves out status and created.
    assert got == Ticket(**{**_as_dict(expected), "actor": actor, "status": None,
                            "created_at": None})
    assert len(rsps.calls) == 1
    assert rsps.calls[0].request.method == "GET"


def _as_dict(ticket: Ticket) -> dict[str, Any]:
    return {name: getattr(ticket, name) for name in Ticket.__slots__}


def test_fresh_read_adds_comments_and_finds_note_marker(
    connector: JiraConnector, rsps: responses.RequestsMock
) -> None:
    """fresh=True reads even a full payload, asks for comments, and returns the newest marker."""
    answer = _get_response("jira_issue_updated__cloud_labels.json")
    answer["fields"]["comment"] = {"comments": [
        {"body": "old note\ntierdesk-note:aaaaaaaaaaaaaaaa"},
        {"body": "an agent's reply"},
        {"body": "checklist\ntierdesk-note:bbbbbbbbbbbbbbbb"},
    ], "total": 3}
    rsps.get(f"{BASE}/rest/api/2/issue/TES-41", json=answer,
             match=[matchers.query_param_matcher({"fields": READ_FIELDS + ",comment"})])
    got = connector.current_ticket([load("jira_issue_updated__cloud_labels.json")], fresh=True,
                                   last_note_key="cccccccccccccccc")
    assert got.last_note_key == "bbbbbbbbbbbbbbbb"
    assert len(rsps.calls) == 1


def test_fresh_read_without_marker_keeps_given_note_key(
    connector: JiraConnector, rsps: responses.RequestsMock
) -> None:
    """Without a marker on the issue, the caller's last_note_key is kept."""
    answer = _get_response("jira_issue_updated__cloud_labels.json")
    answer["fields"]["comment"] = {"comments": [{"body": "hello"}]}
    rsps.get(f"{BASE}/rest/api/2/issue/TES-41", json=answer)
    got = connector.current_ticket([load("jira_issue_created__cloud.json")], fresh=True,
                                   last_note_key="cccccccccccccccc")
    assert got.last_note_key == "cccccccccccccccc"


def test_newest_payload_by_timestamp_wins(connector: JiraConnector) -> None:
    """Of several coalesced payloads, the one with the latest timestamp is used."""
    older = load("jira_issue_created__cloud.json")  # timestamp 1550286113023
    newer = load("jira_issue_updated__cloud_labels.json")  # timestamp 1550351530065
    assert connector.current_ticket([newer, older]).labels == frozenset({"sad", "test-label"})
    assert connector.current_ticket([older, newer]).labels == frozenset({"sad", "test-label"})


def test_jsm_organization_field_sets_customer_organization(rsps: responses.RequestsMock) -> None:
    """With organization_field configured, the first JSM organization is the customer's."""
    body = load("jira_issue_created__cloud.json")
    body["issue"]["fields"]["customfield_10002"] = [
        {"id": "1", "name": "Initech", "_links": {}}, {"id": "2", "name": "Acme"}]
    connector = JiraConnector(cloud_config(organization_field="customfield_10002"), policy())
    ticket = connector.current_ticket([body])
    assert ticket.customer == Customer(organization="Initech",
                                       email="some-instance-test@gmail.com")
    assert "customfield_10002" in fields_to_read(policy(), connector.config)


def test_note_marker_in_payload_comments_is_found() -> None:
    """A full payload that includes comments (Data Center) yields the note key without a read."""
    body = load("jira_issue_updated__server_commented.json")
    body["issue"]["fields"]["comment"]["comments"][3]["body"] = "x\ntierdesk-note:0123456789abcdef"
    ticket = ticket_from_issue(body["issue"], policy=policy(), config=cloud_config())
    assert ticket.last_note_key == "0123456789abcdef"


FIELD_VALUES = [
    (None, None),
    ("text", "text"),
    (12, 12),
    (2.5, 2.5),
    (True, True),
    ({"value": "Gold", "id": "1"}, "Gold"),  # select / radio
    ({"value": "Hardware", "child": {"value": "Disk"}}, "Hardware / Disk"),  # cascading select
    ([{"value": "a"}, {"value": "b"}], ("a", "b")),  # multi-select / checkboxes
    (["x", "y"], ("x", "y")),  # labels field
    ([], ()),  # emptied multi-select
    ({"accountId": "abc", "displayName": "Ann"}, "Ann"),  # Cloud user picker
    ({"name": "ann", "displayName": "Ann"}, "ann"),  # DC user picker / component / version
    ({"type": "doc", "content": [{"type": "paragraph",
                                  "content": [{"type": "text", "text": "Hi"}]}]}, "Hi"),  # ADF
    ([{"id": 5}], ("5",)),  # object with only a numeric id
]


@pytest.mark.parametrize(("raw", "expected"), FIELD_VALUES)
def test_field_value_types(raw: Any, expected: Any) -> None:
    """Custom fields of every type become the engine's FieldValue."""
    assert field_value(raw, "issue.fields.customfield_1") == expected


BAD_ISSUES = [
    ({"key": "A-1", "fields": {"labels": "a b"}}, "issue.fields.labels: expected a list, got str"),
    ({"key": "A-1", "fields": {"labels": [], "summary": 5}},
     "issue.fields.summary: expected a string, got int"),
    ({"key": "A-1", "fields": {"labels": [], "priority": "High"}},
     "issue.fields.priority: expected an object, got str"),
    ({"key": "A-1", "fields": {"labels": [], "customfield_10067": [[1]]}},
     r"issue.fields.customfield_10067\[0\]: unsupported list item of type list"),
    ({"key": "A-1", "fields": {"labels": [], "description": 3}},
     "issue.fields.description: expected text, got int"),
    ({"key": "A-1", "fields": []}, "issue.fields: expected an object, got list"),
    ({"key": "A-1", "fields": {"labels": [], "components": {"name": "X"}}},
     "issue.fields.components: expected a list, got dict"),
    ({"key": "A-1", "fields": {"labels": [], "components": [{"name": 7}]}},
     r"issue.fields.components\[0\].name: expected a string, got int"),
]


@pytest.mark.parametrize(("issue", "message"), BAD_ISSUES)
def test_bad_issue_json_raises_payload_invalid(issue: dict[str, Any], message: str) -> None:
    """Wrong types in issue JSON raise PayloadInvalid naming the key path."""
    with pytest.raises(PayloadInvalid, match=message):
        ticket_from_issue(issue, policy=policy(), config=cloud_config())


IDENTITIES = [
    # reporter email visible: that is the identity
    ({"reporter": {"accountId": "a1", "emailAddress": "ann@acme.example"}}, {},
     Customer(email="ann@acme.example")),
    # Cloud hides the email (privacy settings): the reason says so
    ({"reporter": {"accountId": "a1", "emailAddress": None}}, {},
     Customer(unidentified="Jira sent no reporter email: the site hides it")),
    # no reporter at all
    ({"reporter": None}, {}, Customer(unidentified="Jira sent no reporter")),
    # a custom field holds the customer (sites without JSM organizations)
    ({"reporter": {"accountId": "a1"}, "customfield_10200": "Acme Corp"},
     {"customer_field": "customfield_10200"}, Customer(organization="Acme Corp")),
    # a select-list custom field holds the plan (the counterpart of Zendesk's org field)
    ({"reporter": {"accountId": "a1"}, "customfield_10201": {"value": "premium"}},
     {"plan_field": "customfield_10201"}, Customer(plan="premium")),
    # JSM organization wins over the customer field
    ({"reporter": {"accountId": "a1"}, "customfield_10002": [{"id": "1", "name": "Initech"}],
      "customfield_10200": "Acme Corp"},
     {"organization_field": "customfield_10002", "customer_field": "customfield_10200"},
     Customer(organization="Initech")),
    # every configured source empty: each is named
    ({"reporter": {"accountId": "a1"}, "customfield_10002": []},
     {"organization_field": "customfield_10002", "customer_field": "customfield_10200"},
     Customer(unidentified="Jira sent no reporter email: the site hides it, no organization"
                           " in customfield_10002, no customer in customfield_10200")),
]


@pytest.mark.parametrize(("fields", "config", "customer"), IDENTITIES)
def test_customer_identity_from_what_jira_sends(
    fields: dict[str, Any], config: dict[str, Any], customer: Customer
) -> None:
    """The customer comes from the JSM organization, a customer or plan field, or the visible
    reporter email; when Jira sent none, the ticket says what was missing."""
    issue = {"key": "SUP-9", "fields": {"summary": "s", "labels": [], **fields}}
    ticket = ticket_from_issue(issue, policy=policy(), config=cloud_config(**config))
    assert ticket.customer == customer


def test_hidden_email_reason_replaces_no_plan_matches() -> None:
    """A ticket whose reporter email Jira hid is unverified with that reason, not 'No plan
    matches'."""
    from datetime import UTC, datetime

    from tiering import decide

    issue = {"key": "SUP-9", "fields": {"summary": "s", "labels": [],
                                        "reporter": {"accountId": "a1"}}}
    ticket = ticket_from_issue(issue, policy=policy(), config=cloud_config())
    decision = decide(ticket, policy(), now=datetime(2026, 11, 21, tzinfo=UTC))
    assert any(r.startswith("Jira sent no reporter email: the site hides it: the customer is"
                            " unverified") for r in decision.reasons)
    assert not any(r.startswith("No plan matches") for r in decision.reasons)
