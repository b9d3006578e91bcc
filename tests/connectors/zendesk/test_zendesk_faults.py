"""Zendesk failures: 429/503 Retry-After, 5xx, timeouts, 409 collisions, 4xx text; no lost tag,
no duplicated note, zenpy never sleeps or resends."""

from __future__ import annotations

from typing import Any

import pytest
import requests
import responses

from connectors.base import RateLimited, VendorRejected, VendorUnavailable
from connectors.zendesk import ZendeskConnector
from tiering import Policy, decide

from .conftest import BASE, BOT, NOW, decider, sent, trigger_body

PUT_42 = f"{BASE}/api/v2/tickets/42.json"
GET_42 = f"{BASE}/api/v2/tickets/42.json"
COMMENTS_42 = f"{BASE}/api/v2/tickets/42/comments.json"
STAMP = "2026-11-21T11:59:58Z"


def api_ticket(tags: list[str], updated_at: str = "2026-11-21T12:00:05Z") -> dict[str, Any]:
    """`GET /api/v2/tickets/42.json?include=users,organizations` as Zendesk answers it."""
    return {
        "ticket": {
            "id": 42, "subject": "Question about exports",
            "description": "How are exports scheduled?", "tags": tags, "priority": "normal",
            "requester_id": 11, "organization_id": 9001, "group_id": 100, "assignee_id": None,
            "updated_at": updated_at,
            "custom_fields": [{"id": 360001111, "value": None}, {"id": 360001114, "value": None}],
        },
        "users": [{"id": 11, "email": "jane@acme.example"}],
        "organizations": [
            {"id": 9001, "name": "Acme Corp", "organization_fields": {"support_plan": "premium"}}
        ],
    }


def _docs_missing(connector: ZendeskConnector, policy: Policy) -> tuple[Any, Any]:
    ticket = connector.current_ticket([trigger_body(tags="tier-l1 escalate-l2")])
    return ticket, decide(ticket, policy, now=NOW)


def test_429_raises_rate_limited_without_sleeping(
    connector: ZendeskConnector, policy: Policy, rsps: responses.RequestsMock
) -> None:
    """429 becomes RateLimited(Retry-After) after exactly one request; zenpy never waits."""
    rsps.put(PUT_42, status=429, headers={"Retry-After": "7"}, json={"error": "TooManyRequests"})
    ticket, decision = _docs_missing(connector, policy)
    with pytest.raises(RateLimited) as err:
        connector.apply(ticket, decision, decide=decider(policy))
    assert err.value.retry_after == 7.0 and err.value.status == 429
    assert len(rsps.calls) == 1


def test_429_on_read_is_rate_limited(
    connector: ZendeskConnector, rsps: responses.RequestsMock
) -> None:
    """A rate-limited read raises RateLimited too, with the header's delay."""
    rsps.get(GET_42, status=429, headers={"Retry-After": "30"})
    with pytest.raises(RateLimited) as err:
        connector.current_ticket([{"tierdesk": 1, "event_type": "tierdesk:backfill",
                                   "ticket_id": "42"}])
    assert err.value.retry_after == 30.0
    assert len(rsps.calls) == 1


def test_503_is_unavailable_and_sent_once(
    connector: ZendeskConnector, policy: Policy, rsps: responses.RequestsMock
) -> None:
    """503 is retryable, not ambiguous, and the PUT is not resent by any adapter."""
    rsps.put(PUT_42, status=503, body="Service Unavailable")
    ticket, decision = _docs_missing(connector, policy)
    with pytest.raises(VendorUnavailable) as err:
        connector.apply(ticket, decision, decide=decider(policy))
    assert not isinstance(err.value, RateLimited)
    assert (err.value.status, err.value.ambiguous) == (503, False)
    assert len(rsps.calls) == 1


