"""SLA and OLA clocks computed from a ticket's recorded history: pure, like `decide`.

    report = compute_clocks(history, targets, calendars, now=now)
    report.clock("resolution").due        # when it breaches if nothing changes
    report.next_change                    # the soonest instant any clock changes state

Every figure is recomputed from the history on each call (no counter that could drift). A clock:

- starts at the ticket's creation (`first_response`, `resolution`) or its latest tier entry
  (`time_in_tier`);
- counts business time of its calendar while the ticket's status is neither one of the clock's
  pause statuses nor solved/closed; paused time is counted separately (also in business time);
- stops while the ticket is solved or closed, and resumes when it is reopened; `first_response`
  stops for good at the first public agent reply;
- is measured against the target in force *now*, so a new priority or plan re-targets it as
  `due = now + (new target − elapsed)` in business time, paused time kept.

States, most important first: `stopped` (solved/closed now, or answered), `breached` (elapsed has
reached the target), `paused`, `warning` (a `warn_at` fraction was crossed), `running`. A
threshold's crossing instant is computed under the current target.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from tiering.calendars import Calendar
from tiering.sla_models import STATUSES, STOP_STATUSES
from tiering.sla_policy import ClockTarget, SlaPolicy

State = Literal["running", "paused", "warning", "breached", "stopped"]


class HistoryError(ValueError):
    """A ticket history that cannot be measured; the message says what is wrong."""


def _aware(at: datetime, what: str) -> None:
    if at.tzinfo is None or at.utcoffset() is None:
        raise HistoryError(f"{what} {at.isoformat()} has no time zone; pass aware datetimes")


@dataclass(frozen=True, slots=True)
class StatusInterval:
    """The ticket was in vendor-neutral `status` from `start` until `end` (None: still is)."""

    status: str
    start: datetime
    end: datetime | None = None


@dataclass(frozen=True, slots=True)
class TierEntry:
    """The ticket entered `tier` at `at`."""

    tier: str
    at: datetime


@dataclass(frozen=True, slots=True)
class TicketHistory:
    """What the inbox recorded of one ticket: its status intervals (contiguous, from creation
    on, only the last one open), its tier entries in order, and its first public agent reply."""

    created_at: datetime
    statuses: tuple[StatusInterval, ...]
    tiers: tuple[TierEntry, ...] = ()
    first_reply_at: datetime | None = None

    def __post_init__(self) -> None:
        _aware(self.created_at, "created_at")
        if not self.statuses:
            raise HistoryError("a history needs at least one status interval")
        if self.statuses[0].start != self.created_at:
            raise HistoryError(
                f"the first status interval starts at {self.statuses[0].start.isoformat()},"
                f" not at created_at {self.created_at.isoformat()}"
            )
        for i, iv in enumerate(self.statuses):
            if iv.status not in STATUSES:
                raise HistoryError(
                    f"statuses[{i}]: unknown status {iv.status!r} (one of {', '.join(STATUSES)})"
                )
            _aware(iv.start, f"statuses[{i}].start")
            if iv.end is None:
                if i != len(self.statuses) - 1:
                    raise HistoryError(f"statuses[{i}] is open (end=None) but is not the last")
                continue
            _aware(iv.end, f"statuses[{i}].end")
            if iv.end < iv.start:
                raise HistoryError(f"statuses[{i}] ends before it starts")
            if i + 1 < len(self.statuses) and self.statuses[i + 1].start != iv.end:
                raise HistoryError(
                    f"statuses[{i + 1}] starts at {self.statuses[i + 1].start.isoformat()}, not"
                    f" where statuses[{i}] ends ({iv.end.isoformat()}): intervals must touch"
                )
        for i, te in enumerate(self.tiers):
            _aware(te.at, f"tiers[{i}].at")
            if i and te.at < self.tiers[i - 1].at:
                raise HistoryError(f"tiers[{i}] is earlier than tiers[{i - 1}]")
        if self.first_reply_at is not None:
            _aware(self.first_reply_at, "first_reply_at")
            if self.first_reply_at < self.created_at:
                raise HistoryError("first_reply_at is earlier than created_at")

    @classmethod
    def from_transitions(
        cls,
        created_at: datetime,
        transitions: Iterable[tuple[datetime, str]],
        *,
        initial: str = "new",
        tiers: Iterable[TierEntry] = (),
        first_reply_at: datetime | None = None,
    ) -> TicketHistory:
        """A history from status changes as events report them: in any order (webhooks arrive
        late and out of order), repeats of the same status dropped, a change before creation
        taken as the status at creation. The ticket is `initial` until its first change."""
        _aware(created_at, "created_at")
        points = sorted(transitions, key=lambda p: p[0])
        status = initial
        start = created_at
        ivs: list[StatusInterval] = []
        for at, new in points:
            _aware(at, "a transition")
            if at <= created_at:
                status = new
                continue
            if new == status:
                continue
            ivs.append(StatusInterval(status, start, at))
            status, start = new, at
        ivs.append(StatusInterval(status, start))
        return cls(created_at=created_at, statuses=tuple(ivs),
                   tiers=tuple(sorted(tiers, key=lambda t: t.at)), first_reply_at=first_reply_at)

    def status_at(self, at: datetime) -> str:
        """The status at instant `at` (the first status before creation)."""
        for iv in self.statuses:
            if iv.end is None or at < iv.end:
                return iv.status
        return self.statuses[-1].status


@dataclass(frozen=True, slots=True)
class Threshold:
    """A fraction of the target (1.0 is the breach) and the instant elapsed time reached it."""

    fraction: float
    at: datetime


@dataclass(frozen=True, slots=True)
class ClockState:
    """One clock of one ticket at `now`. Durations are business seconds."""

    clock: str
    calendar: str
    target: float
    started_at: datetime
    state: State
    elapsed: float
    paused: float
    #: target − elapsed, never below zero.
    remaining: float
    #: When the target is reached if the ticket stays as it is: None while paused or stopped.
    due: datetime | None
    crossed: tuple[Threshold, ...]
    breached_at: datetime | None
    #: The next instant this clock changes state by itself (a threshold), or None.
    next_change: datetime | None
    #: The policy key path of the target (from ClockTarget.source).
    source: str = ""

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready view."""
        return {
            "clock": self.clock,
            "calendar": self.calendar,
            "target_seconds": self.target,
            "started_at": self.started_at.isoformat(),
            "state": self.state,
            "elapsed_seconds": self.elapsed,
            "paused_seconds": self.paused,
            "remaining_seconds": self.remaining,
            "due": self.due.isoformat() if self.due else None,
            "crossed": [{"fraction": t.fraction, "at": t.at.isoformat()} for t in self.crossed],
            "breached_at": self.breached_at.isoformat() if self.breached_at else None,
            "next_change": self.next_change.isoformat() if self.next_change else None,
            "source": self.source,
        }


