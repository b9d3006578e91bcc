"""Benchmark: end-to-end throughput of split replicas with one, two and three workers, on
PostgreSQL, against the Jira sandbox with and without its per-minute rate limit.

Per run: two receivers (`tierdesk serve --no-worker`) and N workers (`tierdesk worker`) as real
processes, a fresh PostgreSQL database, the sandbox firing signed webhooks for EVENTS agent
actions over TICKETS issues. The clock runs from the first action until the inbox is drained
(every delivery, including those of tierdesk's own writes, processed). Printed per run: actions,
deliveries and vendor writes per second, the vendor's 429 answers, requests sent before a
Retry-After had passed (must be 0), and the verdict: when the
rate-limited run is much slower than the unlimited one with the same workers, the vendor's limit
is the bottleneck; when adding workers speeds the unlimited run up, tierdesk's workers are.

Run: TIERDESK_TEST_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/test \
     .venv/bin/python bench/replicas.py [--events 10000 --tickets 500] [--budget 600]
(defaults: 2,000 actions over 500 issues, a limit of 300 requests per minute; the issue's scale
is --events 10000 --tickets 500, about ten times longer.)
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.replicas.harness import (
    BOT,
    agent_action,
    fresh_database,
    inbox_counts,
    start_cluster,
    wait_drained,
)


@dataclass
class Figures:
    workers: int
    limited: bool
    seconds: float
    actions: int
    deliveries: int
    writes: int
    rate_limited: int
    violations: int

    def row(self) -> str:
        limit = "on " if self.limited else "off"
        return (
            f"{self.workers:>7}  {limit:>5}  {self.seconds:8.1f}"
            f"  {self.actions / self.seconds:9.1f}"
            f"  {self.deliveries / self.seconds:12.1f}  {self.writes / self.seconds:8.1f}"
            f"  {self.rate_limited:>6}  {self.violations:>10}"
        )


def one_run(admin_url: str, *, workers: int, events: int, tickets: int,
            budget: int | None, seed: int) -> Figures:
    rng = random.Random(seed)
    faults = {"jira": {"budget_per_minute": budget}} if budget else None
    with fresh_database(admin_url) as db, tempfile.TemporaryDirectory() as tmp:
        cluster = start_cluster(
            database_url=db, workdir=Path(tmp), tickets=tickets, rng=rng, workers=workers,
            faults=faults, hold=0.0,
            extra_env={"TIERDESK_RETRY_MAX_DELAY": "60"},
        )
        try:
            started = time.monotonic()
            for _ in range(events):
                agent_action(cluster.sandbox, rng, tickets)
            while True:
                cluster.sandbox.wait_for_deliveries(timeout=3600)
                wait_drained(db, timeout=3600)
                # Own-write webhooks may still be on their way: done when both stay idle.
                if cluster.sandbox.wait_for_deliveries(timeout=0.5) and not inbox_counts(
                    db
                ).get("pending"):
                    break
            seconds = time.monotonic() - started
            log = list(cluster.sandbox.sandbox.log)
            violations = cluster.sandbox.sandbox.violations()
        finally:
            cluster.stop()
        counts = inbox_counts(db)
    return Figures(
        workers=workers,
        limited=budget is not None,
        seconds=seconds,
        actions=events,
        deliveries=sum(counts.values()),
        writes=sum(1 for e in log if e.actor == BOT and e.write and e.status == 204),
        rate_limited=sum(1 for e in log if e.status == 429),
        violations=violations,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--tickets", type=int, default=500)
    parser.add_argument("--budget", type=int, default=300,
                        help="the sandbox's Jira requests per minute in the limited runs")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 3])
    args = parser.parse_args()
    admin_url = os.environ.get("TIERDESK_TEST_DATABASE_URL")
    if not admin_url:
        sys.exit("set TIERDESK_TEST_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/test")
    print(f"{args.events} agent actions over {args.tickets} Jira issues; 2 receivers;"
          f" sandbox limit {args.budget} requests/min when on; {os.cpu_count()} CPUs")
    print(f"{'workers':>7}  {'limit':>5}  {'seconds':>8}  {'actions/s':>9}  {'deliveries/s':>12}"
          f"  {'writes/s':>8}  {'429s':>6}  {'too early':>10}")
    results: dict[tuple[int, bool], Figures] = {}
    for workers in args.workers:
        for budget in (None, args.budget):
            figures = one_run(admin_url, workers=workers, events=args.events,
                              tickets=args.tickets, budget=budget, seed=workers)
            results[(workers, budget is not None)] = figures
            print(figures.row(), flush=True)
    print()
    for workers in args.workers:
        free, limited = results[(workers, False)], results[(workers, True)]
        ratio = limited.seconds / free.seconds
        print(f"{workers} worker(s): the limit makes the run {ratio:.1f}x longer -> "
              + ("the vendor's rate limit is the bottleneck" if ratio > 1.5
                 else "tierdesk (receiving and processing) is the bottleneck"))
    first, last = results[(args.workers[0], False)], results[(args.workers[-1], False)]
    print(f"unlimited: {args.workers[0]} -> {args.workers[-1]} workers changes throughput"
          f" {last.actions / last.seconds / (first.actions / first.seconds):.2f}x")


if __name__ == "__main__":
    main()
