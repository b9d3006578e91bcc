"""Business-calendar arithmetic against a deliberately naive minute-by-minute reference.

The reference asks, for each UTC minute, what the wall clock in the calendar's zone reads and
whether that reading is inside a working interval of a non-holiday date. It knows nothing of
spans, offsets or caching, so agreement with it pins down DST, holidays, split shifts and
intervals touching midnight.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tiering.calendars import Calendar, CalendarError, ics_holiday_dates

H = 3600
MIN = 60


# --------------------------------------------------------------------------- the reference


def ref_is_business(cal: Calendar, ts: int) -> bool:
    """Is the minute starting at UTC second `ts` business time? (wall-clock reading test)"""
    local = datetime.fromtimestamp(ts, cal.zone)
    if cal.is_holiday(local.date()):
        return False
    sod = local.hour * H + local.minute * MIN + local.second
    return any(s <= sod < e for s, e in cal.week.get(local.weekday(), ()))


def ref_business_seconds(cal: Calendar, a: int, b: int) -> int:
    return sum(MIN for m in range(a, b, MIN) if ref_is_business(cal, m))


def ref_add(cal: Calendar, a: int, seconds: int, limit: int) -> int | None:
    """The earliest t with `seconds` of business time in [a, t), or None before `limit`."""
    if seconds == 0:
        return a
    got = 0
    for m in range(a, limit, MIN):
        if ref_is_business(cal, m):
            got += MIN
            if got == seconds:
                return m + MIN
    return None


# --------------------------------------------------------------------------- strategies

# DST changes of 2026: America/New_York Mar 8 and Nov 1; Europe/Berlin Mar 29 and Oct 25.
DST_DAYS = [date(2026, 3, 8), date(2026, 11, 1), date(2026, 3, 29), date(2026, 10, 25)]
ZONES = ["Europe/Berlin", "America/New_York", "UTC"]


@st.composite
def week_hours(draw: st.DrawFn) -> dict[int, tuple[tuple[int, int], ...]]:
    """0-3 intervals per weekday on a 15-minute grid, including ones touching 00:00 and 24:00;
    at least one interval in the week."""
    week: dict[int, tuple[tuple[int, int], ...]] = {}
    for wd in range(7):
        points = sorted(draw(st.sets(st.integers(0, 96), max_size=6)))
        if len(points) % 2:
            points = points[:-1]
        week[wd] = tuple(
            (points[i] * 900, points[i + 1] * 900) for i in range(0, len(points), 2)
        )
    if not any(week.values()):
        week[draw(st.integers(0, 6))] = ((0, 24 * H),)
    return week


@st.composite
def calendars(draw: st.DrawFn) -> Calendar:
    zone = draw(st.sampled_from(ZONES))
    base = draw(st.sampled_from(DST_DAYS))
    holidays = draw(st.sets(st.integers(-6, 10).map(lambda k: base + timedelta(days=k)),
                            max_size=3))
    return Calendar.build(name="gen", zone=zone, week=draw(week_hours()), dates=holidays)


@st.composite
def windows(draw: st.DrawFn) -> tuple[int, int]:
    """A minute-aligned [a, b) of up to six days that starts within five days of a DST change."""
    base = draw(st.sampled_from(DST_DAYS))
    start = datetime(base.year, base.month, base.day, tzinfo=UTC) + timedelta(
        minutes=draw(st.integers(-5 * 1440, 2 * 1440))
    )
    a = int(start.timestamp())
    return a, a + draw(st.integers(0, 6 * 1440)) * MIN


SETTINGS = settings(max_examples=60, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(cal=calendars(), window=windows())
def test_business_seconds_matches_minute_reference(
    cal: Calendar, window: tuple[int, int]
) -> None:
    """Business time between two instants equals the minute-by-minute count of wall readings."""
    a, b = window
    assert cal.business_seconds_ts(a, b) == ref_business_seconds(cal, a, b)


@SETTINGS
@given(cal=calendars(), window=windows(), share=st.floats(0, 1))
def test_add_business_matches_minute_reference(
    cal: Calendar, window: tuple[int, int], share: float
) -> None:
    """Adding business time lands on the minute where the reference has counted that much."""
    a, b = window
    total = ref_business_seconds(cal, a, b)
    seconds = int(total * share) // MIN * MIN
    expected = ref_add(cal, a, seconds, b)
    assert expected is not None
    assert cal.add_business_ts(a, seconds) == expected


@SETTINGS
@given(cal=calendars(), window=windows(), cut=st.floats(0, 1))
def test_business_time_is_additive_and_add_inverts_it(
    cal: Calendar, window: tuple[int, int], cut: float
) -> None:
    """business(a, c) = business(a, b) + business(b, c), and business(a, add(a, s)) = s."""
    a, c = window
    b = a + int((c - a) * cut)
    assert cal.business_seconds_ts(a, c) == (
        cal.business_seconds_ts(a, b) + cal.business_seconds_ts(b, c)
    )
    s = cal.business_seconds_ts(a, c)
    assert cal.business_seconds_ts(a, cal.add_business_ts(a, s)) == s


# --------------------------------------------------------------------------- fixed cases

BERLIN_OFFICE = Calendar.build(
    name="berlin", zone="Europe/Berlin",
    # A split shift on weekdays.
    week={wd: ((9 * H, 12 * H + 1800), (13 * H + 1800, 17 * H)) for wd in range(5)},
)
ALL_DAY_BERLIN = Calendar.build(
    name="berlin-all-day", zone="Europe/Berlin", week={wd: ((0, 24 * H),) for wd in range(7)}
)
NIGHT_SHIFT_NY = Calendar.build(
    name="ny-night", zone="America/New_York",
    # 22:00-24:00 Monday and 00:00-06:00 Tuesday: one shift across midnight.
    week={0: ((22 * H, 24 * H),), 1: ((0, 6 * H),)},
)


def at(zone: str, *args: int) -> datetime:
    return datetime(*args, tzinfo=ZoneInfo(zone))  # type: ignore[misc]


@pytest.mark.parametrize(
    ("cal", "start", "hours", "expected"),
    [
        # Friday 16:00 Berlin + 2h on the split shift: 1h on Friday, Monday 09:00 + 1h.
        (BERLIN_OFFICE, at("Europe/Berlin", 2026, 11, 20, 16), 2,
         at("Europe/Berlin", 2026, 11, 23, 10)),
        # Lunch is not business time: 12:00 + 1h lands at 14:00.
        (BERLIN_OFFICE, at("Europe/Berlin", 2026, 11, 18, 12), 1,
         at("Europe/Berlin", 2026, 11, 18, 14)),
        # A target across the spring-forward weekend: Fri 27 Mar 16:00 CET + 2h = Mon 10:00 CEST.
        (BERLIN_OFFICE, at("Europe/Berlin", 2026, 3, 27, 16), 2,
         at("Europe/Berlin", 2026, 3, 30, 10)),
        # The night shift crosses midnight without a gap: Mon 23:00 + 3h = Tue 02:00.
        (NIGHT_SHIFT_NY, at("America/New_York", 2026, 11, 16, 23), 3,
         at("America/New_York", 2026, 11, 17, 2)),
        # Tue 05:00 + 2h: 1h left that night, then next Monday 22:00 + 1h.
        (NIGHT_SHIFT_NY, at("America/New_York", 2026, 11, 17, 5), 2,
         at("America/New_York", 2026, 11, 23, 23)),
    ],
)
def test_add_business_fixed_cases(
    cal: Calendar, start: datetime, hours: int, expected: datetime
) -> None:
    """Adding business hours gives the instant an agent would count on the office wall clock."""
    assert cal.add_business(start, hours * H) == expected


@pytest.mark.parametrize(
    ("day", "hours"),
    [
        (date(2026, 3, 28), 24),  # an ordinary Saturday
        (date(2026, 3, 29), 23),  # spring forward: 02:00-03:00 never happens
        (date(2026, 10, 25), 25),  # fall back: 02:00-03:00 happens twice
    ],
)
def test_all_day_calendar_counts_dst_days_as_their_real_length(day: date, hours: int) -> None:
    """A 00:00-24:00 calendar in Berlin counts 23 h on the spring DST day and 25 h in autumn."""
    start = datetime(day.year, day.month, day.day, tzinfo=ZoneInfo("Europe/Berlin"))
    after = day + timedelta(days=1)
    end = datetime(after.year, after.month, after.day, tzinfo=ZoneInfo("Europe/Berlin"))
    assert ALL_DAY_BERLIN.business_seconds(start, end) == hours * H


def test_always_calendar_counts_every_second() -> None:
    """The built-in 24x7 calendar counts wall time, holidays and weekends included."""
    cal = Calendar.always()
    a = datetime(2026, 12, 24, 23, tzinfo=UTC)
    assert cal.business_seconds(a, a + timedelta(days=3, seconds=5)) == 3 * 86400 + 5
    assert cal.add_business(a, 90) == a + timedelta(seconds=90)


def test_country_subdivision_and_yearly_holidays_have_no_business_time() -> None:
    """Christmas (holidays package, DE-BE), a yearly 12-31 and a one-off date count nothing."""
    cal = Calendar.build(
        name="de", zone="Europe/Berlin", week={wd: ((9 * H, 17 * H),) for wd in range(5)},
        country="DE", subdivision="BE", yearly=[(12, 31)], dates=[date(2026, 12, 28)],
    )
    assert cal.is_holiday(date(2026, 12, 25))  # Christmas Day, from the holidays package
    assert cal.is_holiday(date(2027, 3, 8))  # Women's Day: a holiday in Berlin only
    assert not cal.is_holiday(date(2026, 12, 29))
    # Thu 24 Dec 16:00 + 2h: Christmas Fri, weekend, the 28th, so Tue 29 Dec 10:00.
    assert cal.add_business(at("Europe/Berlin", 2026, 12, 24, 16), 2 * H) == at(
        "Europe/Berlin", 2026, 12, 29, 10
    )


ICS = """BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//tierdesk tests//EN
BEGIN:VEVENT
UID:1@test
SUMMARY:Company day
DTSTART;VALUE=DATE:20261130
DTEND;VALUE=DATE:20261202
END:VEVENT
BEGIN:VEVENT
UID:2@test
SUMMARY:Offsite
DTSTART:20261210T090000Z
DTEND:20261210T170000Z
END:VEVENT
END:VCALENDAR
"""


def test_ics_dates_cover_all_day_ranges_with_exclusive_end_and_timed_events() -> None:
    """An all-day event's DTEND is exclusive (RFC 5545); a timed event covers its date."""
    assert ics_holiday_dates(ICS) == {date(2026, 11, 30), date(2026, 12, 1), date(2026, 12, 10)}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        # Not iCalendar at all.
        ("hello", "not an iCalendar file"),
        # A repeating event is refused rather than silently read as one day.
        (ICS.replace("SUMMARY:Offsite", "SUMMARY:Offsite\nRRULE:FREQ=YEARLY"), "repeats"),
    ],
)
def test_bad_ics_text_is_refused_with_the_reason(text: str, message: str) -> None:
    """ICS text that cannot be read as a list of holiday dates raises a CalendarError."""
    with pytest.raises(CalendarError, match=message):
        ics_holiday_dates(text, source="x.ics")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        # Not an IANA zone.
        ({"zone": "Mars/Olympus"}, "unknown time zone"),
        # No working time at all.
        ({"week": {}}, "at least one working interval"),
        # Overlapping intervals on one day.
        ({"week": {0: ((0, 2 * H), (H, 3 * H))}}, "overlap"),
        # An unknown country for the holidays package.
        ({"country": "XX"}, "unknown country"),
        # A subdivision the country does not have.
        ({"country": "DE", "subdivision": "ZZ"}, "unknown subdivision"),
    ],
)
def test_calendar_build_refuses_bad_input(kwargs: dict[str, object], message: str) -> None:
    """Building a calendar from bad parts raises a CalendarError saying what to fix."""
    args: dict[str, object] = {"name": "x", "zone": "UTC", "week": {0: ((0, H),)}, **kwargs}
    with pytest.raises(CalendarError, match=message):
        Calendar.build(**args)  # type: ignore[arg-type]


