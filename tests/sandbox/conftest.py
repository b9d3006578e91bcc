"""Fixtures for the sandbox tests: a running sandbox, a webhook receiver, real vendor clients."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from jira import JIRA
from zenpy import Zenpy

from connectors.sandbox.server import SandboxHandle, run_in_thread


@pytest.fixture
def sandbox() -> Iterator[SandboxHandle]:
    handle = run_in_thread(retry_base=0.05)
    try:
        yield handle
    finally:
        handle.stop()


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


@pytest.fixture
def receiver() -> Iterator[Receiver]:
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


@pytest.fixture
def jira_client(sandbox: SandboxHandle) -> JIRA:
    """The real jira library, as tierdesk's bot, unmodified, pointed at the sandbox."""
    return JIRA(
        server=sandbox.jira_url,
        basic_auth=("bot@tierdesk.example", "token"),
        max_retries=0,
        timeout=5,
        options={"check_update": False},
    )


@pytest.fixture
def zenpy_client(sandbox: SandboxHandle, monkeypatch: pytest.MonkeyPatch) -> Zenpy:
    """The real zenpy, as tierdesk's bot, redirected by ZENPY_FORCE_SCHEME/NETLOC only."""
    for key, value in sandbox.zenpy_env().items():
        monkeypatch.setenv(key, value)
    return Zenpy(
        subdomain="tierdesk-sandbox",
        email="bot@tierdesk.example",
        token="t",
        disable_cache=True,
        timeout=5,
    )