def test_503_with_retry_after_is_rate_limited(
    connector: ZendeskConnector, policy: Policy, rsps: responses.RequestsMock
) -> None:
    """503 carrying Retry-After waits that long (RateLimited with status 503)."""
    rsps.put(PUT_42, status=503, headers={"Retry-After": "12"})
    ticket, decision = _docs_missing(connector, policy)
    with pytest.raises(RateLimited) as err:
        connector.apply(ticket, decision, decide=decider(policy))
    assert (err.value.status, err.value.retry_after) == (503, 12.0)


def test_500_on_put_is_ambiguous(
    connector: ZendeskConnector, policy: Policy, rsps: responses.RequestsMock
) -> None:
    """A 500 answer to the PUT may follow an applied write: ambiguous, so the retry reads first."""
    rsps.put(PUT_42, status=500, json={"error": "InternalError"})
    ticket, decision = _docs_missing(connector, policy)
    with pytest.raises(VendorUnavailable) as err:
        connector.apply(ticket, decision, decide=decider(policy))
    assert (err.value.status, err.value.ambiguous) == (500, True)


def test_connect_timeout_is_not_ambiguous(
    connector: ZendeskConnector, policy: Policy, rsps: responses.RequestsMock
) -> None:
    """A connect timeout sent nothing: retryable and not ambiguous."""
    rsps.put(PUT_42, body=requests.ConnectTimeout("connect timed out"))
    ticket, decision = _docs_missing(connector, policy)
    with pytest.raises(VendorUnavailable) as err:
        connector.apply(ticket, decision, decide=decider(policy))
    assert err.value.ambiguous is False
    assert len(rsps.calls) == 1


def test_read_timeout_then_fresh_retry_posts_note_once(
    connector: ZendeskConnector, policy: Policy, rsps: responses.RequestsMock
) -> None:
    """A read timeout on the PUT is ambiguous; the fresh retry finds the landed note and tags
    and writes nothing more: the note exists once."""
    rsps.put(PUT_42, body=requests.ReadTimeout("read timed out"))
    ticket, decision = _docs_missing(connector, policy)
    with pytest.raises(VendorUnavailable) as err:
        connector.apply(ticket, decision, decide=decider(policy))
    assert err.value.ambiguous is True
    # The PUT did land: Zendesk now has the tags and the note (by the bot).
    rsps.get(GET_42, json=api_ticket(["escalate-l2", "tier-docs-missing", "tier-l1"]))
    rsps.get(COMMENTS_42, json={"comments": [
        {"id": 2, "author_id": BOT, "public": False, "body": decision.comment, "attachments": []},
        {"id": 1, "author_id": 11, "public": True, "body": "help", "attachments": []},
    ]})
    fresh = connector.current_ticket([trigger_body(tags="tier-l1 escalate-l2")], fresh=True)
    assert fresh.last_note_key == decision.note_key
    applied = connector.apply(fresh, decide(fresh, policy, now=NOW), decide=decider(policy))
    assert not applied.wrote
    methods = [m for m, _, _ in sent(rsps)]
    assert methods == ["PUT", "GET", "GET"]
    assert [c.method for c in applied.calls] == ["GET", "GET"]


def test_409_collision_keeps_agent_tag_and_posts_note_once(
    connector: ZendeskConnector, policy: Policy, rsps: responses.RequestsMock
) -> None:
    """On 409 the ticket is read once, re-decided and written with the agent's new tag kept."""
    rsps.put(PUT_42, status=409, json={
        "error": "UpdateConflict",
        "description": "Ticket has been updated since you last viewed it",
    })
    rsps.put(PUT_42, json={"ticket": {"id": 42}, "audit": {"id": 2, "events": []}})
    rsps.get(GET_42, json=api_ticket(["tier-l1", "escalate-l2", "vip"], "2026-11-21T12:00:09Z"))
    rsps.get(COMMENTS_42, json={"comments": []})
    ticket, decision = _docs_missing(connector, policy)
    applied = connector.apply(ticket, decision, decide=decider(policy))
    calls = sent(rsps)
    assert [(m, p.split("?")[0]) for m, p, _ in calls] == [
        ("PUT", "/api/v2/tickets/42.json"),
        ("GET", "/api/v2/tickets/42.json"),
        ("GET", "/api/v2/tickets/42/comments.json"),
        ("PUT", "/api/v2/tickets/42.json"),
    ]
    assert calls[1][1] == "/api/v2/tickets/42.json?include=users,organizations"
    final = calls[3][2]["ticket"]
    assert final["tags"] == ["escalate-l2", "tier-docs-missing", "tier-l1", "vip"]
    assert final["updated_stamp"] == "2026-11-21T12:00:09Z" and final["safe_update"] is True
    assert final["comment"] == {"body": decision.comment, "public": False}
    assert applied.wrote and applied.details["collision"] is True
    assert applied.note_key == decision.note_key
    assert [c.status for c in applied.calls] == [409, 200, 200, 200]