def test_calendar_of_only_holidays_raises_instead_of_looping() -> None:
    """A calendar whose every working day is a holiday raises when asked to add time."""
    start = date(2026, 1, 1)
    cal = Calendar.build(name="never", zone="UTC", week={0: ((0, H),)},
                         dates=[start + timedelta(days=k) for k in range(0, 2000)])
    with pytest.raises(CalendarError, match="no business time"):
        cal.add_business(datetime(2026, 1, 1, tzinfo=UTC), H)


@SETTINGS
@given(cal=calendars(), window=windows(), far=st.integers(-400, 400))
def test_results_do_not_depend_on_earlier_queries(
    cal: Calendar, window: tuple[int, int], far: int
) -> None:
    """A calendar whose cached timeline grew for other instants answers like a fresh one."""
    a, b = window
    fresh = Calendar.build(name="fresh", zone=cal.zone.key, week=cal.week, dates=cal.dates)
    cal.add_business_ts(a + far * 86400, 3600)
    cal.business_seconds_ts(a + far * 86400, a + (far + 3) * 86400)
    assert cal.business_seconds_ts(a, b) == fresh.business_seconds_ts(a, b)
    s = fresh.business_seconds_ts(a, b)
    assert cal.add_business_ts(a, s) == fresh.add_business_ts(a, s)


