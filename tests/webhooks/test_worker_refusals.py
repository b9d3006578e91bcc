"""Configuration refusals in the worker: a dead letter at once that names the fix, counted by
reason; a bad credential pauses the vendor, keeps the events and is logged once a minute."""

from __future__ import annotations

from typing import Any

import pytest

from connectors.base import ConfigurationRejected, CredentialsRejected
from tests.webhooks.conftest import FakeClock
from tests.webhooks.fakes import FakeConnector
from tests.webhooks.test_worker import make_worker, put
from tests.webhooks.test_worker import policy as policy
from tiering.policy import Policy
from webhooks import worker as worker_module
from webhooks.inbox.schema import CREDENTIALS_PAUSE_PREFIX
from webhooks.inbox.store import Inbox
from webhooks.logging import LogThrottle
from webhooks.worker import CREDENTIALS_PAUSE


def refusals(worker: Any, vendor: str, reason: str) -> float:
    value = worker.metrics.registry.get_sample_value(
        "tierdesk_configuration_refusals_total", {"vendor": vendor, "reason": reason}
    )
    return float(value or 0.0)


@pytest.mark.parametrize(
    ("reason", "fix"),
    [
        # a target that does not exist at the vendor
        ("unknown-target", "targets.L2.zendesk.group_id: Zendesk has no group 999"),
        # a permission the bot lacks
        ("permission", "TIERDESK_JIRA_EMAIL: tierdesk's Jira account lacks a permission"),
        # a comment restriction that names a role the bot is not in
        ("comment-visibility", "TIERDESK_JIRA_COMMENT_VISIBILITY=role:Nobody: Jira refuses"),
    ],
)
def test_configuration_refusal_is_a_dead_letter_at_once(
    inbox: Inbox, policy: Policy, reason: str, fix: str
) -> None:
    """One attempt, no retry: the dead letter's message starts with the key or setting to fix,
    and /metrics counts the refusal by reason."""
    fake = FakeConnector(
        errors=[ConfigurationRejected("Jira PUT ...: rejected (400)", reason=reason, fix=fix,
                                      status=400)]
    )
    put(inbox, "d1")
    worker = make_worker(inbox, policy, fake)
    worker.drain()
    [letter] = inbox.dead_letters()
    assert letter.attempts == 1
    assert letter.last_error.startswith(f"ConfigurationRejected (HTTP 400): {fix}")
    assert "[Jira PUT ...: rejected (400)]" in letter.last_error
    assert refusals(worker, "jira", reason) == 1.0


def test_bad_credentials_pause_the_vendor_and_keep_the_events(
    inbox: Inbox, policy: Policy, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A 401 hands the ticket back untouched, pauses the vendor for a minute (the inbox says why,
    as /readyz shows it), logs once per pause, and the events are processed once it works."""
    logged: list[tuple[str, dict[str, Any]]] = []
    real_log = worker_module.log

    def spy(event: str, **fields: Any) -> None:
        logged.append((event, fields))
        real_log(event, **fields)

    monkeypatch.setattr(worker_module, "log", spy)
    fix = "TIERDESK_JIRA_EMAIL / TIERDESK_JIRA_API_TOKEN: Jira does not accept these credentials"
    fake = FakeConnector(
        errors=[CredentialsRejected("Jira GET ...: rejected (401)", fix=fix),
                CredentialsRejected("Jira GET ...: rejected (401)", fix=fix)]
    )
    put(inbox, "d1", ticket="T-1")
    put(inbox, "d2", ticket="T-2")
    worker = make_worker(inbox, policy, fake)
    worker.drain()
    assert inbox.dead_letters() == []
    assert inbox.counts() == {"pending": 2}
    until, reason = inbox.pauses()["jira"]
    assert until == pytest.approx(clock.now + CREDENTIALS_PAUSE)
    assert reason == f"{CREDENTIALS_PAUSE_PREFIX}: {fix}"
    assert worker.drain() == 0  # paused: nothing claimed, nothing sent
    assert len(fake.applied) == 0
    clock.advance(CREDENTIALS_PAUSE + 1)
    worker.drain()  # a new minute: the second refusal, paused again, one more line
    clock.advance(CREDENTIALS_PAUSE + 1)
    worker.drain()  # the credentials work now
    assert inbox.counts() == {"done": 2}
    assert [e for e, _ in logged].count("vendor paused: credentials rejected") == 2
    assert refusals(worker, "jira", "credentials") == 2.0


@pytest.mark.parametrize(
    ("offsets", "said"),
    [
        # the first refusal is said, the next ones within the minute are not
        ((0.0, 1.0, 59.0), [True, False, False]),
        # a minute later it is said again
        ((0.0, 60.0, 61.0), [True, True, False]),
    ],
)
def test_throttle_says_a_thing_once_per_window(
    offsets: tuple[float, ...], said: list[bool]
) -> None:
    """LogThrottle.first_in (webhooks/logging.py): once per window and subject, whatever the
    number of threads."""
    clock = FakeClock()
    throttle = LogThrottle(clock)
    out = []
    start = clock.now
    for offset in offsets:
        clock.now = start + offset
        out.append(throttle.first_in("jira: credentials", 60.0))
    assert out == said
    assert throttle.first_in("zendesk: credentials", 60.0)
