"""A tiny webhook endpoint for tests: records every delivery (path, headers, raw body) in order
and answers from `statuses` first, then 200."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    """A tiny webhook endpoint that records every call and answers from `statuses` first."""

    url: str = ""
    calls: list[Received] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)
    cond: threading.Condition = field(default_factory=threading.Condition)

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Received]:
        with self.cond:
            self.cond.wait_for(lambda: len(self.calls) >= count, timeout)
            return list(self.calls)


@contextmanager
def running_receiver() -> Iterator[Receiver]:
    """Serve a `Receiver` on 127.0.0.1 (an ephemeral port) until the block ends."""
    rec = Receiver()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            with rec.cond:
                rec.calls.append(Received(self.path, dict(self.headers.items()), body))
                status = rec.statuses.pop(0) if rec.statuses else 200
                rec.cond.notify_all()
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    rec.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield rec
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
