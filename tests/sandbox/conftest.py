"""Fixtures for the sandbox tests: a running sandbox, a webhook receiver, real vendor clients."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from jira import JIRA
from zenpy import Zenpy

from sandbox.server import SandboxHandle, run_in_thread
from tests.webhook_receiver import Receiver, running_receiver


@pytest.fixture
def sandbox() -> Iterator[SandboxHandle]:
    handle = run_in_thread(retry_base=0.05)
    try:
        yield handle
    finally:
        handle.stop()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A tiny webhook endpoint that records every call and answers from `statuses` first."""
    with running_receiver() as rec:
        yield rec


@pytest.fixture
def jira_client(sandbox: SandboxHandle) -> JIRA:
    """The real jira library, as tierdesk's bot, unmodified, pointed at the sandbox."""
    return JIRA(
        server=sandbox.jira_url,
        basic_auth=("bot@tierdesk.example", "sandbox-token"),
        max_retries=0,
        timeout=5,
        options={"check_update": False},
    )


@pytest.fixture
def zenpy_client(sandbox: SandboxHandle, monkeypatch: pytest.MonkeyPatch) -> Zenpy:
    """The real zenpy, as tierdesk's bot, redirected by ZENPY_FORCE_SCHEME/NETLOC only."""
    for key, value in sandbox.zenpy_env().items():
        monkeypatch.setenv(key, value)
    return Zenpy(
        subdomain="tierdesk-sandbox",
        email="bot@tierdesk.example",
        token="sandbox-token",
        disable_cache=True,
        timeout=5,
    )
