"""Jira site set-up from the seed: the JSM Organizations field and a site's own priorities."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from jira import JIRA, JIRAError

from sandbox.server import SandboxHandle, run_in_thread
from sandbox.state import SeedInvalid, default_seed_text
from tests.webhook_receiver import Receiver

ORG_FIELD = "customfield_10002"


def _seed(**jira: Any) -> dict[str, Any]:
    """The packaged seed with a typed Organizations field, two organizations and `jira` keys."""
    seed = json.loads(default_seed_text())
    for f in seed["jira"]["fields"]:
        if f["id"] == ORG_FIELD:
            f["type"] = "organizations"
    seed["jira"]["organizations"] = [{"id": "1", "name": "Acme Corp"},
                                     {"id": "8", "name": "Initech"}]
    seed["jira"].update(jira)
    return dict(seed)


@pytest.fixture
def site() -> Iterator[SandboxHandle]:
    handle = run_in_thread(seed=_seed(priorities=["Urgent", "High", "Medium", "Low"]),
                           retry_base=0.05)
    try:
        yield handle
    finally:
        handle.stop()


@pytest.fixture
def client(site: SandboxHandle) -> JIRA:
    return JIRA(server=site.jira_url, basic_auth=("bot@tierdesk.example", "sandbox-token"),
                max_retries=0, timeout=5, options={"check_update": False})


def test_organizations_are_set_by_id_and_read_as_objects(
    site: SandboxHandle, client: JIRA
) -> None:
    """Organizations are set with ids ([8], as JSM takes them) and read as {id, name, _links}."""
    response = client._session.put(f"{site.jira_url}/rest/api/2/issue/SUP-1",
                                   json={"fields": {ORG_FIELD: [8]}})
    assert response.status_code == 204
    assert client.issue("SUP-1").raw["fields"][ORG_FIELD] == [
        {"id": "8", "name": "Initech",
         "_links": {"self": f"{site.jira_url}/rest/servicedeskapi/organization/8"}}
    ]
    found = client._session.get(f"{site.jira_url}/rest/api/2/search/jql",
                                params={"jql": 'cf[10002] = "Initech"'}).json()
    assert [i["id"] for i in found["issues"]] == [client.issue("SUP-1").id]


def test_no_organization_reads_as_an_empty_list(client: JIRA) -> None:
    """An issue without organizations shows [] in the field, as real JSM payloads do."""
    assert client.issue("SUP-1").raw["fields"][ORG_FIELD] == []


@pytest.mark.parametrize(
    ("value", "message"),
    [
        # an id no organization has
        ([99], "Organization with id 99 does not exist."),
        # names or objects are not how the field is set
        ([{"id": "1", "name": "Acme Corp"}], "list of organization ids"),
        ("Acme Corp", "list of organization ids"),
    ],
)
def test_bad_organization_values_are_refused(
    site: SandboxHandle, client: JIRA, value: object, message: str
) -> None:
    """A value that is not a list of known organization ids answers 400 and changes nothing."""
    before = site.state()["jira"]["issues"]["SUP-1"]
    with pytest.raises(JIRAError) as err:
        client._session.put(f"{site.jira_url}/rest/api/2/issue/SUP-1",
                            json={"fields": {ORG_FIELD: value}})
    assert err.value.status_code == 400
    assert message in str(err.value.text)
    assert site.state()["jira"]["issues"]["SUP-1"] == before


def test_issue_created_webhook_carries_organizations_and_the_site_priority(
    site: SandboxHandle, client: JIRA, receiver: Receiver
) -> None:
    """jira:issue_created shows the organizations as objects and a seeded "Urgent" priority."""
    created = client._session.post(f"{site.jira_url}/rest/webhooks/1.0/webhook", json={
        "name": "t", "url": receiver.url + "/webhooks/jira", "events": ["jira:issue_created"]})
    assert created.status_code == 201
    site.agent("jira", "alice", "POST", "/rest/api/2/issue", {"fields": {
        "project": {"key": "SUP"}, "summary": "Outage", "issuetype": {"name": "Task"},
        "priority": {"name": "Urgent"}, ORG_FIELD: [1]}})
    [call] = receiver.wait_for(1)
    fields = call.json()["issue"]["fields"]
    assert [(o["id"], o["name"]) for o in fields[ORG_FIELD]] == [("1", "Acme Corp")]
    assert (fields["priority"]["name"], fields["priority"]["id"]) == ("Urgent", "1")


def test_priorities_are_the_sites(site: SandboxHandle, client: JIRA) -> None:
    """A priority the site does not have ("Highest" here) is refused with the site's names."""
    with pytest.raises(JIRAError) as err:
        client._session.put(f"{site.jira_url}/rest/api/2/issue/SUP-1",
                            json={"fields": {"priority": {"name": "Highest"}}})
    assert err.value.status_code == 400
    assert "['High', 'Low', 'Medium', 'Urgent']" in str(err.value.text)


def test_seeded_issue_with_an_unknown_organization_is_refused() -> None:
    """A seed issue whose Organizations value names no seeded organization is a SeedInvalid."""
    seed = _seed(issues=[{"key": "SUP-1", "summary": "s", "custom": {ORG_FIELD: [5]}}])
    with pytest.raises(SeedInvalid, match="Organization with id 5"):
        run_in_thread(seed=seed).stop()