# Zones whose offset changes are unusual: a change at midnight, so a local date starts at 01:00
# or ends twice (Havana, Sao Paulo in 2018), a 30-minute change (Lord Howe), a whole local date
# that never happened (Apia skipped 2011-12-30), and a quarter-hour offset (Kathmandu).
ODD = [
    ("America/Havana", date(2026, 3, 8)),
    ("America/Havana", date(2026, 11, 1)),
    ("America/Sao_Paulo", date(2018, 11, 4)),
    ("America/Sao_Paulo", date(2019, 2, 16)),
    ("Australia/Lord_Howe", date(2026, 4, 5)),
    ("Pacific/Apia", date(2011, 12, 30)),
    ("Asia/Kathmandu", date(2026, 6, 1)),
]


@st.composite
def odd_cases(draw: st.DrawFn) -> tuple[Calendar, int, int]:
    zone, base = draw(st.sampled_from(ODD))
    cal = Calendar.build(name="odd", zone=zone, week=draw(week_hours()))
    start = datetime(base.year, base.month, base.day, tzinfo=UTC) + timedelta(
        minutes=draw(st.integers(-3 * 1440, 1440))
    )
    a = int(start.timestamp())
    return cal, a, a + draw(st.integers(0, 4 * 1440)) * MIN


@SETTINGS
@given(case=odd_cases(), share=st.floats(0, 1))
def test_unusual_offset_changes_match_minute_reference(
    case: tuple[Calendar, int, int], share: float
) -> None:
    """Midnight changes, half-hour changes and a skipped date agree with the reference too."""
    cal, a, b = case
    total = ref_business_seconds(cal, a, b)
    assert cal.business_seconds_ts(a, b) == total
    seconds = int(total * share) // MIN * MIN
    assert cal.add_business_ts(a, seconds) == ref_add(cal, a, seconds, b)
