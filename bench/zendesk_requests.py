"""Benchmark: Zendesk requests per decision by decision and payload kind; time per decision.

The real zenpy runs against `responses` (no network); the example policy is used. For each kind
the script prints the requests made (method and path) from payload to applied decision. Trigger
rows use a stamp to the second unless marked "minute" (Zendesk's documented placeholder format,
which costs one read before a tags write).
Goal: 1 write and 0 reads per changing decision from a trigger body, 0 requests for no change and
for the bot's own events. Run: .venv/bin/python bench/zendesk_requests.py
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import responses

from connectors.zendesk import ZendeskConnector
from connectors.zendesk import webhook as zendesk_webhook
from connectors.zendesk.config import ZendeskConfig
from tiering import Decision, Ticket, decide, load_policy
from webhooks.defaults import default_policy_text

BASE = "https://acme.zendesk.com"
BOT = 777
NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
STEPS = "Open Reports, click Export, the app crashes"


def trigger(**over: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "tierdesk": 1, "event_type": "trigger", "ticket_id": "42", "current_user_id": "501",
        "updated_at": "2026-11-21T11:59:58Z", "group_id": "", "assignee_id": "",
        "organization_id": "9001", "tags": "", "priority": "Normal", "attachments": "",
        "organization_plan": "premium",
        "fields": {"360001111": "", "360001112": "", "360001113": "", "360001114": ""},
        "requester_email": "jane@acme.example", "organization_name": "Acme Corp",
        "subject": "Question about exports", "description": "Exports are scheduled how?",
    }
    body.update(over)
    return body


DOCS = {"360001111": STEPS, "360001112": "4.2 on Linux", "360001113": "bugfix",
        "360001114": ""}

KINDS: list[tuple[str, dict[str, Any]]] = [
    ("first triage (trigger)", trigger()),
    ("escalation granted (trigger)", trigger(tags="tier-l1 escalate-l2", attachments="+",
                                             fields=DOCS, group_id="100")),
    ("documentation missing (trigger)", trigger(tags="tier-l1 escalate-l2", group_id="100")),
    ("entitlement exceeded (trigger)", trigger(tags="tier-l1 escalate-l2",
                                               organization_plan="basic", group_id="100")),
    ("route (trigger)", trigger(subject="Refund for invoice 7")),
    ("no change (trigger)", trigger(tags="tier-l1", group_id="100")),
    ("bot's own event (trigger)", trigger(tags="tier-l1", current_user_id=str(BOT))),
    # As Zendesk documents `{{ticket.updated_at_with_timestamp}}`: to the minute only.
    ("first triage (trigger, minute stamp)", trigger(updated_at="2026-11-21T11:59Z")),
    ("documentation missing (trigger, minute)", trigger(tags="tier-l1 escalate-l2",
                                                        group_id="100",
                                                        updated_at="2026-11-21T11:59Z")),
    ("no change (trigger, minute stamp)", trigger(tags="tier-l1", group_id="100",
                                                  updated_at="2026-11-21T11:59Z")),
    ("ticket event, first triage (event)", {
        "type": "zen:event-type:ticket.created", "id": "e-1", "time": "2026-11-21T12:00:00Z",
        "subject": "zen:ticket:42", "detail": {"id": "42", "actor_id": "501"}, "event": {}}),
    ("ticket event, settled ticket (event)", {
        "type": "zen:event-type:ticket.comment_added", "id": "e-2",
        "time": "2026-11-21T12:00:00Z", "subject": "zen:ticket:42",
        "detail": {"id": "42", "actor_id": "501", "tags": ["tier-l1"], "group_id": "100"},
        "event": {}}),
]


def api_ticket(body: dict[str, Any]) -> dict[str, Any]:
    """The ticket as the API would show it in the state the trigger body describes."""
    return {
        "ticket": {"id": 42, "subject": body.get("subject", ""),
                   "description": body.get("description", ""),
                   "tags": tags if isinstance(tags := body.get("tags", ""), list)
                   else str(tags).split(), "priority": "normal",
                   "requester_id": 11, "organization_id": 9001,
                   "group_id": int(body["group_id"]) if body.get("group_id") else None,
                   "assignee_id": None, "updated_at": "2026-11-21T11:59:41Z",
                   "custom_fields": [{"id": int(k), "value": v or None}
                                     for k, v in body.get("fields", {}).items()]},
        "users": [{"id": 11, "email": "jane@acme.example"}],
        "organizations": [{"id": 9001, "name": "Acme Corp",
                           "organization_fields": {"support_plan": "premium"}}],
    }


def main() -> None:
    policy = load_policy(default_policy_text(), source="example policy")
    config = ZendeskConfig(base_url=BASE, email="bot@acme.example", api_token="t",
                           bot_user_id=BOT)

    def run(ticket: Ticket) -> Decision:
        return decide(ticket, policy, now=NOW)

    print(f"{'kind':40} {'reads':>5} {'writes':>6}  requests")
    for name, body in KINDS:
        connector = ZendeskConnector(config, policy)
        with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
            mock.put(f"{BASE}/api/v2/tickets/42.json", json={"ticket": {"id": 42}})
            mock.get(f"{BASE}/api/v2/tickets/42.json", json=api_ticket(body.get("detail", body)))
            mock.get(f"{BASE}/api/v2/tickets/42/comments.json", json={"comments": []})
            env = zendesk_webhook.classify(body, {})
            what = "dropped (own event)"
            if not connector.is_own_event(env):
                ticket = connector.current_ticket([body])
                decision = run(ticket)
                connector.apply(ticket, decision, decide=run)
                what = " ".join(
                    [f"{decision.previous_tier}->{decision.tier or decision.route}"]
                    + [f"+{x}" for x in decision.labels_add]
                    + [f"-{x}" for x in decision.labels_remove]
                    + (["note"] if decision.comment else [])
                )
            calls = [(c.request.method, str(c.request.url)[len(BASE):].split("?")[0])
                     for c in mock.calls]
        reads = sum(1 for m, _ in calls if m == "GET")
        shown = ", ".join(f"{m} {p}" for m, p in calls) or "-"
        print(f"{name:40} {reads:>5} {len(calls) - reads:>6}  {shown}\n{'':40} decision: {what}")

    # Time per decision on the trigger path (parse + decide + build and send one PUT).
    connector = ZendeskConnector(config, policy)
    body = trigger(tags="tier-l1 escalate-l2", group_id="100")
    rounds = 300
    with responses.RequestsMock() as mock:
        mock.put(f"{BASE}/api/v2/tickets/42.json", json={"ticket": {"id": 42}})
        start = time.perf_counter()
        for _ in range(rounds):
            ticket = connector.current_ticket([body])
            connector.apply(ticket, run(ticket), decide=run)
        elapsed = time.perf_counter() - start
    print(f"\ntrigger path, changing decision incl. mocked PUT: {elapsed / rounds * 1000:.2f} ms"
          f" per decision ({rounds} rounds, zenpy + responses overhead included)")


if __name__ == "__main__":
    main()
