"""The committers: what makes the receiver's deliveries durable before it answers 202.

Both have one interface (`Committer`): `submit(delivery)` gives a future that is True for a new
delivery and False for a duplicate once its group is committed (group commit: the disk sync is
paid once per group, not once per request).

    CommitBatcher    a thread of the serving process (TIERDESK_INBOX_WRITER=thread)
    WriterProcess    the serving process's end of the writer child process (webhooks/writer.py,
                     `tierdesk serve`'s default)

Why a process: done by a thread of the serving process, a commit's Python and SQLite work
competes with the event loop for one interpreter lock, and the server tops out at one core
while the machine's other core idles (bench/ingest.py). So by default
(`TIERDESK_INBOX_WRITER=process`) a child process owns the receiver's inserts:

    event loop --- frames over a private socketpair --> python -m webhooks.writer --> inbox
               <-- the outcome of each delivery, after its group's commit ---

Frames are those of the standard library's `multiprocessing.connection` (a 4-byte big-endian
length and a pickle), read and written by it in the writer and by an asyncio protocol on the
event loop; both ends are this same tierdesk, over an unnamed socketpair inherited by the
child, never a listening socket. An envelope crosses as its fields by name. The event loop
sends what its requests submitted in one loop iteration as one frame. The writer commits
everything that arrived while it was committing the previous group in one transaction
(`Inbox.enqueue_many`, at most webhooks/writer.py's MAX_GROUP deliveries) and answers after
the commit, so a 202 still follows its own durable commit and the disk sync is paid once per
group.

Nothing is lost when the writer dies: the deliveries it had not answered fail, the receiver
answers them 503 (the vendor retries; one that was in fact stored is then a duplicate and gets
200), and a new writer is started. The writer ignores SIGINT and SIGTERM: the server closes
the socket once its in-flight requests are answered, and the writer exits at end-of-file,
also when the server was killed.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import pickle
import queue
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator, Sequence
from typing import Any, Protocol

from connectors.base import Envelope
from webhooks.inbox.database import InboxError
from webhooks.inbox.records import Delivery, stored_json
from webhooks.inbox.store import Inbox
from webhooks.logging import log

#: Seconds the serving process waits for a new writer to open the inbox.
START_TIMEOUT = 30.0
#: Seconds before a dead writer is replaced; doubled after each failed start, up to the max.
RESTART_DELAY = 1.0
MAX_RESTART_DELAY = 30.0

_HEADER = 4
#: One delivery as sent to the writer: (request id, the Envelope's fields by name, the JSON
#: bytes to store).
Request = tuple[int, dict[str, Any], bytes]
#: One answer: (request id, True new | False duplicate | the error text).
Answer = tuple[int, bool | str]
#: The Envelope's field names, in the order the dataclass declares them.
_ENVELOPE_FIELDS = tuple(f.name for f in dataclasses.fields(Envelope))


def frame(obj: object) -> bytes:
    """`obj` as one frame: a 4-byte big-endian length and a pickle."""
    data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    return len(data).to_bytes(_HEADER, "big") + data


def frames(buffer: bytearray) -> Iterator[Any]:
    """Take every complete frame off the front of `buffer`."""
    start = 0
    while len(buffer) - start >= _HEADER:
        size = int.from_bytes(buffer[start : start + _HEADER], "big")
        end = start + _HEADER + size
        if end > len(buffer):
            break
        yield pickle.loads(buffer[start + _HEADER : end])
        start = end
    del buffer[:start]


def envelope_fields(envelope: Envelope) -> dict[str, Any]:
    """`envelope` as its fields by name (`Envelope(**fields)` rebuilds it)."""
    return {name: getattr(envelope, name) for name in _ENVELOPE_FIELDS}


class WriterError(InboxError):
    """The writer process is not there to commit a delivery (the receiver answers 503)."""


class _Answers(asyncio.Protocol):
    def __init__(self, writer: WriterProcess) -> None:
        self.writer = writer
        self.buffer = bytearray()

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        for frame in frames(self.buffer):
            self.writer._answered(frame)

    def connection_lost(self, exc: Exception | None) -> None:
        self.writer._lost(self)


class WriterProcess:
    """The serving process's end of the writer: `submit(delivery)` gives a future that is True
    for a new delivery and False for a duplicate once it is committed (CommitBatcher's
    interface). Start it with `await start()` on the serving event loop; `await aclose()`."""

    def __init__(self, database_url: str, *, log_level: str = "WARNING") -> None:
        self.database_url = database_url
        self.log_level = log_level
        self._process: subprocess.Popen[bytes] | None = None
        self._transport: asyncio.Transport | None = None
        self._protocol: _Answers | None = None
        self._ready: asyncio.Future[None] | None = None
        self._waiting: dict[int, asyncio.Future[bool]] = {}
        self._outbox: list[Request] = []
        self._next_id = 0
        self._closing = False
        self._restart: asyncio.Task[None] | None = None
        self._problem: str | None = "the inbox writer process has not started"
        self.starts = 0

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Start a writer and wait until it has opened the inbox; InboxError if it cannot."""
        loop = asyncio.get_running_loop()
        ours, theirs = socket.socketpair()
        env = dict(os.environ)
        env["TIERDESK_DATABASE_URL"] = self.database_url
        env["TIERDESK_LOG_LEVEL"] = self.log_level
        # The child imports tierdesk the way this process did (an editable install, a
        # PYTHONPATH, or a `python -c` with a changed sys.path).
        env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
        try:
            process = subprocess.Popen(
                [sys.executable, "-m", "webhooks.writer", str(theirs.fileno())],
                pass_fds=(theirs.fileno(),), env=env, stdin=subprocess.DEVNULL,
            )
        except OSError as exc:
            ours.close()
            raise InboxError(f"cannot start the inbox writer process: {exc}") from None
        finally:
            theirs.close()
        self._process = process
        self._ready = loop.create_future()
        transport, protocol = await loop.create_unix_connection(lambda: _Answers(self), sock=ours)
        self._transport, self._protocol = transport, protocol
        try:
            await asyncio.wait_for(asyncio.shield(self._ready), START_TIMEOUT)
        except (TimeoutError, InboxError) as exc:
            if not self._ready.done():
                self._ready.cancel()
            transport.close()
            if process.poll() is None and not isinstance(exc, InboxError):
                process.kill()  # hung while opening the inbox
            await asyncio.to_thread(self._reap, process)
            message = (str(exc) if isinstance(exc, InboxError) else
                       f"the inbox writer process did not open the inbox in {START_TIMEOUT:.0f} s")
            self._problem = message
            raise InboxError(message) from None
        self.starts += 1
        self._problem = None

    async def aclose(self) -> None:
        """Let the writer commit what it was sent, answer it, and exit."""
        self._closing = True
        if self._restart is not None:
            self._restart.cancel()
        self._flush()
        if self._waiting and self._transport is not None and not self._transport.is_closing():
            # In-flight requests are answered before the app shuts down; this is a safety net.
            waiting = list(self._waiting.values())
            await asyncio.wait(waiting, timeout=30)
        if self._transport is not None:
            self._transport.close()
        if self._process is not None:
            await asyncio.to_thread(self._reap, self._process)
        self._problem = "the inbox writer process has stopped"

    @staticmethod
    def _reap(process: subprocess.Popen[bytes]) -> None:
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def problem(self) -> str | None:
        """Why deliveries cannot be committed now (for /readyz), or None."""
        return self._problem

    # ------------------------------------------------------------------ the hot path

    def submit(self, item: Delivery) -> asyncio.Future[bool]:
        """Send `item` to the writer; the future is done once its group is committed."""
        if self._problem is not None:
            raise WriterError(f"{self._problem}; retry later")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[bool] = loop.create_future()
        self._next_id += 1
        self._waiting[self._next_id] = future
        envelope, payload, raw = item
        self._outbox.append((self._next_id, envelope_fields(envelope), stored_json(payload, raw)))
        if len(self._outbox) == 1:
            loop.call_soon(self._flush)  # one frame for what this loop iteration submits
        return future

    def _flush(self) -> None:
        if not self._outbox or self._transport is None or self._transport.is_closing():
            return
        batch, self._outbox = self._outbox, []
        self._transport.write(frame(("deliver", batch)))

    def _answered(self, frame: Any) -> None:
        if frame[0] == "ready":
            if self._ready is not None and not self._ready.done():
                self._ready.set_result(None)
            return
        if frame[0] == "failed":
            if self._ready is not None and not self._ready.done():
                self._ready.set_exception(InboxError(str(frame[1])))
            return
        for request, outcome in frame[1]:
            future = self._waiting.pop(request, None)
            if future is None or future.done():  # the client went away meanwhile
                continue
            if isinstance(outcome, str):
                future.set_exception(InboxError(outcome))
            else:
                future.set_result(outcome)

    def _lost(self, protocol: _Answers) -> None:
        if protocol is not self._protocol:
            return
        self._transport = self._protocol = None
        was_up = self._problem is None
        if self._ready is not None and not self._ready.done():
            self._ready.set_exception(InboxError("the inbox writer process exited at start-up"))
        error = WriterError("the inbox writer process stopped before committing this delivery;"
                            " retry later")
        for future in self._waiting.values():
            if not future.done():
                future.set_exception(error)
        self._waiting.clear()
        self._outbox.clear()
        if self._closing or not was_up:  # a failed start is start()'s to report
            return
        code = self._process.poll() if self._process is not None else None
        self._problem = "the inbox writer process stopped; a new one is starting"
        log("inbox writer process stopped; starting a new one", level=40, exit_code=code)
        self._restart = asyncio.get_running_loop().create_task(self._restart_loop())

    async def _restart_loop(self) -> None:
        delay = RESTART_DELAY
        try:
            while not self._closing:
                if self._process is not None:
                    await asyncio.to_thread(self._reap, self._process)
                await asyncio.sleep(delay)
                try:
                    await self.start()
                    log("inbox writer process restarted", level=30)
                    return
                except InboxError as exc:
                    delay = min(delay * 2, MAX_RESTART_DELAY)
                    log("inbox writer process cannot start; trying again", level=40,
                        error=str(exc), retry_in=delay)
        finally:
            self._restart = None


