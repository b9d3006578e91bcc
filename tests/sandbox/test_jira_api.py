"""The real `jira` library against the sandbox: every Jira endpoint tierdesk uses."""

from __future__ import annotations

import json

import pytest
from jira import JIRA, JIRAError

from sandbox.server import SandboxHandle, run_in_thread
from sandbox.state import default_seed_text


def test_server_info_and_myself(sandbox: SandboxHandle) -> None:
    """JIRA() reads serverInfo (Cloud) and myself answers the authenticated bot account."""
    client = JIRA(
        server=sandbox.jira_url,
        basic_auth=("bot@tierdesk.example", "sandbox-token"),
        max_retries=0,
        options={"check_update": False},
    )
    assert client.deploymentType == "Cloud"
    assert client.myself()["accountId"] == "acc-bot"


def test_unknown_login_is_refused(sandbox: SandboxHandle) -> None:
    """Credentials of no seeded user get a 401 that says how to fix the seed."""
    with pytest.raises(JIRAError) as err:
        JIRA(
            server=sandbox.jira_url,
            basic_auth=("who@nowhere", "t"),
            max_retries=0,
            options={"check_update": False},
        )
    assert err.value.status_code == 401
    assert "jira.users" in err.value.text


def test_get_issue_honours_fields(jira_client: JIRA) -> None:
    """GET issue with fields= returns only those fields, with Jira's shapes."""
    issue = jira_client.issue("SUP-1", fields="summary,labels,reporter")
    assert sorted(issue.raw["fields"]) == ["labels", "reporter", "summary"]
    assert issue.raw["fields"]["reporter"]["emailAddress"] == "bob@globex.example"
    assert issue.raw["self"].endswith("/rest/api/2/issue/10000")


def test_missing_issue_is_404(jira_client: JIRA) -> None:
    """An unknown key answers Jira's 404 text."""
    with pytest.raises(JIRAError) as err:
        jira_client.issue("SUP-999")
    assert err.value.status_code == 404
    assert "Issue does not exist" in err.value.text


def test_one_put_carries_labels_assignee_and_internal_comment(
    sandbox: SandboxHandle, jira_client: JIRA
) -> None:
    """PUT issue applies label add/remove, assignee by accountId and a restricted comment: 204."""
    sandbox.agent(
        "jira",
        "agent",
        "PUT",
        "/rest/api/2/issue/SUP-1",
        {"update": {"labels": [{"add": "escalate-l2"}]}},
    )
    body = {
        "fields": {"assignee": {"accountId": "acc-l2"}},
        "update": {
            "labels": [{"add": "tier-l2"}, {"remove": "escalate-l2"}],
            "comment": [
                {
                    "add": {
                        "body": "Checklist\ntierdesk-note:0123456789abcdef",
                        "visibility": {"type": "role", "value": "Administrators"},
                        "properties": [{"key": "sd.public.comment", "value": {"internal": True}}],
                    }
                }
            ],
        },
    }
    response = jira_client._session.put(f"{sandbox.jira_url}/rest/api/2/issue/SUP-1", json=body)
    assert response.status_code == 204
    issue = jira_client.issue("SUP-1", fields="labels,assignee,comment")
    assert issue.raw["fields"]["labels"] == ["tier-l2"]
    assert issue.raw["fields"]["assignee"]["accountId"] == "acc-l2"
    comment = issue.raw["fields"]["comment"]["comments"][-1]
    assert comment["visibility"] == {"type": "role", "value": "Administrators"}
    # The property inside an edit is not a documented internal path: the portal shows it.
    assert comment["jsdPublic"] is True
    assert comment["author"]["accountId"] == "acc-bot"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        # A field may not be in both fields and update.
        (
            {"fields": {"labels": ["a"]}, "update": {"labels": [{"add": "b"}]}},
            "cannot be set in both",
        ),
        # Unknown fields are refused with Jira's wording.
        ({"fields": {"customfield_99999": "x"}}, "It is not on the appropriate screen"),
        # Labels cannot contain spaces.
        ({"update": {"labels": [{"add": "two words"}]}}, "contains spaces"),
        # Cloud assigns by accountId only (GDPR strict mode).
        ({"fields": {"assignee": {"name": "l2"}}}, "GDPR strict mode"),
        # An unknown account.
        ({"fields": {"assignee": {"accountId": "nobody"}}}, "does not exist"),
        # Unknown component.
        ({"update": {"components": [{"add": {"name": "Nope"}}]}}, "Component name"),
    ],
)
def test_put_rejects_what_jira_rejects(
    sandbox: SandboxHandle, jira_client: JIRA, body: dict[str, object], message: str
) -> None:
    """Bad edits answer 400 with Jira's error shape and change nothing."""
    before = sandbox.state()["jira"]["issues"]["SUP-1"]
    with pytest.raises(JIRAError) as err:
        jira_client._session.put(f"{sandbox.jira_url}/rest/api/2/issue/SUP-1", json=body)
    assert err.value.status_code == 400
    data = err.value.response.json()
    assert message in " ".join([*data["errorMessages"], *data["errors"].values()])
    assert sandbox.state()["jira"]["issues"]["SUP-1"] == before


