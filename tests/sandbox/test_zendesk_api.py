"""The real zenpy against the sandbox, redirected only by ZENPY_FORCE_*: each endpoint used."""

from __future__ import annotations

import json

import pytest
import requests
from zenpy import Zenpy
from zenpy.lib.api_objects import Comment, Ticket, Trigger, Webhook
from zenpy.lib.exception import APIException

from sandbox.server import SandboxHandle, run_in_thread
from sandbox.state import default_seed_text

BOT = ("bot@tierdesk.example/token", "sandbox-token")


def test_me_user_and_organization(zenpy_client: Zenpy) -> None:
    """users.me, users(id) and organizations(id) answer the seeded records with plan fields."""
    assert zenpy_client.users.me().id == 9001
    assert zenpy_client.users(id=9101).email == "alice@acme.example"
    org = zenpy_client.organizations(id=1001)
    assert org.name == "Acme Corp"
    assert org.organization_fields == {"support_plan": "premium"}


def test_end_user_credentials_are_refused(sandbox: SandboxHandle) -> None:
    """Only agents and admins may use the API: anything else is Zendesk's 401."""
    response = requests.get(
        f"{sandbox.zendesk_url}/api/v2/tickets/1.json",
        auth=("alice@acme.example/token", "t"),
        timeout=5,
    )
    assert response.status_code == 401
    assert response.json() == {"error": "Couldn't authenticate you"}


def test_get_ticket_with_sideloads(sandbox: SandboxHandle) -> None:
    """GET ticket with include=users,organizations adds the requester and the organization."""
    sandbox.agent(
        "zendesk",
        "agent@tierdesk.example",
        "PUT",
        "/api/v2/tickets/1.json",
        {"ticket": {"assignee_id": 9002}},
    )
    data = requests.get(
        f"{sandbox.zendesk_url}/api/v2/tickets/1.json",
        params={"include": "users,organizations"},
        auth=BOT,
        timeout=5,
    ).json()
    assert data["ticket"]["requester_id"] == 9102
    assert {u["id"] for u in data["users"]} == {9102, 9002}
    assert [o["name"] for o in data["organizations"]] == ["Globex"]


def test_one_put_with_tags_group_fields_and_internal_note(
    sandbox: SandboxHandle, zenpy_client: Zenpy
) -> None:
    """tickets.update sends one PUT; tags, group, assignee, custom field and note all land."""
    before = sandbox.sandbox.counts()["zendesk"]["writes"]
    update = Ticket(id=1)
    update.tags = ["tier-l2", "Escalate L2"]
    update.group_id = 200
    update.assignee_id = 9002
    update.custom_fields = [{"id": 360001112, "value": "4.2 on Linux"}]
    update.comment = Comment(body="Checklist\ntierdesk-note:0123456789abcdef", public=False)
    audit = zenpy_client.tickets.update(update)
    assert audit.ticket.tags == ["tier-l2", "escalate", "l2"]
    assert sandbox.sandbox.counts()["zendesk"]["writes"] == before + 1
    ticket = zenpy_client.tickets(id=1)
    assert (ticket.group_id, ticket.assignee_id) == (200, 9002)
    assert {f["id"]: f["value"] for f in ticket.custom_fields}[360001112] == "4.2 on Linux"
    comments = list(zenpy_client.tickets.comments(ticket=1))
    assert comments[-1].public is False
    assert comments[-1].author_id == 9001


def test_safe_update_with_stale_stamp_is_409(sandbox: SandboxHandle, zenpy_client: Zenpy) -> None:
    """safe_update with an outdated updated_stamp answers 409 UpdateConflict; fresh one works."""
    stale = zenpy_client.tickets(id=1).updated_at
    sandbox.agent("zendesk", "9002", "PUT", "/api/v2/tickets/1", {"ticket": {"priority": "high"}})
    with pytest.raises(APIException) as err:
        zenpy_client.tickets.update(Ticket(id=1, tags=["x"], safe_update=True, updated_stamp=stale))
    assert "UpdateConflict" in str(err.value)
    fresh = zenpy_client.tickets(id=1).updated_at
    assert fresh != stale
    zenpy_client.tickets.update(Ticket(id=1, tags=["x"], safe_update=True, updated_stamp=fresh))
    assert zenpy_client.tickets(id=1).tags == ["x"]


