"""An operator's first hour with the CLI: read-only commands never create a database, `-v` names
the database, `explain` finds keys in any case and escapes control characters, help texts, busy
ports, and exhausted retries reported as dead letters."""

from __future__ import annotations

import io
import logging
import os
import socket
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from connectors.base import Envelope, VendorUnavailable
from tests.webhooks.conftest import FakeClock
from tests.webhooks.fakes import FakeConnector, fake_decide
from webhooks.cli import main
from webhooks.defaults import EXAMPLE_POLICY_SOURCE, default_policy_text
from webhooks.inbox.records import DecisionRecord
from webhooks.inbox.store import Inbox
from webhooks.metrics import Metrics
from webhooks.worker import Worker


@pytest.fixture
def here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A directory without a database, the default (relative) URL, no vendor configured."""
    monkeypatch.chdir(tmp_path)
    for name in list(os.environ):
        if name.startswith("TIERDESK_"):
            monkeypatch.delenv(name)
    return tmp_path


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


@pytest.mark.parametrize("args", [
    ("explain", "jira", "SUP-2"),           # the example: "no events" from a new file
    ("dead-letters", "list"),               # "no dead letters" from a new file
    ("dead-letters", "show", "1"),
    ("dead-letters", "replay", "--all"),    # nothing to replay in a database just created
    ("prune", "--dry-run", "--older-than", "1"),
    ("worker", "--once"),                   # "processed 0 ticket(s)" from a new file
])
def test_read_only_commands_never_create_a_database(here: Path, args: tuple[str, ...]) -> None:
    """Without a database these commands refuse (exit 2) naming the absolute path and how to
    point at the right one, and create no file."""
    code, out = run(*args)
    assert code == 2, out
    assert f"no inbox database at {here / 'tierdesk.db'}" in out
    assert "TIERDESK_DATABASE_URL=sqlite:///./tierdesk.db" in out
    assert "relative path is taken from the current directory" in out
    assert "set TIERDESK_DATABASE_URL" in out
    assert not (here / "tierdesk.db").exists()


@pytest.mark.postgres
def test_read_only_command_refuses_a_postgres_database_without_an_inbox(
    here: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A PostgreSQL database holding no tierdesk tables is refused, and none are created."""
    from tests.webhooks.conftest import PG_SKIP, PG_URL, _with_schema

    if not PG_URL:
        pytest.skip(PG_SKIP)
    import uuid

    import sqlalchemy as sa

    from webhooks.inbox.database import normalize_url

    schema = f"t_{uuid.uuid4().hex[:12]}"
    engine = sa.create_engine(normalize_url(PG_URL))
    with engine.begin() as conn:
        conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
    try:
        url = _with_schema(PG_URL, schema)
        monkeypatch.setenv("TIERDESK_DATABASE_URL", url)
        code, out = run("dead-letters", "list")
        assert code == 2 and "holds no tierdesk inbox (no tierdesk_events table)" in out
        with engine.connect() as conn:
            assert not sa.inspect(conn).get_table_names(schema=schema)
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))
        engine.dispose()


def test_migrate_creates_the_database_on_purpose(here: Path) -> None:
    """`tierdesk migrate` creates the inbox the read-only commands refuse to create."""
    code, out = run("migrate")
    assert code == 0, out
    assert out.startswith(f"the inbox at SQLite file {here / 'tierdesk.db'} has schema version")
    assert (here / "tierdesk.db").is_file()
    assert run("dead-letters", "list") == (0, "no dead letters\n")


def test_verbose_names_the_database(here: Path) -> None:
    """-v says which database the command opened, as an absolute path."""
    Inbox.connect("sqlite:///./tierdesk.db").close()
    result = CliRunner().invoke(main, ["dead-letters", "list", "-v"])
    assert result.exit_code == 0
    assert f"opened the inbox database SQLite file {here / 'tierdesk.db'}" in result.output
    assert "no dead letters" in result.output


def _decided(url: str, ticket: str, reason: str, error: str | None = None) -> None:
    box = Inbox.connect(url)
    box.enqueue(Envelope(vendor="jira", event_type="e", handled=True, ticket=ticket,
                         delivery_id=f"d-{ticket}"), {})
    claim = box.claim(lease_seconds=30)
    assert claim is not None
    box.complete(claim, record=DecisionRecord(
        vendor="jira", ticket=ticket, outcome="applied", event_ids=(claim.events[0].id,),
        tier_after="L1", reasons=(reason,), error=error))
    box.close()


