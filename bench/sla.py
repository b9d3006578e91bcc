"""Benchmark: SLA/OLA clocks on 100,000 open clocks, in the pure engine and in the service.

Engine (`tiering.sla.compute_clocks`): 50,000 open tickets, each with a time-in-tier and a
resolution clock (100,000 clocks), created over the last 10 days with 1 to 6 status changes
(pending pauses, a solve and reopen), spread over three calendars: the built-in 24x7, Berlin
office hours with a lunch break and the Berlin holidays, and New York 08:00-18:00 with the US
holidays. For every ticket the engine gives each clock's elapsed, paused, due, state,
thresholds and the ticket's next change, as the worker does when it re-arms a timer. Printed:
CPU seconds for a first pass (calendar caches cold) and a second pass (warm), per clock, and
memory: the Python heap held by histories and reports (tracemalloc) and the peak RSS.

Service (webhooks/sla_work.py's TimerLoop, the Worker and the inbox; a SQLite file, and with
--postgres a PostgreSQL schema): an inbox holding 50,000 tickets with recorded history and a
durable timer each, two open clocks per ticket (100,000 open clocks), none due for the next
hour. Printed:

- CPU per idle minute: this process's CPU time while the timer loop alone waits (it polls the
  inbox for the soonest timer at most every 0.5 s), then while the loop and two idle workers
  (TIERDESK_WORKER_THREADS' default) wait, scaled to one minute (on PostgreSQL the database
  server's own CPU is not included);
- memory: the RSS of the process and the Python heap the loop and the workers grow while idle
  (tracemalloc), and the SQLite database's size;
- firing lag: 1,000 tickets are then given thresholds that fall due in the same second (one
  every millisecond); the loop enqueues them and the two workers decide on each (the real
  engine, clocks and SLA actions; an in-memory vendor stands in for Jira, so no network time is
  included). The lag is the time from a threshold's due instant to the vendor write that acts
  on it: p50, p99 and max, and the timer loop's part of it (due instant to the ticket's
  synthetic event stored).

- with --backlog N: 1,000 other thresholds fall due while N ordinary tickets (a backfill)
  already wait: the firing lag then (due tickets are claimed first), and how many backlog
  tickets were written meanwhile.

Run: .venv/bin/python bench/sla.py [--idle-seconds 30] [--skip-engine] [--backlog 10000]
[--postgres postgresql://postgres@127.0.0.1:5432/test] (PostgreSQL too: in a fresh schema of
that database, dropped afterwards). No test asserts on these figures.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import resource
import statistics
import tempfile
import threading
import time
import tracemalloc
import uuid
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import sqlalchemy as sa

from connectors.base import Applied, Call, Decide, Envelope
from tiering import load_policy
from tiering.models import Customer, Decision, Ticket
from tiering.policy import Policy
from tiering.sla import SlaReport, StatusInterval, TicketHistory, TierEntry, compute_clocks, sla_for
from webhooks.inbox.schema import SLA_DUE_EVENT, sla_marks, sla_timers
from webhooks.inbox.store import Inbox
from webhooks.metrics import Metrics
from webhooks.sla_work import TimerLoop
from webhooks.worker import Worker

TICKETS = 50_000
NOW = datetime(2026, 11, 25, 14, 7, 13, tzinfo=UTC)

POLICY = """\
version: 1
tiers: [L1, L2, L3]
default_tier: L1
plans:
  basic: {max_tier: L1}
  standard: {max_tier: L2}
  premium: {max_tier: L3}
customers:
  - match: {organization: "Acme"}
    plan: premium
calendars:
  berlin:
    timezone: Europe/Berlin
    hours: {mon-fri: ["09:00-12:30", "13:30-17:00"]}
    holidays: {country: DE, subdivision: BE}
  new-york:
    timezone: America/New_York
    hours: {mon-fri: ["08:00-18:00"]}
    holidays: {country: US}
sla:
  warn_at: [0.5, 0.75]
  plans:
    basic:
      calendar: new-york
      tiers:
        L1: {time_in_tier: 16h, resolution: 5d}
    standard:
      calendar: berlin
      tiers:
        L1: {time_in_tier: 8h, resolution: 3d}
        L2: {time_in_tier: 1d, resolution: 3d}
    premium:
      tiers:
        L1: {time_in_tier: 4h, resolution: 1d}
        L2: {time_in_tier: 8h, resolution: 1d}
        L3: {time_in_tier: 12h, resolution: 2d}
