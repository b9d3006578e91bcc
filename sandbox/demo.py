"""The demo's process stack: tierdesk installed and served against a sandbox, and the story played.

What `tierdesk demo` (webhooks/cli/demo.py) does with it, in order (everything is stopped and
removed at the end, also on failure or ^C):

1. starts the vendor sandbox (sandbox.server) in this process, on free ports;
2. runs tierdesk's own `install jira` and `install zendesk` against it, as a support admin
   would, and takes the webhook secrets from their output (`install_stack`);
3. starts `tierdesk serve` as a child process (SQLite in a temporary directory, the example
   policy deploy/policy.example.yaml, or the embedded copy of it outside a checkout; `service`);
4. plays the story (sandbox/story.py) on both vendors through the sandbox's scripted agents,
   so every decision reaches tierdesk only as a signed webhook: a how-to question, a password
   reset, a crash asked up to L2 without documentation (the checklist), then documented (moves
   up by itself), an L3 request from a basic-plan customer (refused with the reason), an
   invoice question (routed to billing) and an unknown customer (unverified) (`play`);
5. prints per ticket what an agent now sees (tier label, assignee or group, checklist note),
   checks each against what the example policy says, and reports whether any check failed;
6. sums up the vendor requests: `install`'s apart from the story's (`summary_line`).

`wait_until_ready` and `stop_process` are the child-process loops the end-to-end harness
(tests/e2e/harness.py) uses too.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
import requests

from sandbox.story import (
    JIRA_BOT,
    ZENDESK_BOT,
    Case,
    View,
    jira_story,
    jira_view,
    zendesk_story,
    zendesk_view,
)
from tiering.models import note_key_in

#: How long one phase of the story may take to settle before its checks count as failed.
SETTLE_SECONDS = 20.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _cli(args: list[str], env: dict[str, str], *, cwd: Path, timeout: float = 60) -> str:
    """Run a `tierdesk` command as a child process in `cwd`; its output, or ClickException.

    `cwd` is the demo's own directory, so that no `.env` of the caller's directory (read by
    the settings) can point the children at a real Jira or Zendesk."""
    done = subprocess.run(
        [sys.executable, "-c", "from webhooks.cli import main; main(prog_name='tierdesk')", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if done.returncode != 0:
        raise click.ClickException(
            f"`tierdesk {' '.join(args)}` failed ({done.returncode}):\n{done.stderr or done.stdout}"
        )
    return done.stdout


def secret_lines(output: str) -> dict[str, str]:
    found: dict[str, str] = {}
    for line in output.splitlines():
        name, sep, value = line.strip().partition("=")
        if sep and name.startswith("TIERDESK_") and name.endswith("_SECRET"):
            found[name] = value
    return found


def policy_path() -> Path | None:
    """deploy/policy.example.yaml of this checkout, or None (the embedded copy is used)."""
    candidate = Path(__file__).resolve().parents[1] / "deploy" / "policy.example.yaml"
    return candidate if candidate.is_file() else None


class NotReady(Exception):
    """A child process exited, or did not answer, before it was ready; says why, with its log."""


def wait_until_ready(
    proc: subprocess.Popen[bytes],
    url: str,
    *,
    log_path: Path,
    timeout: float,
    name: str = "tierdesk serve",
    lines: int = 30,
) -> None:
    """Poll `url` until it answers 2xx; NotReady (the log's last `lines`) if `proc` exits or
    `timeout` seconds pass first."""
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise NotReady(f"{name} exited ({proc.returncode}):\n{tail(log_path, lines)}")
        try:
            if requests.get(url, timeout=1).ok:
                return
        except requests.RequestException:
            pass
        if time.monotonic() > deadline:
            raise NotReady(f"{name} did not become ready:\n{tail(log_path, lines)}")
        time.sleep(0.1)


def stop_process(proc: subprocess.Popen[Any], *, grace: float = 10) -> None:
    """SIGTERM, and SIGKILL if `proc` has not exited `grace` seconds later."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


@contextmanager
def _service(env: dict[str, str], port: int, log_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    """`tierdesk serve` as a child process, ready to receive; stopped (TERM, then KILL) after."""
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "from webhooks.cli import main; main(prog_name='tierdesk')",
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ],
            env=env,
            cwd=log_path.parent,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            try:
                wait_until_ready(
                    proc, f"http://127.0.0.1:{port}/readyz", log_path=log_path, timeout=30
                )
            except NotReady as exc:
                raise click.ClickException(str(exc)) from exc
            yield proc
        finally:
            stop_process(proc)


def tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text("utf-8", "replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


@dataclass
class Stack:
    """How to run `tierdesk serve` against a sandbox: its environment, port and log."""

    env: dict[str, str]
    port: int
    log_path: Path
    policy: Path | None

    def cli(self, args: list[str]) -> str:
        """Run `tierdesk <args>` with this stack's environment, in its directory."""
        return _cli(args, self.env, cwd=self.log_path.parent)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def policy_name(self) -> str:
        return str(self.policy) if self.policy else "embedded example"


def install_stack(
    handle: Any,
    workdir: Path,
    *,
    echo: Callable[[str], None] = lambda _: None,
    extra_env: dict[str, str] | None = None,
) -> Stack:
    """The service's environment for `handle`, with webhooks installed by `tierdesk install`."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TIERDESK_", "ZENPY_"))}
    env.update(
        {
            "TIERDESK_DATABASE_URL": f"sqlite:///{workdir / 'tierdesk.db'}",
            "TIERDESK_JIRA_URL": handle.jira_url,
            "TIERDESK_JIRA_EMAIL": JIRA_BOT[0],
            "TIERDESK_JIRA_API_TOKEN": "sandbox-token",
            "TIERDESK_JIRA_ACCOUNT_ID": JIRA_BOT[1],
            "TIERDESK_JIRA_COMMENT_VISIBILITY": "role:Administrators",
            # Used by settings that know it, ignored otherwise (see the module docstring).
            "TIERDESK_JIRA_ORGANIZATION_FIELD": "customfield_10002",
            "TIERDESK_ZENDESK_URL": handle.zendesk_url,
            "TIERDESK_ZENDESK_EMAIL": ZENDESK_BOT[0],
            "TIERDESK_ZENDESK_API_TOKEN": "sandbox-token",
            "TIERDESK_ZENDESK_USER_ID": str(ZENDESK_BOT[1]),
            "TIERDESK_LOG_LEVEL": "WARNING",
            **(extra_env or {}),
        }
    )
    policy = policy_path()
    if policy is not None:
        env["TIERDESK_POLICY"] = str(policy)
    stack = Stack(env, port, workdir / "serve.log", policy)
    for vendor in ("jira", "zendesk"):
        out = stack.cli(
            ["install", vendor, "--callback-url", f"{stack.base_url}/webhooks/{vendor}"]
        )
        secrets = secret_lines(out)
        if not secrets:
            raise click.ClickException(f"`tierdesk install {vendor}` printed no secret:\n{out}")
        env.update(secrets)
        echo(f"Installed the {vendor} webhook with `tierdesk install {vendor}`.")
    return stack


def service(stack: Stack) -> Any:
    """`tierdesk serve` for `stack` as a context manager (see `_service`)."""
    return _service(stack.env, stack.port, stack.log_path)


#: The demo's `serve` skips the start-up doctor: its reads check the installation, not tickets,
#: and since they run in the background beside the story they could not be told apart from the
#: story's reads in the sandbox's counts. `install` is counted on its own (`Counts.between`).
DEMO_ENV = {"TIERDESK_STARTUP_DOCTOR": "false"}

_VENDOR_NAMES = (("jira", "Jira"), ("zendesk", "Zendesk"))


@dataclass(frozen=True)
class Counts:
    """Reads and writes tierdesk sent to each vendor during one phase of the demo."""

    reads: dict[str, int]
    writes: dict[str, int]

    @staticmethod
    def between(before: dict[str, Any], after: dict[str, Any]) -> Counts:
        """The requests between two of the sandbox's `state()["requests"]` snapshots."""
        return Counts(
            {v: int(after[v]["reads"]) - int(before.get(v, {}).get("reads", 0))
             for v, _ in _VENDOR_NAMES},
            {v: int(after[v]["writes"]) - int(before.get(v, {}).get("writes", 0))
             for v, _ in _VENDOR_NAMES})

    def exact(self) -> str:
        """`Jira 0 reads + 8 writes, Zendesk 0 reads + 8 writes` (for `--verbose`)."""
        return ", ".join(f"{name} {self.reads[v]} reads + {self.writes[v]} writes"
                         for v, name in _VENDOR_NAMES)


def summary_line(setup: Counts, story: Counts, *, retry_after_violations: int) -> str:
    """What tierdesk asked of the vendors, in an admin's words: setting up (`tierdesk install`:
    webhooks and triggers, no ticket) apart from the story (looking at and changing tickets;
    the demo's serve runs no start-up doctor, `DEMO_ENV`). `--verbose` adds the exact counts."""
    installed = " and ".join(f"{name} {setup.reads[v] + setup.writes[v]} time(s)"
                             for v, name in _VENDOR_NAMES)
    parts = [f"{name} {story.reads[v] + story.writes[v]} time(s) ({story.reads[v]} to look at"
             f" tickets, {story.writes[v]} to change them)" for v, name in _VENDOR_NAMES]
    early = retry_after_violations
    waited = ("It always waited as long as a vendor asked it to." if not early else
              f"✘ It called a vendor {early} time(s) before the wait the vendor asked for was"
              " over.")
    return (f"Setting up its webhooks, `tierdesk install` called {installed}. During the story"
            f" tierdesk called {' and '.join(parts)}. {waited}")


#: Printed before the story: what the marks in front of each ticket mean.
LEGEND = ("✔ = the ticket now looks as the example policy says (labels, who it is handed to,"
          " the note); ✘ = it does not, and each difference is listed under it.")


def play(handle: Any, *, datacenter: bool = False) -> bool:
    """Run the story on both vendors, print what agents see; True when a check failed."""
    jira_cases, jira_act2 = jira_story(handle.agent, datacenter=datacenter)
    zd_cases, zd_act2 = zendesk_story(handle.agent)
    cases = jira_cases + zd_cases
    click.echo(LEGEND + "\n")
    click.echo("Act 1: new tickets arrive.\n")
    settle(handle, cases)
    # The basic-plan ticket's L3 request happens in Act 2: it is shown there (it is checked now
    # all the same: an ordinary L1 ticket).
    requests_later = {id(jira_cases[3]), id(zd_cases[3])}
    print_cases(handle, [c for c in cases if id(c) not in requests_later])
    failed = any(c.problems for c in cases)
    for case in cases:
        if id(case) in requests_later and case.problems:
            print_cases(handle, [case])
    jira_act2(jira_cases)
    zd_act2(zd_cases)
    changed = [jira_cases[2], jira_cases[3], zd_cases[2], zd_cases[3]]
    click.echo("\nAct 2: the agent documents the crash; the basic-plan customer asks for L3.\n")
    settle(handle, cases)
    print_cases(handle, changed)
    failed = failed or any(c.problems for c in cases)
    # Loops settle: tierdesk's own writes echo back and must cause no further write.
    writes = _writes(handle)
    time.sleep(1.0)
    settle(handle, cases)
    extra = _writes(handle) - writes
    if extra:
        click.echo(f"✘ {extra} more vendor write(s) after the story settled: a loop", err=True)
    return failed or extra > 0 or any(c.problems for c in cases)


def _writes(handle: Any) -> int:
    counts = handle.state()["requests"]
    return int(counts["jira"]["writes"] + counts["zendesk"]["writes"])


def _views(handle: Any, cases: list[Case]) -> dict[int, View]:
    state = handle.state()
    users = {u.accountId: u.displayName for u in handle.sandbox.jira.users.values()}
    groups = {g.id: g.name for g in handle.sandbox.zendesk.groups.values()}
    return {
        i: jira_view(state, c.ref, users)
        if c.vendor == "jira"
        else zendesk_view(state, c.ref, groups)
        for i, c in enumerate(cases)
    }


def settle(handle: Any, cases: list[Case], timeout: float = SETTLE_SECONDS) -> None:
    """Wait until every case meets its expectation (or `timeout` passes); record problems."""
    deadline = time.monotonic() + timeout
    while True:
        handle.wait_for_deliveries(timeout=2)
        views = _views(handle, cases)
        for i, case in enumerate(cases):
            case.problems = case.check(views[i])
        if not any(c.problems for c in cases) or time.monotonic() > deadline:
            return
        time.sleep(0.2)


def print_cases(handle: Any, cases: list[Case]) -> None:
    views = _views(handle, cases)
    for i, case in enumerate(cases):
        view = views[i]
        mark = "✘" if case.problems else "✔"
        tier = ", ".join(x for x in view.labels if x.startswith(("tier-", "escalate-"))) or "—"
        click.echo(f"{mark} {case.vendor:<7} {case.ref:<6} {case.title}")
        click.echo(f"    labels: {tier}    handed to: {view.owner_name or '—'}")
        if view.note:
            body = [line for line in view.note.splitlines() if not note_key_in(line)]
            click.echo("    note: " + "\n          ".join(line for line in body if line.strip()))
        for problem in case.problems:
            click.echo(f"    ✘ {problem}")
