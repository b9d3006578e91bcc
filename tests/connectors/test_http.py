"""The transport on a vendor's limit (connectors/http.py LimitAdapter over
connectors/vendor_limit.py): Retry-After closes it before the next request starts, nothing is
sent while it is closed, and at most `concurrency` requests are on the wire."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
import requests
import responses

from connectors.base import RateLimited
from connectors.http import retry_after_seconds, session_on
from connectors.jira import JiraConnector
from connectors.vendor_limit import VendorLimit, VendorPaused
from tests.connectors.jira.conftest import BASE, cloud_config, load, policy
from tests.connectors.jira.test_jira_apply import NOW
from tests.webhooks.conftest import FakeClock
from tiering import decide

URL = "https://vendor.example/api/thing"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(1000.0)


@pytest.fixture
def rsps() -> Any:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


@pytest.mark.parametrize(
    ("status", "headers", "closed_for"),
    [
        (429, {"Retry-After": "7"}, 7.0),
        (429, {}, 30.0),  # no Retry-After: the vendor's default pause
        (503, {"Retry-After": "4"}, 4.0),
        (503, {}, 0.0),  # an outage without Retry-After: the worker's backoff decides
        (500, {"Retry-After": "9"}, 0.0),
        (200, {}, 0.0),
        (409, {}, 0.0),
    ],
)
def test_answers_close_the_line_as_the_vendor_asks(
    rsps: responses.RequestsMock, clock: FakeClock, status: int, headers: dict[str, str],
    closed_for: float,
) -> None:
    limit = VendorLimit("jira", default_pause=30.0, clock=clock)
    rsps.get(URL, status=status, headers=headers)
    assert session_on(limit).get(URL).status_code == status
    assert limit.closed_for() == pytest.approx(closed_for)


def test_nothing_is_sent_while_closed_and_everything_after(
    rsps: responses.RequestsMock, clock: FakeClock
) -> None:
    """After a 429 with Retry-After: 5, the next request raises VendorPaused (a RateLimited with
    the time left) without reaching the vendor; once 5 s have passed it goes out."""
    limit = VendorLimit("zendesk", clock=clock)
    session = session_on(limit)
    rsps.get(URL, status=429, headers={"Retry-After": "5"})
    session.get(URL)
    clock.now += 2
    with pytest.raises(VendorPaused) as info:
        session.get(URL)
    assert isinstance(info.value, RateLimited) and info.value.retry_after == pytest.approx(3)
    assert "zendesk asked to wait" in str(info.value)
    assert len(rsps.calls) == 1
    clock.now += 3
    rsps.replace(responses.GET, URL, status=200)
    assert session.get(URL).status_code == 200
    assert len(rsps.calls) == 2


def test_a_longer_pause_is_never_shortened(clock: FakeClock) -> None:
    limit = VendorLimit("jira", clock=clock)
    limit.close(60, reason="429")
    limit.close(5, reason="429")
    assert limit.closed_for() == pytest.approx(60)


def test_http_date_retry_after_is_honoured(rsps: responses.RequestsMock) -> None:
    """Retry-After as an HTTP date (RFC 9110) closes the limit until then."""
    when = time.time() + 90
    value = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(when))
    limit = VendorLimit("jira")
    rsps.get(URL, status=429, headers={"Retry-After": value})
    session_on(limit).get(URL)
    expected = retry_after_seconds(value) or 0.0
    assert 85 < limit.closed_for() <= expected + 1


@pytest.mark.parametrize("concurrency", [1, 2])
def test_at_most_concurrency_requests_are_in_flight(
    rsps: responses.RequestsMock, concurrency: int
) -> None:
    """Six threads on one limit: the vendor never sees more than `concurrency` at once."""
    limit = VendorLimit("jira", concurrency=concurrency)
    session = session_on(limit)
    lock = threading.Lock()
    in_flight = [0]
    peak = [0]

    def slow(_request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
        with lock:
            in_flight[0] += 1
            peak[0] = max(peak[0], in_flight[0])
        time.sleep(0.05)
        with lock:
            in_flight[0] -= 1
        return 200, {}, "{}"

    rsps.add_callback(responses.GET, URL, callback=slow)
    threads = [threading.Thread(target=session.get, args=(URL,)) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(rsps.calls) == 6
    assert peak[0] == concurrency


def test_a_refusal_stops_a_sibling_thread_before_it_sends(
    rsps: responses.RequestsMock,
) -> None:
    """With concurrency 1, a thread waiting for the limit while a 429 is on its way back is
    refused by it: the vendor sees nothing after its 429 (the Retry-After referee's
    case in tests/e2e/test_faults.py)."""
    limit = VendorLimit("jira", concurrency=1)
    session = session_on(limit)
    first_sent = threading.Event()

    def refuse(_request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
        first_sent.set()
        time.sleep(0.05)  # the sibling queues on the limit meanwhile
        return 429, {"Retry-After": "30"}, "{}"

    rsps.add_callback(responses.GET, URL, callback=refuse)
    outcome: list[BaseException | int] = []

    def sibling() -> None:
        first_sent.wait()
        try:
            outcome.append(session.get(URL).status_code)
        except VendorPaused as exc:
            outcome.append(exc)

    t = threading.Thread(target=sibling)
    t.start()
    assert session.get(URL).status_code == 429
    t.join()
    assert len(rsps.calls) == 1
    assert isinstance(outcome[0], VendorPaused)


def test_concurrency_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="concurrency must be at least 1"):
        VendorLimit("jira", concurrency=0)


def test_jira_connector_through_the_line(rsps: responses.RequestsMock) -> None:
    """The real jira library on a limit: its 429 on the PUT is RateLimited as before, and the
    next decision's read is refused by the limit without a request."""
    limit = VendorLimit("jira")
    connector = JiraConnector(cloud_config(), policy(), session=session_on(limit))
    issue_url = f"{BASE}/rest/api/2/issue/TES-41"
    issue = load("jira_issue_created__cloud_many_fields.json")["issue"]
    rsps.get(issue_url, json={**issue, "key": "TES-41"})
    rsps.put(issue_url, status=429, headers={"Retry-After": "20"})
    ticket = connector.current_ticket([load("comment_created__cloud_mention_user.json")])
    decision = decide(ticket, policy(), now=NOW)
    with pytest.raises(RateLimited) as info:
        connector.apply(ticket, decision, decide=lambda t: decision)
    assert not isinstance(info.value, VendorPaused) and info.value.retry_after == 20
    with pytest.raises(VendorPaused):
        connector.current_ticket([load("comment_created__cloud_mention_user.json")])
    assert [c.request.method for c in rsps.calls] == ["GET", "PUT"]
