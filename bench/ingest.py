"""Ingest benchmark: signed Jira webhooks at saturation and at a fixed rate, against `tierdesk
serve` (SQLite inbox, durable commit before 202) and against a bare endpoint on the same server
stack (uvicorn + FastAPI answering 202 without work). Prints throughput, p50/p99 latency and the
ratio of the two.

    .venv/bin/python bench/ingest.py [--requests 6000] [--concurrency 64] [--rate 500]
                                     [--rate-seconds 5] [--database-url sqlite:///...]

tierdesk runs as `tierdesk serve` does by default: the event loop answers, a writer process
commits (TIERDESK_INBOX_WRITER=process; set TIERDESK_INBOX_WRITER=thread in the environment to
measure the one-process variant). Each request carries a real captured Jira payload with its
own X-Atlassian-Webhook-Identifier, signed like Jira does. The load generator is a small
keep-alive HTTP/1.1 client on asyncio streams, so that the client's own cost stays small next
to the server's on this 2-core machine.
Goals (issue 3): >= 2,000 durable events/s, p99 < 50 ms at 500 events/s, ratio >= 0.5.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from fastapi import FastAPI, Request  # noqa: E402
from fastapi.responses import JSONResponse, Response  # noqa: E402

from connectors.jira.webhook import sign as sign_jira  # noqa: E402
from webhooks.inbox.store import Inbox  # noqa: E402

SECRET = "bench-secret"
PAYLOAD = REPO / "tests/connectors/jira/fixtures/jira_issue_updated__cloud_labels.json"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


#: Signed `timestamp`s (ms), one per request of every run.
_TIMESTAMPS = itertools.count(int(time.time() * 1000))


def requests_for(n: int, run: str) -> list[bytes]:
    """n complete HTTP requests, each with a unique delivery id and its own signed body: the
    captured body with a fresh `timestamp` per request (the receiver refuses bodies outside the
    replay horizon and keeps one copy of identical bodies, as a replay would be)."""
    import json

    template = json.loads(PAYLOAD.read_bytes()) if PAYLOAD.exists() else {
        "webhookEvent": "jira:issue_updated", "issue": {"key": "SUP-1", "fields": {}}}
    out = []
    for i in range(n):
        template["timestamp"] = next(_TIMESTAMPS)  # unique across runs: no body repeats
        body = json.dumps(template, separators=(",", ":")).encode()
        head = (
            "POST /webhooks/jira HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            "Content-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n"
            f"X-Hub-Signature: {sign_jira(body, SECRET)}\r\n"
            f"X-Atlassian-Webhook-Identifier: {run}-{i}\r\n\r\n"
        )
        out.append(head.encode() + body)
    return out


async def _read_response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split()[1])
    length = 0
    for line in lines[1:]:
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    if length:
        await reader.readexactly(length)
    return status


@dataclass
class Result:
    sent: int
    seconds: float
    latencies: list[float]
    statuses: dict[int, int]

    @property
    def throughput(self) -> float:
        return self.sent / self.seconds

    def pct(self, p: float) -> float:
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] * 1000

    def line(self, name: str) -> str:
        return (f"{name:28} {self.sent:6d} req in {self.seconds:6.2f} s = {self.throughput:7.0f}/s"
                f"   p50 {self.pct(50):6.1f} ms   p99 {self.pct(99):6.1f} ms   {self.statuses}")


async def saturate(port: int, reqs: list[bytes], concurrency: int) -> Result:
    """Closed loop: `concurrency` keep-alive connections send back to back."""
    queue = iter(reqs)
    latencies: list[float] = []
    statuses: dict[int, int] = {}

    async def conn() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        for req in queue:
            t = time.perf_counter()
            writer.write(req)
            status = await _read_response(reader)
            latencies.append(time.perf_counter() - t)
            statuses[status] = statuses.get(status, 0) + 1
        writer.close()

    start = time.perf_counter()
    await asyncio.gather(*(conn() for _ in range(concurrency)))
    return Result(len(reqs), time.perf_counter() - start, latencies, statuses)


async def fixed_rate(port: int, reqs: list[bytes], rate: float, connections: int = 32) -> Result:
    """Open loop: request i is due at start + i / rate; latency counts from when it was due,
    so a server that falls behind is charged for the queueing too."""
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    pool: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = asyncio.Queue()
    for _ in range(connections):
        pool.put_nowait(await asyncio.open_connection("127.0.0.1", port))
    start = time.perf_counter()

    async def one(i: int, req: bytes) -> None:
        due = start + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        reader, writer = await pool.get()
        writer.write(req)
        status = await _read_response(reader)
        latencies.append(time.perf_counter() - due)
        statuses[status] = statuses.get(status, 0) + 1
        pool.put_nowait((reader, writer))

    await asyncio.gather(*(one(i, r) for i, r in enumerate(reqs)))
    seconds = time.perf_counter() - start
    while not pool.empty():
        pool.get_nowait()[1].close()
    return Result(len(reqs), seconds, latencies, statuses)


def wait_up(port: int, proc: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise SystemExit("server did not start")


def start_tierdesk(port: int, database_url: str) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("TIERDESK_") or k == "TIERDESK_INBOX_WRITER"}
    env.update({"TIERDESK_DATABASE_URL": database_url, "TIERDESK_JIRA_WEBHOOK_SECRET": SECRET,
                "TIERDESK_LOG_LEVEL": "ERROR", "PYTHONPATH": str(REPO)})
    return subprocess.Popen(
        [sys.executable, "-c", "from webhooks.cli import main; main()", "serve", "--port",
         str(port)],
        cwd=REPO, env=env, stderr=subprocess.DEVNULL,
    )


def bare_app() -> FastAPI:
    """The same server stack answering 202 without any work: this benchmark's baseline."""
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)

    @app.post("/webhooks/{vendor}")
    async def accept(vendor: str, request: Request) -> Response:
        await request.body()
        return JSONResponse({"status": "accepted"}, status_code=202)

    return app


