"""Jira's refusals of a decision's write, as the worker gets them: which become configuration
dead letters naming the policy key or setting, which pause the vendor, which stay plain."""

from __future__ import annotations

from typing import Any

import pytest
import responses

from connectors.base import ConfigurationRejected, CredentialsRejected, VendorRejected
from connectors.jira import JiraConnector
from tests.connectors.jira.conftest import BASE
from tests.connectors.jira.test_jira_apply import payload, run

FIRST_TRIAGE = "jira_issue_created__cloud_many_fields.json"  # decides L1 -> acc-l1 on KT-22

CASES = [
    # a wrong API token: every request fails, the worker pauses Jira
    (401, {"errorMessages": ["Client must be authenticated to access this resource."],
           "errors": {}}, CredentialsRejected, "credentials", "TIERDESK_JIRA_EMAIL / "),
    # a permission the bot lacks (here: notifyUsers on a quiet edit is handled elsewhere)
    (403, {"errorMessages": ["You do not have the permission to see the specified issue."],
           "errors": {}}, ConfigurationRejected, "permission", "TIERDESK_JIRA_EMAIL: "),
    # the target's assignee cannot be assigned (Jira's own text)
    (400, {"errorMessages": [], "errors": {"assignee": "User 'acc-l1' cannot be assigned issues."}},
     ConfigurationRejected, "unknown-target", "targets.L1.jira.assignee: "),
    # a field tierdesk writes refused as 'not on the screen': the bot lacks Edit issues
    (400, {"errorMessages": [], "errors": {"labels": "Field 'labels' cannot be set."
                                           " It is not on the appropriate screen, or unknown."}},
     ConfigurationRejected, "permission", "TIERDESK_JIRA_EMAIL: Jira will not let"),
    # a policy field refused by the edit (tierdesk names the policy key of that id)
    (400, {"errorMessages": [], "errors": {"customfield_10067": "Field 'customfield_10067'"
                                           " cannot be set. It is not on the appropriate"
                                           " screen, or unknown."}},
     ConfigurationRejected, "field", "fields.steps.jira: "),
    # the comment restriction names a role the bot is not in
    (400, {"errorMessages": [], "errors": {
        "commentLevel": "You are currently not a member of the project role: Administrators."}},
     ConfigurationRejected, "comment-visibility", "TIERDESK_JIRA_COMMENT_VISIBILITY="),
]


@pytest.mark.parametrize(("status", "answer", "kind", "reason", "fix"), CASES)
def test_refusal_names_what_to_fix(status: int, answer: dict[str, Any], kind: type[Exception],
                                   reason: str, fix: str, connector: JiraConnector,
                                   rsps: responses.RequestsMock) -> None:
    """One PUT, refused: the error says which key or setting to change, with Jira's words."""
    rsps.put(f"{BASE}/rest/api/2/issue/KT-22", status=status, json=answer)
    with pytest.raises(kind) as err:
        run(connector, payload(FIRST_TRIAGE))
    assert isinstance(err.value, ConfigurationRejected)
    assert err.value.reason == reason
    assert err.value.fix.startswith(fix), err.value.fix
    assert str(err.value).startswith(fix)
    words = (answer["errorMessages"] or list(answer["errors"].values()))[0]
    assert words in str(err.value)
    assert len(rsps.calls) == 1
    assert rsps.calls[0].request.method == "PUT"


def test_other_refusals_stay_plain(connector: JiraConnector, rsps: responses.RequestsMock) -> None:
    """A 400 tierdesk cannot trace to its configuration is a plain VendorRejected."""
    rsps.put(f"{BASE}/rest/api/2/issue/KT-22", status=400,
             json={"errorMessages": ["Issue is being archived."], "errors": {}})
    with pytest.raises(VendorRejected) as err:
        run(connector, payload(FIRST_TRIAGE))
    assert not isinstance(err.value, ConfigurationRejected)
    assert "Issue is being archived." in str(err.value)
    assert len(rsps.calls) == 1
