"""`tierdesk demo`: the whole chain on a local sandbox, with no account and no set-up.

What it does, in order (everything is stopped and removed at the end, also on failure or ^C):

1. starts the vendor sandbox (connectors.sandbox) in this process, on free ports;
2. runs tierdesk's own `install jira` and `install zendesk` against it, as a support admin
   would, and takes the webhook secrets from their output;
3. starts `tierdesk serve` as a child process (SQLite in a temporary directory, the example
   policy deploy/policy.example.yaml, or the embedded copy of it outside a checkout);
4. plays the story on both vendors through the sandbox's scripted agents, so every decision
   reaches tierdesk only as a signed webhook: a how-to question, a password reset, a crash
   asked up to L2 without documentation (the checklist), then documented (moves up by itself),
   an L3 request from a basic-plan customer (refused with the reason), an invoice question
   (routed to billing) and an unknown customer (unverified);
5. prints per ticket what an agent now sees (tier label, assignee or group, checklist note),
   checks each against what the example policy says, and exits 1 if any check failed.

`--jira-site dc9|dc10` plays the Jira story on a Data Center 9 or 10 sandbox instead of Cloud
(assignment by user name, the webhook API of that version: `install jira` reads serverInfo).
The Data Center seed names each user by its Cloud accountId, so the example policy's assignees
are valid user names there too.

Jira note: the example policy recognises Acme Corp and Initech by organization. tierdesk reads a
Jira organization only from a configured organization field; where none is configured the
Jira customers are recognised by email domain instead (Globex: standard) or not at all
(unverified). The story is built so that every check holds either way.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click
import requests

from tiering.models import note_key_in

#: How long one phase of the story may take to settle before its checks count as failed.
SETTLE_SECONDS = 20.0
TIER_LABELS = frozenset(f"tier-l{n}" for n in range(5))
JIRA_BOT = ("bot@tierdesk.example", "acc-bot")
ZENDESK_BOT = ("bot@tierdesk.example", 9001)


@dataclass(frozen=True)
class Expect:
    """What the example policy says the ticket must look like once tierdesk has acted."""

    has: frozenset[str] = frozenset()
    lacks: frozenset[str] = frozenset()
    #: Jira accountId or Zendesk group id the ticket must be handed to (None: not checked).
    owner: str | None = None
    #: Text the checklist note must contain (None: no note expected to be checked).
    note: str | None = None


@dataclass
class View:
    """What an agent sees on one ticket."""

    labels: list[str]
    owner: str | None
    owner_name: str
    note: str | None


@dataclass
class Case:
    """One ticket of the story on one vendor."""

    vendor: str
    title: str
    ref: str = ""
    expect: Expect = field(default_factory=Expect)
    problems: list[str] = field(default_factory=list)

    def check(self, view: View) -> list[str]:
        found = set(view.labels)
        problems = [f"label {x} missing" for x in sorted(self.expect.has - found)]
        problems += [f"label {x} present" for x in sorted(self.expect.lacks & found)]
        if self.expect.owner is not None and view.owner != self.expect.owner:
            problems.append(
                f"handed to {view.owner_name or 'nobody'}, expected {self.expect.owner}"
            )
        if self.expect.note is not None and (
            view.note is None or self.expect.note not in view.note
        ):
            problems.append(f"checklist note does not say {self.expect.note!r}")
        return problems


def _free_port() -> int:
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


def _secret_lines(output: str) -> dict[str, str]:
    found: dict[str, str] = {}
    for line in output.splitlines():
        name, sep, value = line.strip().partition("=")
        if sep and name.startswith("TIERDESK_") and name.endswith("_SECRET"):
            found[name] = value
    return found


def _policy_path() -> Path | None:
    """deploy/policy.example.yaml of this checkout, or None (the embedded copy is used)."""
    candidate = Path(__file__).resolve().parents[1] / "deploy" / "policy.example.yaml"
    return candidate if candidate.is_file() else None


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
            deadline = time.monotonic() + 30
            while True:
                if proc.poll() is not None:
                    raise click.ClickException(
                        f"tierdesk serve exited ({proc.returncode}):\n{_tail(log_path)}"
                    )
                try:
                    if requests.get(f"http://127.0.0.1:{port}/readyz", timeout=1).ok:
                        break
                except requests.RequestException:
                    pass
                if time.monotonic() > deadline:
                    raise click.ClickException(
                        f"tierdesk serve did not become ready:\n{_tail(log_path)}"
                    )
                time.sleep(0.1)
            yield proc
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=5)


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text("utf-8", "replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


# ------------------------------------------------------------------------------------ views


def _jira_view(state: dict[str, Any], key: str, users: dict[str, str]) -> View:
    issue = state["jira"]["issues"][key]
    notes = [
        c["body"]
        for c in issue["comments"]
        if c["author"] == JIRA_BOT[1] and note_key_in(c["body"])
    ]
    owner = issue["assignee"]
    name = users.get(owner, owner or "") if owner else ""
    if issue["components"]:
        name = (name + " " if name else "") + "component " + ", ".join(issue["components"])
    return View(issue["labels"], owner, name, notes[-1] if notes else None)


def _zendesk_view(state: dict[str, Any], ticket: str, groups: dict[int, str]) -> View:
    t = state["zendesk"]["tickets"][ticket]
    notes = [
        c["body"]
        for c in t["comments"]
        if c["author_id"] == ZENDESK_BOT[1] and note_key_in(c["body"])
    ]
    group = t["group_id"]
    name = groups.get(group, str(group)) if group is not None else ""
    return View(
        t["tags"], None if group is None else str(group), name, notes[-1] if notes else None
    )


# ------------------------------------------------------------------------------------ story

L1 = Expect(has=frozenset({"tier-l1"}), lacks=TIER_LABELS - {"tier-l1"})


#: `--jira-site`: the sandbox's Jira deployment and version.
JIRA_SITES = {
    "cloud": ("Cloud", "9.12.0"),
    "dc9": ("Server", "9.12.0"),
    "dc10": ("Server", "10.3.6"),
}


def jira_site_seed(site: str) -> dict[str, Any]:
    """The default sandbox seed as a Cloud, Data Center 9 or Data Center 10 Jira site."""
    import json

    from connectors.sandbox.state import default_seed_text

    seed: dict[str, Any] = json.loads(default_seed_text())
    deployment, version = JIRA_SITES[site]
    seed["jira"]["deployment"] = deployment
    seed["jira"]["version"] = version
    if deployment == "Server":
        # Data Center refers to users by name: name them as the policy's assignees are spelled.
        old_names = {u["name"]: u["accountId"] for u in seed["jira"]["users"]}
        for user in seed["jira"]["users"]:
            user["name"] = user["accountId"]
        seed["jira"]["permissions"] = {
            old_names.get(who, who): grants for who, grants in seed["jira"]["permissions"].items()
        }
    return seed


def _jira_story(
    agent: Callable[..., Any], *, datacenter: bool = False
) -> tuple[list[Case], Callable[[list[Case]], None]]:
    """Create the Jira tickets; return them and the second act (documentation, L3 request)."""

    def create(
        summary: str,
        description: str,
        reporter: str,
        org: str | None = None,
        priority: str = "Medium",
    ) -> str:
        fields: dict[str, Any] = {
            "project": {"key": "SUP"},
            "summary": summary,
            "description": description,
            "issuetype": {"name": "Task"},
            "priority": {"name": priority},
            # Data Center names users by name (the demo's DC seed names them by accountId).
            "reporter": {"name" if datacenter else "accountId": reporter},
        }
        if org:
            fields["customfield_10002"] = [{"id": org, "name": org}]
        answer = agent("jira", "acc-agent", "POST", "/rest/api/2/issue", {"fields": fields})
        if answer.status != 201:
            raise click.ClickException(f"sandbox refused to create a Jira issue: {answer.body}")
        return str(answer.body["key"])

    cases = [
        Case(
            "jira",
            "How-to question (Globex)",
            create(
                "How do I export a report to CSV?", "Where can I find the export?", "acc-globex"
            ),
            Expect(has=frozenset({"tier-l0"}), lacks=TIER_LABELS - {"tier-l0"}, note="Self-help"),
        ),
        Case(
            "jira",
            "Password reset (Initech)",
            create(
                "Password reset needed",
                "I am locked out, please reset my password.",
                "acc-initech",
                "Initech",
            ),
            Expect(L1.has, L1.lacks, owner="acc-l1"),
        ),
        Case(
            "jira",
            "Crash, asked up to L2 without documentation (Acme Corp)",
            create(
                "App crash on save",
                "The desktop app crashes with a stack trace on save.",
                "acc-globex",
                "Acme Corp",
                "High",
            ),
            Expect(
                has=frozenset({"tier-l1", "tier-docs-missing"}),
                lacks=TIER_LABELS - {"tier-l1"},
                owner="acc-l1",
                note="Checklist for L2",
            ),
        ),
        Case(
            "jira",
            "L3 request from a basic-plan customer (Initech)",
            create(
                "Report totals are wrong",
                "Monthly totals differ from the export.",
                "acc-initech",
                "Initech",
            ),
            L1,
        ),
        Case(
            "jira",
            "Invoice question (Globex)",
            create("Question about my invoice", "The invoice for March looks wrong.", "acc-globex"),
            Expect(has=frozenset({"tier-route-billing"}), lacks=TIER_LABELS, owner="acc-billing"),
        ),
        Case(
            "jira",
            "Unknown customer",
            create(
                "Dashboard shows no data",
                "Since this morning the dashboard is empty.",
                "acc-unknown",
            ),
            Expect(
                has=frozenset({"tier-l1", "tier-unverified"}),
                lacks=TIER_LABELS - {"tier-l1"},
                owner="acc-l1",
            ),
        ),
    ]

    def second_act(cases: list[Case]) -> None:
        crash, basic = cases[2], cases[3]
        agent(
            "jira",
            "acc-agent",
            "PUT",
            f"/rest/api/2/issue/{crash.ref}",
            {
                "fields": {
                    "customfield_10101": "Open any project, edit a cell, press Ctrl+S.",
                    "customfield_10102": "4.2.1 on Windows 11",
                    "customfield_10103": "bugfix",
                }
            },
        )
        agent(
            "jira",
            "acc-agent",
            "POST",
            f"/rest/api/2/issue/{crash.ref}/attachments",
            {"filename": "crash.log", "content": "Traceback ..."},
        )
        crash.title = "Crash, documented by the agent: moves to L2 by itself"
        crash.expect = Expect(
            has=frozenset({"tier-l2"}),
            lacks=(TIER_LABELS - {"tier-l2"}) | {"tier-docs-missing", "escalate-l2"},
            owner="acc-l2",
            note="now in L2",
        )
        agent(
            "jira",
            "acc-agent",
            "PUT",
            f"/rest/api/2/issue/{basic.ref}",
            {"update": {"labels": [{"add": "escalate-l3"}]}},
        )
        basic.expect = Expect(
            has=frozenset({"tier-l1", "tier-entitlement-exceeded"}),
            lacks=(TIER_LABELS - {"tier-l1"}) | {"escalate-l3"},
            note="refused",
        )

    return cases, second_act


def _zendesk_story(agent: Callable[..., Any]) -> tuple[list[Case], Callable[[list[Case]], None]]:
    """Create the Zendesk tickets; return them and the second act."""

    def create(subject: str, body: str, requester: int, priority: str = "normal") -> str:
        answer = agent(
            "zendesk",
            "agent@tierdesk.example",
            "POST",
            "/api/v2/tickets.json",
            {
                "ticket": {
                    "subject": subject,
                    "comment": {"body": body},
                    "requester_id": requester,
                    "priority": priority,
                }
            },
        )
        if answer.status != 201:
            raise click.ClickException(f"sandbox refused to create a Zendesk ticket: {answer.body}")
        return str(answer.body["ticket"]["id"])

    cases = [
        Case(
            "zendesk",
            "How-to question (Globex, standard)",
            create("How do I export a report to CSV?", "Where can I find the export?", 9102),
            Expect(has=frozenset({"tier-l0"}), lacks=TIER_LABELS - {"tier-l0"}, note="Self-help"),
        ),
        Case(
            "zendesk",
            "Password reset (Initech, basic)",
            create("Password reset needed", "I am locked out, please reset my password.", 9103),
            Expect(L1.has, L1.lacks, owner="100"),
        ),
        Case(
            "zendesk",
            "Crash, asked up to L2 without documentation (Acme Corp, premium)",
            create(
                "App crash on save",
                "The desktop app crashes with a stack trace on save.",
                9101,
                "high",
            ),
            Expect(
                has=frozenset({"tier-l1", "tier-docs-missing"}),
                lacks=TIER_LABELS - {"tier-l1"},
                owner="100",
                note="Checklist for L2",
            ),
        ),
        Case(
            "zendesk",
            "L3 request from a basic-plan customer (Initech)",
            create("Report totals are wrong", "Monthly totals differ from the export.", 9103),
            L1,
        ),
        Case(
            "zendesk",
            "Invoice question (Globex)",
            create("Question about my invoice", "The invoice for March looks wrong.", 9102),
            Expect(has=frozenset({"tier-route-billing"}), lacks=TIER_LABELS, owner="900"),
        ),
        Case(
            "zendesk",
            "Unknown customer",
            create("Dashboard shows no data", "Since this morning the dashboard is empty.", 9104),
            Expect(
                has=frozenset({"tier-l1", "tier-unverified"}),
                lacks=TIER_LABELS - {"tier-l1"},
                owner="100",
            ),
        ),
    ]

    def second_act(cases: list[Case]) -> None:
        crash, basic = cases[2], cases[3]
        upload = agent(
            "zendesk",
            "agent@tierdesk.example",
            "POST",
            "/api/v2/uploads.json?filename=crash.log",
            None,
        )
        token = upload.body["upload"]["token"]
        agent(
            "zendesk",
            "agent@tierdesk.example",
            "PUT",
            f"/api/v2/tickets/{crash.ref}.json",
            {
                "ticket": {
                    "custom_fields": [
                        {"id": 360001111, "value": "Open any project, edit a cell, press Ctrl+S."},
                        {"id": 360001112, "value": "4.2.1 on Windows 11"},
                        {"id": 360001113, "value": "bugfix"},
                    ],
                    "comment": {"body": "Logs attached.", "public": False, "uploads": [token]},
                }
            },
        )
        crash.title = "Crash, documented by the agent: moves to L2 by itself"
        crash.expect = Expect(
            has=frozenset({"tier-l2"}),
            lacks=(TIER_LABELS - {"tier-l2"}) | {"tier-docs-missing", "escalate-l2"},
            owner="200",
            note="now in L2",
        )
        tags = agent(
            "zendesk", "agent@tierdesk.example", "GET", f"/api/v2/tickets/{basic.ref}.json"
        ).body["ticket"]["tags"]
        agent(
            "zendesk",
            "agent@tierdesk.example",
            "PUT",
            f"/api/v2/tickets/{basic.ref}.json",
            {"ticket": {"tags": [*tags, "escalate-l3"]}},
        )
        basic.expect = Expect(
            has=frozenset({"tier-l1", "tier-entitlement-exceeded"}),
            lacks=(TIER_LABELS - {"tier-l1"}) | {"escalate-l3"},
            note="refused",
        )

    return cases, second_act


# ---------------------------------------------------------------------------------- command


@click.command("demo")
@click.option("--keep", is_flag=True, help="Keep the temporary directory (database, service log).")
@click.option("-v", "--verbose", is_flag=True,
              help="Also print the exact request counts (reads, writes, Retry-After checks).")
@click.option("--jira-site", type=click.Choice(sorted(JIRA_SITES)), default="cloud",
              show_default=True, help="Which Jira the sandbox plays: Cloud, Data Center 9 or 10.")
def demo(keep: bool, verbose: bool, jira_site: str) -> None:
    """Show tierdesk at work on a local Jira and Zendesk sandbox: no account needed."""
    from connectors.sandbox.server import run_in_thread

    started = time.monotonic()
    workdir = Path(tempfile.mkdtemp(prefix="tierdesk-demo-"))
    handle = run_in_thread(seed=jira_site_seed(jira_site))
    datacenter = JIRA_SITES[jira_site][0] == "Server"
    failed = False
    try:
        click.echo(f"Sandbox: Jira {handle.jira_url} ({jira_site}), Zendesk {handle.zendesk_url}")
        extra = {"TIERDESK_JIRA_DEPLOYMENT": "datacenter"} if datacenter else None
        stack = install_stack(handle, workdir, echo=click.echo, extra_env=extra)
        with service(stack):
            click.echo(f"tierdesk serve on {stack.base_url} (policy: {stack.policy_name})\n")
            failed = _play(handle, datacenter=datacenter)
            if failed:
                click.echo(f"\nService log (last lines):\n{_tail(stack.log_path)}", err=True)
        state = handle.state()
        click.echo("\n" + summary_line(state))
        if verbose:
            jira, zd = state["requests"]["jira"], state["requests"]["zendesk"]
            click.echo(
                f"Vendor requests by tierdesk: Jira {jira['reads']} reads + {jira['writes']}"
                f" writes, Zendesk {zd['reads']} reads + {zd['writes']} writes; Retry-After"
                f" violations: {state['retry_after_violations']}."
                f" Took {time.monotonic() - started:.1f} s."
            )
    finally:
        handle.stop()
        if keep:
            click.echo(f"Kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    if failed:
        raise click.ClickException("some steps did not come out as the policy says (see above)")
    click.echo("Every step came out as the policy says.")


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
    port = _free_port()
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
    policy = _policy_path()
    if policy is not None:
        env["TIERDESK_POLICY"] = str(policy)
    stack = Stack(env, port, workdir / "serve.log", policy)
    for vendor in ("jira", "zendesk"):
        out = stack.cli(
            ["install", vendor, "--callback-url", f"{stack.base_url}/webhooks/{vendor}"]
        )
        secrets = _secret_lines(out)
        if not secrets:
            raise click.ClickException(f"`tierdesk install {vendor}` printed no secret:\n{out}")
        env.update(secrets)
        echo(f"Installed the {vendor} webhook with `tierdesk install {vendor}`.")
    return stack


def service(stack: Stack) -> Any:
    """`tierdesk serve` for `stack` as a context manager (see `_service`)."""
    return _service(stack.env, stack.port, stack.log_path)


def summary_line(state: dict[str, Any]) -> str:
    """What tierdesk asked of the vendors, in an admin's words (`--verbose` adds the counts)."""
    parts = []
    for vendor, name in (("jira", "Jira"), ("zendesk", "Zendesk")):
        counts = state["requests"][vendor]
        reads, writes = int(counts["reads"]), int(counts["writes"])
        parts.append(f"{name} {reads + writes} time(s) ({reads} to look at tickets,"
                     f" {writes} to change them)")
    early = int(state["retry_after_violations"])
    waited = ("It always waited as long as a vendor asked it to." if not early else
              f"✘ It called a vendor {early} time(s) before the wait the vendor asked for was"
              " over.")
    return f"tierdesk called {' and '.join(parts)}. {waited}"


