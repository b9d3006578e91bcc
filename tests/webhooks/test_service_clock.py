"""The service's one injected clock (webhooks/service.py `clock=`): the inbox, the worker's
`now` and the receiver read it; the writer process, which keeps the system time, refuses it."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.webhooks.conftest import FakeClock
from webhooks.service import StartupError, build_server, build_service
from webhooks.settings import Settings, load_settings

POLICY = Path(__file__).resolve().parents[2] / "deploy" / "policy.example.yaml"


def _settings(tmp_path: Path, **more: str) -> Settings:
    """A Jira-configured service on a temporary inbox (nothing is sent: no worker runs)."""
    return load_settings(_env_file=None, policy=POLICY,
                         database_url=f"sqlite:///{tmp_path}/inbox.db",
                         jira_url="http://127.0.0.1:9", jira_email="bot@tierdesk.example",
                         jira_api_token="t", jira_comment_visibility="role:Administrators",
                         **more)


def test_build_service_reads_the_given_clock(tmp_path: Path) -> None:
    """The inbox and every worker take their time from `clock`, not the system's."""
    clock = FakeClock(start=datetime(2026, 11, 23, 8, tzinfo=UTC).timestamp())
    service = build_service(_settings(tmp_path), with_worker=True,
                            clock=clock)
    try:
        assert service.inbox.clock() == clock.now
        assert service.pool is not None
        clock.advance(3 * 3600)
        assert [w.now() for w in service.pool.workers] == [
            datetime(2026, 11, 23, 11, tzinfo=UTC)] * len(service.pool.workers)
        assert service.inbox.clock() == clock.now
    finally:
        service.inbox.close()


def test_build_server_refuses_another_clock_with_the_writer_process(tmp_path: Path) -> None:
    """The writer child process dates arrivals by the system clock, so another clock needs
    TIERDESK_INBOX_WRITER=thread, and the error says so."""
    with pytest.raises(StartupError, match="TIERDESK_INBOX_WRITER=thread"):
        build_server(_settings(tmp_path, inbox_writer="process"),
                     with_worker=False, clock=FakeClock())
    _, service = build_server(_settings(tmp_path, inbox_writer="thread"),
                                   with_worker=False, clock=FakeClock(start=1_800_000_000.0))
    try:
        assert service.inbox.clock() == 1_800_000_000.0
    finally:
        service.inbox.close()