def enqueue_each(inbox: Inbox, items: Sequence[Delivery]) -> list[bool | Exception]:
    """Commit `items` as one group (True new, False duplicate each); if the group fails, one by
    one, so that one bad delivery does not fail the others (its outcome is then its error)."""
    try:
        return list(inbox.enqueue_many(items))
    except Exception:
        outcomes: list[bool | Exception] = []
        for item in items:
            try:
                outcomes.append(inbox.enqueue_many([item])[0])
            except Exception as exc:
                outcomes.append(exc)
        return outcomes


# ---------------------------------------------------------------------- in this process


_Pending = tuple[Delivery, asyncio.AbstractEventLoop, "asyncio.Future[bool]"]


class Committer(Protocol):
    """What commits the receiver's deliveries: a `CommitBatcher` thread in this process, or
    the writer process (`WriterProcess`) (`tierdesk serve`'s default)."""

    def submit(self, item: Delivery) -> asyncio.Future[bool]:
        """Queue `item`; the future is True (new) or False (duplicate) once it is durable."""
        ...

    def problem(self) -> str | None:
        """Why nothing can be committed now (reported by /readyz), or None."""
        ...

    async def aclose(self) -> None:
        """Commit what was submitted, then stop."""
        ...


class CommitBatcher:
    """One thread that commits queued deliveries in groups (group commit) and resolves each
    request's future with "new or duplicate" only after its group is durable.

    A group's futures are resolved by one callback on their event loop, so a group of 64 costs
    the loop one wake-up, not 64."""

    def __init__(self, inbox: Inbox, *, max_batch: int = 256) -> None:
        self.inbox = inbox
        self.max_batch = max_batch
        self._queue: queue.SimpleQueue[_Pending | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="tierdesk-commit", daemon=True)
        self._thread.start()

    def submit(self, item: Delivery) -> asyncio.Future[bool]:
        """Queue `item`; the future (on the running loop) is done once its group committed."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[bool] = loop.create_future()
        self._queue.put((item, loop, future))
        return future

    def stop(self) -> None:
        """Commit what is queued, then stop the thread."""
        self._queue.put(None)
        self._thread.join(timeout=30)

    async def aclose(self) -> None:
        self.stop()

    def problem(self) -> str | None:
        return None

    def _run(self) -> None:
        stopping = False
        while not stopping:
            first = self._queue.get()
            if first is None:
                return
            batch = [first]
            while len(batch) < self.max_batch:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    stopping = True
                    break
                batch.append(nxt)
            self._commit(batch)

    def _commit(self, batch: Sequence[_Pending]) -> None:
        outcomes = enqueue_each(self.inbox, [item for item, _, _ in batch])
        by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[bool],
                                                             bool | BaseException]]] = {}
        for (_, loop, future), outcome in zip(batch, outcomes, strict=True):
            by_loop.setdefault(loop, []).append((future, outcome))
        for loop, results in by_loop.items():
            with contextlib.suppress(RuntimeError):  # a closed loop: nobody waits any more
                loop.call_soon_threadsafe(_resolve, results)


def _resolve(results: Sequence[tuple[asyncio.Future[bool], bool | BaseException]]) -> None:
    for future, outcome in results:
        if future.done():  # the request was cancelled (client went away)
            continue
        if isinstance(outcome, BaseException):
            future.set_exception(outcome)
        else:
            future.set_result(outcome)
