"""The inbox writer process (webhooks/commit.py, webhooks/writer.py): what it answers, that it
commits before it answers, on SQLite and PostgreSQL, and that nothing is lost or hangs when it
dies, is signalled, or outlives the server that started it."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from connectors.base import Envelope
from connectors.jira.webhook import sign as sign_jira
from tests.webhooks.fakes import fake_envelope, vendors_classifying
from webhooks import commit as commit_module
from webhooks.app import ReceiverConfig, create_app
from webhooks.commit import WriterError, WriterProcess, frame, frames
from webhooks.inbox.database import InboxError
from webhooks.inbox.records import stored_json
from webhooks.inbox.store import Inbox

REPO = Path(__file__).resolve().parents[2]


def delivery(ticket: str, delivery_id: str, *, handled: bool = True,
             raw: bytes | None = None) -> tuple[Envelope, dict[str, Any], bytes | None]:
    payload = {"ticket": ticket, "id": delivery_id}
    envelope = Envelope(vendor="jira", event_type="jira:issue_updated", handled=handled,
                        ticket=ticket if handled else None, delivery_id=delivery_id,
                        actor="u-1", occurred_at=1000)
    return envelope, payload, raw if raw is not None else json.dumps(payload).encode()


def run(scenario: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(scenario())


async def started(url: str) -> WriterProcess:
    writer = WriterProcess(url)
    await writer.start()
    return writer


def child(writer: WriterProcess) -> subprocess.Popen[bytes]:
    assert writer._process is not None
    return writer._process


async def until(condition: Callable[[], bool], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.02)


# --------------------------------------------------------------------------- framing


def test_frames_are_taken_whole_however_the_bytes_arrive() -> None:
    """Frames split at every possible byte come out whole, in order, and only once."""
    objects = [("deliver", [(1, ("jira",), b"x" * n)]) for n in (0, 1, 300, 70_000)]
    stream = b"".join(frame(o) for o in objects)
    for cut in [*range(0, 12), len(stream) // 2, len(stream) - 1]:
        buffer = bytearray()
        out: list[Any] = []
        for part in (stream[:cut], stream[cut:]):
            buffer += part
            out.extend(frames(buffer))
        assert out == objects and not buffer


def test_frames_are_those_of_multiprocessing_connection() -> None:
    """The event loop's frames and the writer's (multiprocessing.connection) read each other."""
    ours, theirs = socket.socketpair()
    conn = Connection(theirs.detach())
    try:
        ours.sendall(frame(("deliver", [(7, {"vendor": "jira"}, b"{}")])))
        assert conn.recv() == ("deliver", [(7, {"vendor": "jira"}, b"{}")])
        conn.send(("done", [(7, True)]))
        buffer = bytearray(ours.recv(1 << 16))
        assert list(frames(buffer)) == [("done", [(7, True)])]
    finally:
        conn.close()
        ours.close()


def test_stored_json_keeps_utf8_bytes_and_reencodes_the_rest() -> None:
    """The raw body is stored as received when it is UTF-8; otherwise the parsed payload."""
    payload = {"ticket": "T-1", "summary": "Überweisung"}
    utf8 = json.dumps(payload, ensure_ascii=False).encode("utf-8")
    assert stored_json(payload, utf8) is utf8
    for raw in (utf8.decode("utf-8").encode("utf-16"), None):
        assert json.loads(stored_json(payload, raw)) == payload


# --------------------------------------------------------------------------- committing


def test_new_duplicate_and_ignored_deliveries(db_url: str) -> None:
    """New deliveries are True, a repeat (in the same frame or later) False, an ignored event
    is stored as ignored; everything is committed when the future is done."""
    box = Inbox.connect(db_url)

    async def scenario() -> None:
        writer = await started(db_url)
        first = [writer.submit(delivery("T-1", "d1")), writer.submit(delivery("T-2", "d2")),
                 writer.submit(delivery("T-1", "d1")),
                 writer.submit(delivery("", "w1", handled=False))]
        assert await asyncio.gather(*first) == [True, True, False, True]
        assert box.counts() == {"pending": 2, "ignored": 1}  # durable before the answer
        assert await writer.submit(delivery("T-1", "d1")) is False
        await writer.aclose()
        assert child(writer).returncode == 0

    try:
        run(scenario)
        assert [e.delivery_id for e in box.events_of("jira", "T-1")] == ["d1"]
    finally:
        box.close()


def test_everything_submitted_before_stop_is_committed(tmp_path: Path) -> None:
    """aclose lets the writer commit and answer all it was sent, then it exits 0."""
    url = f"sqlite:///{tmp_path}/w.db"

    async def scenario() -> None:
        writer = await started(url)
        futures = [writer.submit(delivery(f"T-{i % 7}", f"d{i}")) for i in range(300)]
        await writer.aclose()
        assert all(f.done() and f.result() is True for f in futures)
        assert child(writer).returncode == 0
        assert writer.problem() is not None  # stopped: nothing more is accepted
        with pytest.raises(WriterError):
            writer.submit(delivery("T-1", "late"))

    run(scenario)
    box = Inbox.connect(url)
    assert box.counts() == {"pending": 300}
    box.close()


def test_sigterm_to_the_process_group_does_not_stop_the_writer(tmp_path: Path) -> None:
    """The server stops the writer (after its last answer); a SIGTERM or SIGINT sent to the
    whole group, as by systemd or a terminal, leaves it committing."""
    async def scenario() -> None:
        writer = await started(f"sqlite:///{tmp_path}/w.db")
        child(writer).send_signal(signal.SIGTERM)
        child(writer).send_signal(signal.SIGINT)
        await asyncio.sleep(0.2)
        assert child(writer).poll() is None
        assert await writer.submit(delivery("T-1", "d1")) is True
        await writer.aclose()

    run(scenario)


def test_a_dead_writer_fails_what_it_held_and_is_replaced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Killed mid-commit, the writer's unanswered deliveries fail (the receiver answers 503 and
    the vendor retries), new ones are refused until a new writer is up, then all is normal."""
    monkeypatch.setattr(commit_module, "RESTART_DELAY", 0.05)
    url = f"sqlite:///{tmp_path}/w.db"

    async def scenario() -> None:
        writer = await started(url)
        first = child(writer)
        first.send_signal(signal.SIGSTOP)  # holds the delivery unanswered
        held = writer.submit(delivery("T-1", "d1"))
        await asyncio.sleep(0.1)
        assert not held.done()
        first.kill()
        with pytest.raises(WriterError, match="stopped before committing"):
            await held
        assert writer.problem() is not None
        with pytest.raises(WriterError, match="retry later"):
            writer.submit(delivery("T-1", "d2"))
        await until(lambda: writer.problem() is None)
        assert child(writer).pid != first.pid and first.returncode == -signal.SIGKILL
        assert await writer.submit(delivery("T-1", "d1")) is True  # the vendor's retry
        assert writer.starts == 2
        await writer.aclose()

    run(scenario)


