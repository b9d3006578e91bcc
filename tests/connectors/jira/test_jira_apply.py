"""Decisions -> Jira writes: exact requests per decision kind, OpenAPI-valid bodies, no-op cases.

Measured here (and asserted): changing decisions on full payloads cost 0 reads + 1 PUT; decisions
that change nothing, and the webhook tierdesk's own write triggers, cost 0 requests.
"""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime
from typing import Any

import jsonschema
import pytest
import responses
from responses import matchers

from connectors.base import Call
from connectors.jira import JiraConnector
from connectors.jira.config import JiraConfig
from tests.connectors.jira.conftest import BASE, DC_BASE, cloud_config, load, openapi, policy
from tiering import decide
from tiering.models import Decision, Ticket

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


def validate(schema_name: str, instance: Any) -> None:
    """Validate `instance` against a schema of the Jira platform OpenAPI description."""
    doc = openapi()
    schema = {"$ref": f"#/components/schemas/{schema_name}", "components": doc["components"]}
    jsonschema.validate(instance, schema)


def payload(name: str, **fields: Any) -> dict[str, Any]:
    """Fixture `name` with some issue fields overridden."""
    body = load(name)
    body["issue"]["fields"].update(fields)
    return body


def sent(rsps: responses.RequestsMock) -> list[tuple[str, str, dict[str, Any] | None]]:
    """(method, url, JSON body) of every request made."""
    out = []
    for call in rsps.calls:
        raw = call.request.body
        out.append((call.request.method, call.request.url,
                    json.loads(raw) if raw else None))
    return out


def run(connector: JiraConnector, body: dict[str, Any]) -> tuple[Ticket, Decision]:
    ticket = connector.current_ticket([body])
    decision = decide(ticket, policy(), now=NOW)
    connector.apply(ticket, decision, decide=lambda t: decide(t, policy(), now=NOW))
    return ticket, decision


def written(fields: dict[str, Any], body: dict[str, Any]) -> None:
    """Apply a PUT body to issue `fields` as Jira does: label and component add/remove, the
    assignee set or cleared (comments are not kept)."""
    update = body.get("update", {})
    for op in update.get("labels", []):
        verb, label = next(iter(op.items()))
        labels = [x for x in fields["labels"] if x != label]
        fields["labels"] = [*labels, label] if verb == "add" else labels
    for op in update.get("components", []):
        verb, component = next(iter(op.items()))
        kept = [c for c in fields.get("components") or [] if c["name"] != component["name"]]
        fields["components"] = [*kept, component] if verb == "add" else kept
    if "assignee" in body.get("fields", {}):
        assignee = body["fields"]["assignee"]
        fields["assignee"] = assignee if any(assignee.values()) else None


PUT_URL = f"{BASE}/rest/api/2/issue/{{key}}"

