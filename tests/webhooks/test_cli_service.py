"""The service commands: dead-letters list/show/replay, explain, worker --once, start-up errors."""

from __future__ import annotations

import signal
import socket
from pathlib import Path

import pytest
from click.testing import CliRunner

from connectors.base import Envelope
from webhooks.cli import main
from webhooks.commit import WriterProcess
from webhooks.inbox.database import InboxError
from webhooks.inbox.records import DecisionRecord
from webhooks.inbox.store import Inbox


@pytest.fixture
def db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"sqlite:///{tmp_path}/cli.db"
    monkeypatch.setenv("TIERDESK_DATABASE_URL", url)
    monkeypatch.chdir(tmp_path)
    for name in ("JIRA_URL", "ZENDESK_URL", "ZENDESK_SUBDOMAIN", "POLICY", "PORT"):
        monkeypatch.delenv("TIERDESK_" + name, raising=False)
    return url


def _dead(url: str, ticket: str, error: str) -> int:
    box = Inbox.connect(url)
    box.enqueue(Envelope(vendor="jira", event_type="jira:issue_updated", handled=True,
                         ticket=ticket, delivery_id=f"del-{ticket}"), {"key": ticket})
    claim = box.claim(lease_seconds=30)
    assert claim is not None
    box.dead_letter(claim, error=error)
    box.close()
    return claim.events[0].id


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


def test_dead_letters_list_show_replay(db: str) -> None:
    """Dead letters are listed with their error, shown with their payload, and replayed."""
    first = _dead(db, "SUP-1", "VendorRejected (HTTP 400): Field 'assignee' cannot be set")
    _dead(db, "SUP-2", "VendorUnavailable (HTTP 503): down")
    code, out = run("dead-letters", "list")
    assert code == 0 and "SUP-1" in out and "Field 'assignee' cannot be set" in out
    code, out = run("dead-letters", "show", str(first))
    assert code == 0 and '"key": "SUP-1"' in out and "delivery_id: del-SUP-1" in out
    code, out = run("dead-letters", "replay", str(first))
    assert code == 0 and "queued event" in out
    code, out = run("dead-letters", "replay", "--all")
    assert (code, out.strip()) == (0, "queued 1 dead letter(s) again")
    assert run("dead-letters", "list")[1].strip() == "no dead letters"


def test_dead_letters_errors_are_explained(db: str) -> None:
    """Unknown ids and missing arguments exit 2 with what to do."""
    Inbox.connect(db).close()
    code, out = run("dead-letters", "show", "99")
    assert code == 2 and "no event 99" in out
    code, out = run("dead-letters", "replay")
    assert code == 2 and "give either an event ID or --all" in out


def test_dead_letters_json(db: str) -> None:
    """--json prints one object per dead letter."""
    _dead(db, "SUP-3", "x")
    code, out = run("dead-letters", "list", "--json")
    assert code == 0 and '"ticket": "SUP-3"' in out


def test_explain_shows_history_newest_first(db: str) -> None:
    """explain prints the ticket's state and each decision with reasons and calls."""
    box = Inbox.connect(db)
    for i, (outcome, reason) in enumerate([("applied", "rule billing -> L1"),
                                           ("unchanged", "already L1")]):
        box.enqueue(Envelope(vendor="jira", event_type="e", handled=True, ticket="SUP-9",
                             delivery_id=f"d{i}"), {})
        claim = box.claim(lease_seconds=30)
        assert claim is not None
        box.complete(claim, note_key="abcdef01", record=DecisionRecord(
            vendor="jira", ticket="SUP-9", outcome=outcome, event_ids=(i + 1,),
            policy_digest="d" * 64, tier_before=None, tier_after="L1", reasons=(reason,),
            calls=({"method": "PUT", "path": "/rest/api/2/issue/SUP-9", "status": 204,
                    "purpose": "apply"},) if outcome == "applied" else ()))
    box.close()
    code, out = run("explain", "jira", "SUP-9")
    assert code == 0
    assert out.index("already L1") < out.index("rule billing -> L1")
    assert "PUT /rest/api/2/issue/SUP-9 -> 204" in out and "last note abcdef01" in out
    code, out = run("explain", "jira", "SUP-404")
    assert "no events for jira ticket SUP-404" in out


def test_bad_setting_exits_2_naming_it(db: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A bad setting stops every command with one line naming the variable (no traceback)."""
    monkeypatch.setenv("TIERDESK_PORT", "eighty")
    code, out = run("serve")
    assert code == 2 and "TIERDESK_PORT: expected an integer" in out and "Traceback" not in out


def test_bad_policy_file_exits_2(db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An invalid policy is reported by file and key before anything starts."""
    bad = tmp_path / "p.yaml"
    bad.write_text("version: 1\ntiers: [L0]\ndefault_tier: L9\n")
    monkeypatch.setenv("TIERDESK_POLICY", str(bad))
    code, out = run("worker", "--once")
    assert code == 2 and "cannot load the policy" in out and "p.yaml" in out


def test_missing_policy_file_exits_2(db: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A policy path that does not exist is named."""
    monkeypatch.setenv("TIERDESK_POLICY", "/nonexistent/policy.yaml")
    code, out = run("worker", "--once")
    assert code == 2 and "TIERDESK_POLICY: cannot read /nonexistent/policy.yaml" in out


def test_unusable_database_exits_2(db: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """An unusable database URL is refused with what to use."""
    monkeypatch.setenv("TIERDESK_DATABASE_URL", "mysql://x@y/z")
    code, out = run("dead-letters", "list")
    assert code == 2 and "unsupported database" in out


def test_serve_fails_when_the_writer_process_cannot_start(
    db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A writer that cannot start (say, child processes forbidden) stops serve with uvicorn's
    start-up failure status 3 (a supervisor restarts it) and a logged line saying what to set."""
    async def refuse(self: WriterProcess) -> None:
        raise InboxError("cannot start the inbox writer process: [Errno 1] Operation not permitted")

    monkeypatch.setattr(WriterProcess, "start", refuse)
    monkeypatch.setattr(signal, "signal", lambda *_: None)  # keep pytest's own handlers
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    code, out = run("serve", "--no-worker", "--port", str(port))
    assert code == 3, out
    assert "cannot start the inbox writer process" in out
    assert "TIERDESK_INBOX_WRITER=thread" in out and "Operation not permitted" in out


def test_worker_once_without_vendors(db: str) -> None:
    """With no vendor configured the worker starts, processes nothing and says so."""
    Inbox.connect(db).close()
    code, out = run("worker", "--once")
    assert code == 0 and "processed 0 ticket(s)" in out


def test_worker_without_vendors_refuses_to_idle(db: str) -> None:
    """A long-running worker with no vendor configured exits 2 saying what to set."""
    code, out = run("worker")
    assert code == 2 and "no vendor is configured" in out and "TIERDESK_JIRA_URL" in out


def test_worker_metrics_port_is_validated(db: str) -> None:
    """--metrics-port must be a port number."""
    code, out = run("worker", "--metrics-port", "0")
    assert code == 2 and "--metrics-port" in out
