"""Shared fixtures for the Zendesk connector tests: policy, connector on `responses`, bodies."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import responses

from connectors.zendesk import ZendeskConnector
from connectors.zendesk.config import ZendeskConfig
from tiering import Decision, Policy, Ticket, decide, load_policy

HERE = Path(__file__).parent
BASE = "https://acme.zendesk.com"
BOT = 777
NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def policy() -> Policy:
    return load_policy((HERE / "policy.yaml").read_text("utf-8"), source="policy.yaml")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def config() -> ZendeskConfig:
    return ZendeskConfig(
        base_url=BASE, email="bot@acme.example", api_token="tok", bot_user_id=BOT, timeout=5.0
    )


@pytest.fixture
def connector(config: ZendeskConfig, policy: Policy, clock: FakeClock) -> ZendeskConnector:
    return ZendeskConnector(config, policy, clock=clock)


@pytest.fixture
def rsps() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


def decider(policy: Policy) -> Any:
    """The `decide` callable the worker passes to `apply`."""

    def run(ticket: Ticket) -> Decision:
        return decide(ticket, policy, now=NOW)

    return run


def trigger_body(**over: Any) -> dict[str, Any]:
    """A rendered tierdesk trigger body (what Zendesk would POST for ticket 42)."""
    body: dict[str, Any] = {
        "tierdesk": 1,
        "event_type": "trigger",
        "ticket_id": "42",
        "current_user_id": "501",
        "updated_at": "2026-11-21T11:59:58Z",
        "group_id": "100",
        "assignee_id": "",
        "organization_id": "9001",
        "tags": "",
        "priority": "Normal",
        "attachments": "",
        "organization_plan": "premium",
        "fields": {"360001111": "", "360001114": ""},
        "requester_email": "jane@acme.example",
        "organization_name": "Acme Corp",
        "subject": "Question about exports",
        "description": "How are exports scheduled?",
    }
    body.update(over)
    return body


def sent(mock: responses.RequestsMock) -> list[tuple[str, str, Any]]:
    """Every request made: (method, path with query, JSON body or None)."""
    out: list[tuple[str, str, Any]] = []
    for call in mock.calls:
        request = call.request
        url = str(request.url)
        path = url[len(BASE):] if url.startswith(BASE) else url
        raw = request.body
        body = json.loads(raw) if raw else None
        out.append((str(request.method), path, body))
    return out