DECISIONS = [
    # first triage: no tier yet, premium customer, no rule -> default L1, assigned to its target
    ("first-triage", payload("jira_issue_created__cloud_many_fields.json"), "KT-22",
     {"fields": {"assignee": {"accountId": "acc-l1"}},
      "update": {"labels": [{"add": "tier-l1"}]}}),
    # escalation granted: escalate-l2 with all L2 documentation -> L2, request label consumed
    ("escalation-granted",
     payload("jira_issue_created__cloud_many_fields.json",
             labels=["Label1", "tier-l1", "escalate-l2"]), "KT-22",
     {"fields": {"assignee": {"accountId": "acc-l2"}},
      "update": {"labels": [{"add": "tier-l2"}, {"remove": "escalate-l2"},
                            {"remove": "tier-l1"}]}}),
    # escalation to a component-only target (L3 -> component Engineering): the issue joins the
    # Engineering queue, so the agent who took it by hand at L2 is unassigned (as on Zendesk)
    ("escalation-component",
     payload("jira_issue_created__cloud_many_fields.json",
             labels=["tier-l2", "escalate-l3"]), "KT-22",
     {"fields": {"assignee": {"accountId": None}},
      "update": {"labels": [{"add": "tier-l3"}, {"remove": "escalate-l3"},
                            {"remove": "tier-l2"}],
                 "components": [{"add": {"name": "Engineering"}}]}}),
    # tier change between component targets: the new target's component in, the previous
    # target's out, in the same PUT (L3 Engineering -> L4 Vendor + acc-vendor)
    ("component-replaced",
     payload("jira_issue_created__cloud_many_fields.json", labels=["tier-l3", "escalate-l4"],
             assignee=None, components=[{"id": "10001", "name": "Engineering"}]), "KT-22",
     {"fields": {"assignee": {"accountId": "acc-vendor"}},
      "update": {"labels": [{"add": "tier-l4"}, {"remove": "escalate-l4"},
                            {"remove": "tier-l3"}],
                 "components": [{"add": {"name": "Vendor"}},
                                {"remove": {"name": "Engineering"}}]}}),
    # components agents added themselves (not any target's) stay on the issue
    ("agent-components-kept",
     payload("jira_issue_created__cloud_many_fields.json", labels=["tier-l3", "escalate-l4"],
             assignee=None, components=[{"id": "10005", "name": "Customer Portal"},
                                        {"id": "10001", "name": "Engineering"}]), "KT-22",
     {"fields": {"assignee": {"accountId": "acc-vendor"}},
      "update": {"labels": [{"add": "tier-l4"}, {"remove": "escalate-l4"},
                            {"remove": "tier-l3"}],
                 "components": [{"add": {"name": "Vendor"}},
                                {"remove": {"name": "Engineering"}}]}}),
    # the previous target's assignee (acc-l2) is cleared when the new target names only a
    # component (L2 acc-l2 -> L3 Engineering)
    ("previous-assignee-cleared",
     payload("jira_issue_created__cloud_many_fields.json", labels=["tier-l2", "escalate-l3"],
             assignee={"accountId": "acc-l2"}), "KT-22",
     {"fields": {"assignee": {"accountId": None}},
      "update": {"labels": [{"add": "tier-l3"}, {"remove": "escalate-l3"},
                            {"remove": "tier-l2"}],
                 "components": [{"add": {"name": "Engineering"}}]}}),
    # ... even when an agent already filed the issue under the target's component
    ("previous-assignee-cleared-in-queue",
     payload("jira_issue_created__cloud_many_fields.json", labels=["tier-l2", "escalate-l3"],
             assignee={"accountId": "acc-l2"},
             components=[{"id": "10001", "name": "Engineering"}]), "KT-22",
     {"fields": {"assignee": {"accountId": None}},
      "update": {"labels": [{"add": "tier-l3"}, {"remove": "escalate-l3"},
                            {"remove": "tier-l2"}]}}),
    # an agent who took the issue by hand within the target's component keeps it (Zendesk keeps
    # the assignee when the group does not change)
    ("hand-assignee-kept-in-queue",
     payload("jira_issue_created__cloud_many_fields.json", labels=["tier-l2", "escalate-l3"],
             components=[{"id": "10001", "name": "Engineering"}]), "KT-22",
     {"update": {"labels": [{"add": "tier-l3"}, {"remove": "escalate-l3"},
                            {"remove": "tier-l2"}]}}),
    # route: billing words -> routed label + billing assignee, no tier
    ("route", payload("jira_issue_updated__cloud_custom_field.json", summary="Refund my invoice",
                      labels=[]), "TES-14",
     {"fields": {"assignee": {"accountId": "acc-billing"}},
      "update": {"labels": [{"add": "tier-route-billing"}]}}),
]


@pytest.mark.parametrize(("kind", "body", "key", "expected"), DECISIONS,
                         ids=[d[0] for d in DECISIONS])
def test_decision_is_one_put(kind: str, body: dict[str, Any], key: str, expected: dict[str, Any],
                             connector: JiraConnector, rsps: responses.RequestsMock) -> None:
    """A changing decision on a full payload is exactly 1 PUT (0 reads) with the exact body,
    without notifyUsers=false (the bot the guide describes may not send it)."""
    rsps.put(f"{BASE}/rest/api/2/issue/{key}", status=204,
             match=[matchers.query_param_matcher({})])
    run(connector, body)
    assert sent(rsps) == [("PUT", PUT_URL.format(key=key), expected)]
    validate("IssueUpdateDetails", expected)


def test_documentation_missing_posts_restricted_checklist(rsps: responses.RequestsMock) -> None:
    """Missing documentation: docs-missing label and the checklist comment, role-restricted."""
    connector = JiraConnector(cloud_config(comment_visibility=("role", "Administrators")),
                              policy())
    rsps.put(f"{BASE}/rest/api/2/issue/TES-14", status=204)
    body = payload("jira_issue_updated__cloud_custom_field.json",
                   labels=["tier-l1", "escalate-l3"], customfield_10068=None)
    _, decision = run(connector, body)
    assert decision.comment is not None and decision.comment.endswith(
        f"tierdesk-note:{decision.note_key}")
    comment = {"body": decision.comment,
               "visibility": {"type": "role", "value": "Administrators"}}
    expected = {"update": {"labels": [{"add": "tier-docs-missing"}],
                           "comment": [{"add": comment}]}}
    assert sent(rsps) == [("PUT", PUT_URL.format(key="TES-14"), expected)]
    validate("IssueUpdateDetails", expected)
    validate("Comment", comment)


