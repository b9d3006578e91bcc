"""A vendor's pause across processes, on SQLite and PostgreSQL: the limit of one process
(connectors/vendor_limit.py) records a refusal in the inbox, and another process's limit takes it
up, stopping its HTTP requests and its worker mid-ticket; nothing is lost meanwhile."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import responses

from connectors.http import session_on
from connectors.vendor_limit import VendorLimit, VendorPaused
from tests.webhooks.conftest import FakeClock
from tests.webhooks.fakes import FakeConnector, fake_decide
from tests.webhooks.test_worker import policy as policy
from tests.webhooks.test_worker import put
from tiering.policy import Policy
from webhooks.inbox.store import Inbox
from webhooks.worker import Worker

ROOT = Path(__file__).resolve().parents[2]
URL = "https://vendor.example/rest/api/2/issue/A-1"

#: Another replica: its own inbox connection and its own limit, answered 429 by the vendor.
OTHER_REPLICA = """
import sys
from connectors.vendor_limit import VendorLimit
from webhooks.inbox.store import Inbox

url, now, retry_after = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
box = Inbox.connect(url, clock=lambda: now)
VendorLimit("jira", record=box, clock=lambda: now).note_answer(429, retry_after)
box.close()
"""


def other_replica_is_refused(db_url: str, now: float, retry_after: float) -> None:
    """Run another OS process that gets a 429 from Jira at `now` (its clock)."""
    subprocess.run([sys.executable, "-c", OTHER_REPLICA, db_url, repr(now), repr(retry_after)],
                   cwd=ROOT, check=True, timeout=60, capture_output=True)


@pytest.fixture
def rsps() -> Any:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


def test_a_pause_another_process_recorded_stops_this_ones_requests(
    db_url: str, inbox: Inbox, clock: FakeClock, rsps: responses.RequestsMock
) -> None:
    """Process A's 429 is in the inbox; process B's session sends nothing until it has passed,
    and the tickets B would claim wait too."""
    limit = VendorLimit("jira", record=inbox, clock=clock)
    session = session_on(limit)
    rsps.get(URL, json={"key": "A-1"})
    assert session.get(URL).status_code == 200  # B's first look: nothing recorded
    other_replica_is_refused(db_url, clock.now, 30.0)
    assert inbox.paused_until("jira") == pytest.approx(clock.now + 30)
    clock.advance(1.0)  # B's next look at the record
    with pytest.raises(VendorPaused) as info:
        session.get(URL)
    assert info.value.retry_after == pytest.approx(29)
    put(inbox, "d1", "A-1")
    assert inbox.claim(lease_seconds=60) is None  # B's workers claim nothing of Jira either
    assert len(rsps.calls) == 1
    clock.advance(29)
    assert session.get(URL).status_code == 200
    assert len(rsps.calls) == 2


def test_this_processes_429_reaches_the_other_processes(
    db_url: str, inbox: Inbox, clock: FakeClock, rsps: responses.RequestsMock
) -> None:
    """B's transport sees the 429 and records it at once (before any worker code runs): another
    process's inbox claims no Jira ticket, and its limit takes the pause up."""
    limit = VendorLimit("jira", record=inbox, clock=clock)
    rsps.get(URL, status=429, headers={"Retry-After": "20"})
    assert session_on(limit).get(URL).status_code == 429
    other = Inbox.connect(db_url, clock=clock)
    try:
        put(other, "d1", "A-1")
        assert other.claim(lease_seconds=60) is None
        theirs = VendorLimit("jira", record=other, clock=clock)
        assert theirs.closed_for() == pytest.approx(20)
    finally:
        other.close()


def test_worker_mid_ticket_hands_back_when_another_process_is_refused(
    db_url: str, inbox: Inbox, clock: FakeClock, policy: Policy
) -> None:
    """B has claimed and read a ticket when replica A is answered 429: B takes the pause up
    before writing, writes nothing, hands the ticket back without an attempt, and applies it
    once the pause has passed."""

    class RefusedElsewhere(FakeConnector):
        def current_ticket(self, payloads, *, fresh=False, last_note_key=None):  # type: ignore[no-untyped-def]
            if not self.current_calls:
                other_replica_is_refused(db_url, clock.now, 30.0)
                clock.advance(1.0)  # the read took a second: the limit looks at the record
            return super().current_ticket(payloads, fresh=fresh, last_note_key=last_note_key)

    fake = RefusedElsewhere()
    worker = Worker(inbox=inbox, connectors={"jira": fake}, policy=policy, decide=fake_decide,
                    limits={"jira": VendorLimit("jira", record=inbox, clock=clock)})
    put(inbox, "d1", "A-1")
    assert worker.run_once()
    assert fake.applied == [] and inbox.counts() == {"pending": 1}
    assert worker.drain() == 0  # paused: nothing claimed
    clock.advance(30)
    assert worker.drain() == 1
    assert len(fake.applied) == 1 and inbox.counts() == {"done": 1}
    assert fake.current_calls[-1].fresh is False  # the hand-back counted no attempt
