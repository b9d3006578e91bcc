"""Real-process harness of the end-to-end suite: the sandbox and `tierdesk serve` as children.

Shared by tests/e2e/ and bench/e2e.py. Everything talks real HTTP on 127.0.0.1:

    SandboxProcess   `tierdesk sandbox --port 0 --json` in its own process; `.client` is a
                     `SandboxClient` over the control API (/_sandbox/state, log, faults, agent,
                     clock)
    Service          `tierdesk serve` on a free port with a temporary SQLite inbox; kill it
                     (SIGKILL) and start it again on the same inbox
    install()        `tierdesk install jira|zendesk --callback-url ...` run as a subprocess,
                     returning the TIERDESK_*_SECRET lines it prints
    served_in_thread()  a uvicorn server built in the test process (`build_server`) served
                     from a thread, for tests that inject the service's clock
    InboxView        read-only look at the SQLite inbox (pending, dead letters, decisions)
    settle()         wait until nothing is queued anywhere: no sandbox delivery in flight, no
                     pending inbox event, and the vendor request log has stopped growing

Only the public surfaces are used (CLI commands, HTTP, the inbox's tables), so the suite checks
what an operator would run, not internal objects.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import requests
import uvicorn

from sandbox.demo import NotReady, stop_process, tail, wait_until_ready
from sandbox.demo import free_port as free_port  # part of the harness (bench, tests)
from sandbox.story import JIRA_BOT, ZENDESK_BOT

REPO = Path(__file__).resolve().parents[2]
TIERDESK = [sys.executable, "-c", "from webhooks.cli import main; main(prog_name='tierdesk')"]
#: The Zendesk agent the scripted edits are made as (seeded in sandbox/seed.json).
ZENDESK_AGENT = "agent@tierdesk.example"
JIRA_AGENT = "acc-agent"
VENDORS = ("jira", "zendesk")


#: Rows of the figures table printed at the end of the session: (test, figure, value).
FIGURES: list[tuple[str, str, str]] = []


def figure(test: str, name: str, value: object) -> None:
    """Add a row to the figures table the suite prints at the end (tests/e2e/conftest.py)."""
    FIGURES.append((test, name, str(value)))


class HarnessError(AssertionError):
    """A child process or the sandbox did not behave; the message carries the evidence."""


def _clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TIERDESK_", "ZENPY_"))}
    env["PYTHONPATH"] = str(REPO)
    return env


# ------------------------------------------------------------------------------ sandbox


@dataclass
class AgentAnswer:
    """What the sandbox answered a scripted agent."""

    status: int
    body: Any


class SandboxClient:
    """The sandbox's control API over HTTP (sandbox/server.py docstring)."""

    def __init__(self, jira_url: str, zendesk_url: str) -> None:
        self.jira_url = jira_url
        self.zendesk_url = zendesk_url
        self.http = requests.Session()
        self._cursor = 0

    def _url(self, path: str) -> str:
        return f"{self.jira_url}/_sandbox/{path}"

    def state(self) -> dict[str, Any]:
        r = self.http.get(self._url("state"), timeout=30)
        r.raise_for_status()
        return dict(r.json())

    def log(self, since: int = 0) -> dict[str, Any]:
        r = self.http.get(self._url("log"), params={"since": since}, timeout=30)
        r.raise_for_status()
        return dict(r.json())

    def delivery_mark(self) -> int:
        """How many webhook delivery attempts the sandbox has made so far (a mark)."""
        r = self.http.get(self._url("log"), params={"since": 10**12, "deliveries_since": 10**12},
                          timeout=30)
        r.raise_for_status()
        return int(r.json()["last_delivery"])

    def deliveries(self, after: int = 0) -> list[dict[str, Any]]:
        """Webhook delivery attempts made after the mark `after` (see `delivery_mark`)."""
        r = self.http.get(self._url("log"), params={"since": 10**12, "deliveries_since": after},
                          timeout=60)
        r.raise_for_status()
        return list(r.json()["deliveries"])

    def last_seq(self) -> int:
        """Sequence number of the newest logged request (a mark to count from)."""
        # `log?since=N` answers the entries after N and `last` (N when there are none), so
        # reading from the previous mark keeps this cheap on a long log.
        self._cursor = int(self.log(self._cursor)["last"])
        return self._cursor

    def set_faults(self, spec: Mapping[str, Any]) -> dict[str, Any]:
        r = self.http.post(self._url("faults"), json=dict(spec), timeout=30)
        if r.status_code != 200:
            raise HarnessError(f"sandbox refused faults {spec}: {r.status_code} {r.text}")
        return dict(r.json())

    def clear_faults(self) -> None:
        self.http.delete(self._url("faults"), timeout=30).raise_for_status()

    def wait_deliveries(self, timeout: float = 10.0) -> bool:
        r = self.http.post(self._url("wait"), params={"timeout": timeout}, timeout=timeout + 30)
        r.raise_for_status()
        return bool(r.json()["idle"])

    def set_clock(self, when: datetime | None) -> datetime:
        """Stop the sandbox's clock at `when` (aware; forward only), or None: back to the
        system time (sandbox/clock.py); the sandbox's time after the change."""
        r = self.http.post(self._url("clock"), json={"now": None if when is None
                                                      else when.isoformat()}, timeout=30)
        if r.status_code != 200:
            raise HarnessError(f"sandbox refused the clock {when}: {r.status_code} {r.text}")
        return datetime.fromisoformat(r.json()["now"].replace("Z", "+00:00"))

    def agent(
        self, vendor: str, as_user: str, method: str, path: str, body: Any = None
    ) -> AgentAnswer:
        """Act as a scripted agent: the change fires the vendor's webhooks like any other."""
        r = self.http.post(
            self._url(f"{vendor}/agent"),
            json={"as": as_user, "method": method, "path": path, "body": body},
            timeout=30,
        )
        if r.status_code != 200:
            raise HarnessError(f"sandbox agent call {method} {path} refused: {r.text}")
        data = r.json()
        return AgentAnswer(int(data["status"]), data["body"])


