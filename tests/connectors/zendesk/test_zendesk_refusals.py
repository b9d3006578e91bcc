"""Zendesk's refusals of a decision's write: configuration dead letters naming the policy key or
setting (unknown group, assignee outside the group, credentials, role), others plain."""

from __future__ import annotations

from typing import Any

import pytest
import responses

from connectors.base import ConfigurationRejected, CredentialsRejected, VendorRejected
from connectors.zendesk import ZendeskConnector
from tests.connectors.zendesk.conftest import BASE, NOW, decider, trigger_body
from tiering import decide
from tiering.policy import Policy


def run(connector: ZendeskConnector, policy: Policy) -> None:
    """Decide on a new ticket (no group yet: L1, group 100) and apply the decision."""
    ticket = connector.current_ticket([trigger_body(group_id="")])
    connector.apply(ticket, decide(ticket, policy, now=NOW), decide=decider(policy))

CASES = [
    # a wrong token or email
    (401, {"error": "Couldn't authenticate you"}, CredentialsRejected, "credentials",
     "TIERDESK_ZENDESK_EMAIL / TIERDESK_ZENDESK_API_TOKEN: "),
    # the bot's role may not update the ticket
    (403, {"error": "Forbidden", "description": "You do not have access to this page."},
     ConfigurationRejected, "permission", "TIERDESK_ZENDESK_EMAIL: "),
    # the target's group does not exist
    (422, {"error": "RecordInvalid", "description": "Record validation errors",
           "details": {"group": [{"description": "Group: is invalid"}]}},
     ConfigurationRejected, "unknown-target", "targets.L1.zendesk.group_id: "),
    # an assignee outside the group (facetoe/zenpy #628)
    (422, {"error": "RecordInvalid", "description": "Record validation errors",
           "details": {"assignee": [{"description": "Assignee: is not a member of the group"}]}},
     ConfigurationRejected, "unknown-target", "targets.L1.zendesk.assignee_id: "),
]


@pytest.mark.parametrize(("status", "answer", "kind", "reason", "fix"), CASES)
def test_refusal_names_what_to_fix(status: int, answer: dict[str, Any], kind: type[Exception],
                                   reason: str, fix: str, connector: ZendeskConnector,
                                   policy: Policy, rsps: responses.RequestsMock) -> None:
    """One PUT, refused: the error names the key or setting to fix and carries Zendesk's words."""
    rsps.put(f"{BASE}/api/v2/tickets/42.json", status=status, json=answer)
    with pytest.raises(kind) as err:
        run(connector, policy)
    assert isinstance(err.value, ConfigurationRejected)
    assert err.value.reason == reason
    assert err.value.fix.startswith(fix), err.value.fix
    assert str(err.value).startswith(fix)
    assert len(rsps.calls) == 1
    assert rsps.calls[0].request.method == "PUT"


def test_other_refusals_stay_plain(connector: ZendeskConnector, policy: Policy,
                                   rsps: responses.RequestsMock) -> None:
    """A 422 about something tierdesk does not configure stays a plain VendorRejected."""
    rsps.put(f"{BASE}/api/v2/tickets/42.json", status=422,
             json={"error": "RecordInvalid", "description": "Record validation errors",
                   "details": {"status": [{"description": "Status: closed prevents update"}]}})
    with pytest.raises(VendorRejected) as err:
        run(connector, policy)
    assert not isinstance(err.value, ConfigurationRejected)
    assert "closed prevents" in str(err.value)
