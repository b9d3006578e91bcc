"""The service's SLA work (issue 18): the worker's SLA step, the ticket's next timer, the timer
loop that turns due timers into work, and the recomputation of every timer after a reload.

Per evaluated ticket, when the policy has SLA clocks (`SlaStep.evaluate`):

    1. marks    = what the ticket in hand shows: its creation, its status at its update time,
                  and the tier the decision puts it in (a tier entry when it changes)
    2. history  = the recorded marks and fired keys (Inbox.sla_state: one inbox read) with
                  the marks in hand, in memory
    3. report   = tiering.sla.sla_for(history, plan, tier, priority, now)   pure
    4. outcome  = tiering.sla_actions.apply_clocks(ticket, policy, decision, report,
                                                   fired=the fired keys read in 2)
    5. timer    = the soonest threshold still ahead (the clocks under the final tier)
    6. the worker applies outcome.decision, and Inbox.complete records the marks, the keys
       fired, the notices and the timer in the decision's transaction: a threshold counts as
       fired exactly when the decision that acted on it is recorded.

Timers (`TimerLoop`, one per process, beside the worker threads): sleep until the soonest due
timer (woken at once when this process sets a nearer one; at most `poll` seconds, to see timers
other processes set), lease the due ones, and turn each into a `tierdesk:sla-due` event of its
ticket (Inbox.enqueue_due_timers: exactly once per due instant, whatever the number of loops).
The worker then processes the ticket as for any event, so a firing is serialised with the
ticket's other work; the synthetic event has no vendor body, so the ticket is read
(the vendor's `requeue_body`: one read).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from connectors.base import VENDORS
from tiering.engine import DecideFunction
from tiering.models import Decision, Ticket
from tiering.policy import Policy
from tiering.sla import SlaReport, TicketHistory, sla_for
from tiering.sla_actions import Crossing, apply_clocks, threshold_key
from webhooks.inbox.records import CLEAR_TIMER, Claim, Notice, SlaMark, SlaTimer, SlaWrite
from webhooks.inbox.schema import (
    MARK_CREATED,
    MARK_REPLY,
    MARK_STATUS,
    MARK_TIER,
    SLA_DUE_EVENT,
)
from webhooks.inbox.sla_store import check_mark, history_from_marks
from webhooks.inbox.store import Inbox
from webhooks.logging import log
from webhooks.metrics import Metrics


def payloads_for(claim: Claim) -> list[Mapping[str, Any]]:
    """The payloads the connector decides on: the vendor's own bodies; a claim of synthetic
    SLA events only stands in with the vendor's reference body (a read of the ticket)."""
    real: list[Mapping[str, Any]] = [
        e.payload for e in claim.events if e.event_type != SLA_DUE_EVENT]
    if real:
        return real
    # The vendor's requeue body names only the ticket, so the connector reads it fresh (the
    # same body `tierdesk backfill` and `plan --apply` queue); dated at the latest due instant.
    due_ms = int(max(due_instants(claim), default=0.0) * 1000)
    return [VENDORS[claim.vendor].requeue_body(claim.ticket, SLA_DUE_EVENT, now_ms=due_ms)]


def due_instants(claim: Claim) -> list[float]:
    """The due instants of the claim's synthetic SLA events (for the timer-lag histogram)."""
    out: list[float] = []
    for e in claim.events:
        if e.event_type == SLA_DUE_EVENT:
            due = e.payload.get("due_at")
            if isinstance(due, int | float) and not isinstance(due, bool):
                out.append(float(due))
    return out


