"""Business calendars: which instants count as business time, and arithmetic on them.

An instant is business time when its wall-clock reading in the calendar's IANA zone falls inside
one of the weekly working intervals of that weekday, and that local date is not a holiday. This is
the reading an agent's clock on the wall gives, so across DST changes:

- the hour that a spring-forward skips never happens, so it is never counted;
- the hour that a fall-back repeats happens twice, so a working interval covering it counts twice.

All arithmetic is on POSIX seconds (floats) internally and returns aware UTC datetimes. Each
local date's working spans in UTC are computed once and cached on the calendar. Holidays come
from explicit dates, yearly month-days, the `holidays` package (country and subdivision) and the
dates of an ICS file whose text the caller passes in (this module reads no file and no clock).

    cal = Calendar.build(name="berlin", zone="Europe/Berlin",
                         week={0: ((9 * 3600, 17 * 3600),), ...})
    cal.business_seconds(start, end)     # business time between two instants
    cal.add_business(start, 8 * 3600)    # the instant 8 business hours after start
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

DAY = 86400
#: Offsets of real zones lie within UTC-12 and UTC+14; a local reading maps to UTC within these.
_MIN_OFFSET = -12 * 3600
_MAX_OFFSET = 14 * 3600
#: add_business gives up after this many local days without enough business time (a calendar
#: whose holidays cover every working day); it raises instead of looping for ever.
MAX_SEARCH_DAYS = 3 * 366

#: The name of the built-in calendar that counts every instant.
ALWAYS = "24x7"

Span = tuple[float, float]


class CalendarError(ValueError):
    """A calendar that cannot be built or used; the message says what to change."""


def _epoch_days(d: date) -> int:
    return d.toordinal() - date(1970, 1, 1).toordinal()


def _naive_seconds(d: date, second_of_day: int = 0) -> int:
    """The wall-clock reading `d` + `second_of_day`, as seconds since 1970-01-01 00:00 (no zone)."""
    return _epoch_days(d) * DAY + second_of_day


def _local_date(ts: float, zone: ZoneInfo) -> date:
    return datetime.fromtimestamp(ts, zone).date()


def ics_holiday_dates(text: str, *, source: str = "holidays.ics") -> frozenset[date]:
    """Every date covered by a VEVENT of an iCalendar text (all-day or timed, multi-day included).

    Recurring events (RRULE) are not expanded: a yearly holiday belongs in `yearly` instead.
    A timed event's dates are read in the event's own time zone, as written in the file.
    Raises `CalendarError` naming the source on text that is not iCalendar.
    """
    import icalendar  # imported on first use: about 40 ms that most policies never need

    try:
        cal = icalendar.Calendar.from_ical(text)
    except ValueError as exc:
        raise CalendarError(f"{source}: not an iCalendar file: {exc}") from exc
    out: set[date] = set()
    for ev in cal.walk("VEVENT"):
        if ev.get("RRULE") is not None:
            raise CalendarError(
                f"{source}: event {str(ev.get('SUMMARY', '?'))!r} repeats (RRULE), which is not"
                " expanded; list its dates or use holidays.yearly"
            )
        start_prop = ev.get("DTSTART")
        if start_prop is None:
            continue
        end_prop = ev.get("DTEND")
        try:  # icalendar parses a property's value when it is read; a bad one raises then
            start = start_prop.dt
            end = end_prop.dt if end_prop is not None else None
        except ValueError as exc:
            raise CalendarError(
                f"{source}: event {str(ev.get('SUMMARY', '?'))!r} has a date that cannot be"
                f" read: {exc}"
            ) from exc
        first = start.date() if isinstance(start, datetime) else start
        if end is None:
            last = first
        elif isinstance(end, datetime):
            # A timed event covers each date it touches (an end at midnight excludes that date).
            at_midnight = (end.hour, end.minute, end.second, end.microsecond) == (0, 0, 0, 0)
            last = end.date() - timedelta(days=1) if at_midnight else end.date()
            last = max(last, first)
        else:
            # RFC 5545 3.6.1: an all-day DTEND is exclusive.
            last = max(first, end - timedelta(days=1))
        d = first
        while d <= last:
            out.add(d)
            d += timedelta(days=1)
    return frozenset(out)


@dataclass(eq=False)
class Calendar:
    """A named business calendar. Build one with `Calendar.build` or `Calendar.always()`."""

    name: str
    zone: ZoneInfo
    #: Weekday (0 = Monday) -> sorted, non-overlapping (start, end) seconds of the local day;
    #: end may be 86400 (24:00).
    week: Mapping[int, tuple[tuple[int, int], ...]]
    dates: frozenset[date] = frozenset()
    yearly: frozenset[tuple[int, int]] = frozenset()
    country: str | None = None
    subdivision: str | None = None
    #: True for the 24/7 calendar: every instant counts, holidays do not apply.
    always_open: bool = False
    _days: dict[int, tuple[Span, ...]] = field(default_factory=dict, repr=False)
    _country_years: dict[int, frozenset[date]] = field(default_factory=dict, repr=False)
    _timeline: _Timeline | None = field(default=None, repr=False)

    @classmethod
    def always(cls, name: str = ALWAYS) -> Calendar:
        """The built-in calendar: every instant is business time."""
        full = ((0, DAY),)
        return cls(name=name, zone=ZoneInfo("UTC"), week=dict.fromkeys(range(7), full),
                   always_open=True)

    @classmethod
    def build(
        cls,
        *,
        name: str,
        zone: str,
        week: Mapping[int, Iterable[tuple[int, int]]],
        dates: Iterable[date] = (),
        yearly: Iterable[tuple[int, int]] = (),
        country: str | None = None,
        subdivision: str | None = None,
    ) -> Calendar:
        """Validate and build a calendar; raise `CalendarError` saying what is wrong."""
        try:
            tz = ZoneInfo(zone)
        except (KeyError, ValueError) as exc:
            raise CalendarError(
                f'unknown time zone "{zone}": use an IANA name such as Europe/Berlin'
            ) from exc
        clean: dict[int, tuple[tuple[int, int], ...]] = {}
        for wd in range(7):
            spans = sorted(week.get(wd, ()))
            for s, e in spans:
                if not 0 <= s < e <= DAY:
                    raise CalendarError(f"working interval {s}-{e} s is not within one day")
            for (_, e1), (s2, _) in itertools.pairwise(spans):
                if s2 < e1:
                    raise CalendarError("working intervals of one day overlap")
            clean[wd] = tuple(spans)
        if not any(clean.values()):
            raise CalendarError("a calendar needs at least one working interval")
        if country is not None:
            import holidays as holidays_pkg  # imported on first use (about 50 ms)

            supported = holidays_pkg.list_supported_countries()
            if country not in supported:
                raise CalendarError(
                    f'unknown country "{country}" for the holidays package: use an ISO 3166-1'
                    " alpha-2 code such as DE or US"
                )
            if subdivision is not None and subdivision not in supported[country]:
                raise CalendarError(
                    f'unknown subdivision "{subdivision}" of {country}: one of'
                    f" {', '.join(supported[country]) or '(none)'}"
                )
        elif subdivision is not None:
            raise CalendarError("a subdivision needs a country")
        return cls(name=name, zone=tz, week=clean, dates=frozenset(dates),
                   yearly=frozenset(yearly), country=country, subdivision=subdivision)

    # ----------------------------------------------------------------- holidays

    def is_holiday(self, d: date) -> bool:
        """True when the local date `d` has no business time because it is a holiday."""
        if self.always_open:
            return False
        if d in self.dates or (d.month, d.day) in self.yearly:
            return True
        if self.country is None:
            return False
        days = self._country_years.get(d.year)
        if days is None:
            import holidays as holidays_pkg

            days = frozenset(
                holidays_pkg.country_holidays(
                    self.country, subdiv=self.subdivision, years=d.year
                ).keys()
            )
            self._country_years[d.year] = days
        return d in days

    # ----------------------------------------------------------------- spans

    def _offset(self, ts: float) -> int:
        off = datetime.fromtimestamp(ts, self.zone).utcoffset()
        return int(off.total_seconds()) if off is not None else 0

    def _utc_spans(self, lo_naive: int, hi_naive: int) -> list[Span]:
        """The UTC instants whose wall-clock reading lies in [lo_naive, hi_naive).

        The window of candidate instants is sampled hourly; where two samples differ in
        offset, the change is found by bisection to the second. Within each piece the offset
        is constant, so the reading is a shift of UTC. Assumes a zone never changes its offset
        twice within one hour (it would take two changes between two samples to hide one).
        """
        w_lo = lo_naive - _MAX_OFFSET
        w_hi = hi_naive - _MIN_OFFSET
        cuts = [w_lo]
        offsets = [self._offset(w_lo)]
        prev = w_lo
        while prev < w_hi:
            t = min(prev + 3600, w_hi)
            off = self._offset(t)
            if off != offsets[-1]:
                a, b = prev, t  # offset(a) is the old one, offset(b) the new one
                while b - a > 1:
                    mid = (a + b) // 2
                    if self._offset(mid) == offsets[-1]:
                        a = mid
                    else:
                        b = mid
                cuts.append(b)
                offsets.append(off)
            prev = t
        cuts.append(w_hi + 1)
        out: list[Span] = []
        for k, off in enumerate(offsets):
            s = max(cuts[k], lo_naive - off)
            e = min(cuts[k + 1], hi_naive - off)
            if s < e:
                if out and out[-1][1] == s:
                    out[-1] = (out[-1][0], float(e))
                else:
                    out.append((float(s), float(e)))
        return out

    def day_spans(self, d: date) -> tuple[Span, ...]:
        """Business time whose local reading is on date `d`, as sorted UTC (start, end) seconds."""
        key = d.toordinal()
        got = self._days.get(key)
        if got is not None:
            return got
        spans: list[Span] = []
        if self.always_open:
            base = float(_naive_seconds(d))
            spans = [(base, base + DAY)]
        elif not self.is_holiday(d):
            for s, e in self.week.get(d.weekday(), ()):
                spans.extend(self._utc_spans(_naive_seconds(d, s), _naive_seconds(d, e)))
        got = tuple(spans)
        self._days[key] = got
        return got

    # ----------------------------------------------------------------- timeline

    def _cover(self, lo: int, hi: int) -> _Timeline:
        """A timeline covering at least local dates lo..hi (ordinals), grown by doubling."""
        tl = self._timeline
        if tl is not None and tl.lo <= lo and hi <= tl.hi:
            return tl
        if tl is not None:
            width = tl.hi - tl.lo + 1
            lo = min(lo, tl.lo - width) if lo < tl.lo else tl.lo
            hi = max(hi, tl.hi + width) if hi > tl.hi else tl.hi
        # Spans are pairwise disjoint (an instant has one local reading, inside at most one
        # working interval of one date), so sorting them is all that is needed.
        spans = sorted(
            sp for o in range(lo, hi + 1) for sp in self.day_spans(date.fromordinal(o))
        )
        starts = [sp[0] for sp in spans]
        ends = [sp[1] for sp in spans]
        cum: list[float] = []
        cum_end: list[float] = []
        total = 0.0
        for a, b in spans:
            cum.append(total)
            total += b - a
            cum_end.append(total)
        tl = _Timeline(lo, hi, starts, ends, cum, cum_end)
        self._timeline = tl  # one assignment: a reader in another thread sees old or new
        return tl

    def _ordinal(self, ts: float) -> int:
        return _local_date(ts, self.zone).toordinal()

    # ----------------------------------------------------------------- arithmetic

    def business_seconds_ts(self, start: float, end: float) -> float:
        """Business seconds in [start, end) (POSIX seconds)."""
        if end <= start:
            return 0.0
        if self.always_open:
            return end - start
        # A span touching [start, end) belongs to a local date within a day of its ends.
        tl = self._cover(self._ordinal(start) - 1, self._ordinal(end) + 1)
        return tl.until(end) - tl.until(start)

    def add_business_ts(self, start: float, seconds: float) -> float:
        """The earliest instant t >= start with `seconds` of business time in [start, t)."""
        if seconds <= 0:
            return start
        if self.always_open:
            return start + seconds
        first = self._ordinal(start)
        hi = first + 1 + int(seconds // DAY) * 2
        while True:
            tl = self._cover(first - 1, hi)
            goal = tl.until(start) + seconds
            i = bisect.bisect_left(tl.cum_end, goal)
            # Spans of dates after tl.hi start at or after this bound; before it, the
            # timeline is complete.
            bound = _naive_seconds(date.fromordinal(tl.hi + 1)) - _MAX_OFFSET
            if i < len(tl.starts):
                found = tl.starts[i] + (goal - tl.cum[i])
                if found <= bound:
                    return found
            last = bound - MAX_SEARCH_DAYS * DAY
            if tl.hi - first > MAX_SEARCH_DAYS and tl.until(bound) == tl.until(last):
                raise CalendarError(
                    f'calendar "{self.name}" has no business time for {MAX_SEARCH_DAYS} days in'
                    f" a row after {datetime.fromtimestamp(start, UTC).isoformat()}: check its"
                    " holidays"
                )
            hi = tl.hi + (tl.hi - tl.lo + 1)

    def business_seconds(self, start: datetime, end: datetime) -> float:
        """Business seconds between two aware instants (0 when end <= start)."""
        return self.business_seconds_ts(_ts(start), _ts(end))

    def add_business(self, start: datetime, seconds: float) -> datetime:
        """The instant `seconds` of business time after the aware instant `start`, in UTC."""
        return datetime.fromtimestamp(self.add_business_ts(_ts(start), seconds), UTC)

    def is_open(self, at: datetime) -> bool:
        """True when the instant `at` is business time."""
        t = _ts(at)
        if self.always_open:
            return True
        o = self._ordinal(t)
        tl = self._cover(o - 1, o + 1)
        i = bisect.bisect_right(tl.starts, t) - 1
        return i >= 0 and t < tl.ends[i]


@dataclass(frozen=True, slots=True)
class _Timeline:
    """A calendar's business spans over local dates lo..hi, sorted, with running totals."""

    lo: int
    hi: int
    starts: list[float]
    ends: list[float]
    #: Business seconds before span i, and up to its end.
    cum: list[float]
    cum_end: list[float]

    def until(self, t: float) -> float:
        """Business seconds from the timeline's start up to the instant t."""
        i = bisect.bisect_right(self.starts, t) - 1
        if i < 0:
            return 0.0
        return self.cum[i] + min(t, self.ends[i]) - self.starts[i]


def _ts(at: datetime) -> float:
    if at.tzinfo is None:
        raise CalendarError(f"{at.isoformat()} has no time zone; pass an aware datetime")
    return at.timestamp()
