"""The one rate-limit owner per vendor and process (connectors/vendor_limit.py), against an
in-memory pause record: every close is recorded once for the other processes, theirs are taken
up, and a record that cannot be reached never opens a pause nor loses one."""

from __future__ import annotations

import logging
import threading

import pytest

from connectors.vendor_limit import SAME_PAUSE, VendorLimit, VendorPaused
from tests.webhooks.conftest import FakeClock
from tests.webhooks.conftest import records as records


class Record:
    """The inbox's pause table as VendorLimit uses it (a later pause wins), counting calls."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.rows: dict[str, tuple[float, str]] = {}
        self.writes: list[tuple[str, float, str]] = []
        self.reads = 0
        self.down = False

    def pause_vendor(self, vendor: str, *, until: float, reason: str) -> None:
        if self.down:
            raise ConnectionError("database unreachable")
        self.writes.append((vendor, until, reason))
        old = self.rows.get(vendor)
        self.rows[vendor] = (max(until, old[0]) if old else until, reason)

    def paused_until(self, vendor: str) -> float | None:
        self.reads += 1
        if self.down:
            raise ConnectionError("database unreachable")
        row = self.rows.get(vendor)
        return row[0] if row and row[0] > self.clock() else None


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def record(clock: FakeClock) -> Record:
    return Record(clock)


def test_a_close_is_recorded_for_the_other_processes(clock: FakeClock, record: Record) -> None:
    """The transport's 429 closes the limit and writes the pause, with why, to the record."""
    limit = VendorLimit("zendesk", record=record, clock=clock)
    limit.note_answer(429, 20.0)
    assert limit.closed_for() == pytest.approx(20)
    assert record.writes == [
        ("zendesk", clock.now + 20, "HTTP 429 from zendesk (Retry-After: 20 s)")]


def test_one_refusal_seen_twice_is_recorded_once(clock: FakeClock, record: Record) -> None:
    """The transport's 429 and, a moment later, the worker's RateLimited about the same answer
    are one pause: one write. A longer wait asked for later (Jira's X-RateLimit-Reset) is
    written."""
    limit = VendorLimit("jira", record=record, clock=clock)
    limit.note_answer(429, 30.0)
    clock.advance(SAME_PAUSE / 2)
    limit.close(30.0, reason="RateLimited: 429")
    assert len(record.writes) == 1
    limit.close(90.0, reason="RateLimited: reset in 90 s")
    assert [w[1] for w in record.writes] == [clock.now - SAME_PAUSE / 2 + 30, clock.now + 90]
    assert record.writes[-1][2] == "RateLimited: reset in 90 s"
    assert limit.closed_for() == pytest.approx(90)


def test_a_pause_another_process_recorded_is_taken_up(
    clock: FakeClock, record: Record, records: list[logging.LogRecord]
) -> None:
    """Another replica's pause closes this process's limit at its next look: no request may
    start until it ends (check raises VendorPaused), and the take-up is logged."""
    limit = VendorLimit("jira", record=record, clock=clock)
    assert limit.closed_for() == 0
    record.rows["jira"] = (clock.now + 45, "HTTP 429 from jira (Retry-After: 45 s)")
    clock.advance(1.0)  # the next look (take_up_every)
    assert limit.closed_for() == pytest.approx(44)
    with pytest.raises(VendorPaused) as info:
        limit.check()
    assert info.value.retry_after == pytest.approx(44)
    assert [r.getMessage() for r in records] == ["vendor pause taken up from another process"]
    assert record.writes == []  # what it took up it does not write back
    clock.advance(44)
    assert limit.closed_for() == 0
    limit.check()


def test_the_record_is_read_once_per_take_up_interval(
    clock: FakeClock, record: Record
) -> None:
    """Asking before every request costs at most one read of the record a second, whatever the
    number of requests and threads."""
    limit = VendorLimit("jira", record=record, clock=clock)
    threads = [threading.Thread(target=lambda: [limit.closed_for() for _ in range(50)])
               for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert record.reads == 1
    clock.advance(0.5)
    limit.closed_for()
    assert record.reads == 1
    clock.advance(0.5)
    limit.closed_for()
    assert record.reads == 2


def test_without_the_record_the_local_pause_holds_and_is_written_later(
    clock: FakeClock, record: Record, records: list[logging.LogRecord]
) -> None:
    """The database is down when the 429 comes: this process still stops at once (one warning),
    and the pause is written at the first look after the database is back, so the other
    replicas get it."""
    limit = VendorLimit("zendesk", record=record, clock=clock)
    record.down = True
    limit.note_answer(429, 60.0)
    clock.advance(1.0)
    assert limit.closed_for() == pytest.approx(59)  # the failed look changes nothing
    assert [r.getMessage() for r in records] == [
        "cannot record the vendor pause for other processes"]  # said once a minute at most
    record.down = False
    clock.advance(1.0)
    assert limit.closed_for() == pytest.approx(58)
    assert record.rows["zendesk"] == (clock.now + 58, "HTTP 429 from zendesk (Retry-After: 60 s)")


@pytest.mark.parametrize(
    ("status", "retry_after", "closed_for"),
    [
        (429, 7.0, 7.0),
        (429, None, 60.0),  # no Retry-After: the vendor's default pause
        (503, 4.0, 4.0),
        (503, None, 0.0),  # an outage without Retry-After: the worker's backoff decides
        (500, 9.0, 0.0),
        (200, None, 0.0),
    ],
)
def test_answers_close_the_limit_as_the_vendor_asks(
    clock: FakeClock, status: int, retry_after: float | None, closed_for: float
) -> None:
    limit = VendorLimit("zendesk", default_pause=60.0, clock=clock)
    limit.note_answer(status, retry_after)
    assert limit.closed_for() == pytest.approx(closed_for)
