"""Connection limits of the receiver: header time and size, body time, open connections.

uvicorn bounds less than an internet-facing receiver needs (uvicorn 0.29 to 0.54, read in
`uvicorn/protocols/http/httptools_impl.py`):

- `timeout_keep_alive` (5 s) closes a keep-alive connection idle *between* requests; it is armed
  only after a response, so a new connection that sends nothing, or one byte every few seconds,
  was never closed (issue 14: 20,000 such connections exhausted the file descriptors).
- `limit_concurrency` answers 503 once connections or tasks reach the limit, but only when a
  request's headers are complete: the descriptors are taken all the same, idle connections are
  never closed, and health probes get 503 as well. It is not used.
- `h11_max_incomplete_event_size` bounds headers with the h11 parser only; with httptools (the
  parser tierdesk uses, for throughput) header bytes were buffered without limit.

`bounded_protocol(...)` returns uvicorn's httptools protocol with what is missing:

- the request line and headers must arrive within `header_timeout` seconds of the connection
  (or of the first byte of a later keep-alive request), else the connection is closed;
- they may not exceed `max_header_bytes` (431, then closed);
- the body must be complete within `body_timeout` seconds of the headers, else 408 and closed
  (the app sees a disconnect, so nothing half-received is stored);
- at most `max_connections` connections are open: one more evicts the oldest connection that
  is not running a request (waiting for headers or body, or idle), so a flood of slow
  connections cycles while a probe or a delivery, which sends its request at once, is served.

The server process must have more file descriptors than `max_connections` (`serve` lowers the
cap to the soft RLIMIT_NOFILE minus a reserve, so the database, the writer process and the
policy watcher always have theirs). An evicted connection's descriptor is freed on the next loop
iteration, so a burst of accepts can still meet EMFILE for a moment: libuv (uvloop) then accepts
and closes the excess connections and keeps listening (measured here with RLIMIT_NOFILE 128 and
300 connections; asyncio's loop instead pauses accepting for a second).
"""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar

from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from webhooks.logging import log

#: Descriptors kept for everything but client connections (database, writer pipes, policy file,
#: logs, the listening socket).
FD_RESERVE = 64

#: Seconds between two log lines about connections closed at the cap.
EVICTION_LOG_INTERVAL = 10.0

_HEADERS, _BODY, _APP, _IDLE = "headers", "body", "app", "idle"