def test_component_add_and_custom_field(sandbox: SandboxHandle, jira_client: JIRA) -> None:
    """update.components add and a custom field set land on the issue."""
    response = jira_client._session.put(
        f"{sandbox.jira_url}/rest/api/2/issue/SUP-1",
        json={
            "fields": {"customfield_10101": "1. open 2. click 3. crash"},
            "update": {"components": [{"add": {"name": "Engineering"}}]},
        },
    )
    assert response.status_code == 204
    fields = jira_client.issue("SUP-1").raw["fields"]
    assert [c["name"] for c in fields["components"]] == ["Engineering"]
    assert fields["customfield_10101"] == "1. open 2. click 3. crash"


def test_comments_add_and_list(jira_client: JIRA) -> None:
    """add_comment posts (201) and comments() lists it, with properties when expanded."""
    added = jira_client.add_comment("SUP-1", "internal note", is_internal=True)
    assert added.body == "internal note"
    listed = jira_client.comments("SUP-1")
    assert [c.body for c in listed] == ["internal note"]
    raw = jira_client._session.get(
        f"{jira_client.server_url}/rest/api/2/issue/SUP-1/comment?expand=properties"
    ).json()
    assert raw["comments"][0]["properties"] == [
        {"key": "sd.public.comment", "value": {"internal": True}}
    ]


def test_create_issue(jira_client: JIRA) -> None:
    """create_issue answers 201 with the next key; the library's follow-up GET sees it."""
    issue = jira_client.create_issue(
        fields={
            "project": {"key": "SUP"},
            "summary": "App crash on save",
            "issuetype": {"name": "Task"},
            "priority": {"name": "High"},
            "labels": ["mobile"],
        }
    )
    assert issue.key == "SUP-2"
    assert issue.fields.priority.name == "High"
    assert issue.fields.labels == ["mobile"]
    assert issue.fields.reporter.accountId == "acc-bot"


def test_cloud_search_uses_search_jql_with_page_tokens(
    sandbox: SandboxHandle, jira_client: JIRA
) -> None:
    """search_issues on Cloud goes to /search/jql and follows nextPageToken to the end."""
    for n in range(5):
        sandbox.agent(
            "jira",
            "agent",
            "POST",
            "/rest/api/2/issue",
            {
                "fields": {
                    "project": {"key": "SUP"},
                    "summary": f"ticket {n}",
                    "issuetype": {"name": "Task"},
                    "labels": ["batch"],
                }
            },
        )
    found = jira_client.enhanced_search_issues(
        "project = SUP AND labels = batch", maxResults=False, fields="summary"
    )
    assert [i.key for i in found] == [f"SUP-{n}" for n in range(2, 7)]
    page = jira_client.enhanced_search_issues(
        "labels in (batch) ORDER BY key DESC", maxResults=2, json_result=True
    )
    assert [i["key"] for i in page["issues"]] == ["SUP-6", "SUP-5"]
    assert page["nextPageToken"] and page["isLast"] is False
    paths = [e["path"] for e in sandbox.sandbox.log_since(0)["requests"]]
    assert "/rest/api/2/search/jql" in paths


