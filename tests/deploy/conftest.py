"""Fixtures of the deploy tests: the real `tierdesk serve --no-worker` server, listening."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi import FastAPI
from starlette.routing import Route

from webhooks.service import build_server
from webhooks.settings import load_settings


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class LiveServer:
    """A running receiver: its port, its GET routes and uvicorn's graceful-shutdown time."""

    port: int
    get_paths: frozenset[str]
    graceful_seconds: float

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def get_paths(app: FastAPI) -> frozenset[str]:
    """The paths the app answers to GET."""
    return frozenset(
        r.path for r in app.routes if isinstance(r, Route) and "GET" in (r.methods or ())
    )


@pytest.fixture(scope="session")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """`tierdesk serve --no-worker` as built by the CLI, on SQLite, in a thread."""
    root: Path = tmp_path_factory.mktemp("serve")
    policy = Path(__file__).resolve().parents[2] / "deploy" / "policy.example.yaml"
    settings = load_settings(
        _env_file=None, policy=policy, database_url=f"sqlite:///{root}/inbox.db"
    )
    port = free_port()
    server, service = build_server(settings, with_worker=False, host="127.0.0.1", port=port)
    thread = threading.Thread(target=server.run, name="deploy-test-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the receiver did not start")
        time.sleep(0.02)
    app = server.config.app
    assert isinstance(app, FastAPI)
    try:
        yield LiveServer(
            port=port,
            get_paths=get_paths(app),
            graceful_seconds=float(server.config.timeout_graceful_shutdown or 0),
        )
    finally:
        server.should_exit = True
        thread.join(timeout=20)
        service.inbox.close()
