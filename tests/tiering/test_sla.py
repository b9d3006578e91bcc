"""SLA/OLA clocks from a ticket's history: elapsed, paused, due, state, thresholds, next change."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tiering.calendars import Calendar
from tiering.sla import (
    HistoryError,
    StatusInterval,
    TicketHistory,
    TierEntry,
    compute_clocks,
)
from tiering.sla_policy import ClockTarget

H = 3600
T0 = datetime(2026, 11, 16, 8, 0, tzinfo=UTC)  # Monday 09:00 in Berlin
CALS = {
    "24x7": Calendar.always(),
    # 09:00-17:00 Berlin, Monday to Friday.
    "office": Calendar.build(name="office", zone="Europe/Berlin",
                             week={wd: ((9 * H, 17 * H),) for wd in range(5)}),
}


def t(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


def history(*steps: tuple[float, str], tiers: tuple[tuple[float, str], ...] = (),
            reply: float | None = None) -> TicketHistory:
    """Statuses as (hours after T0, status) changes; the last one stays open."""
    ivs = tuple(
        StatusInterval(status, t(h), t(steps[i + 1][0]) if i + 1 < len(steps) else None)
        for i, (h, status) in enumerate(steps)
    )
    return TicketHistory(
        created_at=t(steps[0][0]), statuses=ivs,
        tiers=tuple(TierEntry(name, t(h)) for h, name in tiers),
        first_reply_at=None if reply is None else t(reply),
    )


def target(clock: str = "resolution", hours: float = 8, calendar: str = "24x7",
           pause: tuple[str, ...] = ("pending",), warn: tuple[float, ...] = (0.75,)) -> ClockTarget:
    return ClockTarget(clock=clock, seconds=int(hours * H), calendar=calendar,
                       pause=frozenset(pause), warn_at=warn)


# Columns: history, target, now (hours), state, elapsed h, paused h, due (hours) or None,
# crossed fractions, next change (hours) or None.
CASES = [
    # Fresh ticket, 24/7: running, due at the target, next change at 75 %.
    (history((0, "new")), target(), 1, "running", 1, 0, 8, (), 6),
    # Past 75 %: warning, next change is the breach.
    (history((0, "open")), target(), 7, "warning", 7, 0, 8, (0.75,), 8),
    # Past the target: breached, due stays at the breach instant, nothing more to come.
    (history((0, "open")), target(), 9, "breached", 9, 0, 8, (0.75, 1.0), None),
    # Waiting for the customer pauses: no due, no next change, paused time counted.
    (history((0, "open"), (2, "pending")), target(), 5, "paused", 2, 3, None, (), None),
    # Back from pending: the paused 3 h push the due time by 3 h.
    (history((0, "open"), (2, "pending"), (5, "open")), target(), 6, "running", 3, 3, 11, (), 9),
    # Solved stops the clock.
    (history((0, "open"), (4, "solved")), target(), 10, "stopped", 4, 0, None, (), None),
    # Reopened after 2 h solved: resumes where it stopped; solved time is neither.
    (history((0, "open"), (4, "solved"), (6, "open")), target(), 7, "running", 5, 0, 10, (), 8),
    # Hold does not pause unless the policy says so ...
    (history((0, "open"), (1, "hold")), target(), 3, "running", 3, 0, 8, (), 6),
    # ... and does when it is listed.
    (history((0, "open"), (1, "hold")), target(pause=("pending", "hold")), 3, "paused", 1, 2,
     None, (), None),
    # Two warning fractions: both reported in order.
    (history((0, "open")), target(warn=(0.5, 0.75)), 6.5, "warning", 6.5, 0, 8, (0.5, 0.75), 8),
    # First response stops for good at the first public reply, even before a breach.
    (history((0, "new"), reply=1), target("first_response", 2), 5, "stopped", 1, 0, None, (),
     None),
    # Time in tier starts at the latest tier entry, not at creation.
    (history((0, "open"), tiers=((0, "L1"), (3, "L2"))), target("time_in_tier", 4), 5,
     "running", 2, 0, 7, (), 6),
    # Office calendar: Monday 09:00 Berlin + 8h target = Monday 17:00 (16:00 UTC), then
    # the night does not count: at 20 h (Tue 05:00 Berlin) elapsed is still 8 h.
    (history((0, "open")), target(calendar="office"), 20, "breached", 8, 0, 8, (0.75, 1.0), None),
    # A pause that starts before hours and ends after: pending Mon 18:00 to Tue 19:00 Berlin
    # pauses exactly Tuesday's 8 business hours; the other 8 h fall on Wednesday 09:00-17:00
    # (due 16:00 UTC = 56 h), 75 % (12 h) at Wednesday 13:00 Berlin (52 h).
    (history((0, "open"), (9, "pending"), (34, "open")), target(hours=16, calendar="office"),
     34, "running", 8, 8, 56, (), 52),
]


@pytest.mark.parametrize(
    ("hist", "tgt", "now", "state", "elapsed", "paused", "due", "crossed", "nxt"), CASES
)
def test_clock_table(
    hist: TicketHistory, tgt: ClockTarget, now: float, state: str, elapsed: float,
    paused: float, due: float | None, crossed: tuple[float, ...], nxt: float | None,
) -> None:
    """Each history gives the listed state, elapsed and paused time, due time and thresholds."""
    report = compute_clocks(hist, [tgt], CALS, now=t(now))
    c = report.clocks[0]
    assert (c.state, c.elapsed / H, c.paused / H) == (state, elapsed, paused)
    assert c.due == (None if due is None else t(due))
    assert tuple(x.fraction for x in c.crossed) == crossed
    assert c.next_change == (None if nxt is None else t(nxt))
    assert report.next_change == c.next_change


def test_threshold_instants_are_where_elapsed_reached_them() -> None:
    """A crossed threshold carries the instant business time reached it, pauses skipped."""
    hist = history((0, "open"), (2, "pending"), (5, "open"))
    c = compute_clocks(hist, [target()], CALS, now=t(12)).clocks[0]
    # 6 h of running time: 2 h before the pause, 4 h after it (5 + 4 = 9); breach at 5 + 6.
    assert [(x.fraction, x.at) for x in c.crossed] == [(0.75, t(9)), (1.0, t(11))]
    assert c.breached_at == t(11)


@pytest.mark.parametrize(
    ("old_h", "new_h", "due_h"),
    [
        # A higher priority shortens the target: due = now + (4 − 3) = 6 h.
        (8, 4, 6),
        # A lower one lengthens it: due = now + (12 − 3) = 14 h (pause of 2 h kept).
        (8, 12, 14),
        # A target below the elapsed time is breached already: due is the instant elapsed
        # reached 2 h (1 h before the pause, 1 h after it: at 4 h).
        (8, 2, 4),
    ],
)
def test_retargeting_keeps_elapsed_and_paused_time(
    old_h: float, new_h: float, due_h: float
) -> None:
    """A changed target re-targets the clock as now + (new target − elapsed), pauses kept."""
    # Open 0-1, pending 1-3, open 3-5: elapsed 3 h at now = 5 h.
    hist = history((0, "open"), (1, "pending"), (3, "open"))
    before = compute_clocks(hist, [target(hours=old_h)], CALS, now=t(5)).clocks[0]
    after = compute_clocks(hist, [target(hours=new_h)], CALS, now=t(5)).clocks[0]
    assert (before.elapsed, before.paused) == (after.elapsed, after.paused) == (3 * H, 2 * H)
    assert after.due == t(due_h)


def test_next_change_is_the_soonest_of_all_clocks() -> None:
    """The report's next change is the earliest threshold of any running clock."""
    hist = history((0, "new"))
    report = compute_clocks(
        hist, [target("first_response", 1), target("resolution", 8)], CALS, now=t(0.25)
    )
    assert [c.next_change for c in report.clocks] == [t(0.75), t(6)]
    assert report.next_change == t(0.75)