@pytest.mark.parametrize(
    ("jql", "message"),
    [
        # Cloud refuses searches without a restriction.
        ("ORDER BY key", "Unbounded JQL"),
        # Unknown fields are named.
        ("colour = red", "Field 'colour' does not exist"),
        # Broken syntax.
        ("project = ", "Error in the JQL Query"),
    ],
)
def test_bad_jql_is_400(jira_client: JIRA, jql: str, message: str) -> None:
    """JQL the sandbox cannot run answers 400 with a message saying why."""
    with pytest.raises(JIRAError) as err:
        jira_client.enhanced_search_issues(jql, json_result=True)
    assert err.value.status_code == 400
    assert message in err.value.text


def test_cloud_old_search_is_gone(sandbox: SandboxHandle, jira_client: JIRA) -> None:
    """GET /rest/api/2/search answers 410 on Cloud, as Atlassian removed it."""
    with pytest.raises(JIRAError) as err:
        jira_client._session.get(f"{sandbox.jira_url}/rest/api/2/search?jql=project=SUP")
    assert err.value.status_code == 410


def test_data_center_search_and_assign_by_name() -> None:
    """A Server seed: search_issues pages with startAt, and assignee is set by user name."""
    seed = {
        "jira": {
            "deployment": "Server",
            "users": [
                {
                    "accountId": "u1",
                    "name": "bot",
                    "displayName": "Bot",
                    "emailAddress": "bot@x.example",
                },
                {"accountId": "u2", "name": "l2", "displayName": "L2"},
            ],
            "projects": [{"key": "DC", "id": "1", "name": "DC"}],
            "issues": [{"key": f"DC-{n}", "summary": f"s{n}"} for n in range(1, 4)],
        }
    }
    with run_in_thread(seed=seed) as handle:
        client = JIRA(
            server=handle.jira_url,
            basic_auth=("bot", "sandbox-token"),
            max_retries=0,
            options={"check_update": False},
        )
        assert client.deploymentType == "Server"
        found = client.search_issues("project = DC ORDER BY key", startAt=1, maxResults=1)
        assert [i.key for i in found] == ["DC-2"]
        assert found.total == 3
        response = client._session.put(
            f"{handle.jira_url}/rest/api/2/issue/DC-1",
            json={"fields": {"assignee": {"name": "l2"}}},
        )
        assert response.status_code == 204
        assert client.issue("DC-1").raw["fields"]["assignee"]["name"] == "l2"


def test_admin_webhooks_crud(sandbox: SandboxHandle, jira_client: JIRA) -> None:
    """POST/GET/PUT/DELETE /rest/webhooks/1.0/webhook store url, events, filters; secret hidden."""
    url = f"{sandbox.jira_url}/rest/webhooks/1.0/webhook"
    created = jira_client._session.post(
        url,
        json={
            "name": "tierdesk",
            "url": "http://127.0.0.1:9/hook",
            "events": ["jira:issue_updated"],
            "filters": {"issue-related-events-section": "project = SUP"},
            "excludeBody": False,
            "secret": "s3cret",
        },
    )
    assert created.status_code == 201
    hook = created.json()
    assert "secret" not in hook
    assert hook["filters"] == {"issue-related-events-section": "project = SUP"}
    listed = jira_client._session.get(url).json()
    assert [h["self"] for h in listed] == [hook["self"]]
    changed = jira_client._session.put(hook["self"], json={"events": ["comment_created"]})
    assert changed.json()["events"] == ["comment_created"]
    assert jira_client._session.delete(hook["self"]).status_code == 204
    assert jira_client._session.get(url).json() == []


def test_webhook_with_bad_jql_filter_is_refused(sandbox: SandboxHandle, jira_client: JIRA) -> None:
    """A webhook whose JQL filter cannot be parsed is refused with 400."""
    with pytest.raises(JIRAError) as err:
        jira_client._session.post(
            f"{sandbox.jira_url}/rest/webhooks/1.0/webhook",
            json={
                "url": "http://x/",
                "events": ["jira:issue_updated"],
                "filters": {"issue-related-events-section": "project = = SUP"},
            },
        )
    assert err.value.status_code == 400
    assert "Invalid JQL" in err.value.text