def test_entitlement_exceeded_on_jsm_posts_internal_comment(
    rsps: responses.RequestsMock,
) -> None:
    """Entitlement exceeded on JSM: the PUT carries the labels only; the refusal note is a
    second request, the Service Management API's internal comment (`public: false`)."""
    connector = JiraConnector(cloud_config(service_management=True), policy())
    rsps.put(f"{BASE}/rest/api/2/issue/TES-41", status=204)
    rsps.post(f"{BASE}/rest/servicedeskapi/request/TES-41/comment", status=201,
              json={"id": "1", "public": False})
    body = payload("jira_issue_updated__cloud_labels.json", labels=["tier-l1", "escalate-l2"])
    ticket = connector.current_ticket([body])
    decision = decide(ticket, policy(), now=NOW)
    applied = connector.apply(ticket, decision, decide=lambda t: decision)
    expected = {"update": {"labels": [{"add": "tier-entitlement-exceeded"},
                                      {"remove": "escalate-l2"}]}}
    assert sent(rsps) == [
        ("PUT", PUT_URL.format(key="TES-41"), expected),
        ("POST", f"{BASE}/rest/servicedeskapi/request/TES-41/comment",
         {"body": decision.comment, "public": False}),
    ]
    validate("IssueUpdateDetails", expected)
    assert applied.note_key == decision.note_key
    assert [c.method for c in applied.calls] == ["PUT", "POST"]


def test_jsm_note_alone_is_one_post(rsps: responses.RequestsMock) -> None:
    """On JSM, a decision whose only change is the note costs 1 POST and no PUT."""
    connector = JiraConnector(cloud_config(service_management=True), policy())
    rsps.post(f"{BASE}/rest/servicedeskapi/request/TES-1/comment", status=201, json={})
    ticket = Ticket(key="TES-1", labels=frozenset({"tier-docs-missing"}))
    decision = Decision(ticket="TES-1", tier="L1", previous_tier="L1",
                        labels_add=("tier-docs-missing",),
                        comment="c\ntierdesk-note:2222222222222222", note_key="2222222222222222")
    applied = connector.apply(ticket, decision, decide=lambda t: decision)
    assert sent(rsps) == [("POST", f"{BASE}/rest/servicedeskapi/request/TES-1/comment",
                           {"body": decision.comment, "public": False})]
    assert applied.note_key == "2222222222222222"


def test_quiet_edit_when_configured(rsps: responses.RequestsMock) -> None:
    """TIERDESK_JIRA_QUIET_EDITS: the one PUT carries notifyUsers=false."""
    connector = JiraConnector(cloud_config(quiet_edits=True), policy())
    rsps.put(f"{BASE}/rest/api/2/issue/TES-1", status=204,
             match=[matchers.query_param_matcher({"notifyUsers": "false"})])
    ticket = Ticket(key="TES-1")
    decision = Decision(ticket="TES-1", tier="L1", previous_tier=None, labels_add=("tier-l1",))
    connector.apply(ticket, decision, decide=lambda t: decision)
    assert sent(rsps) == [("PUT", f"{BASE}/rest/api/2/issue/TES-1?notifyUsers=false",
                           {"update": {"labels": [{"add": "tier-l1"}]}})]