@pytest.mark.parametrize(
    ("ticket", "detail"),
    [
        # A group that does not exist.
        ({"group_id": 4242}, "Group: is invalid"),
        # An end user cannot be the assignee.
        ({"assignee_id": 9101}, "Assignee: is invalid"),
        # An agent id that does not exist.
        ({"assignee_id": 123456}, "Assignee: is invalid"),
        # An agent outside the group (9003 is a member of group 400 only).
        ({"group_id": 100, "assignee_id": 9003}, "Assignee: is not a member of the group"),
        # Status outside Zendesk's list.
        ({"status": "waiting"}, "Status: must be one of"),
    ],
)
def test_invalid_updates_are_422(
    sandbox: SandboxHandle, ticket: dict[str, object], detail: str
) -> None:
    """Invalid values answer 422 RecordInvalid with details and change nothing."""
    before = sandbox.state()["zendesk"]["tickets"]["1"]
    response = requests.put(
        f"{sandbox.zendesk_url}/api/v2/tickets/1.json", json={"ticket": ticket}, auth=BOT, timeout=5
    )
    assert response.status_code == 422
    assert detail in response.text
    assert sandbox.state()["zendesk"]["tickets"]["1"] == before


def test_create_ticket(zenpy_client: Zenpy) -> None:
    """tickets.create answers 201 with the ticket; the first comment is the description."""
    audit = zenpy_client.tickets.create(
        Ticket(
            subject="Crash on save",
            comment=Comment(body="It crashes"),
            requester_id=9101,
            priority="high",
        )
    )
    assert audit.ticket.id == 2
    assert audit.ticket.organization_id == 1001
    assert audit.ticket.description == "It crashes"


def test_search_pages_through_results(sandbox: SandboxHandle, zenpy_client: Zenpy) -> None:
    """search(type=ticket, tags=...) follows next_page across pages; other terms filter."""
    for n in range(5):
        sandbox.agent(
            "zendesk",
            "9002",
            "POST",
            "/api/v2/tickets.json",
            {
                "ticket": {
                    "subject": f"t{n}",
                    "comment": {"body": "b"},
                    "requester_id": 9102,
                    "tags": ["batch"],
                }
            },
        )
    found = zenpy_client.search(type="ticket", tags="batch")
    assert sorted(t.id for t in found) == [2, 3, 4, 5, 6]
    page = requests.get(
        f"{sandbox.zendesk_url}/api/v2/search.json",
        params={"query": "type:ticket tags:batch", "per_page": 2},
        auth=BOT,
        timeout=5,
    ).json()
    assert page["count"] == 5
    assert page["next_page"].startswith(sandbox.zendesk_url)
    none = requests.get(
        f"{sandbox.zendesk_url}/api/v2/search.json",
        params={"query": "type:ticket tags:batch -tags:batch"},
        auth=BOT,
        timeout=5,
    ).json()
    assert none["count"] == 0


def test_search_export_cursor_and_count(sandbox: SandboxHandle) -> None:
    """search/export pages by cursor without a cap; search/count counts."""
    for n in range(3):
        sandbox.agent(
            "zendesk",
            "9002",
            "POST",
            "/api/v2/tickets",
            {"ticket": {"subject": f"t{n}", "comment": {"body": "b"}, "requester_id": 9102}},
        )
    url = f"{sandbox.zendesk_url}/api/v2/search/export"
    params = {"query": "status<solved", "filter[type]": "ticket", "page[size]": "3"}
    first = requests.get(url, params=params, auth=BOT, timeout=5).json()
    assert [t["id"] for t in first["results"]] == [1, 2, 3]
    assert first["meta"]["has_more"] is True
    params["page[after]"] = first["meta"]["after_cursor"]
    second = requests.get(url, params=params, auth=BOT, timeout=5).json()
    assert [t["id"] for t in second["results"]] == [4]
    assert second["meta"]["has_more"] is False
    count = requests.get(
        f"{sandbox.zendesk_url}/api/v2/search/count",
        params={"query": "type:ticket"},
        auth=BOT,
        timeout=5,
    ).json()
    assert count == {"count": 4}


