"""Benchmark: Jira requests per decision by decision and payload kind; time per decision.

The real `jira` library runs against `responses` (no network) with the example policy. For each
kind the script prints the requests made (method and path) from webhook body to applied decision.
Goal: 1 write and 0 reads per changing decision from a full issue payload (a tier change's new
owner included: assignee or unassignment, component added, the previous target's removed), 0
requests for no change and for the bot's own events. On Jira Service Management a decision that
posts a note costs one more write: the internal comment goes through
`POST /rest/servicedeskapi/request/{key}/comment` (the only documented internal path), not inside
the PUT. With TIERDESK_JIRA_QUIET_EDITS on a bot without Administer Projects, the first edit per
project and process costs one refused PUT more. Run: .venv/bin/python bench/jira_requests.py
"""

from __future__ import annotations

import copy
import json
import re
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import responses

from connectors.jira import JiraConfig, JiraConnector
from connectors.jira import webhook as jira_webhook
from tiering import decide, load_policy
from webhooks.defaults import default_policy_text

BASE = "https://acme.atlassian.net"
BOT = "bot-account"
NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
FIXTURES = Path(__file__).resolve().parents[1] / "tests" / "connectors" / "jira" / "fixtures"
POLICY = load_policy(default_policy_text(), source="example policy")
# The example policy maps its documentation fields to customfield_10101..10104.
DOCS = {"customfield_10101": "Open Reports, click Export, the app crashes",
        "customfield_10102": "4.2 on Linux", "customfield_10103": {"value": "bugfix"},
        "customfield_10104": None}
#: JSM Organizations field: Acme Corp is a premium customer of the example policy (up to L4).
ORG_FIELD = "customfield_10002"
ACME = {ORG_FIELD: [{"id": "1", "name": "Acme Corp"}]}


def fixture(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / name).read_text(encoding="utf-8"))
    return data


ISSUE = fixture("jira_issue_created__cloud.json")


def issue_event(**fields: Any) -> dict[str, Any]:
    body = copy.deepcopy(ISSUE)
    body["issue"]["fields"].update({"reporter": {"emailAddress": "jane@globex.example"},
                                    "summary": "Question about exports", "labels": []})
    body["issue"]["fields"].update(fields)
    return body


def own_event() -> dict[str, Any]:
    body = issue_event(labels=["tier-l1"])
    body["user"]["accountId"] = BOT
    return body


KINDS: list[tuple[str, dict[str, Any]]] = [
    ("first triage (issue event)", issue_event()),
    ("escalation granted (issue event)",
     issue_event(labels=["tier-l1", "escalate-l2"], attachment=[{"id": "1"}], **DOCS)),
    ("documentation missing (issue event)", issue_event(labels=["tier-l1", "escalate-l2"])),
    ("entitlement exceeded (issue event)",
     issue_event(labels=["tier-l1", "escalate-l3"], attachment=[{"id": "1"}], **DOCS)),
    ("route (issue event)", issue_event(summary="Refund for invoice 7")),
    ("tier change to a component (issue event)",
     issue_event(labels=["tier-l2", "escalate-l3"], attachment=[{"id": "1"}],
                 assignee={"accountId": "acc-l2"}, components=[],
                 **{**DOCS, "customfield_10104": {"value": "yes"}}, **ACME)),
    ("tier change from a component (issue event)",
     issue_event(labels=["tier-l3", "escalate-l4"], attachment=[{"id": "1"}], assignee=None,
                 components=[{"id": "10001", "name": "Engineering"}],
                 **{**DOCS, "customfield_10104": {"value": "yes"}}, **ACME)),
    ("no change (issue event)",
     issue_event(labels=["tier-l1"], assignee={"accountId": "acc-l1"})),
    ("bot's own event (issue event)", own_event()),
    ("first triage (Cloud comment event)", fixture("comment_created__cloud_mention_user.json")),
    ("first triage (DC comment_created)", fixture("comment_created__server.json")),
]


REFUSED = {"errorMessages": ["To discard the user notification either admin or project admin"
                             " permissions are required."], "errors": {}}


def run(body: dict[str, Any], *, jsm: bool = False, quiet_refused: bool = False
        ) -> tuple[list[str], str]:
    config = JiraConfig(base_url=BASE, email="bot@acme.example", api_token="t",
                        bot_account_id=BOT,
                        comment_visibility=None if jsm else ("role", "Administrators"),
                        service_management=jsm, organization_field=ORG_FIELD,
                        quiet_edits=quiet_refused)
    answer = copy.deepcopy(issue_event()["issue"])
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        rsps.get(re.compile(rf"{BASE}/rest/api/2/issue/.*"), json=answer)
        if quiet_refused:
            rsps.put(re.compile(rf"{BASE}/rest/api/2/issue/.*notifyUsers=false"), status=403,
                     json=REFUSED)
        rsps.put(re.compile(rf"{BASE}/rest/api/2/issue/[^?]*$"), status=204)
        rsps.post(re.compile(rf"{BASE}/rest/servicedeskapi/request/.*/comment"), status=201,
                  json={})
        connector = JiraConnector(config, POLICY)
        envelope = jira_webhook.classify(body, {})
        outcome = "own event"
        if not connector.is_own_event(envelope):
            ticket = connector.current_ticket([body])
            decision = decide(ticket, POLICY, now=NOW)
            labels = [f"+{x}" for x in decision.labels_add] + [
                f"-{x}" for x in decision.labels_remove]
            outcome = " ".join(labels) + (" +note" if decision.comment else "") or "no change"
            applied = connector.apply(ticket, decision, decide=lambda t: decision)
            outcome += _owner(applied.details.get("body") or {})
        calls = [f"{c.request.method} {(c.request.path_url or '').split('?')[0]}"
                 for c in rsps.calls]
    return calls, outcome


def _owner(body: dict[str, Any]) -> str:
    """The ownership part of a PUT body, e.g. ` assignee=null +Engineering -Service Desk`."""
    parts: list[str] = []
    if "assignee" in body.get("fields", {}):
        who = next(iter(body["fields"]["assignee"].values()))
        parts.append(f"assignee={who if who is not None else 'null'}")
    for op in body.get("update", {}).get("components", []):
        verb, component = next(iter(op.items()))
        parts.append(("+" if verb == "add" else "-") + component["name"])
    return "".join(f" {p}" for p in parts)


def main() -> None:
    print(f"{'kind':44} {'reads':>5} {'writes':>6} {'JSM writes':>10}  requests; decision")
    for name, body in KINDS:
        calls, outcome = run(body)
        reads = sum(c.startswith("GET") for c in calls)
        writes = len(calls) - reads
        jsm_calls, _ = run(body, jsm=True)
        jsm_writes = sum(not c.startswith("GET") for c in jsm_calls)
        print(f"{name:44} {reads:>5} {writes:>6} {jsm_writes:>10}  {', '.join(calls) or '-'};"
              f" {outcome}")
    calls, outcome = run(KINDS[0][1], quiet_refused=True)
    print(f"\nquiet edit refused (first edit per project): {len(calls)} writes:"
          f" {', '.join(calls)}; {outcome}")
    rounds = 300
    body = KINDS[0][1]
    start = time.perf_counter()
    for _ in range(rounds):
        run(body)
    per = (time.perf_counter() - start) / rounds * 1000
    print(f"\n{per:.2f} ms per decision (envelope + Ticket + decide + PUT via responses),"
          f" mean of {rounds}")


if __name__ == "__main__":
    main()