class _HeadersTooLarge(Exception):
    """Raised from a parser callback to stop parsing; answered 431."""


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with header/body deadlines, a header size limit and a cap
    on open connections. Subclassed per server by `bounded_protocol` (the limits are class
    attributes because uvicorn builds protocols with its own keyword arguments)."""

    header_timeout: ClassVar[float] = 10.0
    body_timeout: ClassVar[float] = 30.0
    max_header_bytes: ClassVar[int] = 64 * 1024
    max_connections: ClassVar[int] = 1000
    #: Connections not running a request, oldest first: who is evicted when the cap is reached.
    evictable: ClassVar[dict[BoundedHttpToolsProtocol, None]]
    #: Evictions since the last log line about them, and when that line was written.
    evicted: ClassVar[int] = 0
    eviction_logged_at: ClassVar[float] = float("-inf")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._phase = _HEADERS
        self._deadline: asyncio.TimerHandle | None = None
        self._received_in_headers = 0
        self._header_bytes = 0

    # -- the connection

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._enter(_HEADERS, self.header_timeout, self._headers_late)
        if len(self.connections) > self.max_connections:
            victim = next(iter(self.evictable), self)
            victim._drop()
            self._note_eviction()

    def _note_eviction(self) -> None:
        """One log line per `EVICTION_LOG_INTERVAL` at most: a flood must not flood the log."""
        cls = type(self)
        cls.evicted += 1
        now = self.loop.time()
        if now - cls.eviction_logged_at >= EVICTION_LOG_INTERVAL:
            log("connection limit reached: closing the oldest connections not running a"
                " request", level=30, limit=self.max_connections, closed=cls.evicted)
            cls.evicted = 0
            cls.eviction_logged_at = now

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel()
        self.evictable.pop(self, None)
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._phase in (_HEADERS, _IDLE):
            self._received_in_headers += len(data)
        try:
            super().data_received(data)
        except _HeadersTooLarge:
            self._send_431()
            return
        if self._phase == _HEADERS and self._received_in_headers > self.max_header_bytes:
            # Headers still incomplete and already over the limit: nothing more is buffered.
            self._send_431()

    # -- parser callbacks

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._header_bytes = 0
        if self._phase != _HEADERS:  # a later request on a keep-alive connection
            self._received_in_headers = 0
            self._enter(_HEADERS, self.header_timeout, self._headers_late)

    def on_url(self, url: bytes) -> None:
        self._count(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count(len(name) + len(value) + 4)
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._enter(_BODY, self.body_timeout, self._body_late)
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._enter(_APP, None, None)
        super().on_message_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing() and self._phase == _APP:
            # Idle until the next request; uvicorn's keep-alive timeout closes it.
            self._enter(_IDLE, None, None)

    # -- the limits

    def _count(self, size: int) -> None:
        self._header_bytes += size
        if self._header_bytes > self.max_header_bytes:
            raise _HeadersTooLarge

    def _enter(self, phase: str, timeout: float | None, late: Any) -> None:
        self._cancel()
        self._phase = phase
        self.evictable.pop(self, None)
        if phase != _APP:
            self.evictable[self] = None  # re-inserted: newest last
        if timeout is not None:
            self._deadline = self.loop.call_later(timeout, late)

    def _cancel(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _headers_late(self) -> None:
        self._deadline = None
        if self._phase == _HEADERS:
            self._drop()

    def _body_late(self) -> None:
        self._deadline = None
        if self._phase != _BODY:
            return
        cycle = self.cycle
        if cycle is not None and not cycle.response_started:
            # The app is waiting for the rest of the body: it sees a disconnect (nothing is
            # stored, the vendor retries) and the client gets 408.
            cycle.disconnected = True
            cycle.message_event.set()
            self._send_status(408, f"the request body did not arrive within"
                                   f" {self.body_timeout:g} s")
        else:
            self._drop()

    def _send_431(self) -> None:
        self._send_status(431, f"request line and headers over {self.max_header_bytes} bytes")

    def _send_status(self, status: int, message: str) -> None:
        self._cancel()
        self._phase = _APP
        self.evictable.pop(self, None)
        if self.transport.is_closing():
            return
        body = message.encode("ascii")
        self.transport.write(b"".join([
            STATUS_LINE[status],
            b"content-type: text/plain; charset=utf-8\r\n",
            b"content-length: ", str(len(body)).encode("ascii"), b"\r\n",
            b"connection: close\r\n\r\n", body,
        ]))
        self.transport.close()

    def _drop(self) -> None:
        self._cancel()
        self.evictable.pop(self, None)
        cycle = self.cycle
        if cycle is not None and not cycle.response_complete:
            cycle.disconnected = True
            cycle.message_event.set()
        if not self.transport.is_closing():
            self.transport.abort()  # no lingering close: the descriptor is freed now


def bounded_protocol(
    *, header_timeout: float, body_timeout: float, max_header_bytes: int, max_connections: int
) -> type[BoundedHttpToolsProtocol]:
    """A protocol class for `uvicorn.Config(http=...)` with these limits."""
    return type("TierdeskHttpProtocol", (BoundedHttpToolsProtocol,), {
        "header_timeout": header_timeout,
        "body_timeout": body_timeout,
        "max_header_bytes": max_header_bytes,
        "max_connections": max_connections,
        "evictable": {},
    })


def connection_cap(requested: int, *, nofile_soft: int) -> int:
    """`requested`, lowered so that connections leave FD_RESERVE descriptors to the rest."""
    return max(1, min(requested, nofile_soft - FD_RESERVE))