def test_webhooks_and_signing_secret(zenpy_client: Zenpy, sandbox: SandboxHandle) -> None:
    """webhooks create/list/patch and the signing secret endpoint work through zenpy."""
    hook = zenpy_client.webhooks.create(
        Webhook(
            name="tierdesk",
            endpoint="http://127.0.0.1:9/hook",
            http_method="POST",
            request_format="json",
            status="active",
            subscriptions=["conditional_ticket_events"],
        )
    )
    assert hook.id.startswith("01")
    assert [w.id for w in zenpy_client.webhooks.list()] == [hook.id]
    secret = zenpy_client.webhooks.show_secret(hook)
    assert secret.algorithm == "SHA256"
    assert len(secret.secret) > 20
    patched = requests.patch(
        f"{sandbox.zendesk_url}/api/v2/webhooks/{hook.id}",
        json={"webhook": {"status": "inactive"}},
        auth=BOT,
        timeout=5,
    )
    assert patched.status_code == 204
    named = requests.get(
        f"{sandbox.zendesk_url}/api/v2/webhooks",
        params={"filter[name_contains]": "tier"},
        auth=BOT,
        timeout=5,
    ).json()
    assert [w["status"] for w in named["webhooks"]] == ["inactive"]


def test_triggers_create_list_update_search(zenpy_client: Zenpy, sandbox: SandboxHandle) -> None:
    """triggers create/list/update/search work; unknown condition fields are refused (422)."""
    hook = zenpy_client.webhooks.create(
        Webhook(
            name="t",
            endpoint="http://127.0.0.1:9/",
            http_method="POST",
            request_format="json",
            status="active",
            subscriptions=["conditional_ticket_events"],
        )
    )
    trigger = zenpy_client.triggers.create(
        Trigger(
            title="tierdesk: notify",
            conditions={"all": [{"field": "update_type", "operator": "is", "value": "Change"}]},
            actions=[
                {"field": "notification_webhook", "value": [hook.id, '{"id": "{{ticket.id}}"}']}
            ],
        )
    )
    assert [t.title for t in zenpy_client.triggers()] == ["tierdesk: notify"]
    trigger.title = "tierdesk: notify v2"
    zenpy_client.triggers.update(trigger)
    found = requests.get(
        f"{sandbox.zendesk_url}/api/v2/triggers/search", params={"query": "v2"}, auth=BOT, timeout=5
    ).json()
    assert [t["id"] for t in found["triggers"]] == [trigger.id]
    bad = requests.post(
        f"{sandbox.zendesk_url}/api/v2/triggers.json",
        auth=BOT,
        timeout=5,
        json={
            "trigger": {
                "title": "x",
                "conditions": {"all": [{"field": "moon_phase", "operator": "is", "value": "full"}]},
                "actions": [{"field": "notification_webhook", "value": [hook.id, "{}"]}],
            }
        },
    )
    assert bad.status_code == 422
    assert "moon_phase" in bad.text


def test_strict_permissions_keep_agents_from_webhooks_and_triggers() -> None:
    """With strict_permissions, webhooks and triggers need an admin: 403 for agents."""
    seed = json.loads(default_seed_text())
    seed["zendesk"]["strict_permissions"] = True
    with run_in_thread(seed=seed) as sandbox:
        agent = ("agent@tierdesk.example/token", "sandbox-token")
        url = f"{sandbox.zendesk_url}/api/v2/triggers.json"
        assert requests.get(url, auth=agent, timeout=5).status_code == 403
        assert requests.get(url, auth=BOT, timeout=5).status_code == 200


def test_closed_tickets_refuse_updates(sandbox: SandboxHandle) -> None:
    """A closed ticket refuses updates with 422, as Zendesk does."""
    sandbox.agent("zendesk", "9002", "PUT", "/api/v2/tickets/1", {"ticket": {"status": "closed"}})
    response = requests.put(
        f"{sandbox.zendesk_url}/api/v2/tickets/1.json",
        auth=BOT,
        timeout=5,
        json={"ticket": {"tags": ["x"]}},
    )
    assert response.status_code == 422
    assert "closed prevents ticket update" in response.text
