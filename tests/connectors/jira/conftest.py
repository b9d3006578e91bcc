"""Shared fixtures of the Jira connector tests: the test policy, configs, payloads, OpenAPI."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import responses

from connectors.jira import JiraConfig, JiraConnector
from sandbox.jira import contract
from tests.shared_vendor import VENDOR
from tiering.policy import Policy, load_policy

HERE = Path(__file__).parent
FIXTURES = HERE / "fixtures"
OPENAPI = VENDOR / "jira" / "platform-openapi-v3.json"
BASE = "https://example.atlassian.net"
DC_BASE = "https://jira.example.internal"


def load(name: str) -> dict[str, Any]:
    """A fresh copy of fixture `name` (tests may mutate it)."""
    data: dict[str, Any] = json.loads((FIXTURES / name).read_text(encoding="utf-8"))
    return copy.deepcopy(data)


@cache
def policy() -> Policy:
    """The test policy (tests/connectors/jira/policy.yaml)."""
    return load_policy((HERE / "policy.yaml").read_text(encoding="utf-8"), source="policy.yaml")


def cloud_config(**overrides: Any) -> JiraConfig:
    """A Cloud config with basic auth and a bot account. Comments are unrestricted on purpose
    (`public_comments`), so request bodies show only what each test is about; the visibility
    tests pass `comment_visibility` or `service_management`."""
    values: dict[str, Any] = {
        "base_url": BASE,
        "email": "bot@example.com",
        "api_token": "token-123",
        "bot_account_id": "bot-account",
        "timeout": 5.0,
        "public_comments": True,
    }
    values.update(overrides)
    return JiraConfig(**values)


@cache
def openapi() -> dict[str, Any]:
    """The Jira platform OpenAPI description (shared vendor folder), parsed once."""
    data: dict[str, Any] = json.loads(OPENAPI.read_text(encoding="utf-8"))
    return data


@pytest.fixture
def rsps() -> Iterator[responses.RequestsMock]:
    """`responses` intercepting every request; an unexpected request fails the test."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock
        # The contract: every body sent to Jira matches its operation's request schema in
        # platform-openapi-v3.json (sandbox/jira/contract.py).
        assert_bodies_match_schema(mock)


def assert_bodies_match_schema(mock: responses.RequestsMock) -> None:
    """Fail if any request body in `mock.calls` breaks its Jira OpenAPI request schema."""
    for call in mock.calls:
        raw = call.request.body
        if not raw:
            continue
        path = urlsplit(str(call.request.url)).path
        operation = contract.operation_for(str(call.request.method), path)
        if operation is None:
            continue  # no schema published for it (connectors/jira/README.md says what is)
        body = json.loads(raw)
        problems = contract.check(operation, body)
        assert not problems, f"{call.request.method} {path} body breaks {operation}: {problems}"


@pytest.fixture
def connector(rsps: responses.RequestsMock) -> JiraConnector:
    """A Cloud JiraConnector on the test policy (built under `responses`: no request escapes)."""
    return JiraConnector(cloud_config(), policy())