"""

PLAN_TIERS = [("basic", "L1"), ("standard", "L1"), ("standard", "L2"),
              ("premium", "L1"), ("premium", "L2"), ("premium", "L3")]


def build(rng: random.Random) -> list[tuple[str, str, TicketHistory]]:
    out = []
    for _ in range(TICKETS):
        plan, tier = rng.choice(PLAN_TIERS)
        created = NOW - timedelta(seconds=rng.randrange(1, 10 * 86400))
        span = (NOW - created).total_seconds()
        cuts = sorted(rng.uniform(0, span) for _ in range(rng.randrange(0, 6)))
        statuses = []
        at = created
        kinds = ["new"] + [rng.choice(["open", "open", "pending", "hold", "solved"])
                           for _ in cuts]
        kinds[-1] = rng.choice(["open", "open", "open", "pending"])  # an open ticket
        for i, kind in enumerate(kinds):
            end = created + timedelta(seconds=cuts[i]) if i < len(cuts) else None
            statuses.append(StatusInterval(kind, at, end))
            if end is not None:
                at = end
        entry = created + timedelta(seconds=rng.uniform(0, span))
        hist = TicketHistory(created_at=created, statuses=tuple(statuses),
                             tiers=(TierEntry("L1", created), TierEntry(tier, entry)))
        out.append((plan, tier, hist))
    return out


def run(policy_sla: object, tickets: list[tuple[str, str, TicketHistory]]) -> list[SlaReport]:
    sla = policy_sla
    reports = []
    for plan, tier, hist in tickets:
        targets = sla.targets_for(plan=plan, tier=tier, priority=None)  # type: ignore[attr-defined]
        reports.append(compute_clocks(hist, targets, sla.calendars, now=NOW))  # type: ignore[attr-defined]
    return reports


def engine_figures() -> None:
    policy = load_policy(POLICY, source="bench-sla.yaml")
    tickets = build(random.Random(18))
    c0 = time.process_time()
    reports = run(policy.sla, tickets)
    cold = time.process_time() - c0
    c0 = time.process_time()
    reports = run(policy.sla, tickets)
    warm = time.process_time() - c0
    rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    clocks = sum(len(r.clocks) for r in reports)
    states = Counter(c.state for r in reports for c in r.clocks)
    nexts = [r.next_change for r in reports if r.next_change is not None]
    # Memory, measured apart (tracemalloc slows everything down): a fresh set of histories,
    # then their reports, on a fresh policy (its calendar caches included).
    del reports, tickets
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    fresh = load_policy(POLICY, source="bench-sla.yaml")
    tickets = build(random.Random(18))
    after_hist = tracemalloc.get_traced_memory()[0]
    kept = run(fresh.sla, tickets)
    after_reports = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    mib = 2**20
    print(f"{clocks:,} open clocks on {TICKETS:,} tickets; states: {dict(sorted(states.items()))}")
    print(f"tickets with a next change: {len(nexts):,}; soonest {min(nexts).isoformat()}")
    print(f"CPU, first pass (calendar caches cold): {cold:.2f} s"
          f" ({cold / clocks * 1e6:.1f} µs/clock)")
    print(f"CPU, second pass (warm):                {warm:.2f} s"
          f" ({warm / clocks * 1e6:.1f} µs/clock)")
    print(f"memory: histories {(after_hist - before) / mib:.1f} MiB, reports and calendar caches"
          f" {(after_reports - after_hist) / mib:.1f} MiB (Python heap, tracemalloc);"
          f" for {len(kept):,} reports; process peak RSS before that measurement {rss_mib:.0f} MiB")



# ------------------------------------------------------------------------------ the service

SERVICE_TICKETS = 50_000
LAG_TICKETS = 1_000
WORKER_THREADS = 2
MIB = 2**20


def _rss_mib() -> float:
    """The process's resident memory now (Linux /proc), else its peak."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class MemoryJira:
    """A vendor in memory speaking the connector Protocol for the bench's tickets (organization
    Acme: plan premium, tier L1, open): it records when each write lands, nothing else."""

    vendor = "jira"

    def __init__(self, created: Mapping[str, float]) -> None:
        self.created = created
        self.labels: dict[str, frozenset[str]] = {}
        self.writes: dict[str, float] = {}
        self.lock = threading.Lock()

    def is_own_event(self, envelope: Envelope) -> bool:
        return False

    def current_ticket(self, payloads: Sequence[Mapping[str, Any]], *, fresh: bool = False,
                       last_note_key: str | None = None) -> Ticket:
        body = payloads[-1]
        key = str(body["ticket"] if "ticket" in body else body["issue"]["key"])
        created = datetime.fromtimestamp(self.created[key], UTC)
        return Ticket(key=key, subject="Sync stalls", labels=self.labels.get(key, frozenset(
            {"tier-l1"})), customer=Customer(organization="Acme"), status="open",
            created_at=created, updated_at=created.isoformat(), last_note_key=last_note_key)

    def apply(self, ticket: Ticket, decision: Decision, *, decide: Decide) -> Applied:
        if not decision.changed:
            return Applied(decision=decision)
        with self.lock:
            self.writes.setdefault(ticket.key, time.time())
            self.labels[ticket.key] = decision.labels_after(frozenset(ticket.labels))
        return Applied(calls=(Call("PUT", f"/issue/{ticket.key}", 204, "apply decision"),),
                       decision=decision, note_key=decision.note_key, wrote=True)