def test_a_writer_that_cannot_be_replaced_yet_is_tried_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While the database cannot be opened the replacement is retried, with growing delays;
    once it can, the receiver commits again."""
    monkeypatch.setattr(commit_module, "RESTART_DELAY", 0.05)
    home = tmp_path / "db"
    home.mkdir()
    url = f"sqlite:///{home}/w.db"

    async def scenario() -> None:
        writer = await started(url)
        home.rename(tmp_path / "away")
        child(writer).kill()
        await until(lambda: writer.problem() is not None)
        await asyncio.sleep(0.5)  # several failed starts
        assert writer.problem() is not None and writer.starts == 1
        (tmp_path / "away").rename(home)
        await until(lambda: writer.problem() is None)
        assert writer.starts == 2
        assert await writer.submit(delivery("T-1", "d1")) is True
        await writer.aclose()

    run(scenario)


def test_a_writer_that_cannot_open_the_inbox_fails_start(tmp_path: Path) -> None:
    """start() raises InboxError naming the database problem; no writer is left running."""
    url = f"sqlite:///{tmp_path}/missing-dir/w.db"

    async def scenario() -> None:
        writer = WriterProcess(url)
        with pytest.raises(InboxError, match="cannot open the inbox database"):
            await writer.start()
        assert child(writer).poll() is not None
        assert writer.problem() is not None

    run(scenario)


def test_the_writer_exits_when_the_server_is_killed(tmp_path: Path) -> None:
    """A server killed with SIGKILL leaves no writer behind: it sees end-of-input and exits."""
    script = (
        "import asyncio, sys\n"
        "from webhooks.commit import WriterProcess\n"
        "async def main():\n"
        f"    w = WriterProcess({f'sqlite:///{tmp_path}/w.db'!r})\n"
        "    await w.start()\n"
        "    print(w._process.pid, flush=True)\n"
        "    await asyncio.sleep(60)\n"
        "asyncio.run(main())\n"
    )
    server = subprocess.Popen([sys.executable, "-c", script], cwd=REPO, stdout=subprocess.PIPE,
                              env={**os.environ, "PYTHONPATH": str(REPO)})
    try:
        assert server.stdout is not None
        writer_pid = int(server.stdout.readline())
        server.kill()
        server.wait(10)
        deadline = time.monotonic() + 10
        while Path(f"/proc/{writer_pid}").exists() and _state(writer_pid) != "Z":
            assert time.monotonic() < deadline, "the writer outlived its server"
            time.sleep(0.05)
    finally:
        server.kill()
        server.wait()


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return "gone"


# --------------------------------------------------------------------------- in the receiver


def test_receiver_answers_503_and_not_ready_while_the_writer_is_down(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the writer gone, a delivery gets 503 with Retry-After and /readyz names the
    writer; once it is replaced, the vendor's retry is stored (202)."""
    monkeypatch.setattr(commit_module, "RESTART_DELAY", 0.5)
    box = Inbox.connect(f"sqlite:///{tmp_path}/r.db")
    holder: dict[str, WriterProcess] = {}

    async def committer() -> WriterProcess:
        holder["writer"] = await started(f"sqlite:///{tmp_path}/r.db")
        return holder["writer"]

    app = create_app(inbox=box, committer=committer, config=ReceiverConfig(
        secrets={"jira": "s"}, vendors=vendors_classifying(jira=fake_envelope)))
    raw = json.dumps({"ticket": "T-1", "id": "d1"}).encode()
    headers = {"Content-Type": "application/json", "X-Hub-Signature": sign_jira(raw, "s")}
    try:
        with TestClient(app) as c:
            assert c.get("/readyz").status_code == 200
            child(holder["writer"]).kill()
            deadline = time.monotonic() + 10
            while holder["writer"].problem() is None:
                assert time.monotonic() < deadline
                time.sleep(0.01)
            down = c.post("/webhooks/jira", content=raw, headers=headers)
            assert down.status_code == 503 and down.headers["retry-after"] == "5"
            ready = c.get("/readyz")
            assert ready.status_code == 503
            assert any("inbox writer" in p for p in ready.json()["problems"])
            while holder["writer"].problem() is not None:
                assert time.monotonic() < deadline
                time.sleep(0.05)
            assert c.post("/webhooks/jira", content=raw, headers=headers).status_code == 202
            assert c.get("/readyz").status_code == 200
        assert box.counts() == {"pending": 1}
    finally:
        box.close()