def test_clocks_are_recomputed_not_accumulated() -> None:
    """The same history and now give the same report whatever was computed before."""
    hist = history((0, "open"), (2, "pending"), (5, "open"))
    first = compute_clocks(hist, [target(calendar="office")], CALS, now=t(30))
    compute_clocks(hist, [target(calendar="office")], CALS, now=t(50))
    assert compute_clocks(hist, [target(calendar="office")], CALS, now=t(30)) == first


@pytest.mark.parametrize(
    ("build", "message"),
    [
        # Naive datetimes are refused.
        (lambda: TicketHistory(created_at=datetime(2026, 1, 1),
                               statuses=(StatusInterval("new", datetime(2026, 1, 1)),)),
         "no time zone"),
        # Intervals must touch.
        (lambda: TicketHistory(created_at=t(0), statuses=(
            StatusInterval("new", t(0), t(1)), StatusInterval("open", t(2))
        )), "must touch"),
        # Statuses are the neutral ones.
        (lambda: TicketHistory(created_at=t(0), statuses=(StatusInterval("waiting", t(0)),)),
         "unknown status"),
        # Only the last interval is open.
        (lambda: TicketHistory(created_at=t(0), statuses=(
            StatusInterval("new", t(0)), StatusInterval("open", t(1))
        )), "not the last"),
        # The history starts at creation.
        (lambda: TicketHistory(created_at=t(0), statuses=(StatusInterval("new", t(1)),)),
         "not at created_at"),
    ],
)
def test_bad_history_is_refused(build: object, message: str) -> None:
    """A history that cannot be measured raises a HistoryError saying what is wrong."""
    with pytest.raises(HistoryError, match=message):
        build()  # type: ignore[operator]


def test_history_that_ends_before_now_and_unknown_calendar_are_refused() -> None:
    """Measuring past the recorded history, or on an unknown calendar, raises HistoryError."""
    closed = TicketHistory(created_at=t(0), statuses=(StatusInterval("open", t(0), t(1)),))
    with pytest.raises(HistoryError, match="before now"):
        compute_clocks(closed, [target()], CALS, now=t(2))
    with pytest.raises(HistoryError, match="not given"):
        compute_clocks(history((0, "open")), [target(calendar="nope")], CALS, now=t(1))


def test_history_from_transitions_sorts_dedupes_and_clamps() -> None:
    """Status changes in any order become touching intervals; repeats and pre-creation
    changes fold in."""
    hist = TicketHistory.from_transitions(
        t(0),
        [(t(3), "open"), (t(1), "open"), (t(-1), "open"), (t(2), "pending"), (t(5), "solved")],
        tiers=[TierEntry("L2", t(4)), TierEntry("L1", t(0))],
    )
    assert [(iv.status, iv.start, iv.end) for iv in hist.statuses] == [
        ("open", t(0), t(2)),  # open before creation: open from the start; t(1) repeats it
        ("pending", t(2), t(3)),
        ("open", t(3), t(5)),
        ("solved", t(5), None),
    ]
    assert [e.tier for e in hist.tiers] == ["L1", "L2"]
