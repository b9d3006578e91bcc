"""Benchmark: decisions per second and p99 time per decision on a large policy.

Policy: 50 rules, 2,000 customers; 10,000 tickets with 2 KB descriptions, a realistic mix of
new tickets (triaged by rules), escalation requests and settled tickets. Goal: at least 20,000
decisions/s on one core. Run: .venv/bin/python bench/decide.py
"""

from __future__ import annotations

import random
import statistics
import time
from datetime import UTC, datetime

import yaml

from tiering import Ticket, decide, load_policy
from tiering.models import Customer
from webhooks.defaults import default_policy_text

ROUNDS = 5
WORDS = [
    "sync", "report", "export", "login", "crash", "error", "slow", "invoice", "refund", "password",
    "device", "network", "update", "install", "license", "screen", "print", "mail", "folder",
    "upload", "download", "timeout",
]


def build_policy(rng: random.Random) -> str:
    doc = yaml.safe_load(default_policy_text())
    base_rules = doc["rules"]
    rules = []
    for i in range(50 - len(base_rules)):
        terms = [f"{rng.choice(WORDS)} {rng.choice(WORDS)} case{i}", f"code-{i:03d}"]
        rule = {"name": f"rule-{i:02d}", "when": {"text_any": terms}, "tier": rng.choice(
            ["L0", "L1", "L2"])}
        if i % 5 == 0:
            rule["when"]["priority_in"] = ["high", "urgent"]
        rules.append(rule)
    doc["rules"] = rules + base_rules
    customers = []
    for i in range(2000):
        plan = rng.choice(["basic", "standard", "premium"])
        if i % 2:
            customers.append({"match": {"organization": f"Customer {i:04d}"}, "plan": plan})
        else:
            customers.append({"match": {"email_domain": f"c{i:04d}.example"}, "plan": plan})
    doc["customers"] = customers
    return yaml.safe_dump(doc, sort_keys=False)


def build_tickets(rng: random.Random, n: int) -> list[Ticket]:
    tickets = []
    for i in range(n):
        words = [rng.choice(WORDS) for _ in range(340)]
        kind = i % 4
        if kind == 0:
            words[rng.randrange(len(words))] = f"code-{rng.randrange(60):03d}"
        description = " ".join(words)[:2048]
        labels: frozenset[str] = frozenset()
        if kind == 1:
            labels = frozenset({"tier-l1", rng.choice(["escalate-l2", "escalate-l3"])})
        elif kind == 2:
            labels = frozenset({"tier-l2", "vip"})
        c = rng.randrange(2200)
        customer = (Customer(organization=f"Customer {c:04d}") if c % 2 else
                    Customer(email=f"user@c{c:04d}.example"))
        fields = {"steps_to_reproduce": "Open it, click it, see it fail badly.",
                  "product_version": "4.2.1", "category": "bugfix"} if i % 3 else {}
        tickets.append(Ticket(
            key=f"SUP-{i}", subject=" ".join(words[:6]), description=description, labels=labels,
            priority=rng.choice(["low", "medium", "high", "urgent"]), customer=customer,
            fields=fields, attachments=i % 2))
    return tickets


def main() -> None:
    rng = random.Random(7)
    policy = load_policy(build_policy(rng), source="bench-policy.yaml")
    tickets = build_tickets(rng, 10_000)
    now = datetime.now(UTC)
    for t in tickets[:500]:  # warm-up
        decide(t, policy, now=now)
    clock = time.perf_counter
    rounds = []
    for _ in range(ROUNDS):
        times = []
        cpu0 = time.process_time()
        start = clock()
        for t in tickets:
            t0 = clock()
            decide(t, policy, now=now)
            times.append(clock() - t0)
        rounds.append((clock() - start, time.process_time() - cpu0, sorted(times)))
    # Best of several rounds (like timeit): other processes on the machine only ever slow a round.
    wall, cpu, times = min(rounds, key=lambda r: r[0])
    p99 = times[int(len(times) * 0.99)]
    print(f"policy: {len(policy.rules)} rules, {len(policy.doc.customers)} customers")
    print(f"tickets: {len(tickets)}, description {len(tickets[0].description)} bytes,"
          f" best of {ROUNDS} rounds")
    print(f"decisions/s: {len(tickets) / wall:,.0f} wall, {len(tickets) / cpu:,.0f} per CPU second"
          "  (goal >= 20,000 on one core)")
    print(f"p50: {statistics.median(times) * 1e6:.1f} us  p99: {p99 * 1e6:.1f} us")


if __name__ == "__main__":
    main()