class SandboxProcess:
    """`tierdesk sandbox` as a child process on two free ports."""

    def __init__(self, workdir: Path, *, seed: Path | None = None) -> None:
        self.log_path = workdir / "sandbox.log"
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - lives as long as the process
        self.proc = subprocess.Popen(
            [*TIERDESK, "sandbox", "--port", "0", "--json",
             *(["--seed", str(seed)] if seed is not None else [])],
            cwd=REPO,
            env=_clean_env(),
            stdout=subprocess.PIPE,
            stderr=self._log,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            self.proc.wait(timeout=10)
            raise HarnessError(f"tierdesk sandbox printed nothing:\n{tail(self.log_path, 40)}")
        urls = json.loads(line)
        self.jira_url: str = urls["jira_url"]
        self.zendesk_url: str = urls["zendesk_url"]
        self.client = SandboxClient(self.jira_url, self.zendesk_url)

    def stop(self) -> None:
        stop_process(self.proc, grace=15)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self._log.close()


# ------------------------------------------------------------------------------ service


def vendor_env(sandbox: SandboxProcess, db_path: Path, policy: Path | None) -> dict[str, str]:
    """The environment of `tierdesk serve` / `install` pointed at the sandbox."""
    env = _clean_env()
    env.update(
        {
            "TIERDESK_DATABASE_URL": f"sqlite:///{db_path}",
            "TIERDESK_JIRA_URL": sandbox.jira_url,
            "TIERDESK_JIRA_EMAIL": JIRA_BOT[0],
            "TIERDESK_JIRA_API_TOKEN": "sandbox-token",
            # No start-up doctor: its reads would count in the figures these tests assert.
            "TIERDESK_STARTUP_DOCTOR": "false",
            "TIERDESK_JIRA_ACCOUNT_ID": JIRA_BOT[1],
            "TIERDESK_JIRA_COMMENT_VISIBILITY": "role:Administrators",
            "TIERDESK_ZENDESK_URL": sandbox.zendesk_url,
            "TIERDESK_ZENDESK_EMAIL": ZENDESK_BOT[0],
            "TIERDESK_ZENDESK_API_TOKEN": "sandbox-token",
            "TIERDESK_ZENDESK_USER_ID": str(ZENDESK_BOT[1]),
            "TIERDESK_LOG_LEVEL": "WARNING",
            "TIERDESK_HTTP_TIMEOUT": "5",
            # A crashed holder's tickets come back after this; retries keep the service's
            # defaults (max attempts, backoff), which the outage test is about.
            "TIERDESK_LEASE_SECONDS": "15",
        }
    )
    if policy is not None:
        env["TIERDESK_POLICY"] = str(policy)
    return env


def install(vendor: str, env: dict[str, str], callback_url: str) -> dict[str, str]:
    """Run `tierdesk install <vendor> --callback-url URL`; the secret lines it printed."""
    done = subprocess.run(
        [*TIERDESK, "install", vendor, "--callback-url", callback_url],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=120, check=False,
    )
    if done.returncode != 0:
        raise HarnessError(
            f"tierdesk install {vendor} failed ({done.returncode}):\n{done.stderr or done.stdout}"
        )
    found: dict[str, str] = {}
    for line in done.stdout.splitlines():
        name, sep, value = line.strip().partition("=")
        if sep and name.startswith("TIERDESK_") and name.endswith("_SECRET"):
            found[name] = value
    if not found:
        raise HarnessError(f"tierdesk install {vendor} printed no secret:\n{done.stdout}")
    return found


class Service:
    """`tierdesk serve` as a child process on a fixed port; restartable on the same inbox."""

    def __init__(self, env: dict[str, str], port: int, workdir: Path) -> None:
        self.env = env
        self.port = port
        self.base = f"http://127.0.0.1:{port}"
        self.workdir = workdir
        self.starts = 0
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def log_path(self) -> Path:
        return self.workdir / f"serve-{self.starts}.log"

    def start(self, timeout: float = 60.0) -> None:
        self.starts += 1
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                [*TIERDESK, "serve", "--host", "127.0.0.1", "--port", str(self.port)],
                cwd=REPO, env=self.env, stdout=log, stderr=subprocess.STDOUT,
            )
        try:
            wait_until_ready(self.proc, f"{self.base}/readyz", log_path=self.log_path,
                             timeout=timeout, lines=40)
        except NotReady as exc:
            raise HarnessError(str(exc)) from exc

    def kill(self) -> None:
        """SIGKILL: no graceful stop, the inbox is left as a crash leaves it."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc, grace=20)

    def logs(self) -> str:
        return "\n".join(
            tail(self.workdir / f"serve-{i}.log", 40) for i in range(1, self.starts + 1)
        )


@contextmanager
def served_in_thread(server: uvicorn.Server, *, timeout: float = 30.0) -> Iterator[None]:
    """Serve `server` (e.g. `build_server`'s, in this process) from a thread until the block
    ends, then let it finish its requests and stop."""
    thread = threading.Thread(target=server.run, name="tierdesk-test-server", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + timeout
        while not server.started:
            if time.monotonic() > deadline or not thread.is_alive():
                raise HarnessError(f"the server did not start within {timeout:.0f} s")
            time.sleep(0.02)
        yield
    finally:
        server.should_exit = True
        thread.join(timeout=timeout)


# -------------------------------------------------------------------------------- inbox


class InboxView:
    """Read-only queries on the service's SQLite inbox (webhooks/inbox/schema.py tables)."""

    def __init__(self, db_path: Path) -> None:
        self.db_path = db_path

    def _rows(self, sql: str, args: Iterable[Any] = ()) -> list[sqlite3.Row]:
        if not self.db_path.exists():
            return []
        con = sqlite3.connect(f"file:{self.db_path}?mode=ro", uri=True, timeout=30)
        con.row_factory = sqlite3.Row
        try:
            return list(con.execute(sql, tuple(args)))
        except sqlite3.OperationalError as exc:
            if "no such table" in str(exc):
                return []
            raise
        finally:
            con.close()

    def statuses(self) -> Counter[str]:
        return Counter(
            {r["status"]: r["n"] for r in self._rows(
                "SELECT status, COUNT(*) AS n FROM tierdesk_events GROUP BY status")}
        )

    def pending(self) -> int:
        return self.statuses().get("pending", 0)

    def count(self) -> int:
        return sum(self.statuses().values())

    def last_id(self) -> int:
        """The newest event's id (a mark: `dead(after=...)`, `events(after=...)`)."""
        rows = self._rows("SELECT MAX(id) AS m FROM tierdesk_events")
        return int(rows[0]["m"] or 0) if rows else 0

    def dead(self, *, after: int = 0) -> list[dict[str, Any]]:
        """Dead letters among the events stored after event id `after`."""
        return [dict(r) for r in self._rows(
            "SELECT id, vendor, ticket, delivery_id, event_type, attempts, last_error"
            " FROM tierdesk_events WHERE status = 'dead' AND id > ? ORDER BY id", (after,))]

    def events(self, *, after: int = 0) -> list[dict[str, Any]]:
        """Events stored after event id `after`, oldest first."""
        return [dict(r) for r in self._rows(
            "SELECT id, vendor, delivery_id, event_type, ticket, status, actor, attempts, claims"
            " FROM tierdesk_events WHERE id > ? ORDER BY id", (after,))]

    def decisions(self) -> list[dict[str, Any]]:
        return [dict(r) for r in self._rows(
            "SELECT vendor, ticket, outcome, event_ids, calls FROM tierdesk_decisions ORDER BY id")]


# ------------------------------------------------------------------------------- settle


def settle(
    client: SandboxClient,
    inbox: InboxView,
    *,
    timeout: float = 60.0,
    quiet: float = 0.6,
) -> None:
    """Wait until deliveries, the inbox and the vendor log are all quiet for `quiet` seconds."""
    deadline = time.monotonic() + timeout
    last_seen: tuple[int, int] | None = None
    quiet_since = time.monotonic()
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise HarnessError(
                f"not settled after {timeout:.0f} s: inbox {dict(inbox.statuses())},"
                f" deliveries {client.state()['deliveries']}"
            )
        idle = client.wait_deliveries(timeout=min(5.0, left))
        pending = inbox.pending()
        mark = (client.last_seq(), inbox.count())
        now = time.monotonic()
        if not idle or pending or mark != last_seen:
            last_seen = mark
            quiet_since = now
        elif now - quiet_since >= quiet:
            return
        time.sleep(0.1)


# ---------------------------------------------------------------------------- vendor log


@dataclass
class Traffic:
    """tierdesk's requests to the vendors (not the scripted agents') in a stretch of the log."""

    entries: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def since(cls, client: SandboxClient, mark: int) -> Traffic:
        return cls([e for e in client.log(mark)["requests"] if e["vendor"] in VENDORS])

    def writes(
        self, vendor: str | None = None, *, ticket: str | None = None
    ) -> list[dict[str, Any]]:
        """Writes the vendor applied (answered < 400, or applied and then reset), optionally
        for one ticket. Refused ones (429, 503, a 409 conflict) changed nothing: `refused()`."""
        return [
            e for e in self._mine(vendor, ticket)
            if e["write"] and (e["fault"] == "reset_after_write"
                               or (e["status"] is not None and e["status"] < 400))
        ]

    def refused_writes(
        self, vendor: str | None = None, *, ticket: str | None = None
    ) -> list[dict[str, Any]]:
        """Writes the vendor refused (a fault's 429/503, or a 409 edit conflict)."""
        applied = {e["seq"] for e in self.writes(vendor, ticket=ticket)}
        return [e for e in self._mine(vendor, ticket) if e["write"] and e["seq"] not in applied]

    def _mine(self, vendor: str | None, ticket: str | None) -> list[dict[str, Any]]:
        return [
            e for e in self.entries
            if (vendor is None or e["vendor"] == vendor)
            and (ticket is None or ticket_of(e["vendor"], e["path"]) == ticket)
        ]

    def reads(self, vendor: str | None = None) -> list[dict[str, Any]]:
        return [e for e in self.entries
                if not e["write"] and (vendor is None or e["vendor"] == vendor)]


def ticket_of(vendor: str, path: str) -> str | None:
    """The issue key / ticket id a vendor request path names, or None."""
    parts = path.strip("/").split("/")
    if vendor == "jira":
        # /rest/api/2/issue/SUP-5[/comment...]
        if len(parts) >= 5 and parts[3] == "issue":
            return parts[4]
        return None
    # /api/v2/tickets/5.json, /api/v2/tickets/5/comments.json
    if len(parts) >= 4 and parts[2] == "tickets":
        return parts[3].removesuffix(".json")
    return None
