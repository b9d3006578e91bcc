"""One vendor's rate limit as one process obeys it: `VendorLimit`, the single owner of "may this
process talk to vendor V now, and until when not".

A vendor limits requests per account, not per thread or per replica, so one object per vendor
per process answers for all of them (webhooks/service.py builds them once and keeps them across
policy reloads), and everything that would talk to the vendor asks it:

- the HTTP transport (connectors/http.py `LimitAdapter`) before each request, and with each
  answer: a 429 (Retry-After, else the vendor's `default_pause`) or a 503 with Retry-After
  closes the limit before the next request of this process may start;
- the worker (webhooks/worker.py) before it starts on a ticket and before it writes, and when a
  connector reports a refusal (RateLimited, a 503 with Retry-After, a 401).

Every close is written through to a record every process shares (`PauseRecord`: the inbox's
`tierdesk_vendor_pauses` table, where `Inbox.claim` skips a paused vendor's tickets), and pauses
other processes recorded there are taken up from it (one read every `take_up_every` seconds at
most, made by whichever thread asks first), so a 429 seen by one replica stops the requests
already under way in the others too. The record is best effort for this process: when the
database cannot be reached the local pause still holds, and the write is tried again at the next
look.

Times are epoch seconds (the record's, shared by every host), from the `clock` given.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Protocol

from connectors.base import RateLimited

log = logging.getLogger("tierdesk.connectors.limit")

#: Seconds between two looks at the shared record for pauses other processes recorded.
TAKE_UP_EVERY = 1.0
#: A close ending at most this much later than the pause already recorded is that pause (the
#: transport's 429 and the worker's RateLimited about the same answer): not written again.
SAME_PAUSE = 1.0
#: Seconds between two warnings that the shared record cannot be read or written.
WARN_EVERY = 60.0


class PauseRecord(Protocol):
    """Where the pauses of every process are kept (webhooks.inbox.store.Inbox is one)."""

    def pause_vendor(self, vendor: str, *, until: float, reason: str) -> None:
        """Record that no process talks to `vendor` before `until`; a later pause wins."""
        ...

    def paused_until(self, vendor: str) -> float | None:
        """When `vendor`'s recorded pause ends, if it has not ended yet."""
        ...


class VendorPaused(RateLimited):
    """Not sent: the vendor asked this process (or another replica) to wait, and the time has
    not passed yet."""

    def __init__(self, vendor: str, seconds: float) -> None:
        super().__init__(
            f"{vendor} asked to wait (Retry-After); not sent, {seconds:.1f} s left",
            retry_after=seconds,
            status=None,
        )


class VendorLimit:
    """Whether this process may talk to one vendor now: at most `concurrency` requests in
    flight, none until a pause ends, every pause shared through `record`. Thread-safe."""

    def __init__(
        self,
        vendor: str,
        *,
        concurrency: int = 1,
        default_pause: float = 30.0,
        record: PauseRecord | None = None,
        clock: Callable[[], float] = time.time,
        take_up_every: float = TAKE_UP_EVERY,
    ) -> None:
        if concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, got {concurrency}")
        self.vendor = vendor
        self.concurrency = concurrency
        #: The pause after a 429 that names no Retry-After (connectors.base.Vendor.default_pause).
        self.default_pause = default_pause
        self.record = record
        self.take_up_every = take_up_every
        self._clock = clock
        self._slots = threading.BoundedSemaphore(concurrency)
        self._lock = threading.Lock()
        #: The end of the pause as this process knows it (epoch seconds).
        self._until = 0.0
        #: The end of the pause the record is known to hold (written or read by this process).
        self._recorded = 0.0
        self._reason = ""
        self._next_look = 0.0
        self._warned = float("-inf")

    # ------------------------------------------------------------------ asking

    def closed_for(self) -> float:
        """Seconds until this process may talk to the vendor again (0: now). Takes up a pause
        another process recorded (at most one read of the record per `take_up_every` s)."""
        now = self._clock()
        if self.record is not None:
            self._look(now)
        with self._lock:
            return max(0.0, self._until - now)

    def check(self) -> None:
        """Raise VendorPaused (nothing is to be sent) while the limit is closed."""
        wait = self.closed_for()
        if wait > 0:
            raise VendorPaused(self.vendor, wait)

    @contextmanager
    def slot(self) -> Iterator[None]:
        """Hold one of the `concurrency` places on the wire."""
        with self._slots:
            yield

    # ------------------------------------------------------------------ closing

    def close(self, seconds: float, *, reason: str) -> None:
        """Talk to the vendor no sooner than `seconds` from now (a longer pause already set is
        kept), and record it for every process unless the record already says so."""
        until = self._clock() + max(0.0, seconds)
        with self._lock:
            self._until = max(self._until, until)
            if until > self._recorded + SAME_PAUSE:
                self._reason = reason
            write = self._until > self._recorded + SAME_PAUSE
        if write:
            self._write()

    def note_answer(self, status: int, retry_after: float | None) -> None:
        """Close the limit as the vendor's answer asks: 429 (`retry_after`, else
        `default_pause`), or 503 with `retry_after`. Other answers leave it as it is."""
        if status not in (429, 503):
            return
        seconds = retry_after
        if seconds is None and status == 429:
            seconds = self.default_pause
        if seconds is None:
            return
        said = f"{retry_after:g} s" if retry_after is not None else f"none, {seconds:g} s"
        self.close(seconds, reason=f"HTTP {status} from {self.vendor} (Retry-After: {said})")

    # ------------------------------------------------------------------ the shared record

    def _look(self, now: float) -> None:
        """Write a pause the record missed, and take up one another process recorded."""
        with self._lock:
            if now < self._next_look:
                return
            self._next_look = now + self.take_up_every  # one thread looks, the others go on
            unwritten = self._until > self._recorded + SAME_PAUSE
        assert self.record is not None
        if unwritten:
            self._write()
        try:
            theirs = self.record.paused_until(self.vendor)
        except Exception as exc:  # the local pause still holds; the next look tries again
            self._warn("cannot read the vendor pauses of other processes", exc)
            return
        if theirs is None:
            return
        with self._lock:
            self._recorded = max(self._recorded, theirs)
            taken = theirs > self._until
            if taken:
                self._until = theirs
        if taken:
            log.info("vendor pause taken up from another process", extra={"fields": {
                "vendor": self.vendor, "paused_for": round(max(0.0, theirs - now), 3)}})

    def _write(self) -> None:
        """Record the pause as this process knows it (the record keeps the later of two)."""
        if self.record is None:
            return
        with self._lock:
            until, reason = self._until, self._reason
        try:
            self.record.pause_vendor(self.vendor, until=until, reason=reason[:500])
        except Exception as exc:  # kept locally; written again at the next look
            self._warn("cannot record the vendor pause for other processes", exc)
            return
        with self._lock:
            self._recorded = max(self._recorded, until)

    def _warn(self, event: str, exc: Exception) -> None:
        now = self._clock()
        with self._lock:
            if now - self._warned < WARN_EVERY:
                return
            self._warned = now
        log.warning(event, extra={"fields": {"vendor": self.vendor, "error": repr(exc)[:300]}})
