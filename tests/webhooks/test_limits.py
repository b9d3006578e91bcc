"""Connection limits against a real `serve` on 127.0.0.1: slow headers are cut off, slow bodies
get 408, oversized headers 431, and a flood of idle connections at the descriptor limit leaves
health probes and signed deliveries answered."""

from __future__ import annotations

import contextlib
import resource
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from connectors.jira.webhook import sign as sign_jira
from tests.webhooks.test_processes import REPO, SECRET, event_body, free_port, service_env
from tests.webhooks.test_processes import wait_healthy as _wait_healthy

pytestmark = pytest.mark.slow

#: Descriptors the attacked server may open in the fd-limit test.
SERVER_NOFILE = 256


@contextlib.contextmanager
def serve(tmp_path: Path, *, nofile: int | None = None, **extra: str) -> Iterator[int]:
    """A real `tierdesk serve` (receiver only) on a free port; yields the port."""
    port = free_port()
    env = service_env(f"sqlite:///{tmp_path / 'inbox.db'}", port, TIERDESK_HEADER_TIMEOUT="1",
                      TIERDESK_BODY_TIMEOUT="1", **extra)

    def limit() -> None:
        if nofile is not None:
            resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))

    log = tmp_path / "serve.log"
    with log.open("wb") as stderr:  # a file, not a pipe nobody reads while the test runs
        proc = subprocess.Popen(
            [sys.executable, "-m", "tests.webhooks.service_launcher", "serve",
             str(tmp_path / "vendor.db"), "--no-worker"],
            cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=stderr,
            preexec_fn=limit,
        )
    try:
        _wait_healthy(port, proc)
        yield port
        assert proc.poll() is None, "the server died under the attack"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    err = log.read_bytes()
    assert b"Too many open files" not in err, err.decode()[-2000:]
    assert err.count(b"connection limit reached") <= 3, "one line per 10 s at most"


def _closed(sock: socket.socket) -> bytes | None:
    """What the server sent before closing, or None while the connection is still open."""
    sock.settimeout(0.2)
    got = b""
    try:
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                return got
            got += chunk
    except TimeoutError:
        return None  # still open
    except ConnectionError:
        return got


def _signed_delivery(port: int, seq: int) -> int:
    raw = event_body(seq, 5)
    r = httpx.post(f"http://127.0.0.1:{port}/webhooks/jira", content=raw, timeout=10, headers={
        "Content-Type": "application/json", "X-Hub-Signature": sign_jira(raw, SECRET)})
    return r.status_code


def test_incomplete_headers_are_cut_off(tmp_path: Path) -> None:
    """A connection dripping one header byte at a time is closed after HEADER_TIMEOUT."""
    with serve(tmp_path) as port, socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(b"POST /webhooks/jira HTTP/1.1\r\nHost: x\r\n")
        outcome = None
        for _ in range(40):  # bounded: 40 bytes, one every 0.2 s plus the recv wait
            with contextlib.suppress(OSError):
                sock.sendall(b"X")
            outcome = _closed(sock)
            if outcome is not None:
                break
        assert outcome == b"", "the slow connection was never closed"


def test_idle_new_connection_is_cut_off(tmp_path: Path) -> None:
    """A connection that sends nothing at all is closed too (uvicorn's keep-alive timer never
    runs before a first response)."""
    with serve(tmp_path) as port, socket.create_connection(("127.0.0.1", port)) as sock:
        outcome = None
        for _ in range(40):
            outcome = _closed(sock)
            if outcome is not None:
                break
        assert outcome == b""


def test_slow_body_gets_408(tmp_path: Path) -> None:
    """A body not complete within BODY_TIMEOUT is answered 408 and the connection closed;
    nothing is stored."""
    with serve(tmp_path) as port, socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(b"POST /webhooks/jira HTTP/1.1\r\nHost: x\r\nContent-Type: application/json"
                     b"\r\nContent-Length: 100\r\n\r\n{\"ticket\":")
        outcome = None
        for _ in range(40):
            outcome = _closed(sock)
            if outcome is not None:
                break
        assert outcome is not None and outcome.startswith(b"HTTP/1.1 408 "), outcome
        assert b"connection: close" in outcome
        assert httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200


def test_oversized_complete_header_gets_431(tmp_path: Path) -> None:
    """A complete 200 KB header (accepted before) is answered 431 and closed."""
    with serve(tmp_path) as port, socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 200_000 + b"\r\n\r\n")
        outcome = None
        for _ in range(40):
            outcome = _closed(sock)
            if outcome is not None:
                break
        assert outcome is not None and outcome.startswith(b"HTTP/1.1 431 "), outcome


def test_unfinished_huge_header_gets_431(tmp_path: Path) -> None:
    """An unfinished 1 MiB header is refused once it passes MAX_HEADER_BYTES, not buffered."""
    with serve(tmp_path) as port, socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ")
        outcome = None
        with contextlib.suppress(OSError):  # the server closes while we are still sending
            for _ in range(16):
                sock.sendall(b"a" * 65536)
        for _ in range(40):
            outcome = _closed(sock)
            if outcome is not None:
                break
        assert outcome is not None
        assert outcome == b"" or outcome.startswith(b"HTTP/1.1 431 "), outcome


def test_header_at_the_limit_is_served(tmp_path: Path) -> None:
    """Headers just under MAX_HEADER_BYTES are still served normally."""
    with serve(tmp_path) as port:
        r = httpx.get(f"http://127.0.0.1:{port}/healthz", headers={"X-Big": "a" * 60_000})
        assert r.status_code == 200


def test_probes_and_deliveries_answered_during_a_flood_at_the_fd_limit(tmp_path: Path) -> None:
    """With the server at RLIMIT_NOFILE 256, 600 slow connections (more than it can hold) do not
    stop /healthz or signed deliveries, and no "Too many open files" is logged."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 800:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 2048), hard))
    attackers: list[socket.socket] = []
    answers: list[int] = []
    try:
        with serve(tmp_path, nofile=SERVER_NOFILE) as port:
            for i in range(600):  # bounded flood: each sends a partial request line
                try:
                    s = socket.create_connection(("127.0.0.1", port), timeout=5)
                    s.sendall(b"POST /webhooks/jira HTTP/1.1\r\nX")
                    attackers.append(s)
                except OSError:
                    pass
                if i % 100 == 99:
                    answers.append(httpx.get(f"http://127.0.0.1:{port}/healthz",
                                             timeout=10).status_code)
                    answers.append(_signed_delivery(port, i))
            for s in attackers:  # keep dripping, as the attack did
                with contextlib.suppress(OSError):
                    s.sendall(b"X")
            answers.append(httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=10).status_code)
            answers.append(_signed_delivery(port, 1000))
            answers.append(httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=10).status_code)
    finally:
        for s in attackers:
            s.close()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    assert answers == [200, 202] * 6 + [200, 202, 200]


def test_limits_are_read_from_settings() -> None:
    """The four limits come from TIERDESK_* with documented defaults."""
    from webhooks.settings import load_settings

    s = load_settings(environ={})
    assert (s.header_timeout, s.body_timeout, s.max_header_bytes, s.max_connections) == (
        10.0, 30.0, 65536, 1000)


def test_connection_cap_fits_the_descriptor_limit() -> None:
    """The connection cap is lowered to the descriptor limit minus the reserve."""
    from webhooks.limits import FD_RESERVE, connection_cap

    assert connection_cap(1000, nofile_soft=256) == 256 - FD_RESERVE
    assert connection_cap(1000, nofile_soft=65536) == 1000

