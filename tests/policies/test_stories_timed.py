"""The reference policies' timed stories played end to end in story time, on Zendesk and Jira.

tests/policies/test_stories_e2e.py plays each story on a real sandbox and `tierdesk serve`, but
only up to a ticket's first step that waits (`after: 3h`): office hours cannot pass in a test.
Here every step of every timed ticket is played, with time itself under the test's control:

    StoryClock      one settable clock (epoch seconds), the service's only time source
                    (webhooks/service.py `clock=`), moved to each step's instant
    sandbox         a real `tierdesk sandbox` process seeded for the story (`story_site`), its
                    clock stopped at the same instant through POST /_sandbox/clock, so tickets'
                    created/updated times and the webhooks' signed times are story time too
    receiver        `build_server(..., with_worker=False, clock=)`: the real receiver app under
                    uvicorn in a thread on 127.0.0.1, storing the signed deliveries in the inbox
    worker side     `build_service(..., with_worker=True, clock=)`: the real timer loop
                    (webhooks/sla_work.py TimerLoop), worker and connectors (real HTTP to the
                    sandbox), driven as `tierdesk worker --once` drives them: `run_once` then
                    `drain` then `send_due`, repeated until nothing is left (`settle`)

Per step, in the order of the steps' instants (`TicketStory.step_at`): the clocks move to the
instant, the agent's requests of the step are made (the same `Desk` requests as
test_stories_e2e.py), the deliveries land, and then the timer loop runs: a threshold due by now
becomes the ticket's `tierdesk:sla-due` event beside the edit's webhook, and the worker decides
once on both, at the step's instant, as the story states (`after`: "the step's edit and decision
happen then"). The ticket in the sandbox must then show the step's `expect` (labels, owner, one
new note exactly when expected, with its words), and the timer loop must have enqueued exactly
one SLA event for the ticket in the steps whose `expect.fired` is not empty, and none in the
others (a paused ticket fires nothing; nothing fires twice). The clocks the service keeps are
those of the pure replay (`replay`), as `tierdesk explain --json --now` shows them from the
inbox's recorded history (its functions, webhooks/cli/sla.py, called in process).

Thresholds that fall due before the step's instant (five-level's warning at 13:03:45 UTC, step
at 13:15) are acted on at the step's instant together with its edit, as in the pure replay; an
SLA firing on its own at its due instant is tests/e2e/test_sla.py's subject (16-second targets).
No reference policy maps an SLA due field (`sla.due_field`), so no step writes one here.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.e2e.harness import HarnessError, InboxView, figure, served_in_thread
from tests.policies.stories import TicketStory, load_story, replay, story_paths
from tests.policies.test_stories_e2e import Replay, Site, seen_problems, story_site, story_want
from webhooks.cli.sla import clocks_view, ticket_clocks
from webhooks.inbox.schema import SLA_DUE_EVENT
from webhooks.service import Service, build_server, build_service
from webhooks.settings import ENV_PREFIX, Settings, load_settings

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


class StoryClock:
    """The settable epoch-seconds clock the service and the test share (forward only)."""

    def __init__(self, start: datetime) -> None:
        self.now = start.timestamp()

    def __call__(self) -> float:
        return self.now

    def at(self) -> datetime:
        return datetime.fromtimestamp(self.now, UTC)

    def move_to(self, when: datetime) -> None:
        assert when.timestamp() >= self.now, f"story time cannot go back to {when}"
        self.now = when.timestamp()


def settings_of(env: dict[str, str]) -> Settings:
    """The service's settings from the `TIERDESK_*` variables of `env` alone (no .env file,
    whatever the test process's own environment holds), with the receiver's commits in a
    thread of this process, so they are dated by the story clock too."""
    values: dict[str, Any] = {k.removeprefix(ENV_PREFIX).lower(): v for k, v in env.items()
                              if k.startswith(ENV_PREFIX)}
    values["inbox_writer"] = "thread"
    return load_settings(_env_file=None, **values)


@dataclass
class StoryTime:
    """A story's sandbox and the real service on it, all in story time."""

    site: Site
    clock: StoryClock
    worker: Service
    inbox: InboxView
    replay: Replay
    #: Tickets decided by the worker side, in all (a figure).
    decided: int = 0
    timer_events: dict[str, int] = field(default_factory=dict)

    def move_to(self, when: datetime) -> None:
        """Story time `when`, for the service and the sandbox alike."""
        if when.timestamp() > self.clock.now:
            self.clock.move_to(when)
            self.site.sandbox.client.set_clock(when)

    def settle(self, rounds: int = 30) -> None:
        """Run the worker side as `tierdesk worker --once` does (due timers into events, drain,
        notices) until the sandbox delivers nothing more and nothing is left to do."""
        pool = self.worker.pool
        assert pool is not None and pool.timers is not None
        client = self.site.sandbox.client
        for _ in range(rounds):
            if not client.wait_deliveries(timeout=30):
                raise HarnessError(f"sandbox deliveries still in flight: {client.state()}")
            enqueued = pool.timers.run_once()
            done = pool.workers[0].drain()
            if pool.notify is not None:
                pool.notify.send_due()
            self.decided += done
            if not enqueued and not done and client.wait_deliveries(timeout=30):
                if self.inbox.pending():
                    raise HarnessError(
                        f"events left pending at {self.clock.at()}: {self.inbox.statuses()}"
                        " (a retry waits for a time the story clock does not reach)")
                return
        raise HarnessError(f"the service did not settle in {rounds} rounds")