#: Printed before the story: what the marks in front of each ticket mean.
LEGEND = ("✔ = the ticket now looks as the example policy says (labels, who it is handed to,"
          " the note); ✘ = it does not, and each difference is listed under it.")


def _play(handle: Any, *, datacenter: bool = False) -> bool:
    """Run the story on both vendors, print what agents see; True when a check failed."""
    jira_cases, jira_act2 = _jira_story(handle.agent, datacenter=datacenter)
    zd_cases, zd_act2 = _zendesk_story(handle.agent)
    cases = jira_cases + zd_cases
    click.echo(LEGEND + "\n")
    click.echo("Act 1: new tickets arrive.\n")
    _settle(handle, cases)
    # The basic-plan ticket's L3 request happens in Act 2: it is shown there (it is checked now
    # all the same: an ordinary L1 ticket).
    requests_later = {id(jira_cases[3]), id(zd_cases[3])}
    _print(handle, [c for c in cases if id(c) not in requests_later])
    failed = any(c.problems for c in cases)
    for case in cases:
        if id(case) in requests_later and case.problems:
            _print(handle, [case])
    jira_act2(jira_cases)
    zd_act2(zd_cases)
    changed = [jira_cases[2], jira_cases[3], zd_cases[2], zd_cases[3]]
    click.echo("\nAct 2: the agent documents the crash; the basic-plan customer asks for L3.\n")
    _settle(handle, cases)
    _print(handle, changed)
    failed = failed or any(c.problems for c in cases)
    # Loops settle: tierdesk's own writes echo back and must cause no further write.
    writes = _writes(handle)
    time.sleep(1.0)
    _settle(handle, cases)
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
        i: _jira_view(state, c.ref, users)
        if c.vendor == "jira"
        else _zendesk_view(state, c.ref, groups)
        for i, c in enumerate(cases)
    }


def _settle(handle: Any, cases: list[Case], timeout: float = SETTLE_SECONDS) -> None:
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


def _print(handle: Any, cases: list[Case]) -> None:
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


def register(main: click.Group) -> None:
    """Add `tierdesk demo` to the command line."""
    main.add_command(demo)
