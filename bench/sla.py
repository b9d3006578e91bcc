"""Benchmark: CPU time and memory to compute 100,000 open SLA/OLA clocks and their next change.

50,000 open tickets, each with a time-in-tier and a resolution clock (100,000 clocks), created
over the last 10 days with 1 to 6 status changes (pending pauses, a solve and reopen), spread
over three calendars: the built-in 24x7, Berlin office hours with a lunch break and the
Berlin holidays, and New York 08:00-18:00 with the US holidays. For every ticket the pure engine
(`tiering.sla.compute_clocks`) gives each clock's elapsed, paused, due, state, thresholds and
the ticket's next change, as the worker will when it re-arms a timer.

Printed: CPU seconds for the first pass (calendar caches cold) and a second pass (warm), per
clock, and memory: the Python heap held by histories and reports (tracemalloc) and the process's
peak RSS. The service-side figures (idle CPU with durable timers, firing lag) need the timers,
which are not built yet. Run: .venv/bin/python bench/sla.py
"""

from __future__ import annotations

import random
import resource
import time
import tracemalloc
from collections import Counter
from datetime import UTC, datetime, timedelta

from tiering import load_policy
from tiering.sla import SlaReport, StatusInterval, TicketHistory, TierEntry, compute_clocks

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


def main() -> None:
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


if __name__ == "__main__":
    main()