@dataclass(frozen=True, slots=True)
class SlaReport:
    """Every clock of one ticket at `now`, and the soonest instant any of them changes."""

    clocks: tuple[ClockState, ...]
    next_change: datetime | None
    now: datetime

    def clock(self, name: str) -> ClockState | None:
        return next((c for c in self.clocks if c.clock == name), None)


def _dt(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


def _one_clock(
    history: TicketHistory, target: ClockTarget, calendar: Calendar, now: float
) -> ClockState:
    if target.clock == "time_in_tier" and history.tiers:
        start = history.tiers[-1].at.timestamp()
    else:
        start = history.created_at.timestamp()
    end = now
    answered = False
    if target.clock == "first_response" and history.first_reply_at is not None:
        reply = history.first_reply_at.timestamp()
        if reply <= now:
            end = min(end, reply)
            answered = True
    goal = float(target.seconds)
    marks = [(f, f * goal) for f in target.warn_at] + [(1.0, goal)]
    crossed: list[Threshold] = []
    elapsed = 0.0
    paused = 0.0
    for iv in history.statuses:
        a = max(iv.start.timestamp(), start)
        b = min(iv.end.timestamp() if iv.end is not None else end, end)
        if b <= a or iv.status in STOP_STATUSES:
            continue
        piece = calendar.business_seconds_ts(a, b)
        if iv.status in target.pause:
            paused += piece
            continue
        for fraction, mark in marks[len(crossed):]:
            if mark <= elapsed + piece:
                at = calendar.add_business_ts(a, mark - elapsed)
                crossed.append(Threshold(fraction, _dt(at)))
            else:
                break
        elapsed += piece
    status_now = history.status_at(_dt(now))
    breached_at = crossed[-1].at if crossed and crossed[-1].fraction == 1.0 else None
    running = not answered and status_now not in STOP_STATUSES and status_now not in target.pause
    state: State
    if answered or status_now in STOP_STATUSES:
        state = "stopped"
    elif breached_at is not None:
        state = "breached"
    elif status_now in target.pause:
        state = "paused"
    elif crossed:
        state = "warning"
    else:
        state = "running"
    due: datetime | None = None
    next_change: datetime | None = None
    if running:
        due = breached_at or _dt(calendar.add_business_ts(now, goal - elapsed))
        if len(crossed) < len(marks):
            mark = marks[len(crossed)][1]
            next_change = _dt(calendar.add_business_ts(now, mark - elapsed))
    return ClockState(
        clock=target.clock,
        calendar=calendar.name,
        target=goal,
        started_at=_dt(start),
        state=state,
        elapsed=elapsed,
        paused=paused,
        remaining=max(0.0, goal - elapsed),
        due=due,
        crossed=tuple(crossed),
        breached_at=breached_at,
        next_change=next_change,
        source=target.source,
    )


def compute_clocks(
    history: TicketHistory,
    targets: Sequence[ClockTarget],
    calendars: Mapping[str, Calendar],
    *,
    now: datetime,
) -> SlaReport:
    """Every clock of `targets` for this history at `now` (see the module docstring)."""
    _aware(now, "now")
    last = history.statuses[-1]
    if last.end is not None and last.end < now:
        raise HistoryError(
            f"the history ends at {last.end.isoformat()}, before now ({now.isoformat()}):"
            " leave the last status interval open (end=None)"
        )
    t_now = now.timestamp()
    states: list[ClockState] = []
    for target in targets:
        calendar = calendars.get(target.calendar)
        if calendar is None:
            raise HistoryError(
                f'clock {target.clock} names calendar "{target.calendar}", which is not given'
            )
        states.append(_one_clock(history, target, calendar, t_now))
    changes = [c.next_change for c in states if c.next_change is not None]
    return SlaReport(clocks=tuple(states), next_change=min(changes, default=None), now=now)


def sla_for(
    history: TicketHistory,
    sla: SlaPolicy,
    *,
    plan: str | None,
    tier: str | None,
    priority: str | None,
    now: datetime,
    unmeasured: frozenset[str] = frozenset(),
) -> SlaReport:
    """The clocks of a ticket of this plan, current tier and priority under a compiled policy.

    Clocks named in `unmeasured` are left out: the vendor's events cannot show what stops them
    (connectors.base.Vendor.unmeasured_clocks), and a clock that cannot stop would breach on
    every ticket."""
    targets = [t for t in sla.targets_for(plan=plan, tier=tier, priority=priority)
               if t.clock not in unmeasured]
    return compute_clocks(history, targets, sla.calendars, now=now)