def test_refused_quiet_edit_is_resent_once_and_remembered(rsps: responses.RequestsMock) -> None:
    """Jira's 403 to notifyUsers=false: the same edit is resent once without it, and later
    edits in that project go out plain at once (3 PUTs for 2 decisions, never a dead letter)."""
    connector = JiraConnector(cloud_config(quiet_edits=True), policy())
    refusal = {"errorMessages": ["To discard the user notification either admin or project"
                                 " admin permissions are required."], "errors": {}}
    rsps.put(f"{BASE}/rest/api/2/issue/TES-1", status=403, json=refusal,
             match=[matchers.query_param_matcher({"notifyUsers": "false"})])
    rsps.put(f"{BASE}/rest/api/2/issue/TES-1", status=204,
             match=[matchers.query_param_matcher({})])
    rsps.put(f"{BASE}/rest/api/2/issue/TES-2", status=204,
             match=[matchers.query_param_matcher({})])
    for key in ("TES-1", "TES-2"):
        ticket = Ticket(key=key)
        decision = Decision(ticket=key, tier="L1", previous_tier=None, labels_add=("tier-l1",))
        applied = connector.apply(ticket, decision, decide=lambda t, d=decision: d)
        assert applied.wrote
    body = {"update": {"labels": [{"add": "tier-l1"}]}}
    assert sent(rsps) == [
        ("PUT", f"{BASE}/rest/api/2/issue/TES-1?notifyUsers=false", body),
        ("PUT", f"{BASE}/rest/api/2/issue/TES-1", body),
        ("PUT", f"{BASE}/rest/api/2/issue/TES-2", body),
    ]


def test_other_403_is_not_retried(rsps: responses.RequestsMock) -> None:
    """A 403 for another reason (no Edit issues) stays a rejection: 1 PUT, VendorRejected."""
    from connectors.base import VendorRejected

    connector = JiraConnector(cloud_config(quiet_edits=True), policy())
    rsps.put(f"{BASE}/rest/api/2/issue/TES-1", status=403,
             json={"errorMessages": ["You do not have permission to edit issues."]})
    ticket = Ticket(key="TES-1")
    decision = Decision(ticket="TES-1", tier="L1", previous_tier=None, labels_add=("tier-l1",))
    with pytest.raises(VendorRejected):
        connector.apply(ticket, decision, decide=lambda t: decision)
    assert len(rsps.calls) == 1


@pytest.mark.parametrize(("kind", "body", "key", "expected"), DECISIONS,
                         ids=[d[0] for d in DECISIONS])
def test_state_after_write_needs_no_request(
    kind: str, body: dict[str, Any], key: str, expected: dict[str, Any],
    connector: JiraConnector, rsps: responses.RequestsMock,
) -> None:
    """The webhook tierdesk's own write triggers (bot check aside) leads to 0 requests."""
    ticket = connector.current_ticket([body])
    body_sent = connector.plan(ticket, decide(ticket, policy(), now=NOW))
    assert body_sent == expected
    written(body["issue"]["fields"], body_sent)
    again = connector.current_ticket([body])
    second = decide(again, policy(), now=NOW)
    applied = connector.apply(again, second, decide=lambda t: second)
    assert not second.changed
    assert (applied.wrote, applied.calls, len(rsps.calls)) == (False, (), 0)


def test_no_change_decision_makes_no_request(
    connector: JiraConnector, rsps: responses.RequestsMock
) -> None:
    """decision.changed false: no request at all."""
    ticket = Ticket(key="TES-1", labels=frozenset({"tier-l1"}))
    decision = Decision(ticket="TES-1", tier="L1", previous_tier="L1")
    applied = connector.apply(ticket, decision, decide=lambda t: decision)
    assert (applied.wrote, applied.calls, len(rsps.calls)) == (False, (), 0)


def test_already_applied_parts_are_not_resent(
    connector: JiraConnector, rsps: responses.RequestsMock
) -> None:
    """Labels already present, the same assignee and an already-posted note make no request."""
    ticket = Ticket(key="TES-1", labels=frozenset({"tier-l2"}), assignee="acc-l2",
                    last_note_key="00000000deadbeef")
    decision = Decision(ticket="TES-1", tier="L2", previous_tier="L1", labels_add=("tier-l2",),
                        labels_remove=("tier-l1",), assign="L2",
                        comment="x\ntierdesk-note:00000000deadbeef", note_key="00000000deadbeef")
    applied = connector.apply(ticket, decision, decide=lambda t: decision)
    assert (applied.wrote, len(rsps.calls), applied.note_key) == (False, 0, "00000000deadbeef")


def test_applied_records_call_and_note_key(
    connector: JiraConnector, rsps: responses.RequestsMock
) -> None:
    """Applied lists the one PUT with its status and the note key now on the ticket."""
    rsps.put(f"{BASE}/rest/api/2/issue/TES-1", status=204)
    ticket = Ticket(key="TES-1")
    decision = Decision(ticket="TES-1", tier="L1", previous_tier=None, labels_add=("tier-l1",),
                        comment="c\ntierdesk-note:1111111111111111", note_key="1111111111111111")
    applied = connector.apply(ticket, decision, decide=lambda t: decision)
    assert applied.wrote and applied.note_key == "1111111111111111"
    assert [(c.method, c.path, c.status) for c in applied.calls] == [
        ("PUT", "/rest/api/2/issue/TES-1", 204)]