def test_409_twice_is_retryable(
    connector: ZendeskConnector, policy: Policy, rsps: responses.RequestsMock
) -> None:
    """A second 409 in a row is left to the worker's retry (no loop of reads)."""
    rsps.put(PUT_42, status=409, json={"error": "UpdateConflict"})
    rsps.get(GET_42, json=api_ticket(["tier-l1", "escalate-l2", "vip"]))
    rsps.get(COMMENTS_42, json={"comments": []})
    ticket, decision = _docs_missing(connector, policy)
    with pytest.raises(VendorUnavailable, match="409 twice") as err:
        connector.apply(ticket, decision, decide=decider(policy))
    assert err.value.status == 409
    assert len(rsps.calls) == 4


def test_422_is_rejected_with_zendesk_text(
    connector: ZendeskConnector, policy: Policy, rsps: responses.RequestsMock
) -> None:
    """Other 4xx become VendorRejected carrying Zendesk's own error words."""
    rsps.put(PUT_42, status=422, json={
        "error": "RecordInvalid", "description": "Record validation errors",
        "details": {"group": [{"description": "Group: is invalid"}]},
    })
    ticket, decision = _docs_missing(connector, policy)
    with pytest.raises(VendorRejected) as err:
        connector.apply(ticket, decision, decide=decider(policy))
    assert str(err.value) == (
        "Zendesk answered 422 to update ticket 42: RecordInvalid: Record validation errors:"
        " group: Group: is invalid"
    )
    assert err.value.status == 422


def test_organization_plan_read_once_per_ttl(
    connector: ZendeskConnector, rsps: responses.RequestsMock, clock: Any
) -> None:
    """An empty plan placeholder reads the organization once per cache interval, not per event."""
    rsps.get(f"{BASE}/api/v2/organizations/9001.json", json={"organization": {
        "id": 9001, "name": "Acme Corp", "organization_fields": {"support_plan": "standard"}}})
    body = trigger_body(organization_plan="")
    first = connector.current_ticket([body])
    clock.now += 899
    second = connector.current_ticket([body])
    assert first.customer.plan == second.customer.plan == "standard"
    assert len(rsps.calls) == 1
    clock.now += 2
    connector.current_ticket([body])
    assert [p for _, p, _ in sent(rsps)] == ["/api/v2/organizations/9001.json"] * 2


def test_unrendered_plan_placeholder_uses_organization(
    connector: ZendeskConnector, rsps: responses.RequestsMock
) -> None:
    """A plan placeholder Zendesk left as is counts as unknown: the organization record decides."""
    rsps.get(f"{BASE}/api/v2/organizations/9001.json", json={"organization": {
        "id": 9001, "name": "Acme Corp", "organization_fields": {"support_plan": None}}})
    body = trigger_body(organization_plan="{{ticket.organization.custom_fields.support_plan}}")
    assert connector.current_ticket([body]).customer.plan is None
    assert len(rsps.calls) == 1


def test_read_timeout_on_read_is_not_ambiguous(
    connector: ZendeskConnector, rsps: responses.RequestsMock
) -> None:
    """A timed-out read is retryable and never ambiguous (nothing was written); it is recorded."""
    rsps.get(GET_42, body=requests.ReadTimeout("read timed out"))
    with pytest.raises(VendorUnavailable) as err:
        connector.current_ticket([{"tierdesk": 1, "event_type": "tierdesk:backfill",
                                   "ticket_id": "42"}])
    assert err.value.ambiguous is False
    assert [(c.method, c.path, c.status) for c in connector.take_calls()] == [
        ("GET", "/api/v2/tickets/42.json", None),
    ]