def test_explain_matches_jira_keys_in_any_case(here: Path) -> None:
    """`explain jira sup-1` shows SUP-1's history and says it matched another case."""
    _decided("sqlite:///./tierdesk.db", "SUP-1", "rule billing -> L1")
    code, out = run("explain", "jira", "sup-1")
    assert code == 0
    assert "showing SUP-1, the same key in another letter case" in out
    assert "rule billing -> L1" in out


def test_explain_without_a_match_lists_close_keys(here: Path) -> None:
    """No match: say what was searched for, where, and list close keys."""
    for key in ("SUP-10", "SUP-11", "OPS-7"):
        _decided("sqlite:///./tierdesk.db", key, "r")
    code, out = run("explain", "jira", "sup-1")
    assert code == 0
    assert "tierdesk has no events for jira ticket sup-1" in out
    assert f"searched SQLite file {here / 'tierdesk.db'} for 'sup-1', ignoring case" in out
    close = next(line for line in out.splitlines() if line.startswith("close matches:"))
    assert "SUP-10" in close and "SUP-11" in close and "OPS-7" not in close


def test_explain_zendesk_accepts_a_hash(here: Path) -> None:
    """`explain zendesk #42` is ticket 42."""
    box = Inbox.connect("sqlite:///./tierdesk.db")
    box.enqueue(Envelope(vendor="zendesk", event_type="e", handled=True, ticket="42",
                         delivery_id="z1"), {})
    box.close()
    code, out = run("explain", "zendesk", "#42")
    assert code == 0 and out.startswith("zendesk 42: pending True")


def test_explain_escapes_control_characters(here: Path) -> None:
    """Customer text in reasons and errors cannot repaint the terminal: ESC, CR and bidi
    overrides are printed as escapes."""
    _decided("sqlite:///./tierdesk.db", "SUP-5", "subject \x1b[2J\x1b[31mfake\rline",
             error="bad \u202eevil")
    code, out = run("explain", "jira", "SUP-5")
    assert code == 0
    assert "\x1b" not in out and "\r" not in out and "\u202e" not in out
    assert "subject \\x1b[2J\\x1b[31mfake\\x0dline" in out
    assert "error: bad \\u202eevil" in out


@pytest.mark.parametrize("args, says", [
    # each command that reads settings says where they come from
    (("serve",), "TIERDESK_* environment variables or a .env file"),
    (("worker",), "TIERDESK_* environment variables or a .env file"),
    (("explain",), "TIERDESK_* environment variables or a .env file"),
    (("dead-letters",), "TIERDESK_* environment variables or a .env file"),
    (("dead-letters", "list"), "TIERDESK_* environment variables or a .env file"),
    (("backfill",), "TIERDESK_* environment variables or a .env file"),
    (("backfill", "jira"), "TIERDESK_* environment variables or a .env file"),
    (("backfill", "zendesk"), "TIERDESK_* environment variables or a .env file"),
    # explain says what TICKET is on each vendor
    (("explain",), "TICKET is the Jira issue key"),
    (("explain",), "Zendesk ticket number"),
    # options that had no description
    (("explain",), "Show at most this many decisions"),
    (("dead-letters", "list"), "Show at most this many dead letters"),
    (("backfill", "jira"), "Issues read per search request"),
    # exit codes
    (("serve",), "3 when the inbox writer process cannot start"),
])
def test_help_texts(args: tuple[str, ...], says: str) -> None:
    """--help says where settings come from, what TICKET is, and what each option does."""
    result = CliRunner().invoke(main, [*args, "--help"], terminal_width=200)
    assert result.exit_code == 0
    assert says in " ".join(result.output.split())


def test_top_level_command_list_is_not_cut() -> None:
    """On an 80-column terminal no command's description ends in "..."."""
    result = CliRunner().invoke(main, ["--help"], terminal_width=80)
    commands = result.output.split("Commands:")[1]
    assert "..." not in commands
    assert len([line for line in commands.splitlines() if line.strip()]) == len(main.commands)