def start_bare(port: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "--factory", "bench.ingest:bare_app", "--port",
         str(port), "--log-level", "error", "--no-access-log"],
        cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, stderr=subprocess.DEVNULL,
    )


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()


def run_against(name: str, proc_factory: object, port: int, args: argparse.Namespace,
                run: str) -> tuple[Result, Result]:
    proc = proc_factory(port)  # type: ignore[operator]
    try:
        wait_up(port, proc)
        asyncio.run(saturate(port, requests_for(300, run + "-warm"), 16))  # warm-up
        sat = asyncio.run(saturate(port, requests_for(args.requests, run + "-sat"),
                                   args.concurrency))
        n = int(args.rate * args.rate_seconds)
        rated = asyncio.run(fixed_rate(port, requests_for(n, run + "-rate"), args.rate))
    finally:
        stop(proc)
    print(sat.line(f"{name} saturation"))
    print(rated.line(f"{name} at {args.rate:.0f}/s"))
    for result in (sat, rated):
        if set(result.statuses) != {202}:
            raise SystemExit(f"{name}: answers other than 202 ({result.statuses}); the figures"
                             " would not measure durable ingest")
    return sat, rated


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=6000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--rate", type=float, default=500.0)
    parser.add_argument("--rate-seconds", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=3,
                        help="alternate tierdesk and the bare endpoint this many times; the"
                             " figures are the best round of each (least disturbed by other"
                             " load on the machine), with every round printed")
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = args.database_url or f"sqlite:///{tmp}/bench.db"
        print(f"cpus {os.cpu_count()}, database {url.split('?')[0]}, payload {PAYLOAD.name},"
              f" {args.rounds} round(s), inbox writer"
              f" {os.environ.get('TIERDESK_INBOX_WRITER', 'process')}")
        td: list[tuple[Result, Result]] = []
        bare: list[tuple[Result, Result]] = []
        for r in range(args.rounds):
            td.append(run_against("tierdesk serve", lambda p: start_tierdesk(p, url),
                                  free_port(), args, f"td{r}"))
            bare.append(run_against("bare 202 endpoint", start_bare, free_port(), args,
                                    f"bare{r}"))
        box = Inbox.connect(url)
        stored = box.counts()
        box.close()
        accepted = sum(s.statuses.get(202, 0) + q.statuses.get(202, 0) + 300 for s, q in td)
        print(f"stored in the inbox: {sum(stored.values())} (202 answers incl. warm-up:"
              f" {accepted})")
        td_best = max((s for s, _ in td), key=lambda x: x.throughput)
        bare_best = max((s for s, _ in bare), key=lambda x: x.throughput)
        p99s = sorted(q.pct(99) for _, q in td)
        ratios = [t.throughput / b.throughput for (t, _), (b, _) in zip(td, bare, strict=True)]
        print("per round, tierdesk/bare at saturation: "
              + ", ".join(f"{x:.2f}" for x in ratios)
              + f" (median {sorted(ratios)[len(ratios) // 2]:.2f})")
        print(f"p99 at {args.rate:.0f}/s per round: " + ", ".join(f"{x:.1f} ms" for x in p99s))
        ratio = td_best.throughput / bare_best.throughput
        print(f"best round: tierdesk {td_best.throughput:.0f}/s, bare {bare_best.throughput:.0f}/s,"
              f" ratio {ratio:.2f}")
        print(f"goals: >= 2000/s durable: {td_best.throughput:.0f}/s;"
              f" p99 < 50 ms at {args.rate:.0f}/s: {p99s[0]:.1f} ms best,"
              f" {p99s[len(p99s) // 2]:.1f} ms median;"
              f" ratio >= 0.5: {ratio:.2f}")


if __name__ == "__main__":
    main()
