"""`tierdesk doctor` on the public reply trigger (connectors/zendesk/reply_trigger.py): missing,
inactive, calling another webhook or sending a stale body, each fails with the fix."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
import requests

from connectors.zendesk.reply_trigger import REPLY_TRIGGER_TITLE
from sandbox.server import SandboxHandle
from sandbox.state import default_seed_text
from webhooks.cli.doctor import collect

from .test_doctor import env, example_policy, failed, installed

ADMIN = ("bot@tierdesk.example/token", "sandbox-token")


def _reply_trigger(sb: SandboxHandle) -> dict[str, Any]:
    found = requests.get(f"{sb.zendesk_url}/api/v2/triggers/search", auth=ADMIN, timeout=5,
                         params={"query": REPLY_TRIGGER_TITLE}).json()["triggers"]
    [trigger] = [t for t in found if t["title"] == REPLY_TRIGGER_TITLE]
    return dict(trigger)


def _put(sb: SandboxHandle, trigger: dict[str, Any], **changes: Any) -> None:
    answer = requests.put(f"{sb.zendesk_url}/api/v2/triggers/{trigger['id']}", auth=ADMIN,
                          timeout=5, json={"trigger": changes})
    assert answer.status_code == 200, answer.text


def deleted(sb: SandboxHandle) -> None:
    trigger = _reply_trigger(sb)
    answer = requests.delete(f"{sb.zendesk_url}/api/v2/triggers/{trigger['id']}", auth=ADMIN,
                             timeout=5)
    assert answer.status_code == 204, answer.text


def inactive(sb: SandboxHandle) -> None:
    _put(sb, _reply_trigger(sb), active=False)


def other_webhook(sb: SandboxHandle) -> None:
    made = requests.post(f"{sb.zendesk_url}/api/v2/webhooks", auth=ADMIN, timeout=5, json={
        "webhook": {"name": "someone else", "endpoint": "https://elsewhere.example/hook",
                    "http_method": "POST", "request_format": "json", "status": "active",
                    "subscriptions": ["conditional_ticket_events"]}})
    assert made.status_code == 201, made.text
    trigger = _reply_trigger(sb)
    body = trigger["actions"][0]["value"][1]
    _put(sb, trigger, actions=[{"field": "notification_webhook",
                                "value": [made.json()["webhook"]["id"], body]}])


def stale_body(sb: SandboxHandle) -> None:
    trigger = _reply_trigger(sb)
    hook = trigger["actions"][0]["value"][0]
    # An older body: the main trigger's template, without the reply marker.
    body = json.loads(trigger["actions"][0]["value"][1])
    del body["public_reply_at"]
    _put(sb, trigger, actions=[{"field": "notification_webhook",
                                "value": [hook, json.dumps(body)]}])


def wrong_conditions(sb: SandboxHandle) -> None:
    trigger = _reply_trigger(sb)
    conditions = trigger["conditions"]
    conditions["all"] = [c for c in conditions["all"] if c["field"] != "comment_is_public"]
    _put(sb, trigger, conditions=conditions)


CASES: list[tuple[str, Callable[[SandboxHandle], None], str, str]] = [
    # no reply trigger at all: first_response can never stop
    ("missing", deleted, "no trigger titled", "tierdesk install zendesk"),
    # deactivated by hand in Admin Center
    ("inactive", inactive, "inactive", "activate it"),
    # pointed at some other webhook
    ("other-webhook", other_webhook, "not tierdesk's webhook", "tierdesk install zendesk"),
    # installed by a version without the reply marker
    ("stale-body", stale_body, "differs", "tierdesk install zendesk"),
    # a condition removed by hand (it would fire on internal notes)
    ("conditions", wrong_conditions, "conditions differ", "tierdesk install zendesk"),
]


@pytest.mark.parametrize(("case", "mutate", "detail", "fix"), CASES, ids=[c[0] for c in CASES])
def test_a_broken_reply_trigger_fails_its_check_with_the_fix(
    case: str, mutate: Callable[[SandboxHandle], None], detail: str, fix: str
) -> None:
    """Only the reply trigger check fails, saying what is wrong and what to run."""
    seed = json.loads(default_seed_text())
    with installed(seed) as (sb, receiver, jira_secret, zd_secret):
        mutate(sb)
        checks = collect(env(sb, receiver, jira_secret, zd_secret), example_policy(),
                         public_url=receiver.url)
    bad = failed(checks)
    assert set(bad) == {"zendesk reply trigger"}, bad
    assert detail in bad["zendesk reply trigger"].detail, bad["zendesk reply trigger"]
    assert fix in bad["zendesk reply trigger"].fix, bad["zendesk reply trigger"]