@pytest.fixture
def busy_port() -> Iterator[int]:
    """A port on 127.0.0.1 held by a listening socket."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield s.getsockname()[1]


def test_serve_on_a_busy_port_starts_nothing(
    here: Path, busy_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """serve on a busy port exits 2 with one line naming the port and TIERDESK_PORT/--port,
    before any pending event is processed (nothing is even opened: no database file)."""
    monkeypatch.setenv("TIERDESK_PORT", str(busy_port))
    code, out = run("serve")
    assert code == 2, out
    assert out.strip() == (
        f"tierdesk: port {busy_port} on 127.0.0.1 is already in use by another process: stop"
        " that process, or choose another port with TIERDESK_PORT or --port"
    )
    assert not (here / "tierdesk.db").exists()


def test_worker_metrics_on_a_busy_port_is_one_line(
    here: Path, busy_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """worker --metrics-port on a busy port exits 2 with one line naming --metrics-port."""
    monkeypatch.setenv("TIERDESK_JIRA_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("TIERDESK_JIRA_PAT", "x")
    monkeypatch.setenv("TIERDESK_JIRA_DEPLOYMENT", "datacenter")
    monkeypatch.setenv("TIERDESK_JIRA_COMMENT_VISIBILITY", "role:Administrators")
    monkeypatch.setattr("signal.signal", lambda *_: None)
    code, out = run("worker", "--metrics-port", str(busy_port))
    assert code == 2, out
    assert "Traceback" not in out
    assert (f"port {busy_port} (worker metrics) is already in use by another process: stop that"
            " process, or choose another port with --metrics-port") in out


def test_exhausted_retries_are_dead_letters(
    tmp_path: Path, clock: FakeClock, records: list[logging.LogRecord]
) -> None:
    """The last allowed attempt logs `events dead-lettered` (error level) and counts outcome
    `dead`, not `ticket will be retried` / `retry`."""
    from tiering.policy import load_policy

    text, source = default_policy_text(), EXAMPLE_POLICY_SOURCE
    inbox = Inbox.connect(f"sqlite:///{tmp_path}/w.db", clock=clock)
    metrics = Metrics()
    fake = FakeConnector(errors=[VendorUnavailable(f"503 #{i}", status=503) for i in range(2)])
    worker = Worker(inbox=inbox, connectors={"jira": fake}, policy=load_policy(text, source=source),
                    decide=fake_decide, max_attempts=2, lease_seconds=60, retry_max_delay=600,
                    metrics=metrics)
    inbox.enqueue(Envelope(vendor="jira", event_type="jira:issue_updated", handled=True,
                           ticket="T-1", delivery_id="d1", actor="agent"),
                  {"ticket": "T-1", "seq": 1, "labels": []})
    worker.drain()
    clock.advance(700)
    worker.drain()
    events = [(r.getMessage(), r.levelname) for r in records if r.name == "tierdesk"]
    assert [e for e in events if e[0] in ("ticket will be retried", "events dead-lettered")] == [
        ("ticket will be retried", "WARNING"), ("events dead-lettered", "ERROR")]
    value = metrics.registry.get_sample_value
    assert value("tierdesk_decisions_total", {"vendor": "jira", "outcome": "retry"}) == 1
    assert value("tierdesk_decisions_total", {"vendor": "jira", "outcome": "dead"}) == 1
    assert value("tierdesk_dead_lettered_total", {"vendor": "jira"}) == 1
    assert [r.outcome for r in inbox.history("jira", "T-1")] == ["dead", "retry"]
    inbox.close()


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize("terminal, shown", [
    (True, True),    # an admin at a terminal sees the bar
    (False, False),  # piped or logged: nothing, not even a heading
])
def test_backfill_progress_bar_only_on_a_terminal(
    monkeypatch: pytest.MonkeyPatch, terminal: bool, shown: bool
) -> None:
    """The backfill bar (tqdm) draws on stderr when it is a terminal and is silent otherwise."""
    from webhooks import backfill_command

    err = _Terminal() if terminal else io.StringIO()
    monkeypatch.setattr(sys, "stderr", err)
    assert list(backfill_command.progress(range(3), total=3)) == [0, 1, 2]
    # tqdm draws the bar at the start (then at most every 0.1 s), and clears it at the end.
    assert ("0/3" in err.getvalue()) is shown
    assert (err.getvalue() != "") is shown