def _vendor_time(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        return None
    return when.astimezone(UTC) if when.tzinfo is not None else None


def observed_marks(ticket: Ticket, now: datetime) -> list[SlaMark]:
    """What the ticket in hand shows of its history: its creation, its status as of its last
    update and its first public agent reply (each not later than `now`, not before its creation)."""
    marks: list[SlaMark] = []
    created = ticket.created_at
    if created is not None:
        marks.append(SlaMark(MARK_CREATED, created.timestamp()))
    if ticket.status is not None:
        at = _vendor_time(ticket.updated_at) or now
        at = min(at, now)
        if created is not None:
            at = max(at, created)
        marks.append(SlaMark(MARK_STATUS, at.timestamp(), ticket.status))
    if ticket.first_reply_at is not None:
        # A reply the vendor dates after `now` (its clock ahead of ours, or Jira dating each
        # change a little after the one before) has happened by now, since its event is in
        # hand: it is recorded at `now`, as the status is, rather than dropped.
        reply = min(ticket.first_reply_at, now)
        if created is not None:
            reply = max(reply, created)
        marks.append(SlaMark(MARK_REPLY, reply.timestamp()))
    return marks


def _tier_mark(history: TicketHistory | None, marks: Sequence[SlaMark], tier: str | None,
               now: datetime) -> SlaMark | None:
    """A tier entry at `now` when `tier` is not the ticket's latest recorded tier."""
    if tier is None:
        return None
    latest = None
    if history is not None and history.tiers:
        latest = history.tiers[-1].tier
    for m in marks:
        if m.kind == MARK_TIER:
            latest = m.value
    return None if latest == tier else SlaMark(MARK_TIER, now.timestamp(), tier)


def next_timer(
    vendor: str,
    key: str,
    report: SlaReport,
    *,
    fired: frozenset[str],
    policy: Policy,
    plan: str | None,
    tier: str | None,
    priority: str | None,
) -> SlaTimer | str:
    """The ticket's timer for `report`: due at the soonest threshold ahead, or now when a
    crossed threshold was never acted on (a reload shortened a target, say); CLEAR_TIMER when no
    clock is open."""
    open_clocks = [c for c in report.clocks if c.state != "stopped"]
    if not open_clocks:
        return CLEAR_TIMER
    due: datetime | None = report.next_change
    clock = next((c for c in open_clocks if c.next_change == due), None) if due else None
    fraction: float | None = None
    if clock is not None:
        # Thresholds are crossed in order: the next one is the first not crossed yet.
        marks = [*clock_fractions(policy), 1.0]
        fraction = marks[len(clock.crossed)] if len(clock.crossed) < len(marks) else None
    for c in open_clocks:
        missed = [t for t in c.crossed
                  if threshold_key(c.clock, c.started_at, t.fraction) not in fired]
        if missed:
            due, clock, fraction = report.now, c, missed[0].fraction
            break
    breaches = [c.due for c in open_clocks if c.due is not None]
    return SlaTimer(
        vendor=vendor, ticket=key, due_at=due.timestamp() if due else None,
        clock=clock.clock if clock else None, fraction=fraction,
        breach_at=min(breaches).timestamp() if breaches else None,
        policy_digest=policy.digest, plan=plan, tier=tier, priority=priority,
        clocks=tuple(c.to_dict() for c in report.clocks), open_clocks=len(open_clocks),
    )


def clock_fractions(policy: Policy) -> list[float]:
    spec = policy.sla.spec
    return sorted(spec.warn_at) if spec is not None else []


@dataclass(frozen=True)
class SlaPlan:
    """The SLA side of one evaluation: the decision to apply (the engine's with the SLA
    actions merged in), what `complete` records, the thresholds acted on, and how to decide
    again on fresh state (a Zendesk 409) with the same actions."""

    decision: Decision
    write: SlaWrite | None
    crossings: tuple[Crossing, ...] = ()
    redecide: Callable[[Ticket], Decision] | None = None


class SlaStep:
    """The worker's SLA step (module docstring); the worker calls `evaluate` after `decide`."""

    def __init__(self, inbox: Inbox) -> None:
        self.inbox = inbox

    def evaluate(
        self,
        vendor: str,
        ticket: Ticket,
        decision: Decision,
        policy: Policy,
        *,
        now: datetime,
        decide: DecideFunction,
    ) -> SlaPlan:
        if not policy.sla.enabled:
            return SlaPlan(decision=decision, write=None)
        marks = observed_marks(ticket, now)
        # One read for the recorded marks and fired keys; every history below is built from
        # them in memory (the tier entries this evaluation adds are marks too).
        recorded, fired = self.inbox.sla_state(vendor, ticket.key)
        for mark in marks:
            check_mark(mark)

        def history_with(extra: Sequence[SlaMark]) -> TicketHistory | None:
            return history_from_marks([*recorded, *extra])

        history = history_with(marks)
        entered = _tier_mark(history, marks, decision.tier, now)
        if entered is not None:
            marks.append(entered)
            history = history_with(marks)
        if history is None:
            # The creation is unknown (the vendor sent no created time): no clock can run.
            return SlaPlan(decision=decision,
                           write=SlaWrite(marks=_new_marks(marks, recorded)))

        def clocks(tier: str | None, at_history: TicketHistory) -> SlaReport:
            return sla_for(at_history, policy.sla, plan=decision.plan, tier=tier,
                           priority=ticket.priority, now=now,
                           unmeasured=VENDORS[vendor].unmeasured_clocks)

        report = clocks(decision.tier, history)
        outcome = apply_clocks(ticket, policy, decision, report, fired=fired, now=now)
        final = outcome.decision
        if final.tier != decision.tier:
            # Escalated by the breach action: the new tier's clocks start now.
            moved = _tier_mark(history, marks, final.tier, now)
            if moved is not None:
                marks.append(moved)
                again = history_with(marks)
                if again is not None:
                    history = again
            report = clocks(final.tier, history)
        timer = next_timer(vendor, ticket.key, report, fired=fired | outcome.fired,
                           policy=policy, plan=final.plan, tier=final.tier,
                           priority=ticket.priority)
        notices = tuple(
            Notice(notice_key=f"{vendor}|{n.notice_key}", url=n.url, body={"text": n.text})
            for n in outcome.notices
        )

        def redecide(fresh: Ticket) -> Decision:
            base = decide(fresh, policy, now=now)
            return apply_clocks(fresh, policy, base, clocks(base.tier, history),
                                fired=fired, now=now).decision

        write = SlaWrite(marks=_new_marks(marks, recorded), fired=tuple(sorted(outcome.fired)),
                         notices=notices, timer=timer)
        return SlaPlan(decision=final, write=write, crossings=outcome.crossings,
                       redecide=redecide)


def _new_marks(marks: Sequence[SlaMark], recorded: Sequence[SlaMark]) -> tuple[SlaMark, ...]:
    """`marks` without those recorded already, exactly (kind, instant, value): writing them
    again would change nothing (the marks' unique key), and costs statements in the
    decision's transaction. A due event's ticket usually shows only what is recorded."""
    known = {(m.kind, m.at, m.value) for m in recorded}
    return tuple(m for m in marks if (m.kind, m.at, m.value[:64]) not in known)


def observe_sla(metrics: Metrics, claim: Claim, plan: SlaPlan, *, done_at: float) -> None:
    """After a decision was applied and recorded: count the thresholds acted on, observe each
    due timer's lag (its due instant to now) and log the crossings."""
    for c in plan.crossings:
        counter = metrics.sla_breaches if c.kind == "breach" else metrics.sla_warnings
        counter.labels(claim.vendor, c.clock.clock).inc()
        log("sla threshold acted on", vendor=claim.vendor, ticket=claim.ticket,
            clock=c.clock.clock, kind=c.kind, key=c.key)
    for due in due_instants(claim):
        metrics.sla_timer_lag.labels(claim.vendor).observe(max(0.0, done_at - due))


def without_actions(write: SlaWrite | None, *, now: float) -> SlaWrite | None:
    """`write` without the thresholds and notices (the decision that would have acted on them
    was not applied: the label-loop guard halted it), keeping the history and the timer, which
    is then due at once so the thresholds are acted on when writing resumes."""
    if write is None:
        return None
    timer = write.timer
    if isinstance(timer, SlaTimer) and write.fired:
        timer = replace(timer, due_at=now)
    return replace(write, fired=(), notices=(), timer=timer)


# --------------------------------------------------------------------------- after a reload


def recompute_timers(inbox: Inbox, policy: Policy, *, now: datetime) -> int:
    """Recompute every open timer under `policy` from its ticket's recorded history (a policy
    reload: targets, calendars and pauses may have changed); return how many changed. Tickets
    whose clocks all stop under the new policy lose their timer."""
    changed = 0
    for timer in inbox.iter_timers():
        if not policy.sla.enabled:
            inbox.clear_timer(timer.vendor, timer.ticket)
            changed += 1
            continue
        history = inbox.sla_history(timer.vendor, timer.ticket)
        if history is None:
            continue
        report = sla_for(history, policy.sla, plan=timer.plan, tier=timer.tier,
                         priority=timer.priority, now=now,
                         unmeasured=VENDORS[timer.vendor].unmeasured_clocks)
        fired = inbox.sla_fired_keys(timer.vendor, timer.ticket)
        new = next_timer(timer.vendor, timer.ticket, report, fired=fired, policy=policy,
                         plan=timer.plan, tier=timer.tier, priority=timer.priority)
        if new == CLEAR_TIMER:
            inbox.clear_timer(timer.vendor, timer.ticket)
            changed += 1
        elif isinstance(new, SlaTimer) and (
            new.due_at != timer.due_at or new.breach_at != timer.breach_at
            or new.policy_digest != timer.policy_digest
        ):
            inbox.set_timer(new)
            changed += 1
    return changed


# --------------------------------------------------------------------------- the timer loop


class TimerLoop:
    """Turns due SLA timers into events of their tickets (module docstring). One per process."""

    def __init__(
        self,
        inbox: Inbox,
        *,
        wake_workers: Callable[[], None] = lambda: None,
        lease_seconds: float = 5.0,
        batch: int = 200,
        poll: float = 0.5,
    ) -> None:
        self.inbox = inbox
        self.wake_workers = wake_workers
        #: Claim and enqueue are two short transactions back to back: a loop that dies between
        #: them (SIGKILL) delays those timers by at most this.
        self.lease_seconds = lease_seconds
        #: Timers leased per claim and enqueued per transaction (set-based statements; the
        #: workers are woken once per batch).
        self.batch = batch
        self.poll = poll
        self._wake = threading.Event()
        inbox.add_timer_listener(self._nearer)

    def _nearer(self, due_at: float) -> None:
        self._wake.set()

    def run_once(self) -> int:
        """Enqueue the timers due now; return how many were claimed."""
        claimed = self.inbox.claim_due_timers(lease_seconds=self.lease_seconds,
                                              limit=self.batch)
        if not claimed:
            return 0
        done = self.inbox.enqueue_due_timers(claimed)
        if done:
            self.wake_workers()
            log("sla timers due", level=10, enqueued=len(done),
                tickets=[f"{t.vendor}:{t.ticket}" for t in done[:20]])
        return len(claimed)

    def run(self, stop: threading.Event) -> None:
        log("sla timer loop started", poll=self.poll)
        while not stop.is_set():
            # Cleared before looking: a nearer timer set from now on cuts the wait short.
            self._wake.clear()
            try:
                if self.run_once():
                    continue  # more may be due at once
                soonest = self.inbox.next_timer_in()
            except Exception as exc:  # the database is down: wait and try again
                log("sla timer loop cannot reach the inbox", level=40, error=repr(exc)[:300])
                stop.wait(self.poll * 4)
                continue
            wait = self.poll if soonest is None else min(self.poll, soonest)
            if wait > 0:
                self._wake.wait(wait)
        log("sla timer loop stopped")

    def stop(self) -> None:
        self._wake.set()
