"""The worker: claims one ticket's pending events, decides once on its current state, applies.

Per claimed ticket (see connectors/base.py for the connector's side):

    1. events whose actor is tierdesk's own bot: all of them -> done, no request at all
    2. ticket   = connector.current_ticket(payloads in arrival order, fresh=..., last_note_key=...)
                  fresh when an event was claimed before (a write may have landed) or arrived
                  out of order (older than the newest event already processed)
    3. decision = tiering.decide(ticket, policy, now=...), then the SLA step (webhooks/sla_work.py):
                  clocks from the recorded history, crossed thresholds acted on once
                  (tiering.sla_actions), the ticket's next timer
    4. applied  = connector.apply(ticket, decision, decide=...)   0 or 1 write (JSM notes: 2)
                  unless the label-loop guard (webhooks/loops.py, one inbox read) finds another
                  tool rewriting the ticket's labels: then only its one note, or nothing
    5. record the decision (with the SLA marks, fired thresholds, notices and next timer, in
       one transaction), remember the note posted, mark the events done

Failures:

    RateLimited          retry at max(backoff, Retry-After) and close the vendor's limit
                         (connectors/vendor_limit.py: every thread, and through the inbox every
                         process) until Retry-After has passed (the limit is per account)
    VendorUnavailable    retry with exponential backoff and jitter (connectors/retry.py);
                         a 503 with Retry-After pauses the vendor like a 429
    CredentialsRejected  401: pause the vendor for CREDENTIALS_PAUSE s and hand the ticket back
                         (no attempt counted: the events wait for the fixed setting); logged
                         once per pause, so once a minute; /readyz lists the pause
    ConfigurationRejected  dead letter at once, its message starting with the policy key or
                         setting to fix; counted in tierdesk_configuration_refusals{reason}
    VendorRejected       dead letter at once, with the vendor's error text
    PayloadInvalid       dead letter at once (the stored payload can never be understood)
    crash or hang        the lease expires and the events are claimed again; an event claimed
                         `max_attempts` times without an evaluation finishing is dead-lettered
                         ("evaluation did not finish"), the others go on (Inbox.claim)
    anything else        a bug: logged with its traceback, retried like an outage, so that a fix
                         deployed later still processes the event

After `max_attempts` failed attempts an event becomes a dead letter (`tierdesk dead-letters`).
A dead SLA due event re-arms its ticket's timer in the same transaction, with a backoff
(Inbox._rearm_dead: nothing is lost), counted in tierdesk_sla_timer_rearms and logged.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from connectors.base import (
    Applied,
    ConfigurationRejected,
    Connector,
    CredentialsRejected,
    PayloadInvalid,
    RateLimited,
    VendorRejected,
    VendorUnavailable,
)
from connectors.retry import RetryStrategy
from connectors.vendor_limit import VendorLimit, VendorPaused
from tiering.engine import DecideFunction
from tiering.engine import decide as engine_decide
from tiering.models import Decision, Ticket
from tiering.policy import Policy
from webhooks.inbox.records import Claim, DecisionRecord, SlaRearm, SlaWrite
from webhooks.inbox.schema import CREDENTIALS_PAUSE_PREFIX, SLA_DUE_EVENT, UNFINISHED_ERROR
from webhooks.inbox.store import Inbox
from webhooks.logging import LogThrottle, log
from webhooks.loops import LOOP_HALTED, LoopGuard, LoopVerdict
from webhooks.metrics import Metrics
from webhooks.sla_work import (
    SlaPlan,
    SlaStep,
    observe_sla,
    payloads_for,
    without_actions,
)

#: Seconds a vendor is paused after it refused tierdesk's credentials (401): one request a
#: minute finds out whether the setting was fixed, and the warning is logged once a minute.
CREDENTIALS_PAUSE = 60.0

#: Outcomes recorded with each evaluation.
APPLIED = "applied"
UNCHANGED = "unchanged"
OWN_EVENT = "own-event"
RETRY = "retry"
DEAD = "dead"


class Worker:
    """Processes the inbox with the given connectors. Thread-safe: run several on one inbox."""

    def __init__(
        self,
        *,
        inbox: Inbox,
        connectors: Mapping[str, Connector],
        policy: Policy,
        decide: DecideFunction | None = None,
        max_attempts: int = 8,
        lease_seconds: float = 120.0,
        retry_max_delay: float = 600.0,
        retry_initial_delay: float = 1.0,
        metrics: Metrics | None = None,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        name: str = "worker",
        limits: Mapping[str, VendorLimit] | None = None,
        throttle: LogThrottle | None = None,
        loop_guard: LoopGuard | None = None,
    ) -> None:
        self.inbox = inbox
        self.connectors = dict(connectors)
        self.policy = policy
        #: A new policy and its connectors, taken up between two tickets (`swap`).
        self._next: tuple[Policy, dict[str, Connector]] | None = None
        self._decide: DecideFunction = decide or engine_decide
        self.max_attempts = max_attempts
        self.lease_seconds = lease_seconds
        self.retry = RetryStrategy(initial=retry_initial_delay, maximum=retry_max_delay)
        self.metrics = metrics or Metrics()
        self.now = now
        self.name = name
        #: Each vendor's one rate-limit owner in this process, shared by every worker thread and
        #: the connectors' sessions (webhooks/service.py); built here (on the inbox) if not given.
        self.limits: dict[str, VendorLimit] = dict(limits or {})
        #: Says whether a repeated warning is due (shared by the process's workers).
        self.throttle = throttle or LogThrottle(inbox.clock)
        #: Stops writing to a ticket whose labels another tool keeps rewriting (webhooks/loops.py).
        self.loop_guard = loop_guard or LoopGuard()
        #: SLA clocks, actions and timers (webhooks/sla_work.py).
        self.sla = SlaStep(inbox)
        self._wake = threading.Event()

    @property
    def decide(self) -> DecideFunction:
        """The policy engine's decide (tiering.decide unless a test passed another)."""
        return self._decide

    def wake(self) -> None:
        """New work was stored: stop idling now (the receiver calls this)."""
        self._wake.set()

    def run(self, stop: threading.Event, *, idle: float = 0.25) -> None:
        """Process until `stop` is set; the ticket in hand is finished first."""
        log("worker started", worker=self.name, vendors=sorted(self.connectors))
        while not stop.is_set():
            try:
                worked = self.run_once()
            except Exception as exc:  # the database is down: wait and try again
                log("worker cannot reach the inbox", level=40, worker=self.name,
                    error=repr(exc)[:300])
                stop.wait(idle * 5)
                continue
            if worked:
                continue
            try:
                soonest = self.inbox.next_ready_in(list(self.connectors))
            except Exception:
                soonest = None
            wait = idle if soonest is None else min(idle, max(0.01, soonest))
            self._wake.wait(wait)
            self._wake.clear()
        log("worker stopped", worker=self.name)

    def swap(self, policy: Policy, connectors: Mapping[str, Connector]) -> None:
        """Use `policy` (and `connectors` built for it) from the next ticket on: a reload never
        changes the policy in the middle of one ticket's decision."""
        self._next = (policy, dict(connectors))
        self.wake()

    def run_once(self) -> bool:
        """Claim and process one ticket; False when nothing was ready."""
        if self._next is not None:
            (self.policy, self.connectors), self._next = self._next, None
        if not self.connectors:
            return False
        claim = self.inbox.claim(lease_seconds=self.lease_seconds, vendors=list(self.connectors),
                                 max_unfinished=self.max_attempts, on_rearm=self._rearmed)
        if claim is None:
            return False
        if claim.dead_on_claim:
            # Poison pills: evaluations of these events crashed or hung MAX_ATTEMPTS times.
            self.metrics.dead_lettered.labels(claim.vendor).inc(len(claim.dead_on_claim))
            log("events dead-lettered", level=40, vendor=claim.vendor, ticket=claim.ticket,
                error=UNFINISHED_ERROR.format(claims=self.max_attempts),
                dead_letters=list(claim.dead_on_claim))
        if not claim.events:
            return True  # the inbox gave the ticket back already
        self.process(claim)
        return True

    def vendor_limit(self, vendor: str) -> VendorLimit:
        """`vendor`'s rate-limit owner (one on the inbox's pause record, made on first use when
        the service gave none)."""
        found = self.limits.get(vendor)
        if found is None:
            found = self.limits.setdefault(
                vendor, VendorLimit(vendor, record=self.inbox, clock=self.inbox.clock))
        return found

    def drain(self, *, limit: int = 100_000) -> int:
        """Process until nothing is ready (tests, `tierdesk worker --once`); return tickets done."""
        done = 0
        while done < limit and self.run_once():
            done += 1
        return done

    # ------------------------------------------------------------------ one ticket

    def process(self, claim: Claim) -> None:
        connector = self.connectors[claim.vendor]
        ids = tuple(e.id for e in claim.events)
        fields: dict[str, Any] = {
            "vendor": claim.vendor,
            "ticket": claim.ticket,
            "delivery_id": claim.events[-1].delivery_id,
            "events": len(claim.events),
        }
        if all(connector.is_own_event(e.envelope()) for e in claim.events):
            # Loop safety: tierdesk's own write came back as a webhook; nothing to do.
            self.inbox.complete(
                claim,
                record=DecisionRecord(vendor=claim.vendor, ticket=claim.ticket,
                                      outcome=OWN_EVENT, event_ids=ids),
            )
            self.metrics.decisions.labels(claim.vendor, OWN_EVENT).inc()
            log("own event dropped", **fields)
            return
        closed = self.vendor_limit(claim.vendor).closed_for()
        if closed > 0:
            # Another thread of this process (or another replica) was just rate limited.
            self._hand_back(claim, closed, "rate limited (another thread or replica)", fields)
            return
        # Fresh state when an earlier holder of these events failed or crashed (its write may
        # have landed), or when an event is older than one already processed (out of order).
        # A snapshot taken before tierdesk's own last write or fresh read (a late or reordered
        # delivery) is stale too: deciding on it would undo what tierdesk already knows.
        newest_known = max(claim.last_occurred_at or 0, claim.known_at or 0)
        fresh = any(e.attempts > 0 or e.claims > 1 for e in claim.events) or any(
            e.occurred_at is not None and e.occurred_at < newest_known for e in claim.events
        )
        read_started = int(self.inbox.clock() * 1000)
        decision: Decision | None = None
        ticket: Ticket | None = None
        halt: LoopVerdict | None = None
        try:
            try:
                ticket = connector.current_ticket(
                    payloads_for(claim), fresh=fresh, last_note_key=claim.last_note_key,
                )
            except PayloadInvalid:
                if len(claim.events) == 1:
                    raise
                # One malformed event must not take the well-formed ones with it: find it,
                # dead-letter it alone, and decide on the rest.
                claim, ticket = self._without_malformed(claim, connector, fresh, fields)
            if not fresh and claim.last_note_key and ticket.last_note_key != claim.last_note_key:
                # A payload-only ticket carries the note the inbox knows tierdesk posted last
                # (connectors/base.py). A late or reordered webhook's payload may show an older
                # note marker; believing it would post the current checklist again.
                ticket = replace(ticket, last_note_key=claim.last_note_key)
            now = self.now()
            decision = self.decide(ticket, self.policy, now=now)
            sla = self._sla(claim, ticket, decision, now)
            decision = sla.decision
            if self.vendor_limit(claim.vendor).closed_for() > 0:
                raise _LimitClosed  # rate limited meanwhile: write later, after Retry-After
            if self.inbox.clock() > claim.lease_until - self.lease_seconds / 2:
                # A slow read used up half the lease: renew it before writing, and write
                # nothing if another worker has taken the ticket over meanwhile.
                renewed = self.inbox.extend(claim, lease_seconds=self.lease_seconds)
                if renewed is None:
                    raise _LeaseLost
                claim = renewed
            halt = self._loop_verdict(claim, decision)
            write_started = time.monotonic()
            if halt is not None:
                # Another tool keeps undoing tierdesk's labels: post the one note (if not yet
                # posted in this halt) and nothing else; the unchanged decision costs no write.
                note = halt.note
                applied = connector.apply(
                    ticket,
                    note if note is not None else _unchanged(decision),
                    decide=lambda t: note if note is not None else _unchanged(decision),
                )
            else:
                applied = connector.apply(
                    ticket, decision,
                    decide=sla.redecide or (lambda t: self.decide(t, self.policy, now=now)),
                )
            if applied.wrote:
                self.metrics.write_latency.labels(claim.vendor).observe(
                    time.monotonic() - write_started
                )
        except _LimitClosed:
            self.inbox.release(claim)
            return
        except VendorPaused as exc:
            # Nothing was sent: a sibling's refusal closed the vendor's limit meanwhile.
            self._hand_back(claim, exc.retry_after or 0.0, str(exc), fields)
            return
        except _LeaseLost:
            log("lease lost before the write: left to the new holder", level=30, **fields)
            return
        except RateLimited as exc:
            self._retry(claim, exc, exc.retry_after, decision, ticket, fields, pause=True)
            return
        except VendorUnavailable as exc:
            self._retry(claim, exc, exc.retry_after, decision, ticket, fields,
                        pause=exc.retry_after is not None)
            return
        except CredentialsRejected as exc:
            self._credentials_refused(claim, exc, fields)
            return
        except (VendorRejected, PayloadInvalid) as exc:
            self._dead(claim, exc, decision, ticket, fields)
            return
        except Exception as exc:
            log("processing failed unexpectedly", level=40, error=repr(exc)[:500],
                exc_info_text=_traceback(exc), **fields)
            self._retry(claim, exc, None, decision, ticket, fields, pause=False)
            return
        known_at: int | None = read_started if fresh else None
        if applied.wrote:
            known_at = int(self.inbox.clock() * 1000)
        if halt is not None:
            log("label loop: tierdesk stopped writing to the ticket", level=30,
                labels=list(halt.labels), note_posted=halt.note is not None, **fields)
            self._done(claim, ticket, decision, applied, fields, known_at, outcome=LOOP_HALTED,
                       sla=without_actions(sla.write, now=self.inbox.clock()))
            return
        self._done(claim, ticket, decision, applied, fields, known_at, sla=sla.write)
        observe_sla(self.metrics, claim, sla, done_at=self.inbox.clock())

    def _without_malformed(
        self, claim: Claim, connector: Connector, fresh: bool, fields: dict[str, Any]
    ) -> tuple[Claim, Ticket]:
        """The claim without its malformed events (dead-lettered), and the ticket from the rest.

        Each event is tried alone, newest arrival first (the newest is the payload a connector
        decides on, so usually the first try finds it; a complete payload costs no request, an
        incomplete one the read it would cost anyway). Raises the last PayloadInvalid when no
        single event is to blame (then the whole group is dead-lettered, as before)."""
        while True:
            culprit = None
            for event in reversed(claim.events):
                if event.event_type == SLA_DUE_EVENT:
                    continue  # tierdesk's own timer event: no vendor body to be malformed
                try:
                    connector.current_ticket([event.payload], fresh=False,
                                             last_note_key=claim.last_note_key)
                except PayloadInvalid as refused:
                    culprit = (event, refused)
                    break
            if culprit is None:
                return claim, connector.current_ticket(
                    payloads_for(claim), fresh=fresh, last_note_key=claim.last_note_key)
            event, problem = culprit
            error = _error_text(problem)
            claim = self.inbox.dead_letter_events(claim, [event.id], error=error,
                                                  on_rearm=self._rearmed)
            self.metrics.dead_lettered.labels(claim.vendor).inc()
            log("events dead-lettered", level=40, error=error, dead_letters=[event.id],
                **{**fields, "delivery_id": event.delivery_id})
            fields["events"] = len(claim.events)
            try:
                return claim, connector.current_ticket(
                    payloads_for(claim), fresh=fresh, last_note_key=claim.last_note_key)
            except PayloadInvalid:
                if len(claim.events) == 1:
                    raise

    # ------------------------------------------------------------------ SLA (issue 18)

    def _sla(self, claim: Claim, ticket: Ticket, decision: Decision, now: datetime) -> SlaPlan:
        """The SLA step (webhooks/sla_work.py): the decision with the SLA actions merged in,
        and what `complete` records of the ticket's clocks."""
        return self.sla.evaluate(claim.vendor, ticket, decision, self.policy, now=now,
                                 decide=self.decide)

    def _loop_verdict(self, claim: Claim, decision: Decision) -> LoopVerdict | None:
        """The label-loop guard's verdict on a changing decision (one inbox read), else None."""
        if not decision.changed:
            return None
        records = self.inbox.history(
            claim.vendor, claim.ticket, limit=max(50, 10 * self.loop_guard.max_rewrites)
        )
        return self.loop_guard.verdict(records, decision, now=self.inbox.clock())

    def _hand_back(
        self, claim: Claim, wait: float, reason: str, fields: Mapping[str, Any]
    ) -> None:
        """The vendor asked to wait: release the ticket untouched (no attempt counted), the
        vendor's limit closed for `wait` (recorded for other processes unless it already is)."""
        self.vendor_limit(claim.vendor).close(wait, reason=reason)
        self.inbox.release(claim)
        log("vendor paused: ticket handed back", level=10, paused_for=round(wait, 3), **fields)

    def _credentials_refused(
        self, claim: Claim, exc: CredentialsRejected, fields: Mapping[str, Any]
    ) -> None:
        """No request can succeed: stop sending (every thread, every process) for a minute, keep
        the events (handed back, no attempt counted) and say once what to fix."""
        self.vendor_limit(claim.vendor).close(
            CREDENTIALS_PAUSE, reason=f"{CREDENTIALS_PAUSE_PREFIX}: {exc.fix}"
        )
        self.inbox.release(claim)
        self.metrics.configuration_refusals.labels(claim.vendor, exc.reason).inc()
        if exc.status is not None:
            self.metrics.vendor_calls.labels(claim.vendor, str(exc.status)).inc()
        if self.throttle.first_in(f"{claim.vendor}: credentials", CREDENTIALS_PAUSE):
            log("vendor paused: credentials rejected", level=40, fix=exc.fix,
                error=exc.vendor_text[:500], paused_for=CREDENTIALS_PAUSE, **fields)

    def _done(
        self,
        claim: Claim,
        ticket: Ticket,
        decision: Decision,
        applied: Applied,
        fields: Mapping[str, Any],
        known_at: int | None = None,
        *,
        outcome: str | None = None,
        sla: SlaWrite | None = None,
    ) -> None:
        final = decision if outcome is not None else applied.decision or decision
        outcome = outcome or (APPLIED if applied.wrote else UNCHANGED)
        calls = tuple(
            {"method": c.method, "path": c.path, "status": c.status, "purpose": c.purpose}
            for c in applied.calls
        )
        for c in applied.calls:
            self.metrics.vendor_calls.labels(claim.vendor, str(c.status)).inc()
        record = DecisionRecord(
            vendor=claim.vendor,
            ticket=claim.ticket,
            outcome=outcome,
            event_ids=tuple(e.id for e in claim.events),
            policy_digest=self.policy.digest,
            tier_before=final.previous_tier,
            tier_after=final.tier,
            reasons=tuple(final.reasons),
            calls=calls,
            decision=final.to_dict(),
        )
        kept = self.inbox.complete(
            claim, record=record, note_key=applied.note_key, known_at=known_at, sla=sla
        )
        self.metrics.decisions.labels(claim.vendor, outcome).inc()
        oldest = min(e.received_at for e in claim.events)
        self.metrics.processing_latency.labels(claim.vendor).observe(
            max(0.0, self.inbox.clock() - oldest)
        )
        log("ticket decided", outcome=outcome, tier_before=final.previous_tier,
            tier_after=final.tier, calls=len(calls), lease_kept=kept, **fields)

    def _retry(
        self,
        claim: Claim,
        exc: Exception,
        retry_after: float | None,
        decision: Decision | None,
        ticket: Ticket | None,
        fields: Mapping[str, Any],
        *,
        pause: bool,
    ) -> None:
        attempt = max(e.attempts for e in claim.events) + 1
        delay = self.retry.delay(attempt, retry_after)  # never sooner than the vendor asked
        if retry_after is not None and pause:
            self.metrics.vendor_pauses.labels(claim.vendor).inc()
            self.vendor_limit(claim.vendor).close(
                retry_after, reason=f"{type(exc).__name__}: {exc}"
            )
        error = _error_text(exc)
        status = getattr(exc, "status", None)
        if status is not None:
            self.metrics.vendor_calls.labels(claim.vendor, str(status)).inc()
        # The last allowed attempt failed: these events become dead letters (inbox.retry's
        # rule), so the outcome, the metric and the log say "dead", not "retry".
        exhausted = all(e.attempts + 1 >= self.max_attempts for e in claim.events)
        outcome = DEAD if exhausted else RETRY
        record = self._failure_record(claim, outcome, error, decision, ticket)
        dead = self.inbox.retry(
            claim, error=error, delay=delay, max_attempts=self.max_attempts, record=record,
            on_rearm=self._rearmed,
        )
        self.metrics.decisions.labels(claim.vendor, outcome).inc()
        if dead:
            self.metrics.dead_lettered.labels(claim.vendor).inc(len(dead))
            log("events dead-lettered", level=40, error=error, attempt=attempt,
                reason="no attempts left (TIERDESK_MAX_ATTEMPTS)", dead_letters=dead, **fields)
        if not exhausted:
            log("ticket will be retried", level=30, error=error, attempt=attempt,
                delay=round(delay, 3), dead_letters=dead, **fields)

    def _dead(
        self,
        claim: Claim,
        exc: Exception,
        decision: Decision | None,
        ticket: Ticket | None,
        fields: Mapping[str, Any],
    ) -> None:
        error = _error_text(exc)
        status = getattr(exc, "status", None)
        if status is not None:
            self.metrics.vendor_calls.labels(claim.vendor, str(status)).inc()
        record = self._failure_record(claim, DEAD, error, decision, ticket)
        self.inbox.dead_letter(claim, error=error, record=record, on_rearm=self._rearmed)
        self.metrics.decisions.labels(claim.vendor, DEAD).inc()
        self.metrics.dead_lettered.labels(claim.vendor).inc(len(claim.events))
        extra: dict[str, Any] = {}
        if isinstance(exc, ConfigurationRejected):
            # The configuration is wrong: no retry can help; the message names the fix.
            self.metrics.configuration_refusals.labels(claim.vendor, exc.reason).inc()
            extra = {"reason": exc.reason, "fix": exc.fix}
        log("events dead-lettered", level=40, error=error, **extra, **fields)

    def _rearmed(self, rearm: SlaRearm) -> None:
        """The ticket's SLA due event became a dead letter: the inbox re-armed its timer (in
        the dead letter's transaction) so the threshold is not lost; count and say so."""
        self.metrics.sla_timer_rearms.labels(rearm.vendor).inc()
        log("sla timer re-armed after a dead letter", level=30, vendor=rearm.vendor,
            ticket=rearm.ticket, due_at=rearm.due_at, rearms=rearm.rearms,
            error=rearm.error[:500])

    def _failure_record(
        self,
        claim: Claim,
        outcome: str,
        error: str,
        decision: Decision | None,
        ticket: Ticket | None,
    ) -> DecisionRecord:
        return DecisionRecord(
            vendor=claim.vendor,
            ticket=claim.ticket,
            outcome=outcome,
            event_ids=tuple(e.id for e in claim.events),
            policy_digest=self.policy.digest,
            tier_before=decision.previous_tier if decision else None,
            tier_after=decision.tier if decision else None,
            reasons=tuple(decision.reasons) if decision else (),
            decision=decision.to_dict() if decision else None,
            error=error,
        )


class _LimitClosed(Exception):
    """The vendor's limit closed between this thread's read and its write (another thread's
    or replica's refusal)."""


class _LeaseLost(Exception):
    """The ticket's lease expired during the read and another worker holds it now."""


def _unchanged(decision: Decision) -> Decision:
    """`decision` with nothing left to write (`changed` false): applying it costs no request."""
    return replace(decision, labels_add=(), labels_remove=(), assign=None, comment=None,
                   note_key=None)


def _error_text(exc: Exception) -> str:
    status = getattr(exc, "status", None)
    prefix = f"{type(exc).__name__}" + (f" (HTTP {status})" if status is not None else "")
    return f"{prefix}: {exc}"[:2000]


def _traceback(exc: Exception) -> str:
    import traceback

    return "".join(traceback.format_exception(exc))[-4000:]
