"""HTTP details both vendor connectors share: header look-up, Retry-After, and the vendor line.

A `VendorLine` is one vendor's way out of this process: at most `concurrency` requests on the
wire at once, and none at all while the vendor has asked to wait. `LineAdapter` is the
`requests` transport that enforces it. With `concurrency=1` (the default) no request of this
process can reach the vendor after a 429 or 503 and before its Retry-After has passed: the
refusal is read, and the line closed, before the next request may start. With more requests in
flight, one already on the wire when a sibling's 429 comes back lands inside the window.
"""

from __future__ import annotations

import email.utils
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import requests
from requests.adapters import HTTPAdapter

from connectors.base import RateLimited


def header(headers: Mapping[str, str], name: str) -> str | None:
    """The value of header `name`, looked up case-insensitively (HTTP header names are)."""
    wanted = name.lower()
    for key, value in headers.items():
        if key.lower() == wanted:
            return value
    return None


def retry_after_seconds(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait per a Retry-After header: delta-seconds or an HTTP date (RFC 9110
    10.2.3); None when there is no usable header."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    current = time.time() if now is None else now
    return max(0.0, when.timestamp() - current)


class VendorLine:
    """One vendor's requests out of this process: how many may be in flight, and until when the
    vendor has asked to be left alone. Thread-safe; share one per vendor across worker threads
    and policy reloads."""

    def __init__(
        self,
        vendor: str,
        *,
        concurrency: int = 1,
        default_pause: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, got {concurrency}")
        self.vendor = vendor
        self.concurrency = concurrency
        #: The pause after a 429 that names no Retry-After (the connectors use the same floor).
        self.default_pause = default_pause
        self._clock = clock
        self._slots = threading.BoundedSemaphore(concurrency)
        self._lock = threading.Lock()
        self._until = 0.0

    def closed_for(self) -> float:
        """Seconds until a request may start again (0 when the line is open)."""
        with self._lock:
            return max(0.0, self._until - self._clock())

    def hold_off(self, seconds: float) -> None:
        """Start no request for `seconds` from now (a longer pause already set is kept)."""
        with self._lock:
            self._until = max(self._until, self._clock() + max(0.0, seconds))

    @contextmanager
    def slot(self) -> Iterator[None]:
        """Hold one of the `concurrency` places on the wire."""
        with self._slots:
            yield

    def note_answer(self, response: requests.Response) -> None:
        """Close the line as the vendor asks: 429 (Retry-After, else `default_pause`), or 503
        with Retry-After. Other answers leave it as it is."""
        status = response.status_code
        if status not in (429, 503):
            return
        seconds = retry_after_seconds(header(response.headers, "Retry-After"))
        if seconds is None and status == 429:
            seconds = self.default_pause
        if seconds is not None:
            self.hold_off(seconds)


class LinePaused(RateLimited):
    """Not sent: the vendor asked this process to wait (a sibling thread's 429 or 503)."""

    def __init__(self, vendor: str, seconds: float) -> None:
        super().__init__(
            f"{vendor} asked to wait (Retry-After); not sent, {seconds:.1f} s left",
            retry_after=seconds,
            status=None,
        )


class LineAdapter(HTTPAdapter):
    """A `requests` transport that sends through a `VendorLine`: no request starts while the
    line is closed (`LinePaused`, a `RateLimited`, is raised instead, nothing is sent), at most
    `line.concurrency` are in flight, and a refusal closes the line before the next one starts.

    Mount it on a connector's session (`webhooks.service` does, for `http://` and `https://`);
    it never retries (`max_retries=0`, as the connectors require)."""

    def __init__(self, line: VendorLine) -> None:
        super().__init__(max_retries=0)
        self.line = line

    def send(
        self, request: requests.PreparedRequest, *args: Any, **kwargs: Any
    ) -> requests.Response:
        with self.line.slot():
            wait = self.line.closed_for()
            if wait > 0:
                raise LinePaused(self.line.vendor, wait)
            response = super().send(request, *args, **kwargs)
            self.line.note_answer(response)
            return response


def session_on(line: VendorLine) -> requests.Session:
    """A session whose every request goes through `line`."""
    session = requests.Session()
    adapter = LineAdapter(line)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session