def test_data_center_assigns_by_name_with_bearer_token(rsps: responses.RequestsMock) -> None:
    """Data Center: assignee by user name; a personal access token is sent as Bearer auth."""
    config = JiraConfig(base_url=DC_BASE, pat="pat-secret", deployment="datacenter",
                        bot_account_id="tierdesk-bot", public_comments=True)
    connector = JiraConnector(config, policy())
    rsps.put(f"{DC_BASE}/rest/api/2/issue/PRJX-14", status=204)
    body = load("jira_issue_updated__server_commented.json")
    _, decision = run(connector, body)
    assert decision.assign == "L1"
    assert sent(rsps) == [("PUT", f"{DC_BASE}/rest/api/2/issue/PRJX-14",
                           {"fields": {"assignee": {"name": "acc-l1"}},
                            "update": {"labels": [{"add": "tier-l1"},
                                                  {"add": "tier-unverified"}],
                                       "comment": [{"add": {"body": decision.comment}}]}})]
    assert rsps.calls[0].request.headers["Authorization"] == "Bearer pat-secret"


DC_OWNERSHIP = [
    # L2 (acc-l2) -> L3 (component only): unassigned by {"name": null}, Engineering added,
    # the agent's component kept
    (Ticket(key="PRJX-14", labels=frozenset({"tier-l2"}), assignee="acc-l2",
            components=frozenset({"Customer Portal"})),
     "L2", "L3",
     {"fields": {"assignee": {"name": None}},
      "update": {"labels": [{"add": "tier-l3"}, {"remove": "tier-l2"}],
                 "components": [{"add": {"name": "Engineering"}}]}}),
    # L3 (Engineering) -> L4 (acc-vendor + Vendor): assigned by name, Engineering removed
    (Ticket(key="PRJX-14", labels=frozenset({"tier-l3"}),
            components=frozenset({"Engineering", "Customer Portal"})),
     "L3", "L4",
     {"fields": {"assignee": {"name": "acc-vendor"}},
      "update": {"labels": [{"add": "tier-l4"}, {"remove": "tier-l3"}],
                 "components": [{"add": {"name": "Vendor"}},
                                {"remove": {"name": "Engineering"}}]}}),
]


@pytest.mark.parametrize(("ticket", "previous", "tier", "expected"), DC_OWNERSHIP,
                         ids=["to-component-target", "to-assignee-and-component"])
def test_data_center_tier_change_replaces_ownership(
    ticket: Ticket, previous: str, tier: str, expected: dict[str, Any],
    rsps: responses.RequestsMock,
) -> None:
    """Data Center: the tier change's one PUT assigns or unassigns by name and swaps components."""
    config = JiraConfig(base_url=DC_BASE, pat="pat-secret", deployment="datacenter",
                        bot_account_id="tierdesk-bot", public_comments=True)
    connector = JiraConnector(config, policy())
    rsps.put(f"{DC_BASE}/rest/api/2/issue/PRJX-14", status=204)
    decision = Decision(ticket="PRJX-14", tier=tier, previous_tier=previous,
                        labels_add=(f"tier-{tier.lower()}",),
                        labels_remove=(f"tier-{previous.lower()}",), assign=tier)
    connector.apply(ticket, decision, decide=lambda t: decision)
    assert sent(rsps) == [("PUT", f"{DC_BASE}/rest/api/2/issue/PRJX-14",
                           expected)]
    validate("IssueUpdateDetails", expected)


OWNERSHIP_HOLDS = [
    # L3's component is there, no other target's, nobody assigned; an agent's component beside
    Ticket(key="TES-1", labels=frozenset({"tier-l3"}),
           components=frozenset({"Engineering", "Customer Portal"})),
    # an agent took the issue by hand within L3's component: it stays theirs
    Ticket(key="TES-1", labels=frozenset({"tier-l3"}), assignee="agent-7",
           components=frozenset({"Engineering"})),
]


@pytest.mark.parametrize("ticket", OWNERSHIP_HOLDS, ids=["queue", "queue-hand-assigned"])
def test_ownership_already_in_place_makes_no_request(
    ticket: Ticket, connector: JiraConnector, rsps: responses.RequestsMock
) -> None:
    """A decision to assign whose target already owns the issue sends nothing."""
    decision = Decision(ticket="TES-1", tier="L3", previous_tier="L2", labels_add=("tier-l3",),
                        assign="L3")
    applied = connector.apply(ticket, decision, decide=lambda t: decision)
    assert (applied.wrote, applied.calls, len(rsps.calls)) == (False, (), 0)


