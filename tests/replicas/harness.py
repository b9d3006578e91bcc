"""Several tierdesk replicas as real processes on PostgreSQL, against the vendor sandbox.

    sandbox (Jira, in this process) --signed webhooks--> Balancer --> receiver 1 | receiver 2
                                                                          |  (tierdesk serve
                                                                          v   --no-worker)
                                                                 PostgreSQL inbox
                                                                          |
    sandbox <--- VendorWatch (counts requests per issue in flight) <--- worker 1 | 2 | 3
                                                                        (tierdesk worker)

`Balancer` stands in for the HAProxy of deploy/compose.yaml: round robin over the receivers, and
a request that fails on one (killed mid-request, refused) is sent to the next, so the vendor sees
a 2xx while at least one receiver is up. It records every delivery it acknowledged.

`VendorWatch` sits between the workers and the sandbox's Jira: it forwards every request and
records, per issue, the most requests it ever saw in flight at once. One worker handles one ticket
with one request at a time, so more than one in flight on an issue means two workers held it.
Each bot request is held `hold` seconds inside the window to make any overlap visible.

Used by tests/replicas/test_replicas.py (scaled to about a minute) and bench/replicas.py.
"""

from __future__ import annotations

import http.client
import json
import os
import random
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import sqlalchemy as sa

from connectors.jira.config import JiraConfig
from sandbox.server import SandboxHandle, run_in_thread
from sandbox.state import default_seed_text