def timed_tickets(site: Site) -> list[TicketStory]:
    return [t for t in site.story.tickets if t.timed]


@contextmanager
def story_time(vendor: str, story_name: str) -> Iterator[StoryTime]:
    """The story's sandbox with its clock stopped a minute before the first timed ticket's
    creation, the receiver serving on the port its webhooks were installed with, and the worker
    side. (The installation is dated before the creation: the Jira sandbox dates each change at
    least 1 ms after the one before, so a ticket created at the very instant of the install
    would be created 1 ms late, and every threshold would fall 1 ms after its step.)"""
    story = load_story(next(p for p in story_paths() if p.stem == story_name))
    start = min(t.created_at for t in story.tickets if t.timed) - timedelta(minutes=1)
    with story_site(vendor, story_name, clock=start) as site:
        clock = StoryClock(start)
        settings = settings_of(site.env)
        server, receiver = build_server(settings, with_worker=False, host="127.0.0.1",
                                        port=site.port, clock=clock)
        try:
            worker = build_service(settings, with_worker=True, clock=clock)
            try:
                with served_in_thread(server):
                    yield StoryTime(site, clock, worker, InboxView(site.workdir / "inbox.db"),
                                    site.replay())
            finally:
                worker.inbox.close()
        finally:
            receiver.inbox.close()


def _explain(run: StoryTime, ref: str) -> dict[str, Any]:
    """The SLA part of `tierdesk explain <vendor> <ref> --json --now <story time>`: the same
    functions (webhooks/cli/sla.py), called in this process on the worker side's inbox."""
    now = run.clock.at()
    policy = run.worker.policy
    return clocks_view(ticket_clocks(run.worker.inbox, policy, run.site.vendor, ref, now),
                       policy, now)


def story_time_problems(run: StoryTime) -> list[str]:
    """Play every step of every timed ticket in story time; one line per difference."""
    site, policy, desk = run.site, run.site.policy, run.site.desk
    tickets = timed_tickets(site)
    plays = sorted(((t.step_at(i), n, i) for n, t in enumerate(tickets)
                    for i in range(len(t.steps))), key=lambda p: (p[0], p[1], p[2]))
    pure = {t.name: list(replay(t, policy)) for t in tickets}
    owners: dict[str, object] = {}
    notes: dict[str, int] = {}
    problems: list[str] = []
    for at, n, i in plays:
        t = tickets[n]
        step = t.steps[i]
        where = f"{t.name} step {i + 1} at {at:%a %H:%M} UTC ({step.say})"
        run.move_to(at)
        mark = run.inbox.last_id()
        for act in desk.acts(t, i):
            desk.act(t, act)
        run.settle()
        ref = desk.refs[t.name]  # type: ignore[attr-defined]
        fired = [e for e in run.inbox.events(after=mark)
                 if e["event_type"] == SLA_DUE_EVENT and e["ticket"] == ref]
        run.timer_events[t.name] = run.timer_events.get(t.name, 0) + len(fired)
        if len(fired) != (1 if step.expect.fired else 0):
            problems.append(f"{where}: the timer loop enqueued {len(fired)} SLA events,"
                            f" expected {'one' if step.expect.fired else 'none'}"
                            f" (thresholds {step.expect.fired})")
        state = site.sandbox.client.state()
        problems += seen_problems(run.replay, t, state, story_want(t, i), where, owners, notes)
        clocks = pure[t.name][i].clocks
        if clocks is not None:
            problems += _clock_problems(run, ref, where, [c.to_dict() for c in clocks.clocks])
    return problems


def _clock_problems(run: StoryTime, ref: str, where: str, want: list[dict[str, Any]]
                    ) -> list[str]:
    """The clocks `tierdesk explain` recomputes from the inbox's history at story time are the
    pure replay's (`want`): each clock's state and due time."""
    sla = _explain(run, ref)
    got = {c["clock"]: (c["state"], c["due"]) for c in sla["clocks"]}
    expected = {c["clock"]: (c["state"], c["due"]) for c in want}
    if got != expected:
        return [f"{where}: explain shows clocks {got}, the pure replay {expected}"]
    return []


STORIES = [p.stem for p in story_paths()]


@pytest.mark.parametrize("vendor", ["zendesk", "jira"])
@pytest.mark.parametrize("story_name", STORIES)
def test_timed_story_in_story_time(story_name: str, vendor: str) -> None:
    """Every step of the story's timed tickets, warnings, notes, breaches and escalations
    through the gates included, comes out on the vendor's ticket as the story states it, with
    the real receiver, inbox, timer loop, worker and connectors on a real sandbox in story
    time."""
    started = time.monotonic()
    with story_time(vendor, story_name) as run:
        assert timed_tickets(run.site), f"{story_name} has no timed ticket"
        assert story_time_problems(run) == []
        steps = sum(len(t.steps) for t in timed_tickets(run.site))
        figure(f"story time {story_name} ({vendor})", "steps / SLA timer events / worker claims",
               f"{steps} / {sum(run.timer_events.values())} / {run.decided}")
    figure(f"story time {story_name} ({vendor})", "seconds", f"{time.monotonic() - started:.1f}")
