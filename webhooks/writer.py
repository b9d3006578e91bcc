"""The inbox writer child process: `python -m webhooks.writer FD`, started by `tierdesk serve`.

Its serving-process end is `webhooks.commit.WriterProcess` (whose docstring describes the
protocol): it reads frames of deliveries from the socket FD, commits everything that arrived
while it was committing the previous group as one transaction (at most MAX_GROUP deliveries),
and answers each delivery after the commit. It exits at end-of-file, once the server has closed
the socket, and ignores SIGINT and SIGTERM so that no commit is cut short.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time
from collections.abc import Sequence
from multiprocessing.connection import Connection

from connectors.base import Envelope
from webhooks.commit import Answer, Request, enqueue_each
from webhooks.inbox.records import Delivery
from webhooks.inbox.store import Inbox
from webhooks.logging import configure_logging, log

#: Deliveries per transaction in the writer.
MAX_GROUP = 256


def _commit(inbox: Inbox, requests: Sequence[Request]) -> list[Answer]:
    items: list[Delivery] = [(Envelope(**fields), {}, raw) for _, fields, raw in requests]
    outcomes = [
        f"the inbox cannot store this delivery: {outcome!r}"[:500]
        if isinstance(outcome, Exception) else outcome
        for outcome in enqueue_each(inbox, items)
    ]
    return [(request, outcome) for (request, _, _), outcome in zip(requests, outcomes, strict=True)]


def serve_writer(conn: Connection, database_url: str) -> int:
    """The writer's loop: take what has arrived, commit it as one group, answer; until the
    server closes its end (then commit and answer what is left, and return)."""
    try:
        inbox = Inbox.connect(database_url)
    except Exception as exc:
        conn.send(("failed", str(exc)))
        return 1
    conn.send(("ready", os.getpid()))
    pending: list[Request] = []
    ended = False
    try:
        while not ended or pending:
            try:
                if not pending:
                    pending.extend(conn.recv()[1])  # wait for work
                while len(pending) < MAX_GROUP and conn.poll(0):  # and take what else is there
                    pending.extend(conn.recv()[1])
            except EOFError:
                ended = True
            if not pending:
                continue
            group, pending = pending[:MAX_GROUP], pending[MAX_GROUP:]
            answers = _commit(inbox, group)
            with contextlib.suppress(OSError):  # the server is gone: the commit stands
                conn.send(("done", answers))
    finally:
        inbox.close()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1 or not args[0].isdigit():
        print("usage: python -m webhooks.writer FD  (started by tierdesk serve)", file=sys.stderr)
        return 2
    # The server stops the writer by closing the socket, after its last answer: a Ctrl-C or a
    # SIGTERM sent to the whole process group must not cut a commit short.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    configure_logging(os.environ.get("TIERDESK_LOG_LEVEL", "WARNING"))
    conn = Connection(int(args[0]))
    started = time.monotonic()
    try:
        return serve_writer(conn, os.environ["TIERDESK_DATABASE_URL"])
    finally:
        conn.close()
        log("inbox writer stopped", level=10, seconds=round(time.monotonic() - started, 1))


if __name__ == "__main__":
    sys.exit(main())
