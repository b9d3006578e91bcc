"""Benchmark: `tierdesk plan` over the inbox's record of 10,000 tickets (no vendor request).

A fresh SQLite inbox holds 10,000 tickets, half Jira (full issue events) and half Zendesk
(tierdesk trigger bodies), two stored events each (20,000 events), a realistic mix of untriaged
tickets, escalation requests and settled ones. The proposed policy starts unmatched tickets in
L0 and stops the standard plan at L1. Printed: the time to read the newest snapshots, decide
each under both policies, and build and dump the JSON document (the `tierdesk plan --format
json` pipeline without the command line), the peak Python heap of that run (tracemalloc) and
the process's peak RSS. Goal (issue 19): seconds, not minutes. Run: .venv/bin/python
bench/plan.py [--tickets N]
"""

from __future__ import annotations

import argparse
import random
import resource
import tempfile
import time
import tracemalloc
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from connectors.base import VENDORS
from connectors.jira.config import JiraConfig
from connectors.rates import RATES
from connectors.zendesk.config import ZendeskConfig
from connectors.zendesk.trigger_body import template
from tiering import load_policy
from tiering.plan import plan_change
from webhooks.defaults import default_policy_text
from webhooks.inbox.store import Inbox
from webhooks.plan.document import Rate, dumps, plan_document
from webhooks.plan.sources import InboxSource, connector_cost

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
PROPOSED = (
    default_policy_text()
    .replace("default_tier: L1", "default_tier: L0")
    .replace("  standard:\n    max_tier: L2", "  standard:\n    max_tier: L1")
    .replace("        L2: {time_in_tier: 14h, resolution: 35h}\n", "")
)
SUBJECTS = ["Sync stopped", "App crash on save", "How do I export", "Invoice is wrong",
            "Password reset please", "Slow reports"]
EMAILS = ["alice@acme.example", "bob@globex.example", "carol@initech.example",
          "dave@unknown.example"]
LABELS = [[], [], ["tier-l1"], ["tier-l1", "escalate-l2"], ["tier-l2"], ["tier-l3"]]


def jira(key: str, rng: random.Random, ts: int) -> dict[str, Any]:
    docs = rng.random() < 0.5
    return {"webhookEvent": "jira:issue_updated", "timestamp": ts,
            "user": {"accountId": "acc-agent"},
            "issue": {"key": key, "fields": {
                "summary": rng.choice(SUBJECTS), "description": "x " * rng.randint(50, 500),
                "labels": rng.choice(LABELS), "priority": {"name": rng.choice(["High", "Low"])},
                "reporter": {"accountId": "r", "emailAddress": rng.choice(EMAILS)},
                "assignee": None, "components": [], "attachment": [{"id": "1"}] if docs else [],
                "updated": "2026-11-20T10:00:00.000+0000",
                "customfield_10101": "Open a project, edit a cell, press Ctrl+S." if docs else None,
                "customfield_10102": "4.2.1" if docs else None,
                "customfield_10103": {"value": "bugfix"} if docs else None,
                "customfield_10104": None}}}


#: Every ticket field the example policy's trigger body carries (its documentation fields and
#: the SLA due field): a body without one of them is one tierdesk cannot plan from (skipped).
ZENDESK_FIELDS = dict.fromkeys(template(load_policy(default_policy_text()))["fields"], "")


def zendesk(ticket_id: int, rng: random.Random) -> dict[str, Any]:
    docs = rng.random() < 0.5
    return {"tierdesk": 1, "event_type": "trigger", "ticket_id": str(ticket_id),
            "current_user_id": "7", "updated_at": f"2026-11-20T10:{rng.randint(10, 59)}:00Z",
            "group_id": "", "assignee_id": "", "organization_id": "", "organization_plan": "",
            "organization_name": "", "requester_email": rng.choice(EMAILS),
            "attachments": "+" if docs else "", "tags": " ".join(rng.choice(LABELS)),
            "priority": "Normal",
            "fields": {**ZENDESK_FIELDS,
                       "360001111": "Open a project, edit a cell, press Ctrl+S." if docs else "",
                       "360001112": "4.2.1" if docs else "", "360001113": "bugfix" if docs else "",
                       "360001114": ""},
            "subject": rng.choice(SUBJECTS), "description": "x " * rng.randint(50, 500)}


def fill(inbox: Inbox, tickets: int, rng: random.Random) -> None:
    batch: list[Any] = []
    for n in range(tickets):
        for ts in (1_000, 2_000):  # two snapshots; the newest is planned
            payload = jira(f"SUP-{n + 1}", rng, ts) if n % 2 else zendesk(n + 1, rng)
            vendor = "jira" if n % 2 else "zendesk"
            batch.append((VENDORS[vendor].classify(payload, {}), payload, None))
        if len(batch) >= 2000:
            inbox.enqueue_many(batch)
            batch = []
    inbox.enqueue_many(batch)


def run(inbox: Inbox, readers: Any, current: Any, proposed: Any) -> tuple[Any, list[Any], str]:
    """The `tierdesk plan --format json` pipeline: read, decide twice, build, dump."""
    source = InboxSource(inbox, readers, since=0.0)
    plan = plan_change(source, current, proposed, now=NOW,
                       rates={v: r.writes_per_minute for v, r in RATES.items()},
                       cost=connector_cost({v: p for v, (_, p) in readers.items()}))
    rates = {v: Rate(r.writes_per_minute, r.writes_source) for v, r in RATES.items()}
    text = dumps(plan_document(plan, current=current, proposed=proposed, kinds=["inbox"],
                               since="30d", generated_at=NOW, rates=rates,
                               skipped=source.skipped))
    return plan, source.skipped, text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickets", type=int, default=10_000)
    args = parser.parse_args()
    current = load_policy(default_policy_text(), source="current.yaml")
    proposed = load_policy(PROPOSED, source="proposed.yaml")
    configs: dict[str, Any] = {
        "jira": JiraConfig(base_url="http://127.0.0.1:9", email="b@x", api_token="t",
                           comment_visibility=("role", "Administrators")),
        "zendesk": ZendeskConfig(base_url="http://127.0.0.1:9", email="b@x", api_token="t"),
    }
    readers = {v: (VENDORS[v].connector(c, current), VENDORS[v].connector(c, proposed))
               for v, c in configs.items()}
    with tempfile.TemporaryDirectory() as tmp:
        inbox = Inbox.connect(f"sqlite:///{Path(tmp) / 'inbox.db'}")
        fill(inbox, args.tickets, random.Random(19))
        # Timed without tracemalloc (it slows allocation-heavy code a few times), then once
        # more under it for the heap peak.
        started = time.perf_counter()
        plan, skipped, text = run(inbox, readers, current, proposed)
        elapsed = time.perf_counter() - started
        tracemalloc.start()
        run(inbox, readers, current, proposed)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        inbox.close()
    if skipped:
        # The figures would be of fewer tickets than asked for: say so, and why.
        print(f"✘ {len(skipped)} ticket(s) skipped ({skipped[0].vendor} {skipped[0].ticket}:"
              f" {skipped[0].reason}): the bench's bodies lack what the example policy reads")
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"plan over the inbox: {plan.tickets} tickets ({len(skipped)} skipped),"
          f" {plan.changed} changed, document {len(text) / 1e6:.1f} MB")
    print(f"time: {elapsed:.2f} s ({elapsed / max(plan.tickets, 1) * 1e6:.0f} µs a ticket)")
    print(f"memory: peak Python heap {peak / 2**20:.0f} MiB during the plan, peak RSS"
          f" {rss:.0f} MiB (whole process, filling the inbox included)")


if __name__ == "__main__":
    main()