def _timer_row(policy: Policy, key: str, created: float, now: float) -> dict[str, Any]:
    """The timer the worker keeps for a premium L1 ticket created at `created` (24x7 calendar:
    time in tier 4h warned at 50 % and 75 %, resolution 1d)."""
    hist = TicketHistory(created_at=datetime.fromtimestamp(created, UTC),
                         statuses=(StatusInterval("open", datetime.fromtimestamp(created, UTC)),),
                         tiers=(TierEntry("L1", datetime.fromtimestamp(created, UTC)),))
    report = sla_for(hist, policy.sla, plan="premium", tier="L1", priority=None,
                     now=datetime.fromtimestamp(now, UTC))
    due = [c.due.timestamp() for c in report.clocks if c.due is not None]
    nxt = report.next_change
    clock = next(c for c in report.clocks if c.next_change == nxt) if nxt else None
    return {
        "vendor": "jira", "ticket": key, "due_at": nxt.timestamp() if nxt else None,
        "clock": clock.clock if clock else None,
        "fraction": (0.5, 0.75, 1.0)[len(clock.crossed)] if clock else None,
        "breach_at": min(due) if due else None, "policy_digest": policy.digest,
        "plan": "premium", "tier": "L1", "priority": None,
        "clocks": json.dumps([c.to_dict() for c in report.clocks]),
        "open_clocks": len(report.clocks), "updated_at": now,
        "lease_token": None, "lease_until": None,
    }


def _marks(key: str, created: float, now: float) -> list[dict[str, Any]]:
    return [{"vendor": "jira", "ticket": key, "kind": kind, "value": value, "at": created,
             "recorded_at": now}
            for kind, value in (("created", ""), ("status", "open"), ("tier", "L1"))]


def _write(engine: sa.Engine, table: sa.Table, rows: list[dict[str, Any]]) -> None:
    with engine.begin() as conn:
        for i in range(0, len(rows), 5000):
            conn.execute(table.insert(), rows[i:i + 5000])


def seed(url: str, policy: Policy, rng: random.Random) -> tuple[dict[str, float], float]:
    """50,000 tickets created up to an hour ago, each with its history marks and its timer."""
    Inbox.connect(url).close()  # creates (or migrates) the schema
    engine = sa.create_engine(url)
    now = time.time()
    created = {f"BENCH-{i}": now - rng.uniform(0, 3600) for i in range(SERVICE_TICKETS)}
    t0 = time.perf_counter()
    _write(engine, sla_marks, [m for k, c in created.items() for m in _marks(k, c, now)])
    _write(engine, sla_timers, [_timer_row(policy, k, c, now) for k, c in created.items()])
    engine.dispose()
    return created, time.perf_counter() - t0


