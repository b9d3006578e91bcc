"""webhooks/notify.py against a local HTTP server on 127.0.0.1 and the inbox outbox (SQLite and
PostgreSQL): signed Slack-compatible posts, Retry-After, retries, refusals, sent once, the
at-least-once edge after a crash, and the start-up check for missing secrets."""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import requests
import yaml

from connectors.retry import RetryStrategy
from tests.webhooks.conftest import FakeClock
from tiering import Policy, load_policy
from webhooks.defaults import default_policy_text
from webhooks.inbox.records import Notice, SlaWrite
from webhooks.inbox.store import Inbox
from webhooks.notify import (
    IDEMPOTENCY_HEADER,
    NOTICE_KEY_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    NotifyConfigError,
    NotifySecrets,
    NotifySender,
    signature,
    verify,
)
from webhooks.settings import load_settings

SECRET = "s3cret-for-tests"


@dataclass
class Hook:
    """A local endpoint: records each POST, answers from `script` ((status, headers)) first."""

    url: str = ""
    calls: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    script: list[tuple[int, dict[str, str]]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


@contextmanager
def hook() -> Iterator[Hook]:
    h = Hook()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            with h.lock:
                h.calls.append((dict(self.headers.items()), body))
                status, headers = h.script.pop(0) if h.script else (200, {})
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    h.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/sla"
    try:
        yield h
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture
def endpoint() -> Iterator[Hook]:
    with hook() as h:
        yield h


def add_notice(inbox: Inbox, url: str, key: str = "jira|SUP-1|resolution@1:breach",
               text: str = "SLA breach: ticket SUP-1") -> None:
    inbox.record_sla("jira", "SUP-1", SlaWrite(notices=(
        Notice(notice_key=key, url=url, body={"text": text}),
    )))


def sender(inbox: Inbox, url: str, **kw: Any) -> NotifySender:
    return NotifySender(inbox, NotifySecrets(by_url={url: SECRET}), fraction=lambda: 0.0,
                        strategy=RetryStrategy(initial=1.0, maximum=60.0), **kw)


def test_signed_slack_compatible_post(inbox: Inbox, endpoint: Hook, clock: FakeClock) -> None:
    add_notice(inbox, endpoint.url, text="SLA breach: <b> & co")
    result = sender(inbox, endpoint.url).send_due()
    assert result.sent == ("jira|SUP-1|resolution@1:breach",)
    ((headers, body),) = endpoint.calls
    assert json.loads(body) == {"text": "SLA breach: <b> & co"}
    assert headers["Content-Type"] == "application/json"
    assert headers[TIMESTAMP_HEADER] == str(int(clock.now))
    assert verify(SECRET, headers[TIMESTAMP_HEADER], body, headers[SIGNATURE_HEADER])
    assert not verify("other", headers[TIMESTAMP_HEADER], body, headers[SIGNATURE_HEADER])
    assert headers[IDEMPOTENCY_HEADER] == headers[NOTICE_KEY_HEADER] == (
        "jira|SUP-1|resolution@1:breach")
    (row,) = inbox.notices_of("jira", "SUP-1")
    assert row.sent_at == clock.now and row.attempts == 1 and row.last_error is None
    # Sent once: later passes send nothing, however much time passes.
    clock.advance(3600)
    assert sender(inbox, endpoint.url).send_due().sent == ()
    assert len(endpoint.calls) == 1


def test_signature_scheme_is_documented_value() -> None:
    """HMAC-SHA256 over "<timestamp>." + body, hex, prefixed sha256= (admin guide)."""
    import hashlib
    import hmac
    expected = hmac.new(b"key", b'1700000000.{"text":"hi"}', hashlib.sha256).hexdigest()
    assert signature("key", 1700000000, b'{"text":"hi"}') == f"sha256={expected}"


def test_429_waits_for_retry_after(inbox: Inbox, endpoint: Hook, clock: FakeClock) -> None:
    endpoint.script = [(429, {"Retry-After": "30"})]
    add_notice(inbox, endpoint.url)
    s = sender(inbox, endpoint.url)
    assert s.send_due().retried == ("jira|SUP-1|resolution@1:breach",)
    (row,) = inbox.notices_of("jira", "SUP-1")
    # backoff after attempt 1 is 1 s; Retry-After asks for 30: 30 it is
    assert row.next_attempt_at == clock.now + 30 and row.attempts == 1
    assert row.last_error is not None and row.last_error.startswith("HTTP 429")
    clock.advance(29)
    assert s.send_due() == type(s.send_due())()  # not due yet: nothing claimed, nothing sent
    clock.advance(1)
    assert s.send_due().sent == ("jira|SUP-1|resolution@1:breach",)
    assert len(endpoint.calls) == 2


def test_500_then_success_backs_off(inbox: Inbox, endpoint: Hook, clock: FakeClock) -> None:
    endpoint.script = [(500, {}), (503, {}), (200, {})]
    add_notice(inbox, endpoint.url)
    s = sender(inbox, endpoint.url)
    assert s.send_due().retried
    assert inbox.notices_of("jira", "SUP-1")[0].next_attempt_at == clock.now + 1.0
    clock.advance(1)
    assert s.send_due().retried
    assert inbox.notices_of("jira", "SUP-1")[0].next_attempt_at == clock.now + 2.0
    clock.advance(2)
    assert s.send_due().sent
    (row,) = inbox.notices_of("jira", "SUP-1")
    assert row.attempts == 3 and row.sent_at is not None and row.last_error is None
    assert len(endpoint.calls) == 3


@pytest.mark.parametrize("status", [400, 401, 403, 404, 410])
def test_other_4xx_is_recorded_and_not_retried(inbox: Inbox, endpoint: Hook, clock: FakeClock,
                                              status: int) -> None:
    endpoint.script = [(status, {})]
    add_notice(inbox, endpoint.url)
    s = sender(inbox, endpoint.url)
    assert s.send_due().refused == ("jira|SUP-1|resolution@1:breach",)
    (row,) = inbox.notices_of("jira", "SUP-1")
    assert row.sent_at is None and math.isinf(row.next_attempt_at)
    assert row.last_error == f"refused: HTTP {status}: ok (not retried)"
    clock.advance(10**6)
    assert s.send_due().sent == () and len(endpoint.calls) == 1


@pytest.mark.parametrize("status", [408, 429])
def test_408_and_429_are_retried(inbox: Inbox, endpoint: Hook, status: int) -> None:
    endpoint.script = [(status, {})]
    add_notice(inbox, endpoint.url)
    assert sender(inbox, endpoint.url).send_due().retried


def test_gives_up_after_max_attempts(inbox: Inbox, endpoint: Hook, clock: FakeClock) -> None:
    endpoint.script = [(500, {})] * 3
    add_notice(inbox, endpoint.url)
    s = sender(inbox, endpoint.url, max_attempts=3)
    for _ in range(3):
        s.send_due()
        clock.advance(120)
    (row,) = inbox.notices_of("jira", "SUP-1")
    assert row.attempts == 3 and math.isinf(row.next_attempt_at)
    assert row.last_error is not None and row.last_error.startswith("gave up after 3 attempts")
    assert len(endpoint.calls) == 3


def test_network_error_is_retried(inbox: Inbox, clock: FakeClock) -> None:
    with hook() as gone:
        url = gone.url
    add_notice(inbox, url)  # nothing listens there any more
    s = sender(inbox, url, timeout=2.0)
    assert s.send_due().retried
    (row,) = inbox.notices_of("jira", "SUP-1")
    assert row.last_error is not None and "ConnectionError" in row.last_error


def test_crash_after_send_before_mark_resends_with_the_same_idempotency_key(
    inbox: Inbox, endpoint: Hook, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The documented at-least-once edge: the receiver got the notice, the process died before
    `sent_at` was written. After the claim's lease the notice goes again, with the same key."""
    add_notice(inbox, endpoint.url)
    crashing = sender(inbox, endpoint.url, lease=60)

    def die(row: Any) -> None:
        raise SystemExit("killed between send and mark")

    monkeypatch.setattr(crashing, "_mark_sent", die)
    with pytest.raises(SystemExit):
        crashing.send_due()
    assert len(endpoint.calls) == 1
    restarted = sender(inbox, endpoint.url, lease=60)
    assert restarted.send_due().sent == ()  # the dead sender's claim still holds
    clock.advance(60)
    assert restarted.send_due().sent == ("jira|SUP-1|resolution@1:breach",)
    first, second = endpoint.calls
    assert first[0][IDEMPOTENCY_HEADER] == second[0][IDEMPOTENCY_HEADER]
    assert first[1] == second[1]


def test_two_senders_never_send_one_row_twice(inbox: Inbox, endpoint: Hook) -> None:
    for i in range(20):
        add_notice(inbox, endpoint.url, key=f"jira|SUP-1|k{i}")
    a, b = sender(inbox, endpoint.url), sender(inbox, endpoint.url)
    results: list[Any] = []
    threads = [threading.Thread(target=lambda s=s: results.append(s.send_due())) for s in (a, b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    sent = [k for r in results for k in r.sent]
    assert sorted(sent) == sorted(f"jira|SUP-1|k{i}" for i in range(20))
    keys = [h[NOTICE_KEY_HEADER] for h, _ in endpoint.calls]
    assert len(keys) == len(set(keys)) == 20


def test_a_notice_recorded_twice_is_one_row(inbox: Inbox, endpoint: Hook) -> None:
    add_notice(inbox, endpoint.url)
    add_notice(inbox, endpoint.url)  # the same threshold again (a retried decision)
    assert len(inbox.notices_of("jira", "SUP-1")) == 1


def _policy(**notify: Any) -> Policy:
    doc = yaml.safe_load(default_policy_text())
    doc["sla"]["on_breach"]["notify"] = {"url": "https://hooks.example.com/b", **notify}
    doc["sla"]["on_warning"]["notify"] = {"url": "https://hooks.example.com/w"}
    return load_policy(yaml.safe_dump(doc), source="p.yaml")


def test_start_refuses_a_notify_url_without_a_secret() -> None:
    with pytest.raises(NotifyConfigError) as refused:
        NotifySecrets.from_settings(_policy(), load_settings())
    lines = str(refused.value).splitlines()
    assert lines[0].startswith("sla.on_warning.notify (https://hooks.example.com/w) has no HMAC"
                               " secret: TIERDESK_SLA_NOTIFY_SECRET is not set")
    assert "sla.on_breach.notify" in lines[1]


def test_named_secret_missing_is_refused_by_name() -> None:
    with pytest.raises(NotifyConfigError) as refused:
        NotifySecrets.from_settings(_policy(secret="oncall"),
                                    load_settings(sla_notify_secret="global"))
    assert 'TIERDESK_SLA_NOTIFY_SECRETS has no "oncall"' in str(refused.value)


def test_secrets_from_settings() -> None:
    settings = load_settings(sla_notify_secret="global", sla_notify_secrets={"oncall": "pager"})
    secrets = NotifySecrets.from_settings(_policy(secret="oncall"), settings)
    assert secrets.for_url("https://hooks.example.com/b") == "pager"
    assert secrets.for_url("https://hooks.example.com/w") == "global"
    assert secrets.for_url("https://elsewhere.example.com") == "global"


def test_secrets_json_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TIERDESK_SLA_NOTIFY_SECRETS", '{"oncall": "pager"}')
    assert load_settings().notify_secret("oncall") == "pager"


def test_row_without_a_secret_waits(inbox: Inbox, endpoint: Hook) -> None:
    add_notice(inbox, endpoint.url)
    s = NotifySender(inbox, NotifySecrets(), fraction=lambda: 0.0)
    assert s.send_due().retried and endpoint.calls == []
    (row,) = inbox.notices_of("jira", "SUP-1")
    assert row.last_error == "no HMAC secret for this URL in the current settings"


def test_uses_a_given_session(inbox: Inbox, endpoint: Hook) -> None:
    add_notice(inbox, endpoint.url)
    session = requests.Session()
    assert sender(inbox, endpoint.url, session=session).send_due().sent
