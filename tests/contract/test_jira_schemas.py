"""Jira request bodies against platform-openapi-v3.json: the kept schemas, the checker, the sandbox.

Every Jira unit test's `responses` mock also checks each body it saw on teardown
(tests/connectors/jira/conftest.py `rsps`), so every request tierdesk builds there is validated.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import requests
import responses

from sandbox.jira import contract
from sandbox.server import SandboxHandle
from tests.connectors.jira.conftest import assert_bodies_match_schema
from tests.shared_vendor import VENDOR

SPEC = VENDOR / "jira" / "platform-openapi-v3.json"


def test_kept_schemas_are_the_published_ones() -> None:
    """The schemas the sandbox keeps are exactly those extracted from the shared description."""
    if not SPEC.is_file():
        pytest.skip(f"{SPEC} is not here: cannot compare the kept copy")
    spec = json.loads(SPEC.read_text(encoding="utf-8"))
    kept = json.loads((Path(contract.__file__).parent / contract.SCHEMA_FILE).read_text("utf-8"))
    assert kept == json.loads(json.dumps(contract.extract(spec)))


VALID = [
    # tierdesk's usual edit: labels, assignee by accountId, a restricted comment
    ("edit-issue", {"fields": {"assignee": {"accountId": "acc-l1"}},
                    "update": {"labels": [{"add": "tier-l1"}],
                               "comment": [{"add": {"body": "x", "visibility": {
                                   "type": "role", "value": "Administrators"}}}]}}),
    # unassign: accountId null, documented by assignIssue
    ("edit-issue", {"fields": {"assignee": {"accountId": None}}}),
    # JSM internal comment by property
    ("add-comment", {"body": "x", "properties": [{"key": "sd.public.comment",
                                                  "value": {"internal": True}}]}),
]

INVALID = [
    # a misspelt operation verb in update
    ("edit-issue", {"update": {"labels": [{"append": "x"}]}}, "update.labels.0"),
    # visibility type outside the enum
    ("edit-issue", {"update": {"comment": [{"add": {"body": "x", "visibility":
                                                    {"type": "team", "value": "A"}}}]}},
     "update.comment.0.add.visibility.type"),
    # a read-only comment property written
    ("add-comment", {"body": "x", "id": "10"}, "id"),
    # an accountId that is not a string
    ("edit-issue", {"fields": {"assignee": {"accountId": 7}}}, "fields.assignee.accountId"),
    # an entity property with an unknown member
    ("add-comment", {"body": "x", "properties": [{"key": "k", "val": 1}]}, "properties.0"),
]


@pytest.mark.parametrize(("operation", "body"), VALID)
def test_valid_bodies_pass(operation: str, body: dict[str, Any]) -> None:
    """Bodies of the shapes tierdesk sends have no schema violation."""
    assert contract.check(operation, body) == []


@pytest.mark.parametrize(("operation", "body", "where"), INVALID)
def test_invalid_bodies_are_named(operation: str, body: dict[str, Any], where: str) -> None:
    """A malformed body is refused with the path of the offending member."""
    problems = contract.check(operation, body)
    assert problems and any(p.startswith(where + ":") for p in problems), problems


def test_unmapped_request_is_an_error() -> None:
    """A body sent to a path no one has mapped to an operation (or to 'no schema') fails."""
    with pytest.raises(contract.Unmapped):
        contract.operation_for("POST", "/rest/api/2/issue/SUP-1/worklog")
    assert contract.operation_for("POST", "/rest/webhooks/1.0/webhook") is None


def test_mock_teardown_check_catches_a_bad_body() -> None:
    """The `rsps` teardown check fails a test whose code sent a malformed body."""
    with responses.RequestsMock() as mock:
        mock.add(responses.PUT, "https://x.example/rest/api/2/issue/SUP-1", status=204)
        requests.put("https://x.example/rest/api/2/issue/SUP-1",
                     json={"update": {"labels": [{"append": "x"}]}}, timeout=5)
        with pytest.raises(AssertionError, match=r"update\.labels\.0"):
            assert_bodies_match_schema(mock)
        assert len(mock.calls) == 1


def test_sandbox_refuses_a_body_the_schema_refuses(sandbox: SandboxHandle) -> None:
    """The Jira sandbox answers 400 naming the schema problem, and the issue is unchanged."""
    url = f"{sandbox.jira_url}/rest/api/2/issue/SUP-1"
    auth = ("bot@tierdesk.example", "sandbox-token")
    answer = requests.put(url, json={"update": {"labels": [{"append": "x"}]}}, auth=auth,
                          timeout=5)
    assert answer.status_code == 400
    text = json.dumps(answer.json())
    assert "edit-issue schema" in text and "update.labels.0" in text
    issue = requests.get(url, params={"fields": "labels"}, auth=auth, timeout=5).json()
    assert issue["fields"]["labels"] == []
    ok = requests.put(url, json={"update": {"labels": [{"add": "x"}]}}, auth=auth, timeout=5)
    assert ok.status_code == 204