def make_due(url: str, policy: Policy, created: dict[str, float], keys: list[str],
             at: float) -> dict[str, float]:
    """Re-create `keys` so that their time-in-tier 50 % falls in the second from `at`, one every
    millisecond: their history and timers are rewritten as if created 2h before that."""
    engine = sa.create_engine(url)
    now = time.time()
    due: dict[str, float] = {}
    for i, key in enumerate(keys):
        due[key] = at + i / len(keys)
        created[key] = due[key] - 2 * 3600
    with engine.begin() as conn:
        conn.execute(sla_marks.delete().where(sla_marks.c.ticket.in_(keys)))
        conn.execute(sla_timers.delete().where(sla_timers.c.ticket.in_(keys)))
    _write(engine, sla_marks, [m for k in keys for m in _marks(k, created[k], now)])
    rows = [_timer_row(policy, k, created[k], now) for k in keys]
    for row in rows:
        assert abs(row["due_at"] - due[row["ticket"]]) < 1e-3, row  # the 50 % threshold
    _write(engine, sla_timers, rows)
    engine.dispose()
    return due


def idle_cpu(seconds: float, target: Any) -> tuple[float, int]:
    """Process CPU seconds per minute while `target(stop)` runs for `seconds` in threads, and
    the Python heap grown meanwhile (bytes)."""
    stop = threading.Event()
    threads = [threading.Thread(target=t, args=(stop,), daemon=True) for t in target]
    for t in threads:
        t.start()
    time.sleep(1.0)  # past the start-up (first queries, caches)
    tracemalloc.start()
    heap0 = tracemalloc.get_traced_memory()[0]
    c0, w0 = time.process_time(), time.perf_counter()
    time.sleep(seconds)
    cpu, wall = time.process_time() - c0, time.perf_counter() - w0
    grown = tracemalloc.get_traced_memory()[0] - heap0
    tracemalloc.stop()
    stop.set()
    for t in threads:
        t.join(timeout=10)
    return cpu / wall * 60, grown


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def fire_and_measure(
    url: str, policy: Policy, inbox: Inbox, vendor: MemoryJira, loop: TimerLoop,
    workers: list[Worker], created: dict[str, float], keys: list[str],
) -> tuple[list[float], list[float], int]:
    """Make `keys` due in the same second (from 3 s ahead), run the loop and the workers until
    each has its vendor write (at most 120 s); return the due-to-write lags, the due-to-event
    lags and how many were not written."""
    at = float(int(time.time()) + 3)
    due = make_due(url, policy, created, keys, at)
    stop = threading.Event()
    threads = [threading.Thread(target=fn, args=(stop,), daemon=True)
               for fn in (loop.run, *(w.run for w in workers))]
    for t in threads:
        t.start()
    deadline = at + 120
    while any(k not in vendor.writes for k in keys) and time.time() < deadline:
        time.sleep(0.05)
    stop.set()
    loop.stop()
    for w in workers:
        w.wake()
    for t in threads:
        t.join(timeout=30)
    lags = [vendor.writes[k] - due[k] for k in keys if k in vendor.writes]
    queued = [e.received_at - due[k] for k in keys for e in inbox.events_of("jira", k)
              if e.event_type == SLA_DUE_EVENT]
    return lags, queued, len(keys) - len(lags)


def lag_text(lags: list[float]) -> str:
    if not lags:
        return "none written"
    return (f"p50 {quantile(lags, 0.5) * 1000:.0f} ms, p99 {quantile(lags, 0.99) * 1000:.0f} ms,"
            f" max {max(lags) * 1000:.0f} ms, mean {statistics.fmean(lags) * 1000:.0f} ms")