def test_attachments_through_the_library(sandbox: SandboxHandle, jira_client: JIRA) -> None:
    """add_attachment (multipart, XSRF header) lands in fields.attachment; XSRF is enforced."""
    import io

    added = jira_client.add_attachment("SUP-1", io.BytesIO(b"trace"), filename="crash.log")
    assert (added.filename, added.size) == ("crash.log", 5)
    assert [a.filename for a in jira_client.issue("SUP-1").fields.attachment] == ["crash.log"]
    with pytest.raises(JIRAError) as err:
        jira_client._session.post(
            f"{sandbox.jira_url}/rest/api/2/issue/SUP-1/attachments",
            files={"file": ("x.txt", b"x")},
            headers={"X-Atlassian-Token": "", "Content-Type": None},
        )
    assert err.value.status_code == 403


def test_permissions_of_non_admins() -> None:
    """With strict_permissions a non-admin may not suppress notifications (403) nor manage
    admin webhooks (403)."""
    seed = json.loads(default_seed_text())
    seed["jira"]["strict_permissions"] = True
    # The agent may browse and edit (else the edit is a 404 before any notification rule).
    seed["jira"]["permissions"]["acc-agent"] = {"SUP": ["BROWSE_PROJECTS", "EDIT_ISSUES"]}
    with run_in_thread(seed=seed) as sandbox:
        _non_admin_refused(sandbox)


def _non_admin_refused(sandbox: SandboxHandle) -> None:
    client = JIRA(
        server=sandbox.jira_url,
        basic_auth=("agent@tierdesk.example", "sandbox-token"),
        max_retries=0,
        get_server_info=False,
        options={"check_update": False},
    )
    with pytest.raises(JIRAError) as err:
        client._session.put(
            f"{sandbox.jira_url}/rest/api/2/issue/SUP-1?notifyUsers=false",
            json={"fields": {"summary": "x"}},
        )
    assert err.value.status_code == 403
    assert "admin or project admin" in err.value.text
    with pytest.raises(JIRAError) as err:
        client._session.get(f"{sandbox.jira_url}/rest/webhooks/1.0/webhook")
    assert err.value.status_code == 403


def test_default_bot_lacks_administer_projects(sandbox: SandboxHandle, jira_client: JIRA) -> None:
    """The seeded bot holds exactly Browse, Edit, Add comments, Assign: mypermissions says so
    in Jira's shape, and its notifyUsers=false edit is refused whole with Jira's 403 body."""
    keys = "BROWSE_PROJECTS,EDIT_ISSUES,ADD_COMMENTS,ASSIGN_ISSUES,ADMINISTER_PROJECTS"
    answer = jira_client._session.get(
        f"{sandbox.jira_url}/rest/api/2/mypermissions",
        params={"projectKey": "SUP", "permissions": keys},
    ).json()
    have = {k: v["havePermission"] for k, v in answer["permissions"].items()}
    assert have == {"BROWSE_PROJECTS": True, "EDIT_ISSUES": True, "ADD_COMMENTS": True,
                    "ASSIGN_ISSUES": True, "ADMINISTER_PROJECTS": False}
    assert answer["permissions"]["EDIT_ISSUES"] == {
        "id": "12", "key": "EDIT_ISSUES", "name": "Edit Issues", "type": "PROJECT",
        "description": "Ability to edit issues.", "havePermission": True}
    with pytest.raises(JIRAError) as err:
        jira_client._session.put(
            f"{sandbox.jira_url}/rest/api/2/issue/SUP-1?notifyUsers=false",
            json={"update": {"labels": [{"add": "quiet"}]}},
        )
    assert err.value.status_code == 403
    assert json.loads(err.value.response.text)["errorMessages"] == [
        "To discard the user notification either admin or project admin permissions are"
        " required."]
    assert jira_client.issue("SUP-1").fields.labels == []  # the whole edit was refused
    jira_client._session.put(
        f"{sandbox.jira_url}/rest/api/2/issue/SUP-1", json={"update": {"labels": [{"add": "x"}]}}
    )
    assert jira_client.issue("SUP-1").fields.labels == ["x"]


@pytest.mark.parametrize(
    ("params", "status"),
    [
        ({"projectKey": "SUP"}, 400),  # permissions is required
        ({"projectKey": "SUP", "permissions": "EDIT_ISSUE"}, 400),  # unknown key
        ({"projectKey": "NOPE", "permissions": "EDIT_ISSUES"}, 404),  # unknown project
    ],
)
def test_mypermissions_refusals(
    sandbox: SandboxHandle, jira_client: JIRA, params: dict[str, str], status: int
) -> None:
    """mypermissions refuses what Jira refuses: no keys or unknown keys (400), no project (404)."""
    with pytest.raises(JIRAError) as err:
        jira_client._session.get(f"{sandbox.jira_url}/rest/api/2/mypermissions", params=params)
    assert err.value.status_code == status