REPO = Path(__file__).resolve().parents[2]
POLICY = REPO / "deploy" / "policy.example.yaml"
TIERDESK = str(Path(sys.executable).parent / "tierdesk")
SECRET = "replica-test-webhook-secret"
BOT = "acc-bot"
#: Custom fields of the example policy's documentation (deploy/policy.example.yaml `fields:`).
STEPS, VERSION, CATEGORY, REPRODUCED = (
    "customfield_10101", "customfield_10102", "customfield_10103", "customfield_10104",
)
CUSTOMERS = ("acc-acme", "acc-globex", "acc-initech", "acc-unknown")
CUSTOMER_LOGINS = ("alice", "bob", "carol", "dave")
TEXTS = (
    ("App crash on start", "It shows a stack trace and closes."),
    ("How do I export a report?", "Where can I find the export button?"),
    ("Invoice is wrong", "Please refund the second charge."),
    ("Password reset", "I am locked out of my account."),
    ("Slow dashboard", "The dashboard takes a minute to load."),
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --------------------------------------------------------------------------- database


@contextmanager
def fresh_database(admin_url: str) -> Iterator[str]:
    """A new, empty PostgreSQL database on the server of `admin_url`; dropped afterwards."""
    name = f"td_replicas_{uuid.uuid4().hex[:10]}"
    engine = sa.create_engine(
        admin_url.replace("postgresql://", "postgresql+psycopg://", 1), isolation_level="AUTOCOMMIT"
    )
    with engine.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield urlunsplit(urlsplit(admin_url)._replace(path=f"/{name}"))
    finally:
        with engine.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        engine.dispose()


# --------------------------------------------------------------------------- sandbox


def seed(tickets: int, rng: random.Random) -> dict[str, Any]:
    """The packaged sandbox seed with `tickets` fresh issues SUP-1..SUP-n, none tiered yet."""
    data: dict[str, Any] = json.loads(default_seed_text())
    issues = []
    for n in range(1, tickets + 1):
        summary, description = rng.choice(TEXTS)
        issues.append({
            "key": f"SUP-{n}",
            "summary": summary,
            "description": description,
            "reporter": rng.choice(CUSTOMERS),
            "priority": rng.choice(["Low", "Medium", "High"]),
        })
    data["jira"]["issues"] = issues
    return data


def start_sandbox(tickets: int, rng: random.Random, faults: Mapping[str, Any] | None = None
                  ) -> SandboxHandle:
    return run_in_thread(seed=seed(tickets, rng), faults=faults, delivery_workers=16,
                         retry_base=0.1)


def register_webhook(sandbox: SandboxHandle, url: str) -> None:
    """The admin webhook `tierdesk install jira` would create, pointing at `url`."""
    response = sandbox.agent("jira", "admin", "POST", "/rest/webhooks/1.0/webhook", {
        "name": "tierdesk", "url": url, "excludeBody": False, "secret": SECRET,
        "events": ["jira:issue_created", "jira:issue_updated", "comment_created",
                   "comment_updated"],
        "filters": {"issue-related-events-section": "project = SUP"},
    })
    assert response.status == 201, response.body


def agent_action(sandbox: SandboxHandle, rng: random.Random, tickets: int) -> str:
    """One thing a person does to a random issue (each fires a webhook); returns the issue key."""
    key = f"SUP-{rng.randint(1, tickets)}"
    path = f"/rest/api/2/issue/{key}"
    kind = rng.random()
    if kind < 0.25:
        who = rng.choice(CUSTOMER_LOGINS)
        body: dict[str, Any] = {"body": f"Any news? ({uuid.uuid4().hex[:6]})"}
        response = sandbox.agent("jira", who, "POST", f"{path}/comment", body)
    elif kind < 0.45:
        _, description = rng.choice(TEXTS)
        response = sandbox.agent("jira", "agent", "PUT", path, {"fields": {
            "description": f"{description} ({uuid.uuid4().hex[:6]})",
            "priority": {"name": rng.choice(["Low", "Medium", "High", "Highest"])},
        }})
    elif kind < 0.65:
        request = rng.choice(["escalate-l2", "escalate-l3", "escalate-l4"])
        response = sandbox.agent("jira", "agent", "PUT", path,
                                 {"update": {"labels": [{"add": request}]}})
    elif kind < 0.85:
        response = sandbox.agent("jira", "agent", "PUT", path, {"fields": {
            STEPS: "Open the app, click Export, see the stack trace appear.",
            VERSION: rng.choice(["2.3.1", "10.0", "unknown"]),
            CATEGORY: {"value": rng.choice(["bugfix", "api", "other"])},
        }})
    else:
        response = sandbox.agent("jira", "agent", "PUT", path, {"fields": {
            REPRODUCED: {"value": rng.choice(["yes", "no"])},
        }})
    assert response.status in (201, 204), (key, response.status, response.body)
    return key


# --------------------------------------------------------------------------- HTTP middlemen


class _Quiet(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _answer(self, status: int, body: bytes, headers: Mapping[str, str]) -> None:
        self.send_response(status)
        for k, v in headers.items():
            if k.lower() not in ("content-length", "transfer-encoding", "connection"):
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def _forward(port: int, method: str, path: str, body: bytes, headers: Mapping[str, str],
             timeout: float = 30.0) -> tuple[int, bytes, dict[str, str]]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        sent = {k: v for k, v in headers.items() if k.lower() not in ("host", "connection")}
        conn.request(method, path, body=body or None, headers=sent)
        response = conn.getresponse()
        return response.status, response.read(), dict(response.getheaders())
    finally:
        conn.close()


@dataclass
class Balancer:
    """Round robin over receiver ports with failover; records the deliveries it acknowledged."""

    ports: list[int]
    acked: dict[str, int] = field(default_factory=dict)
    failovers: int = 0
    _next: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: ThreadingHTTPServer | None = None

    def start(self) -> str:
        balancer = self

        class Handler(_Quiet):
            def do_POST(self) -> None:
                body = self._body()
                headers = dict(self.headers.items())
                status, answer, answer_headers = balancer.send(self.path, body, headers)
                self._answer(status, answer, answer_headers)

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        self._server = server
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return f"http://127.0.0.1:{server.server_address[1]}"

    def send(self, path: str, body: bytes, headers: Mapping[str, str]
             ) -> tuple[int, bytes, dict[str, str]]:
        with self._lock:
            start = self._next
            self._next = (self._next + 1) % len(self.ports)
        delivery = headers.get("X-Atlassian-Webhook-Identifier", "")
        for i in range(len(self.ports)):
            port = self.ports[(start + i) % len(self.ports)]
            try:
                status, answer, answer_headers = _forward(port, "POST", path, body, headers)
            except (OSError, http.client.HTTPException):
                # Refused, reset, or killed halfway through its answer (IncompleteRead): the
                # delivery may be stored there; the next receiver answers 200 for a duplicate.
                with self._lock:
                    self.failovers += 1
                continue
            if status >= 500:  # e.g. 503 from a receiver shutting down: try the next one
                with self._lock:
                    self.failovers += 1
                continue
            if 200 <= status < 300 and delivery:
                with self._lock:
                    self.acked[delivery] = status
            return status, answer, answer_headers
        return 502, b'{"error": "no receiver answered"}', {"Content-Type": "application/json"}

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()


_ISSUE = re.compile(r"^/rest/api/\d/issue/([A-Z][A-Z0-9_]*-\d+)")


@dataclass
class VendorWatch:
    """A forwarding proxy in front of the sandbox's Jira that measures per-issue concurrency."""

    upstream_port: int
    hold: float = 0.02
    max_in_flight: dict[str, int] = field(default_factory=dict)
    requests: Counter[str] = field(default_factory=Counter)
    _in_flight: defaultdict[str, int] = field(default_factory=lambda: defaultdict(int))
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: ThreadingHTTPServer | None = None

    def start(self) -> str:
        watch = self

        class Handler(_Quiet):
            def _any(self) -> None:
                body = self._body()
                m = _ISSUE.match(self.path)
                key = m.group(1) if m else None
                if key is not None:
                    with watch._lock:
                        watch._in_flight[key] += 1
                        now = watch._in_flight[key]
                        watch.max_in_flight[key] = max(watch.max_in_flight.get(key, 0), now)
                        watch.requests[key] += 1
                try:
                    if key is not None:
                        time.sleep(watch.hold)
                    status, answer, headers = _forward(
                        watch.upstream_port, self.command, self.path, body,
                        dict(self.headers.items()),
                    )
                finally:
                    if key is not None:
                        with watch._lock:
                            watch._in_flight[key] -= 1
                self._answer(status, answer, headers)

            do_GET = do_PUT = do_POST = do_DELETE = _any

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        self._server = server
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return f"http://127.0.0.1:{server.server_address[1]}"

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()


# --------------------------------------------------------------------------- processes


def service_env(*, database_url: str, jira_url: str, port: int | None = None,
                **extra: str) -> dict[str, str]:
    """The environment of one tierdesk process (nothing inherited from TIERDESK_*)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TIERDESK_", "ZENPY_"))}
    env.update({
        "TIERDESK_DATABASE_URL": database_url,
        "TIERDESK_POLICY": str(POLICY),
        "TIERDESK_JIRA_URL": jira_url,
        "TIERDESK_JIRA_EMAIL": "bot@tierdesk.example",
        "TIERDESK_JIRA_API_TOKEN": "sandbox-token",
        # No start-up doctor: its reads would count in the figures these tests assert.
        "TIERDESK_STARTUP_DOCTOR": "false",
        "TIERDESK_JIRA_ACCOUNT_ID": BOT,
        "TIERDESK_JIRA_WEBHOOK_SECRET": SECRET,
        "TIERDESK_JIRA_COMMENT_VISIBILITY": "role:Administrators",
        "TIERDESK_LOG_LEVEL": "WARNING",
        "TIERDESK_WORKER_THREADS": "2",
        "TIERDESK_LEASE_SECONDS": "30",
        "TIERDESK_HTTP_TIMEOUT": "10",
    })
    if port is not None:
        env["TIERDESK_PORT"] = str(port)
    env.update(extra)
    return env


@dataclass
class Replica:
    """One tierdesk process: `serve --no-worker` (with a port) or `worker`."""

    args: list[str]
    env: dict[str, str]
    log: Path
    port: int | None = None
    proc: subprocess.Popen[bytes] | None = None
    starts: int = 0

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [TIERDESK, *self.args], env=self.env, cwd=self.log.parent,
                stdout=out, stderr=subprocess.STDOUT,
            )
        self.starts += 1

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Until GET /readyz answers 200 (receivers only)."""
        assert self.port is not None and self.proc is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.args} exited {self.proc.returncode}: see {self.log}")
            try:
                status, _, _ = _forward(self.port, "GET", "/readyz", b"", {}, timeout=2)
                if status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"{self.args} not ready after {timeout} s: see {self.log}")

    def kill(self) -> None:
        """SIGKILL: no graceful anything."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=30)

    def terminate(self, timeout: float = 45.0) -> int | None:
        """SIGTERM and wait; the exit status (None if it had to be killed)."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                return self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
                return None
        return self.proc.returncode


