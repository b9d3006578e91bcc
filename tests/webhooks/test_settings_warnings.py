"""Start-up warnings about variable names: unknown TIERDESK_* variables with a did-you-mean,
unprefixed JIRA_*/ZENDESK_* names, and secret warnings only for configured vendors."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from webhooks.settings import environment_warnings, load_settings


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.startswith(("TIERDESK_", "JIRA_", "ZENDESK_")):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)  # no stray .env


@pytest.mark.parametrize("environ, expected", [
    # the examples: a plural that is singular, a singular that is plural
    ({"TIERDESK_JIRA_WEBHOOK_SECRETS": "s"},
     ["TIERDESK_JIRA_WEBHOOK_SECRETS is not a tierdesk setting and is ignored; did you mean"
      " TIERDESK_JIRA_WEBHOOK_SECRET?"]),
    ({"TIERDESK_WORKER_THREAD": "4"},
     ["TIERDESK_WORKER_THREAD is not a tierdesk setting and is ignored; did you mean"
      " TIERDESK_WORKER_THREADS?"]),
    # nothing close: no guess, a pointer to the list
    ({"TIERDESK_FROBNICATE": "1"},
     ["TIERDESK_FROBNICATE is not a tierdesk setting and is ignored (see the admin guide's"
      " settings)"]),
    # the prefix forgotten
    ({"JIRA_URL": "https://acme.atlassian.net"},
     ["JIRA_URL is set but tierdesk reads TIERDESK_JIRA_URL: its settings take the TIERDESK_"
      " prefix"]),
    ({"ZENDESK_SUBDOMAIN": "acme"},
     ["ZENDESK_SUBDOMAIN is set but tierdesk reads TIERDESK_ZENDESK_SUBDOMAIN: its settings"
      " take the TIERDESK_ prefix"]),
    # the prefixed one is set too: the unprefixed one is someone else's, no hint
    ({"JIRA_URL": "x", "TIERDESK_JIRA_URL": "y"}, []),
    # JIRA_* that is not a tierdesk setting name (another tool's): no hint
    ({"JIRA_HOME": "/var/jira"}, []),
    # known settings and the test suite's own variables: quiet
    ({"TIERDESK_PORT": "8080", "TIERDESK_TEST_DATABASE_URL": "postgresql://x"}, []),
    # case does not matter (settings are case-insensitive)
    ({"tierdesk_port": "8080"}, []),
])
def test_environment_warnings(environ: dict[str, str], expected: list[str]) -> None:
    """Each misspelt or unprefixed name gives one line; correct names give none."""
    assert environment_warnings(environ, env_file=None) == expected


def test_dotenv_names_are_checked_too(tmp_path: Path) -> None:
    """A misspelt name in .env is warned about like one in the environment."""
    env = tmp_path / ".env"
    env.write_text("TIERDESK_MAX_ATTEMPT=3\n")
    assert environment_warnings({}, env_file=env) == [
        "TIERDESK_MAX_ATTEMPT is not a tierdesk setting and is ignored; did you mean"
        " TIERDESK_MAX_ATTEMPTS?"]


def test_cli_prints_the_warning(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A command warns on stderr at start and still runs."""
    from click.testing import CliRunner

    from webhooks.cli import main
    from webhooks.inbox.store import Inbox

    Inbox.connect(f"sqlite:///{tmp_path}/tierdesk.db").close()
    monkeypatch.setenv("TIERDESK_WORKER_THREAD", "4")
    result = CliRunner().invoke(main, ["dead-letters", "list"])
    assert result.exit_code == 0
    assert ("tierdesk: warning: TIERDESK_WORKER_THREAD is not a tierdesk setting and is ignored;"
            " did you mean TIERDESK_WORKER_THREADS?") in result.output


def _jira_only(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TIERDESK_DATABASE_URL", f"sqlite:///{tmp_path}/s.db")
    monkeypatch.setenv("TIERDESK_INBOX_WRITER", "thread")
    monkeypatch.setenv("TIERDESK_JIRA_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("TIERDESK_JIRA_PAT", "x")
    monkeypatch.setenv("TIERDESK_JIRA_DEPLOYMENT", "datacenter")
    monkeypatch.setenv("TIERDESK_JIRA_COMMENT_VISIBILITY", "role:Administrators")


def test_secret_warning_only_for_configured_vendors(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, records: list[logging.LogRecord]
) -> None:
    """A Jira-only set-up without a Jira secret warns for Jira, never for Zendesk; /readyz is
    503 naming the missing secret."""
    from webhooks.service import build_server

    _jira_only(monkeypatch, tmp_path)
    server, service = build_server(load_settings(), with_worker=False)
    messages = [r.getMessage() for r in records]
    assert any(m.startswith("no jira webhook secret") for m in messages)
    assert not any("zendesk" in m for m in messages)
    with TestClient(server.config.app) as client:
        r = client.get("/readyz")
    service.inbox.close()
    assert r.status_code == 503
    assert r.json()["problems"] == [
        "no jira webhook secret: every jira delivery is refused (401); set"
        " TIERDESK_JIRA_WEBHOOK_SECRET"]


def test_readyz_is_ready_with_the_configured_vendors_secret(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """With the Jira secret set, a Jira-only set-up is ready (Zendesk's absence is fine)."""
    from webhooks.service import build_server

    _jira_only(monkeypatch, tmp_path)
    monkeypatch.setenv("TIERDESK_JIRA_WEBHOOK_SECRET", "s3cret")
    server, service = build_server(load_settings(), with_worker=False)
    with TestClient(server.config.app) as client:
        r = client.get("/readyz")
    service.inbox.close()
    assert (r.status_code, r.json()) == (200, {"status": "ready"})


def test_readyz_of_the_built_server_says_when_no_policy_is_in_force(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The served /readyz asks the service whether a policy is in force (503 when none is)."""
    from webhooks.service import build_server

    _jira_only(monkeypatch, tmp_path)
    monkeypatch.setenv("TIERDESK_JIRA_WEBHOOK_SECRET", "s3cret")
    server, service = build_server(load_settings(), with_worker=False)
    with TestClient(server.config.app) as client:
        ready = client.get("/readyz")
        service.policy = None  # type: ignore[assignment]
        unready = client.get("/readyz")
    service.inbox.close()
    assert ready.status_code == 200
    assert (unready.status_code, unready.json()["problems"]) == (503, ["policy not loaded"])
