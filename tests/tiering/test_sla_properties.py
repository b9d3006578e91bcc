"""Clock properties on random histories and calendars, against the minute-by-minute reference:
elapsed and paused time, breach instants and due times."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.tiering.test_calendars import DST_DAYS, calendars, ref_is_business
from tiering.calendars import Calendar
from tiering.sla import StatusInterval, TicketHistory, compute_clocks
from tiering.sla_models import STOP_STATUSES
from tiering.sla_policy import ClockTarget

MIN = 60


@st.composite
def histories(draw: st.DrawFn) -> TicketHistory:
    """Up to six minute-aligned status intervals starting within days of a DST change."""
    base = draw(st.sampled_from(DST_DAYS))
    created = datetime(base.year, base.month, base.day, tzinfo=UTC) + timedelta(
        minutes=draw(st.integers(-3 * 1440, 1440))
    )
    steps = draw(st.lists(
        st.tuples(st.integers(1, 1440),
                  st.sampled_from(["new", "open", "pending", "hold", "solved"])),
        min_size=1, max_size=6,
    ))
    ivs = []
    at = created
    for i, (minutes, status) in enumerate(steps):
        end = at + timedelta(minutes=minutes) if i + 1 < len(steps) else None
        ivs.append(StatusInterval(status, at, end))
        if end is not None:
            at = end
    return TicketHistory(created_at=created, statuses=tuple(ivs))


def ref_counts(cal: Calendar, hist: TicketHistory, pause: frozenset[str], upto: int
               ) -> tuple[int, int]:
    """(running, paused) business seconds from creation to `upto`, minute by minute."""
    running = paused = 0
    for m in range(int(hist.created_at.timestamp()), upto, MIN):
        status = hist.status_at(datetime.fromtimestamp(m, UTC))
        if status in STOP_STATUSES or not ref_is_business(cal, m):
            continue
        if status in pause:
            paused += MIN
        else:
            running += MIN
    return running, paused


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cal=calendars(), hist=histories(), target_min=st.integers(1, 3000),
       tail=st.integers(0, 2880), pause=st.sets(st.sampled_from(["pending", "hold"])))
def test_clock_matches_minute_reference(
    cal: Calendar, hist: TicketHistory, target_min: int, tail: int, pause: set[str]
) -> None:
    """Elapsed and paused time, the breach instant and the due time agree with the reference."""
    last_start = hist.statuses[-1].start
    now = last_start + timedelta(minutes=tail)
    tgt = ClockTarget("resolution", target_min * MIN, "cal", frozenset(pause), (0.5,))
    c = compute_clocks(hist, [tgt], {"cal": cal}, now=now).clocks[0]
    running, paused = ref_counts(cal, hist, frozenset(pause), int(now.timestamp()))
    assert (c.elapsed, c.paused) == (running, paused)
    if c.breached_at is not None:
        # The breach is the instant running business time reached the target.
        assert ref_counts(cal, hist, frozenset(pause), int(c.breached_at.timestamp()))[0] == (
            target_min * MIN
        )
    if c.state in ("running", "warning"):
        assert c.due is not None
        assert cal.business_seconds(now, c.due) == target_min * MIN - running
    if c.state == "paused" or c.state == "stopped":
        assert c.due is None and c.next_change is None