def service_figures(url: str, label: str, idle_seconds: float, backlog: int = 0) -> None:
    policy = load_policy(POLICY, source="bench-sla.yaml")
    rng = random.Random(18)
    created, took = seed(url, policy, rng)
    inbox = Inbox.connect(url)
    counts = inbox.open_clock_count()
    print(f"\nservice on {label}: {sum(counts.values()):,} open clocks on"
          f" {SERVICE_TICKETS:,} tickets' timers (seeded in {took:.1f} s)")
    vendor = MemoryJira(created)
    metrics = Metrics()
    workers = [Worker(inbox=inbox, connectors={"jira": vendor}, policy=policy, metrics=metrics,
                      lease_seconds=60, name=f"worker-{i + 1}") for i in range(WORKER_THREADS)]

    def wake() -> None:
        for w in workers:
            w.wake()

    loop = TimerLoop(inbox, wake_workers=wake)
    rss0 = _rss_mib()
    alone, grown_alone = idle_cpu(idle_seconds, [loop.run])
    together, grown = idle_cpu(idle_seconds, [loop.run, *(w.run for w in workers)])
    print(f"CPU per idle minute: timer loop {alone:.2f} s; timer loop and {WORKER_THREADS}"
          f" idle workers {together:.2f} s (measured over {idle_seconds:.0f} s each)")
    size = ""
    if url.startswith("sqlite:///"):
        path = Path(url.removeprefix("sqlite:///"))
        on_disk = sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))
        size = f"; database {on_disk / MIB:.0f} MiB"
    print(f"memory: RSS {_rss_mib():.0f} MiB after idling (after seeding {rss0:.0f} MiB);"
          " Python heap"
          f" grown while idle {grown_alone / 1024:.0f} KiB (loop), {grown / 1024:.0f} KiB"
          f" (loop and workers){size}")
    keys = rng.sample(sorted(created), LAG_TICKETS)
    lags, queued, missing = fire_and_measure(url, policy, inbox, vendor, loop, workers,
                                             created, keys)
    print(f"firing lag, {LAG_TICKETS:,} thresholds due in the same second, {WORKER_THREADS}"
          f" workers: {lag_text(lags)}" + (f"; {missing} not fired within 120 s" if missing
                                            else ""))
    print(f"  of which the timer loop's part (due instant to the ticket's event stored): p50"
          f" {quantile(queued, 0.5) * 1000:.0f} ms, p99 {quantile(queued, 0.99) * 1000:.0f} ms;"
          f" the rest is the workers deciding and recording ({WORKER_THREADS} threads, one"
          " ticket each at a time)")
    fired = sum(len(inbox.sla_fired_keys("jira", k)) for k in keys)
    print(f"thresholds recorded as fired: {fired:,} (one per ticket expected)")
    if backlog:
        # An ordinary backlog (a backfill) already waiting when the thresholds fall due.
        rest = sorted(set(created) - set(keys))
        others = rng.sample(rest, LAG_TICKETS + backlog)
        due_keys, backlog_keys = others[:LAG_TICKETS], others[LAG_TICKETS:]
        for i in range(0, backlog, 500):
            inbox.enqueue_many([
                (Envelope(vendor="jira", event_type="jira:issue_updated", handled=True,
                          ticket=k, delivery_id=f"backfill-{k}", actor="agent"),
                 {"ticket": k}, None) for k in backlog_keys[i:i + 500]])
        for k in backlog_keys:  # their write changes a label, as a backfill's would
            vendor.labels[k] = frozenset()
        lags, _, missing = fire_and_measure(url, policy, inbox, vendor, loop, workers,
                                            created, due_keys)
        done = sum(1 for k in backlog_keys if k in vendor.writes)
        print(f"with {backlog:,} ordinary tickets waiting (a backfill) when {LAG_TICKETS:,}"
              f" thresholds fall due: firing lag {lag_text(lags)}"
              + (f"; {missing} not fired within 120 s" if missing else "")
              + f"; backlog tickets written meanwhile: {done:,}")
    inbox.close()


@contextlib.contextmanager
def pg_schema(url: str) -> Iterator[str]:
    """`url` with its search_path on a fresh schema, dropped afterwards (as the PG tests do)."""
    schema = f"td_bench_{uuid.uuid4().hex[:12]}"
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in url else "?"
    try:
        yield f"{url}{sep}options={quote(f'-csearch_path={schema}')}"
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--idle-seconds", type=float, default=30.0)
    parser.add_argument("--postgres", default=None, metavar="URL",
                        help="also on this PostgreSQL database, in a fresh schema")
    parser.add_argument("--skip-engine", action="store_true")
    parser.add_argument("--backlog", type=int, default=0, metavar="N",
                        help="then fire 1,000 more thresholds with N ordinary tickets waiting")
    args = parser.parse_args()
    if not args.skip_engine:
        engine_figures()
    with tempfile.TemporaryDirectory(prefix="tierdesk-bench-sla-") as tmp:
        service_figures(f"sqlite:///{tmp}/inbox.db", "SQLite", args.idle_seconds, args.backlog)
    if args.postgres:
        with pg_schema(args.postgres) as url:
            service_figures(url, "PostgreSQL", args.idle_seconds, args.backlog)


if __name__ == "__main__":
    main()