class Chaos:
    """Kills a random receiver with SIGKILL every `period` seconds and starts it again, never
    both at once (the balancer needs one)."""

    def __init__(self, receivers: list[Replica], rng: random.Random, period: float) -> None:
        self.receivers = receivers
        self.rng = rng
        self.period = period
        self.kills = 0
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="chaos", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=120)

    def _run(self) -> None:
        while not self._stop.wait(self.rng.uniform(0.5, 1.5) * self.period):
            victim = self.rng.choice(self.receivers)
            victim.kill()
            self.kills += 1
            time.sleep(self.rng.uniform(0.1, 0.5))
            try:
                victim.start()
                victim.wait_ready()
            except RuntimeError as exc:
                self.errors.append(str(exc))
                return


# --------------------------------------------------------------------------- inbox queries


def inbox_counts(database_url: str) -> dict[str, int]:
    """Events by status in the inbox."""
    engine = sa.create_engine(database_url.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        with engine.connect() as conn:
            rows = conn.execute(sa.text(
                "SELECT status, count(*) FROM tierdesk_events GROUP BY status"
            )).all()
        return {str(s): int(n) for s, n in rows}
    finally:
        engine.dispose()


def wait_drained(database_url: str, timeout: float) -> dict[str, int]:
    """Until no event is pending; the final counts."""
    deadline = time.monotonic() + timeout
    counts = inbox_counts(database_url)
    while counts.get("pending", 0) and time.monotonic() < deadline:
        time.sleep(0.25)
        counts = inbox_counts(database_url)
    return counts


def jira_config(jira_url: str) -> JiraConfig:
    """The Jira config the replicas build from their environment."""
    from webhooks.settings import load_settings

    settings = load_settings(_env_file=None, **{
        k[len("TIERDESK_"):].lower(): v
        for k, v in service_env(database_url="sqlite://", jira_url=jira_url).items()
        if k.startswith("TIERDESK_")
    })
    config = settings.jira_config()
    assert config is not None
    return config


# --------------------------------------------------------------------------- the cluster


@dataclass
class Cluster:
    """The sandbox, the middlemen and the tierdesk processes of one run."""

    sandbox: SandboxHandle
    balancer: Balancer
    watch: VendorWatch
    receivers: list[Replica]
    workers: list[Replica]

    def stop(self) -> dict[str, int | None]:
        """SIGTERM every process (workers first); their exit statuses by log name."""
        statuses = {r.log.name: r.terminate() for r in [*self.workers, *self.receivers]}
        self.balancer.stop()
        self.watch.stop()
        self.sandbox.stop()
        return statuses


def start_cluster(
    *,
    database_url: str,
    workdir: Path,
    tickets: int,
    rng: random.Random,
    receivers: int = 2,
    workers: int = 3,
    faults: Mapping[str, Any] | None = None,
    hold: float = 0.02,
    extra_env: Mapping[str, str] | None = None,
) -> Cluster:
    """Start everything, receivers ready, the sandbox's webhook pointing at the balancer."""
    sandbox = start_sandbox(tickets, rng, faults)
    watch = VendorWatch(upstream_port=int(urlsplit(sandbox.jira_url).port or 0), hold=hold)
    jira_url = watch.start()
    extra = dict(extra_env or {})
    receiver_list = [
        Replica(["serve", "--no-worker"], service_env(
            database_url=database_url, jira_url=jira_url, port=port, **extra,
        ), workdir / f"receiver-{i + 1}.log", port=port)
        for i, port in enumerate(free_port() for _ in range(receivers))
    ]
    worker_list = [
        Replica(["worker"], service_env(database_url=database_url, jira_url=jira_url,
                                        port=None, **extra),
                workdir / f"worker-{i + 1}.log")
        for i in range(workers)
    ]
    balancer = Balancer([r.port for r in receiver_list if r.port is not None])
    cluster = Cluster(sandbox, balancer, watch, receiver_list, worker_list)
    try:
        # The first receiver migrates the schema alone; the rest start together.
        receiver_list[0].start()
        receiver_list[0].wait_ready()
        for r in [*receiver_list[1:], *worker_list]:
            r.start()
        for r in receiver_list[1:]:
            r.wait_ready()
        register_webhook(sandbox, balancer.start() + "/webhooks/jira")
    except BaseException:
        cluster.stop()
        raise
    return cluster
