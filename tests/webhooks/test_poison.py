"""Poison pills and malformed events: one event whose evaluation never finishes, or whose
payload cannot be read, becomes a dead letter alone; its ticket's other events and every other
ticket are evaluated."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pytest

from connectors.base import PayloadInvalid
from tests.webhooks.conftest import FakeClock
from tests.webhooks.fakes import FakeConnector
from tests.webhooks.test_worker import make_worker, policy, put  # noqa: F401 (fixture)
from tiering.models import Ticket
from tiering.policy import Policy
from webhooks.inbox.schema import UNFINISHED_ERROR
from webhooks.inbox.store import Inbox


class _Crash(BaseException):
    """Stands for the process dying (or freezing and being restarted) mid-evaluation: nothing
    after it runs, so the claim is left unfinished until its lease expires."""


@dataclass
class PoisonConnector(FakeConnector):
    """Crashes the evaluation of any group that holds a payload marked `poison`, and refuses
    a payload marked `malformed` as a connector does a signed body of the wrong shape."""

    def current_ticket(
        self,
        payloads: Sequence[Mapping[str, Any]],
        *,
        fresh: bool = False,
        last_note_key: str | None = None,
    ) -> Ticket:
        if any(p.get("malformed") for p in payloads if p is payloads[-1]):
            super().current_ticket(payloads, fresh=fresh, last_note_key=last_note_key)
            raise PayloadInvalid("issue.fields.labels: expected a list, got str")
        ticket = super().current_ticket(payloads, fresh=fresh, last_note_key=last_note_key)
        if any(p.get("poison") for p in payloads):
            raise _Crash
        return ticket


def _enqueue(inbox: Inbox, delivery: str, ticket: str, seq: int, **extra: Any) -> None:
    from connectors.base import Envelope

    inbox.enqueue(
        Envelope(vendor="jira", event_type="jira:issue_updated", handled=True, ticket=ticket,
                 delivery_id=delivery, actor="agent"),
        {"ticket": ticket, "seq": seq, "labels": [], **extra},
    )


def _run_with_crashes(inbox: Inbox, clock: FakeClock, policy: Policy,  # noqa: F811
                      connector: FakeConnector, *, max_attempts: int) -> int:
    """Drain like a service that restarts after each crash; return the crashes seen."""
    crashes = 0
    for _ in range(200):  # bounded: far more restarts than the test needs
        worker = make_worker(inbox, policy, connector, max_attempts=max_attempts)
        try:
            worker.drain()
            return crashes
        except _Crash:
            crashes += 1
            clock.advance(61)  # the lease (60 s) of the dead process expires
    raise AssertionError("the poison pill was never dead-lettered")


@pytest.mark.parametrize("max_attempts", [3, 8])
def test_poison_pill_is_dead_lettered_alone(inbox: Inbox, clock: FakeClock,
                                            policy: Policy, max_attempts: int) -> None:  # noqa: F811
    """The newest of 22 events crashes every evaluation: after MAX_ATTEMPTS unfinished claims
    it alone is dead-lettered ("evaluation did not finish"); the 21 others and another ticket
    are evaluated."""
    connector = PoisonConnector()
    for i in range(21):
        _enqueue(inbox, f"good-{i}", "T-1", i)
    _enqueue(inbox, "poison", "T-1", 99, poison=True)
    _enqueue(inbox, "other", "T-2", 1)
    crashes = _run_with_crashes(inbox, clock, policy, connector, max_attempts=max_attempts)
    assert crashes == max_attempts
    assert inbox.counts() == {"done": 22, "dead": 1}
    (dead,) = inbox.dead_letters()
    assert dead.delivery_id == "poison"
    assert dead.last_error == UNFINISHED_ERROR.format(claims=max_attempts)
    assert dead.last_error.startswith("evaluation did not finish")
    assert {e.delivery_id for e in inbox.events_of("jira", "T-2")} == {"other"}
    assert all(e.status == "done" for e in inbox.events_of("jira", "T-2"))


def test_single_crash_still_coalesces(inbox: Inbox, clock: FakeClock,
                                      policy: Policy) -> None:  # noqa: F811
    """One crash (a deploy, an OOM kill) does not split a ticket's events: the next claim
    still covers them all in one evaluation."""
    connector = PoisonConnector()
    for i in range(3):
        _enqueue(inbox, f"d{i}", "T-1", i)
    claim = inbox.claim(lease_seconds=60, max_unfinished=8)
    assert claim is not None and len(claim.events) == 3  # then the process dies
    clock.advance(61)
    make_worker(inbox, policy, connector).drain()
    assert [[p["seq"] for p in c.payloads] for c in connector.current_calls] == [[0, 1, 2]]
    assert inbox.counts() == {"done": 3}


def test_malformed_newest_event_is_dead_lettered_alone(inbox: Inbox,
                                                       policy: Policy) -> None:  # noqa: F811
    """A malformed signed event that is the newest of 22 becomes the only dead letter; the 21
    well-formed events are decided on in one evaluation."""
    connector = PoisonConnector()
    for i in range(21):
        _enqueue(inbox, f"good-{i}", "T-1", i)
    _enqueue(inbox, "bad", "T-1", 99, malformed=True)
    make_worker(inbox, policy, connector).drain()
    assert inbox.counts() == {"done": 21, "dead": 1}
    (dead,) = inbox.dead_letters()
    assert (dead.delivery_id, dead.last_error) == (
        "bad", "PayloadInvalid: issue.fields.labels: expected a list, got str")
    # the group, the bad event alone, then the 21 good ones decided together
    assert [len(c.payloads) for c in connector.current_calls] == [22, 1, 21]
    assert len(connector.applied) == 1


def test_lone_malformed_event_is_dead_lettered(inbox: Inbox, policy: Policy) -> None:  # noqa: F811
    """A malformed event on its own is a dead letter at once, as before."""
    connector = PoisonConnector()
    _enqueue(inbox, "bad", "T-1", 1, malformed=True)
    make_worker(inbox, policy, connector).drain()
    assert inbox.counts() == {"dead": 1}