def test_project_admin_may_discard_notifications() -> None:
    """A user granted ADMINISTER_PROJECTS in the table may edit with notifyUsers=false;
    has_permission resolves users by accountId or name, and admins hold everything."""
    seed = json.loads(default_seed_text())
    seed["jira"]["permissions"]["agent"] = {
        "SUP": ["ADMINISTER_PROJECTS", "BROWSE_PROJECTS", "EDIT_ISSUES"]
    }
    with run_in_thread(seed=seed) as sandbox:
        sim = sandbox.sandbox.jira
        assert sim.has_permission("acc-agent", "SUP", "ADMINISTER_PROJECTS")
        assert sim.has_permission("agent", "SUP", "EDIT_ISSUES")
        assert not sim.has_permission("agent", "SUP", "ADD_COMMENTS")
        assert not sim.has_permission("tierdesk-bot", "SUP", "ADMINISTER_PROJECTS")
        assert sim.has_permission("acc-admin", "SUP", "ADMINISTER_PROJECTS")
        assert sim.has_permission("acc-globex", "SUP", "ADMINISTER_PROJECTS")  # not in the table
        client = JIRA(server=sandbox.jira_url,
                      basic_auth=("agent@tierdesk.example", "sandbox-token"),
                      max_retries=0, get_server_info=False, options={"check_update": False})
        client._session.put(
            f"{sandbox.jira_url}/rest/api/2/issue/SUP-1?notifyUsers=false",
            json={"update": {"labels": [{"add": "quiet"}]}},
        )
        assert client.issue("SUP-1").fields.labels == ["quiet"]


def test_permission_table_typos_are_seed_errors() -> None:
    """An unknown permission key in the seed's table is an error naming Jira's keys."""
    seed = json.loads(default_seed_text())
    seed["jira"]["permissions"]["acc-bot"]["SUP"].append("EDIT_ISSUE")
    with pytest.raises(ValueError, match=r"unknown permission key.*EDIT_ISSUE"):
        run_in_thread(seed=seed).stop()


@pytest.mark.parametrize(
    ("path", "body", "public"),
    [
        # platform comment API with the JSM property: internal (pycontribs/jira #313)
        ("/rest/api/2/issue/SUP-1/comment",
         {"body": "a", "properties": [{"key": "sd.public.comment",
                                       "value": {"internal": True}}]}, False),
        # platform comment API without it: public
        ("/rest/api/2/issue/SUP-1/comment", {"body": "b"}, True),
        # Service Management API, public false: internal
        ("/rest/servicedeskapi/request/SUP-1/comment", {"body": "c", "public": False}, False),
        # Service Management API, public true: public
        ("/rest/servicedeskapi/request/SUP-1/comment", {"body": "d", "public": True}, True),
    ],
)
def test_jsm_comment_is_public_unless_made_internal_by_a_documented_path(
    path: str, body: dict[str, object], public: bool
) -> None:
    """On a JSM site a comment reaches the portal (jsdPublic) unless it came in through a
    documented internal path."""
    seed = json.loads(default_seed_text())
    seed["jira"]["service_management"] = True
    with run_in_thread(seed=seed) as sandbox:
        client = JIRA(server=sandbox.jira_url, basic_auth=("bot@tierdesk.example", "sandbox-token"),
                      max_retries=0, get_server_info=False, options={"check_update": False})
        client._session.post(f"{sandbox.jira_url}{path}", json=body)
        comments = client.issue("SUP-1", fields="comment").raw["fields"]["comment"]["comments"]
        assert [c["jsdPublic"] for c in comments] == [public]


def test_service_desk_api_absent_without_jsm(sandbox: SandboxHandle, jira_client: JIRA) -> None:
    """A site without Service Management answers the servicedeskapi comment with 404."""
    with pytest.raises(JIRAError) as err:
        jira_client._session.post(f"{sandbox.jira_url}/rest/servicedeskapi/request/SUP-1/comment",
                                  json={"body": "x", "public": False})
    assert err.value.status_code == 404