def test_own_session_is_used_without_retrying_adapter(policy: Policy) -> None:
    """The connector sends through the session it is given; by default one whose adapter never
    retries (zenpy's own adapter would resend a PUT on 503 or a read timeout)."""
    from connectors.zendesk.config import ZendeskConfig

    config = ZendeskConfig(base_url=BASE, email="b@x.example", api_token="t", bot_user_id=BOT)
    given = requests.Session()
    assert ZendeskConnector(config, policy, session=given).zenpy.tickets.session is given
    own = ZendeskConnector(config, policy).zenpy.tickets.session
    adapter = own.get_adapter(BASE)
    assert adapter.max_retries.total == 0


@pytest.mark.parametrize(
    ("base_url", "expected"),
    [
        # A Zendesk account: zenpy's own subdomain.domain form.
        ("https://acme.zendesk.com", "https://acme.zendesk.com/api/v2/tickets/42.json"),
        # A sandbox on a port over plain HTTP.
        ("http://127.0.0.1:8123", "http://127.0.0.1:8123/api/v2/tickets/42.json"),
        # A proxy that serves Zendesk under a path.
        ("https://gw.example.com/zendesk/", "https://gw.example.com/zendesk/api/v2/tickets/42.json"),
    ],
)
def test_base_url_redirects_zenpy(base_url: str, expected: str, policy: Policy) -> None:
    """TIERDESK_ZENDESK_URL points zenpy anywhere (scheme, host, port, path) without env vars."""
    from connectors.zendesk.config import ZendeskConfig

    config = ZendeskConfig(base_url=base_url, email="b@x.example", api_token="t")
    connector = ZendeskConnector(config, policy)
    with responses.RequestsMock() as mock:
        mock.get(expected, json=api_ticket(["tier-l1"]))
        connector.read_ticket("42")
        assert str(mock.calls[0].request.url).split("?")[0] == expected


def test_dotless_host_is_refused_with_advice(policy: Policy) -> None:
    """A host zenpy cannot address (no dot) is refused, naming the variable and the fix."""
    from connectors.zendesk.config import ZendeskConfig

    config = ZendeskConfig(base_url="http://localhost:8080", email="b@x.example", api_token="t")
    with pytest.raises(ValueError, match=r"TIERDESK_ZENDESK_URL: .* use an IP address"):
        ZendeskConnector(config, policy)


def test_deleted_organization_means_no_plan(
    connector: ZendeskConnector, rsps: responses.RequestsMock
) -> None:
    """An organization gone since the trigger fired (404) leaves the plan unknown, not a dead
    letter; the answer is cached like any other."""
    rsps.get(f"{BASE}/api/v2/organizations/9001.json", status=404,
             json={"error": "RecordNotFound", "description": "Not found"})
    body = trigger_body(organization_plan="")
    assert connector.current_ticket([body]).customer.plan is None
    assert connector.current_ticket([body]).customer.plan is None
    assert len(rsps.calls) == 1


def test_plan_cache_is_bounded(
    connector: ZendeskConnector, rsps: responses.RequestsMock, clock: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Past its size bound the plan cache forgets expired entries first, then the oldest half."""
    from connectors.zendesk import connector as module

    monkeypatch.setattr(module, "PLAN_CACHE_MAX", 4)
    for org in range(1, 9):
        rsps.get(f"{BASE}/api/v2/organizations/{org}.json", json={"organization": {
            "id": org, "organization_fields": {"support_plan": "basic"}}})
    for org in range(1, 9):
        clock.now += 1
        connector.current_ticket([trigger_body(organization_id=str(org), organization_plan="")])
    assert len(connector._plans) <= 4
    assert "8" in connector._plans