def test_component_names_match_without_case(
    connector: JiraConnector, rsps: responses.RequestsMock
) -> None:
    """A site's spelling of a target's component counts as it: not re-added, removed as spelt."""
    rsps.put(f"{BASE}/rest/api/2/issue/TES-1", status=204)
    ticket = Ticket(key="TES-1", labels=frozenset({"tier-l3"}), assignee="acc-vendor",
                    components=frozenset({"VENDOR", "engineering"}))
    decision = Decision(ticket="TES-1", tier="L4", previous_tier="L3", labels_add=("tier-l4",),
                        labels_remove=("tier-l3",), assign="L4")
    connector.apply(ticket, decision, decide=lambda t: decision)
    expected = {"update": {"labels": [{"add": "tier-l4"}, {"remove": "tier-l3"}],
                           "components": [{"remove": {"name": "engineering"}}]}}
    assert sent(rsps) == [("PUT", PUT_URL.format(key="TES-1"), expected)]
    validate("IssueUpdateDetails", expected)


def test_cloud_uses_basic_auth_and_json(
    connector: JiraConnector, rsps: responses.RequestsMock
) -> None:
    """Cloud: email + API token as basic auth; the body is sent as JSON."""
    rsps.put(f"{BASE}/rest/api/2/issue/KT-22", status=204)
    run(connector, payload("jira_issue_created__cloud_many_fields.json"))
    headers = rsps.calls[0].request.headers
    assert headers["Authorization"].startswith("Basic ")
    assert headers["Content-Type"] == "application/json"


def test_comment_event_decision_is_one_read_one_write(
    connector: JiraConnector, rsps: responses.RequestsMock
) -> None:
    """A Cloud comment event costs exactly 1 GET and, when something changes, 1 PUT."""
    issue = load("jira_issue_created__cloud_many_fields.json")["issue"]
    rsps.get(f"{BASE}/rest/api/2/issue/TES-41", json={**issue, "key": "TES-41"})
    rsps.put(f"{BASE}/rest/api/2/issue/TES-41", status=204)
    ticket = connector.current_ticket([load("comment_created__cloud_mention_user.json")])
    decision = decide(ticket, policy(), now=NOW)
    applied = connector.apply(ticket, decision, decide=lambda t: decide(t, policy(), now=NOW))
    assert [(m, u.split("?")[0]) for m, u, _ in sent(rsps)] == [
        ("GET", f"{BASE}/rest/api/2/issue/TES-41"), ("PUT", f"{BASE}/rest/api/2/issue/TES-41")]
    # The decision record lists the read with the write; the next decision starts afresh.
    assert applied.calls == (
        Call("GET", "/rest/api/2/issue/TES-41", 200, "read issue"),
        Call("PUT", "/rest/api/2/issue/TES-41", 204, "apply decision"),
    )
    again = connector.apply(ticket, decision, decide=lambda t: decision)
    assert again.calls == (Call("PUT", "/rest/api/2/issue/TES-41", 204, "apply decision"),)


def test_unknown_target_leaves_assignment_alone(
    connector: JiraConnector, rsps: responses.RequestsMock
) -> None:
    """A target without a Jira entry sends labels only (Zendesk-only targets are legal)."""
    rsps.put(f"{BASE}/rest/api/2/issue/TES-1", status=204)
    decision = Decision(ticket="TES-1", tier="L0", previous_tier=None, labels_add=("tier-l0",),
                        assign="L0")
    connector.apply(Ticket(key="TES-1"), decision, decide=lambda t: decision)
    assert sent(rsps)[0][2] == {"update": {"labels": [{"add": "tier-l0"}]}}


def test_dataclass_replace_keeps_ticket_frozen() -> None:
    """Tickets from the connector are frozen values (safe to log and compare)."""
    ticket = Ticket(key="A-1")
    with pytest.raises(dataclasses.FrozenInstanceError):
        ticket.key = "B-2"  # type: ignore[misc]


def test_openapi_check_rejects_a_malformed_body() -> None:
    """The OpenAPI check has teeth: an unknown field operation is refused."""
    with pytest.raises(jsonschema.ValidationError):
        validate("IssueUpdateDetails", {"update": {"labels": [{"append": "x"}]}})
