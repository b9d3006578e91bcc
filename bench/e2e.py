"""Benchmark: the whole chain over real HTTP with a realistic mix of events, per vendor.

The sandbox (`tierdesk sandbox`) and `tierdesk serve` (SQLite inbox, deploy/policy.example.yaml)
run as separate processes; webhooks are installed with `tierdesk install`. Scripted agents then
create tickets and edit them: public comments, escalation requests (escalate-l2..l4),
documentation filled in, priority changes, and bursts of several edits on one ticket. Jira also
sends tierdesk's own writes back (echoes); Zendesk's trigger holds them back (loop guard).

Printed per vendor: events/s processed end to end (first agent action to everything settled),
tierdesk's vendor requests per stored event (reads and writes apart), writes per changing
decision, writes made for no-change decisions and echoes, and how far bursts on one ticket were
coalesced (events per evaluation).

Goals: under 1.0 vendor request per event overall, exactly 1 write per changing decision, 0 for
no change and echoes.

Run:  .venv/bin/python bench/e2e.py                      (10,000 events over 1,000 tickets each)
      .venv/bin/python bench/e2e.py --tickets 100 --events 1000     (scaled down)
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.e2e.harness import (
    JIRA_AGENT,
    REPO,
    VENDORS,
    ZENDESK_AGENT,
    InboxView,
    SandboxClient,
    SandboxProcess,
    Service,
    Traffic,
    free_port,
    install,
    settle,
    vendor_env,
)
from tests.e2e.story import (
    Case,
    ask_escalation,
    comment,
    create,
    document,
)

#: Share of each kind among new tickets (tests/e2e/story.py kinds).
KIND_MIX = {"triage": 30, "suggest": 20, "docs": 15, "entitlement": 10, "route": 10,
            "unverified": 10, "quiet": 5}
#: Share of each agent action among edits; "burst" is 3-5 quick edits on one ticket.
EDIT_MIX = {"comment": 40, "escalate": 12, "document": 13, "priority": 15, "burst": 20}
WRITE_METHODS = ("PUT", "POST", "DELETE", "PATCH")


def _pick(rng: random.Random, mix: dict[str, int]) -> str:
    return rng.choices(list(mix), weights=list(mix.values()))[0]


def _priority(client: SandboxClient, case: Case, rng: random.Random) -> None:
    if case.vendor == "jira":
        name = rng.choice(["Low", "Medium", "High"])
        client.agent("jira", JIRA_AGENT, "PUT", f"/rest/api/2/issue/{case.ref}",
                     {"fields": {"priority": {"name": name}}})
    else:
        client.agent("zendesk", ZENDESK_AGENT, "PUT", f"/api/v2/tickets/{case.ref}.json",
                     {"ticket": {"priority": rng.choice(["low", "normal", "high"])}})


def _edit(client: SandboxClient, case: Case, kind: str, rng: random.Random) -> int:
    """One agent action of `kind` on `case`; returns the number of actions made."""
    if kind == "comment":
        comment(client, case, f"Customer follow-up {rng.randrange(10**6)}.")
    elif kind == "escalate":
        ask_escalation(client, case, rng.choice(["escalate-l2", "escalate-l3", "escalate-l4"]))
    elif kind == "document":
        step = rng.choice(["fields", "attachment"]) if case.vendor == "jira" else "all"
        document(client, case, step=step)
    elif kind == "priority":
        _priority(client, case, rng)
    else:
        n = rng.randint(3, 5)
        for _ in range(n):
            _edit(client, case, rng.choice(["comment", "priority", "comment"]), rng)
        return n
    return 1


def play(client: SandboxClient, vendor: str, tickets: int, events: int, seed: int,
         progress: Callable[[str, int], None]) -> list[Case]:
    """Create `tickets` tickets, then edit them until `events` agent actions were made."""
    rng = random.Random(seed)
    cases: list[Case] = []
    for i in range(tickets):
        cases.append(create(client, vendor, _pick(rng, KIND_MIX), tag=f"b{i}"))
        progress(vendor, 1)
    made = tickets
    while made < events:
        case = rng.choice(cases)
        kind = _pick(rng, EDIT_MIX)
        if kind == "burst" and events - made < 5:
            kind = "comment"
        n = _edit(client, case, kind, rng)
        made += n
        progress(vendor, n)
    return cases


def _ratio(a: float, b: float) -> str:
    return f"{a / b:.3f}" if b else "n/a"


def report(vendor: str, actions: int, seconds: float, inbox: InboxView, traffic: Traffic) -> dict[
        str, Any]:
    """Figures for one vendor from the inbox and the sandbox's request log."""
    events = [e for e in inbox.events() if e["vendor"] == vendor]
    stored = len(events)
    statuses = Counter(e["status"] for e in events)
    records = [d for d in inbox.decisions() if d["vendor"] == vendor]
    outcomes = Counter(d["outcome"] for d in records)

    def writes_of(rows: list[dict[str, Any]], *, ok: bool = True) -> int:
        """Write calls the decisions made: applied ones (status < 400) or refused ones."""
        return sum(1 for d in rows for c in json.loads(d["calls"])
                   if c["method"] in WRITE_METHODS and (int(c["status"] or 0) < 400) == ok)

    applied = [d for d in records if d["outcome"] == "applied"]
    quiet = [d for d in records if d["outcome"] in ("unchanged", "own-event")]
    evaluated = [d for d in records if d["outcome"] in ("applied", "unchanged")]
    sizes = [len(json.loads(d["event_ids"])) for d in records]
    coalesced = [s for s in sizes if s > 1]
    reads = len(traffic.reads(vendor))
    writes = len(traffic.writes(vendor))
    refused = len(traffic.refused_writes(vendor))
    return {
        "vendor": vendor,
        "agent actions": actions,
        "events stored": stored,
        "events ignored / dead": f"{statuses.get('ignored', 0)} / {statuses.get('dead', 0)}",
        "seconds": round(seconds, 1),
        "events/s end to end": round(stored / seconds, 1) if seconds else 0.0,
        "vendor requests per event": _ratio(reads + writes + refused, stored),
        "  reads per event": _ratio(reads, stored),
        "  writes per event (applied)": _ratio(writes, stored),
        "  writes refused (409 conflict)": refused,
        "decisions applied / unchanged / own-event": (
            f"{outcomes.get('applied', 0)} / {outcomes.get('unchanged', 0)}"
            f" / {outcomes.get('own-event', 0)}"),
        "writes per changing decision": _ratio(writes_of(applied), len(applied)),
        "  + refused attempts per change": _ratio(writes_of(applied, ok=False), len(applied)),
        "writes for no-change and echoes": writes_of(quiet),
        "  refused attempts before no-change": writes_of(quiet, ok=False),
        "applied writes seen / recorded": f"{writes} / {writes_of(records)}",
        "retries recorded": outcomes.get("retry", 0),
        "events per evaluation (coalescing)": _ratio(
            sum(len(json.loads(d["event_ids"])) for d in evaluated), len(evaluated)),
        "evaluations that coalesced a burst": (
            f"{len(coalesced)} ({sum(coalesced)} events, largest {max(coalesced or [0])})"),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickets", type=int, default=1000, help="tickets per vendor")
    parser.add_argument("--events", type=int, default=10_000, help="agent actions per vendor")
    parser.add_argument("--vendors", default="jira,zendesk", help="comma-separated")
    parser.add_argument("--agents", type=int, default=2, help="agent threads per vendor")
    parser.add_argument("--worker-threads", type=int, default=2,
                        help="TIERDESK_WORKER_THREADS of the service")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (logs, inbox)")
    args = parser.parse_args(argv)
    vendors = [v for v in args.vendors.split(",") if v]
    if not set(vendors) <= set(VENDORS) or args.tickets < 1 or args.events < args.tickets:
        parser.error("vendors must be jira/zendesk, tickets >= 1 and events >= tickets")

    def _interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    # Stop the child processes on Ctrl-C and on SIGTERM alike (a background job ignores SIGINT).
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, _interrupt)
    workdir = Path(tempfile.mkdtemp(prefix="tierdesk-bench-e2e-"))
    sandbox = SandboxProcess(workdir)
    service: Service | None = None
    try:
        db = workdir / "inbox.db"
        port = free_port()
        env = vendor_env(sandbox, db, REPO / "deploy" / "policy.example.yaml")
        env["TIERDESK_WORKER_THREADS"] = str(args.worker_threads)
        for vendor in vendors:
            env.update(install(vendor, env, f"http://127.0.0.1:{port}/webhooks/{vendor}"))
        service = Service(env, port, workdir)
        service.start()
        client = sandbox.client
        inbox = InboxView(db)
        mark = client.last_seq()
        done: Counter[str] = Counter()
        lock = threading.Lock()

        def progress(vendor: str, n: int) -> None:
            with lock:
                done[vendor] += n

        errors: list[BaseException] = []
        actions: Counter[str] = Counter()

        def run(vendor: str, share: int, tickets: int, seed: int) -> None:
            try:
                play(SandboxClient(sandbox.jira_url, sandbox.zendesk_url), vendor, tickets,
                     share, seed, progress)
                with lock:
                    actions[vendor] += share
            except BaseException as exc:
                errors.append(exc)

        print(f"bench/e2e.py: {args.events} agent actions over {args.tickets} tickets per vendor"
              f" ({', '.join(vendors)}), {args.agents} agent threads each,"
              f" {args.worker_threads} worker threads", flush=True)
        started = time.monotonic()
        threads = []
        for vendor in vendors:
            for a in range(args.agents):
                tickets = args.tickets // args.agents + (a < args.tickets % args.agents)
                share = args.events // args.agents + (a < args.events % args.agents)
                threads.append(threading.Thread(
                    daemon=True, target=run, args=(vendor, share, tickets, args.seed * 100 + a
                                      + (50 if vendor == "zendesk" else 0))))
        for t in threads:
            t.start()
        while any(t.is_alive() for t in threads):
            time.sleep(5)
            print(f"  {time.monotonic() - started:6.1f} s  agent actions {dict(done)}"
                  f"  inbox {dict(inbox.statuses())}", flush=True)
        if errors:
            raise errors[0]
        sent = time.monotonic() - started
        settle(client, inbox, timeout=1800, quiet=1.5)
        elapsed = time.monotonic() - started
        traffic = Traffic.since(client, mark)
        state = client.state()
        print(f"\nAgent actions sent in {sent:.1f} s; everything settled after {elapsed:.1f} s;"
              f" Retry-After violations {state['retry_after_violations']};"
              f" deliveries {state['deliveries']}\n")
        rows = [report(v, actions[v], elapsed, inbox, traffic) for v in vendors]
        total_reads = len(traffic.reads())
        total_writes = len(traffic.writes()) + len(traffic.refused_writes())
        stored = sum(int(r["events stored"]) for r in rows)
        width = max(len(k) for k in rows[0])
        print(f"{'':<{width}}  " + "  ".join(f"{r['vendor']:>28}" for r in rows))
        for key in list(rows[0])[1:]:
            print(f"{key:<{width}}  " + "  ".join(f"{r[key]!s:>28}" for r in rows))
        print(f"\nOverall: {stored} events, {total_reads} reads + {total_writes} writes (applied"
              f" or refused) = {_ratio(total_reads + total_writes, stored)} vendor requests per"
              f" event (goal < 1.0); {stored / elapsed:.1f} events/s end to end")
        return 0
    finally:
        if service is not None:
            service.stop()
        sandbox.stop()
        if args.keep:
            print(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
