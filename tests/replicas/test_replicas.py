"""Several replicas on PostgreSQL, as real processes: two receivers (`tierdesk serve --no-worker`)
killed with SIGKILL and restarted at random, three workers (`tierdesk worker`), the Jira sandbox
sending real signed webhooks (each delivered twice) through a round-robin balancer.

One run (module fixture) feeds every test below; each test checks one property of it.

Scale: TIERDESK_REPLICA_EVENTS (default 500) agent actions over TIERDESK_REPLICA_TICKETS
(default 80) issues, about a minute on a 2-core machine. The issue's full scale is
TIERDESK_REPLICA_EVENTS=10000 TIERDESK_REPLICA_TICKETS=500 (several minutes: add
--timeout=2400 to pytest). Throughput figures: bench/replicas.py.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa

from connectors.jira.connector import JiraConnector
from connectors.jira.tickets import ticket_from_issue
from sandbox.state import LogEntry
from tests.replicas.harness import (
    BOT,
    POLICY,
    Chaos,
    agent_action,
    fresh_database,
    jira_config,
    start_cluster,
    wait_drained,
)
from tiering.engine import decide
from tiering.models import note_key_in
from tiering.policy import load_policy

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

PG_URL = os.environ.get("TIERDESK_TEST_DATABASE_URL")
EVENTS = int(os.environ.get("TIERDESK_REPLICA_EVENTS", "500"))
TICKETS = int(os.environ.get("TIERDESK_REPLICA_TICKETS", "80"))
#: The actions are spread over at least this many seconds (receivers are killed meanwhile).
PACE = 25.0


@dataclass(frozen=True)
class Run:
    """What one run left behind: the balancer's acknowledgements, the inbox, the vendor."""

    acked: frozenset[str]
    kills: int
    max_in_flight: dict[str, int]
    stored: dict[str, str]
    counts: dict[str, int]
    decisions: list[Any]
    vendor_log: list[LogEntry]
    issues: dict[str, dict[str, Any]]
    exit_statuses: dict[str, int | None]


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    """Drive the load with receiver kills; collect everything once the inbox is drained."""
    if not PG_URL:
        pytest.skip("needs PostgreSQL: set TIERDESK_TEST_DATABASE_URL="
                    "postgresql://postgres@127.0.0.1:5432/test")
    workdir = tmp_path_factory.mktemp("replicas")
    rng = random.Random(7)
    with fresh_database(PG_URL) as db:
        cluster = start_cluster(
            database_url=db, workdir=workdir, tickets=TICKETS, rng=rng,
            faults={"jira": {"webhooks": {"duplicate": 2, "delay_seconds": 0.3}}},
        )
        chaos = Chaos(cluster.receivers, rng, period=1.0)
        try:
            chaos.start()
            started = time.monotonic()
            for i in range(EVENTS):
                # Spread the actions over at least PACE seconds, so receivers die under load.
                ahead = started + i * PACE / EVENTS - time.monotonic()
                if ahead > 0:
                    time.sleep(ahead)
                if i in (EVENTS // 2, EVENTS - 1):
                    # On a busy machine (parallel test workers) restarting a killed receiver can
                    # take most of PACE: the half and the last actions wait for the 1st and the
                    # 2nd kill (bounded), so receivers always die while the load is arriving.
                    deadline = time.monotonic() + 180
                    while chaos.kills < (1 if i < EVENTS - 1 else 2) and not chaos.errors \
                            and time.monotonic() < deadline:
                        time.sleep(0.1)
                agent_action(cluster.sandbox, rng, TICKETS)
            # The kills go on while the deliveries drain.
            assert cluster.sandbox.wait_for_deliveries(timeout=600), "deliveries never finished"
            chaos.stop()
            assert not chaos.errors, chaos.errors
            for r in cluster.receivers:
                r.wait_ready()
            # The bot's own writes fire webhooks too: wait until those have drained as well.
            counts = wait_drained(db, timeout=600)
            assert cluster.sandbox.wait_for_deliveries(timeout=120)
            counts = wait_drained(db, timeout=600)
            elapsed = time.monotonic() - started
            vendor_log = list(cluster.sandbox.sandbox.log)
            issues = {
                f"SUP-{n}": cluster.sandbox.agent(
                    "jira", "admin", "GET", f"/rest/api/2/issue/SUP-{n}"
                ).body
                for n in range(1, TICKETS + 1)
            }
        finally:
            chaos.stop()
            statuses = cluster.stop()
        engine = sa.create_engine(db.replace("postgresql://", "postgresql+psycopg://", 1))
        with engine.connect() as conn:
            stored = {
                str(row.delivery_id): str(row.status)
                for row in conn.execute(sa.text(
                    "SELECT delivery_id, status FROM tierdesk_events WHERE vendor = 'jira'"
                ))
            }
            decisions = list(conn.execute(sa.text(
                "SELECT d.ticket, d.created_at, d.outcome, d.calls, d.decision, d.event_ids,"
                " (SELECT string_agg(e.delivery_id || ' ' || e.event_type || ' '"
                "   || coalesce(e.actor, '-'), '; ' ORDER BY e.id)"
                "  FROM json_array_elements_text(d.event_ids::json) AS x(id)"
                "  JOIN tierdesk_events e ON e.id = x.id::bigint) AS events"
                " FROM tierdesk_decisions d WHERE d.vendor = 'jira' ORDER BY d.id"
            )).all())
        engine.dispose()
    writes = sum(1 for d in decisions if d.outcome == "applied")
    print(f"\nreplicas: {EVENTS} actions on {TICKETS} issues in {elapsed:.1f} s;"
          f" {len(cluster.balancer.acked)} deliveries acknowledged; {chaos.kills} receiver"
          f" kills; {cluster.balancer.failovers} failovers; events {counts};"
          f" {len(decisions)} decisions, {writes} writes")
    yield Run(
        acked=frozenset(cluster.balancer.acked), kills=chaos.kills,
        max_in_flight=dict(cluster.watch.max_in_flight), stored=stored, counts=counts,
        decisions=decisions, vendor_log=vendor_log, issues=issues, exit_statuses=statuses,
    )


def story(run: Run, key: str) -> str:
    """One issue's decisions and bot comments, for a failure message."""
    lines = [
        f"  {d.created_at:.3f} {d.outcome:9} {d.calls} note="
        f"{(json.loads(d.decision) or {}).get('note_key') if d.decision else None}"
        f" events: {d.events}"
        for d in run.decisions if d.ticket == key
    ]
    comments = [
        f"  {c['created']} {c['author']['accountId']} note={note_key_in(c['body'])}"
        for c in run.issues[key]["fields"]["comment"]["comments"]
    ]
    return "decisions:\n" + "\n".join(lines) + "\ncomments:\n" + "\n".join(comments)


def test_receivers_were_killed_during_the_load(run: Run) -> None:
    """The run really killed receivers (SIGKILL) while deliveries were arriving."""
    assert run.kills >= 2


def test_no_acknowledged_delivery_is_lost(run: Run) -> None:
    """Every delivery a receiver answered 2xx for is in the inbox, and all were processed."""
    missing = run.acked - set(run.stored)
    assert not missing, f"{len(missing)} acknowledged deliveries are not in the inbox"
    assert run.counts.get("pending", 0) == 0 and run.counts.get("dead", 0) == 0, run.counts
    assert set(run.stored.values()) <= {"done", "ignored"}


def test_no_issue_is_worked_on_by_two_workers_at_once(run: Run) -> None:
    """The vendor never saw two requests on one issue in flight at the same time."""
    overlapping = {k: n for k, n in run.max_in_flight.items() if n > 1}
    assert not overlapping, f"issues worked on concurrently: {overlapping}"
    assert run.max_in_flight, "the workers made no request at all"


def test_each_event_is_evaluated_once(run: Run) -> None:
    """No event belongs to two completed evaluations (duplicated deliveries were stored once)."""
    seen: Counter[int] = Counter()
    for d in run.decisions:
        if d.outcome in ("applied", "unchanged", "own-event"):
            seen.update(json.loads(d.event_ids))
    twice = [e for e, n in seen.items() if n > 1]
    assert not twice, f"events evaluated twice: {twice[:10]}"


def test_one_vendor_write_per_applied_decision(run: Run) -> None:
    """The vendor saw exactly one bot PUT per applied decision: no write was sent twice."""
    puts = Counter(
        e.path.rsplit("/", 1)[-1] for e in run.vendor_log
        if e.actor == BOT and e.method == "PUT" and e.write and e.status == 204
    )
    applied = Counter(d.ticket for d in run.decisions if d.outcome == "applied")
    assert puts == applied


def test_no_checklist_note_is_posted_twice_in_a_row(run: Run) -> None:
    """No issue has the same checklist note twice in a row (a checklist may come back after the
    ticket changed, but never without a different one between). This and the next test caught
    webhook snapshots older than tierdesk's own last write being decided on (fixed in ef1c79c and
    38e50b7)."""
    bad = {}
    for key, issue in run.issues.items():
        notes = [
            note_key_in(c["body"]) for c in issue["fields"]["comment"]["comments"]
            if c["author"]["accountId"] == BOT
        ]
        repeats = [a for a, b in itertools.pairwise(notes) if a == b]
        if repeats:
            bad[key] = repeats
    assert not bad, f"{len(bad)} issues; first: {next(iter(bad))}\n{story(run, next(iter(bad)))}"


def test_every_issue_ends_in_the_state_the_policy_gives(run: Run) -> None:
    """Deciding each issue again from its final state leaves nothing to write."""
    policy = load_policy(POLICY.read_text(encoding="utf-8"), source=str(POLICY))
    config = jira_config("http://127.0.0.1:9")  # plan() makes no request
    connector = JiraConnector(config, policy)
    now = datetime.now(UTC)
    unsettled = {}
    for key, issue in run.issues.items():
        ticket = ticket_from_issue(issue, policy=policy, config=config)
        plan = connector.plan(ticket, decide(ticket, policy, now=now))
        if plan is not None:
            unsettled[key] = plan
    if unsettled:
        first = next(iter(unsettled))
        raise AssertionError(
            f"{len(unsettled)} issues not in the policy's state; {first} still needs"
            f" {unsettled[first]}\n{story(run, first)}"
        )


def test_every_process_stops_gracefully(run: Run) -> None:
    """SIGTERM stops every receiver and worker with exit status 0."""
    assert all(s == 0 for s in run.exit_statuses.values()), run.exit_statuses
