"""The receiver: every answer code, nothing stored without a valid signature, real vendor
payloads through the real envelope functions, health, readiness and metrics."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from connectors.jira.webhook import sign as sign_jira
from connectors.zendesk.webhook import sign as sign_zendesk
from tests.shared_vendor import VENDOR
from tests.webhooks.fakes import fake_envelope, vendors_classifying
from webhooks.app import ReceiverConfig, create_app
from webhooks.commit import WriterProcess
from webhooks.inbox.schema import CREDENTIALS_PAUSE_PREFIX
from webhooks.inbox.store import Inbox
from webhooks.metrics import Metrics

JIRA_SECRET = "jira-secret"
ZD_SECRET = "zendesk-secret"
NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
ZD_TS = "2026-11-21T12:00:00Z"


@pytest.fixture
def inbox(tmp_path: Path) -> Iterator[Inbox]:
    box = Inbox.connect(f"sqlite:///{tmp_path}/app.db")
    yield box
    box.close()


def writer_process(inbox: Inbox) -> Callable[[], Awaitable[WriterProcess]]:
    """What `tierdesk serve` commits with by default: a writer process on `inbox`'s database."""
    url = inbox.engine.url.render_as_string(hide_password=False)

    async def start() -> WriterProcess:
        writer = WriterProcess(url)
        await writer.start()
        return writer

    return start


def make_client(inbox: Inbox, *, committer: str = "thread", **config: Any) -> TestClient:
    options: dict[str, Any] = {
        "secrets": {"jira": JIRA_SECRET, "zendesk": ZD_SECRET},
        "vendors": vendors_classifying(jira=fake_envelope, zendesk=fake_envelope),
        "max_body_bytes": 4096,
        "signature_max_age": 300,
        "clock": lambda: NOW,
    }
    options.update(config)
    return TestClient(create_app(
        inbox=inbox, config=ReceiverConfig(**options),
        committer=writer_process(inbox) if committer == "process" else None))


@pytest.fixture(params=["thread", "process"])
def client(inbox: Inbox, request: pytest.FixtureRequest) -> Iterator[TestClient]:
    """A client whose app commits with a CommitBatcher thread, and one whose app commits with
    a writer process (`tierdesk serve`'s default): every answer is pinned for both."""
    with make_client(inbox, committer=request.param) as c:  # runs the lifespan
        yield c


def jira_post(client: TestClient, body: bytes, *, secret: str = JIRA_SECRET,
              headers: dict[str, str] | None = None) -> Any:
    h = {"Content-Type": "application/json", "X-Hub-Signature": sign_jira(body, secret)}
    h.update(headers or {})
    return client.post("/webhooks/jira", content=body, headers=h)


def zd_post(client: TestClient, body: bytes, *, ts: str = ZD_TS, secret: str = ZD_SECRET,
            headers: dict[str, str] | None = None) -> Any:
    h = {
        "Content-Type": "application/json; charset=utf-8",
        "X-Zendesk-Webhook-Signature": sign_zendesk(body, secret, ts),
        "X-Zendesk-Webhook-Signature-Timestamp": ts,
    }
    h.update(headers or {})
    return client.post("/webhooks/zendesk", content=body, headers=h)


def body(**fields: Any) -> bytes:
    return json.dumps({"ticket": "T-1", "id": "d1", "seq": 1, **fields}).encode()


def test_accepted_then_duplicate(client: TestClient, inbox: Inbox) -> None:
    """A new signed delivery is 202 and stored; the same delivery again is 200, stored once."""
    first = jira_post(client, body())
    assert (first.status_code, first.json()) == (202, {"status": "accepted"})
    again = jira_post(client, body())
    assert (again.status_code, again.json()) == (200, {"status": "duplicate"})
    assert inbox.counts() == {"pending": 1}


def test_dedupe_key_from_header(client: TestClient, inbox: Inbox) -> None:
    """Jira redeliveries share X-Atlassian-Webhook-Identifier: one stored event."""
    h = {"X-Atlassian-Webhook-Identifier": "hook-1"}
    assert jira_post(client, body(id="a"), headers=h).status_code == 202
    assert jira_post(client, body(id="b"), headers=h).status_code == 200
    assert [e.delivery_id for e in inbox.events_of("jira", "T-1")] == ["hook-1"]


def test_body_hash_is_the_last_resort_dedupe_key(client: TestClient, inbox: Inbox) -> None:
    """Without any delivery id, identical bodies are one delivery (sha256 of the body)."""
    raw = json.dumps({"ticket": "T-9", "seq": 1}).encode()
    assert jira_post(client, raw).status_code == 202
    assert jira_post(client, raw).status_code == 200
    assert inbox.events_of("jira", "T-9")[0].delivery_id.startswith("sha256:")


def test_ignored_event_is_202_and_recorded(client: TestClient, inbox: Inbox) -> None:
    """A known event tierdesk does not act on is accepted (so the vendor stops) and recorded."""
    r = jira_post(client, json.dumps({"ignored": True, "id": "w1"}).encode())
    assert (r.status_code, r.json()) == (202, {"status": "ignored"})
    assert inbox.counts() == {"ignored": 1}


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        (b"{not json", "not valid JSON"),
        (b"[1, 2]", "expected a JSON object"),
        (b'"text"', "expected a JSON object"),
        (json.dumps({"id": "x"}).encode(), "has no ticket"),
        (json.dumps({"ticket": 5, "id": "x"}).encode(), "has no ticket"),
        (b"\xff\xfe{}", "not valid JSON"),
    ],
)
def test_bad_payloads_are_400_with_reason(
    client: TestClient, inbox: Inbox, raw: bytes, fragment: str
) -> None:
    """Malformed JSON or a payload without a ticket is 400 saying what is wrong; nothing stored."""
    r = jira_post(client, raw)
    assert r.status_code == 400 and fragment in r.json()["error"]
    assert inbox.counts() == {}


def test_classifier_crash_is_400_not_500(inbox: Inbox) -> None:
    """An unexpected error in a classifier on client input is answered 400, never 500."""
    def broken(body: Any, headers: Any) -> Any:
        return body["missing"]["deeper"]

    with make_client(inbox, vendors=vendors_classifying(jira=broken)) as c:
        r = jira_post(c, body())
    assert r.status_code == 400 and "cannot read this jira payload" in r.json()["error"]


@pytest.mark.parametrize(
    ("headers", "fragment"),
    [
        ({"X-Hub-Signature": ""}, "missing X-Hub-Signature"),
        ({"X-Hub-Signature": "sha256=" + "0" * 64}, "does not match"),
        ({"X-Hub-Signature": "md5=abc"}, "unsupported"),
    ],
)
def test_bad_jira_signature_is_401(
    client: TestClient, inbox: Inbox, headers: dict[str, str], fragment: str
) -> None:
    """A missing or wrong Jira signature is 401 and nothing is stored."""
    r = jira_post(client, body(), headers=headers)
    assert r.status_code == 401 and fragment in r.json()["error"]
    assert inbox.counts() == {}


def test_signature_is_checked_before_json(client: TestClient) -> None:
    """An unsigned malformed body is 401 (the signature comes first), not 400."""
    r = client.post("/webhooks/jira", content=b"{nope",
                    headers={"Content-Type": "application/json"})
    assert r.status_code == 401


def test_no_secret_configured_refuses_everything(inbox: Inbox) -> None:
    """A vendor without a configured secret refuses every delivery (fail closed)."""
    with make_client(inbox, secrets={"jira": None, "zendesk": ZD_SECRET}) as c:
        r = jira_post(c, body())
    assert r.status_code == 401 and "no Jira webhook secret" in r.json()["error"]
    assert inbox.counts() == {}


def test_zendesk_signed_delivery_is_accepted(client: TestClient, inbox: Inbox) -> None:
    """A Zendesk delivery signed over timestamp + body within the window is 202."""
    r = zd_post(client, body(ticket="501", id="inv-1"))
    assert r.status_code == 202
    assert [e.vendor for e in inbox.events_of("zendesk", "501")] == ["zendesk"]


@pytest.mark.parametrize(
    ("ts", "secret", "fragment"),
    [
        ("2026-11-21T11:50:00Z", ZD_SECRET, "away from now"),   # 10 minutes old: a replay
        (ZD_TS, "other", "does not match"),                      # wrong secret
    ],
)
def test_bad_zendesk_signature_is_401(
    client: TestClient, inbox: Inbox, ts: str, secret: str, fragment: str
) -> None:
    """A replayed or wrongly signed Zendesk delivery is 401 and nothing is stored."""
    r = zd_post(client, body(ticket="501"), ts=ts, secret=secret)
    assert r.status_code == 401 and fragment in r.json()["error"]
    assert inbox.counts() == {}


def test_too_large_by_content_length_is_413(client: TestClient, inbox: Inbox) -> None:
    """A body over MAX_BODY_BYTES is 413 and nothing is stored."""
    big = body(pad="x" * 5000)
    r = jira_post(client, big)
    assert r.status_code == 413 and "4096" in r.json()["error"]
    assert inbox.counts() == {}


def test_too_large_streamed_without_length_is_413(client: TestClient) -> None:
    """A chunked body with no Content-Length is cut off at MAX_BODY_BYTES with 413."""
    big = body(pad="x" * 5000)

    def chunks() -> Iterator[bytes]:
        for i in range(0, len(big), 1000):
            yield big[i : i + 1000]

    r = client.post("/webhooks/jira", content=chunks(), headers={
        "Content-Type": "application/json", "X-Hub-Signature": sign_jira(big, JIRA_SECRET)})
    assert r.status_code == 413


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", ""])
def test_non_json_content_type_is_415(client: TestClient, content_type: str) -> None:
    """A signed body that is not declared JSON is 415."""
    r = jira_post(client, body(), headers={"Content-Type": content_type})
    assert r.status_code == 415


def test_bad_content_length_is_400(client: TestClient) -> None:
    """A Content-Length that is not a number is 400 (not a 500)."""
    raw = body()
    r = client.post("/webhooks/jira", content=raw, headers={
        "Content-Type": "application/json", "Content-Length": "abc",
        "X-Hub-Signature": sign_jira(raw, JIRA_SECRET)})
    assert r.status_code == 400


def test_inbox_failure_is_503_with_retry_after(inbox: Inbox) -> None:
    """When the database cannot commit, the vendor is told to retry (503), never a 500."""
    class Broken(Inbox):
        def enqueue_many(self, items: Any) -> list[bool]:
            raise RuntimeError("disk full")

    broken = Broken(inbox.engine)
    with make_client(broken) as c:
        r = jira_post(c, body())
    assert r.status_code == 503 and r.headers["Retry-After"] == "5"


def test_works_without_lifespan(inbox: Inbox) -> None:
    """Without the lifespan (no group-commit thread) deliveries are committed inline."""
    c = make_client(inbox)
    assert jira_post(c, body()).status_code == 202
    assert inbox.counts() == {"pending": 1}


def test_health_and_readiness(inbox: Inbox) -> None:
    """/healthz answers; /readyz is 200 with the database and a policy, 503 otherwise."""
    loaded = {"value": True}
    app = create_app(inbox=inbox, config=ReceiverConfig(secrets={}, vendors={}),
                     policy_loaded=lambda: loaded["value"])
    with TestClient(app) as c:
        assert c.get("/healthz").json() == {"status": "ok"}
        assert c.get("/readyz").status_code == 200
        loaded["value"] = False
        r = c.get("/readyz")
        assert r.status_code == 503 and "policy not loaded" in r.json()["problems"]


def test_readyz_lists_a_vendor_paused_for_its_credentials(inbox: Inbox) -> None:
    """A vendor paused because it refused tierdesk's credentials is listed by /readyz with the
    setting to fix; the receiver stays ready (200: webhooks are still taken). A rate-limit pause
    is not listed."""
    fix = "TIERDESK_ZENDESK_EMAIL / TIERDESK_ZENDESK_API_TOKEN: not accepted"
    inbox.pause_vendor("zendesk", until=inbox.clock() + 60,
                       reason=f"{CREDENTIALS_PAUSE_PREFIX}: {fix}")
    inbox.pause_vendor("jira", until=inbox.clock() + 60, reason="RateLimited: 429")
    app = create_app(inbox=inbox, config=ReceiverConfig(secrets={}, vendors={}))
    with TestClient(app) as c:
        r = c.get("/readyz")
    assert r.status_code == 200
    assert r.json() == {"status": "ready",
                        "vendors_paused": {"zendesk": f"{CREDENTIALS_PAUSE_PREFIX}: {fix}"}}


def test_readyz_503_when_database_unreachable(tmp_path: Path) -> None:
    """/readyz is 503 naming the database when it cannot be reached."""
    box = Inbox.connect(f"sqlite:///{tmp_path}/r.db")

    class Down(Inbox):
        def ping(self) -> None:
            raise ConnectionError("gone")

    app = create_app(inbox=Down(box.engine), config=ReceiverConfig(secrets={}, vendors={}))
    with TestClient(app) as c:
        r = c.get("/readyz")
    assert r.status_code == 503
    assert r.json()["problems"] == ["database unreachable: ConnectionError"]
    box.close()


def test_metrics_count_outcomes(inbox: Inbox) -> None:
    """/metrics reports received, duplicates, rejections by reason and the inbox depth."""
    metrics = Metrics()
    metrics.watch_inbox(inbox.depth)
    app = create_app(inbox=inbox, metrics=metrics, config=ReceiverConfig(
        secrets={"jira": JIRA_SECRET}, vendors=vendors_classifying(jira=fake_envelope)))
    with TestClient(app) as c:
        jira_post(c, body())
        jira_post(c, body())
        jira_post(c, body(), headers={"X-Hub-Signature": "sha256=00"})
        text = c.get("/metrics").text
    assert 'tierdesk_webhooks_received_total{vendor="jira"} 1.0' in text
    assert 'tierdesk_webhooks_duplicates_total{vendor="jira"} 1.0' in text
    assert 'tierdesk_webhooks_rejected_total{reason="signature",vendor="jira"} 1.0' in text
    assert 'tierdesk_inbox_pending_events{vendor="jira"} 1.0' in text
    assert "tierdesk_dead_letters 0.0" in text


# --------------------------------------------------------------------------- real payloads

JIRA_FIXTURES = sorted((VENDOR / "jira" / "webhooks").glob("*.json"))


@pytest.mark.parametrize("path", JIRA_FIXTURES, ids=lambda p: p.name)
def test_real_jira_payloads_are_stored(inbox: Inbox, path: Path) -> None:
    """Every captured Jira webhook, signed, is accepted by the real classifier and stored with
    the envelope connectors.jira.webhook.classify gives."""
    from connectors.jira.webhook import classify as envelope

    raw = path.read_bytes()
    headers = {"X-Atlassian-Webhook-Identifier": f"id-{path.stem}"}
    expected = envelope(json.loads(raw), headers)
    # The captures are years old: the receiver's clock is set to their signed timestamp, so
    # the replay horizon (checked below in test_jira_replay_*) lets them in.
    sent_at = (datetime.fromtimestamp(expected.occurred_at / 1000, tz=UTC)
               if expected.occurred_at is not None else NOW)
    with make_client(inbox, vendors=vendors_classifying(jira=envelope), max_body_bytes=1 << 20,
                     clock=lambda: sent_at) as c:
        r = jira_post(c, raw, headers=headers)
        assert r.status_code == 202, r.text
        assert jira_post(c, raw, headers=headers).status_code == 200
    stored = inbox.events_of("jira", str(expected.ticket))
    assert [(e.event_type, e.delivery_id, e.actor, e.occurred_at) for e in stored] == [
        (expected.event_type, expected.delivery_id, expected.actor, expected.occurred_at)]
    assert stored[0].payload_text == raw.decode("utf-8")


ZD_EVENTS = [
    *sorted((VENDOR / "zendesk" / "dust-tt_dust").glob("*.json")),
    VENDOR / "zendesk" / "zendesk_docs" / "event_user_active_changed.json",
]


@pytest.mark.parametrize("path", ZD_EVENTS, ids=lambda p: p.name)
def test_real_zendesk_event_payloads(inbox: Inbox, path: Path) -> None:
    """Zendesk event-subscription bodies go through the real classifier: ticket events are
    stored as pending, others recorded as ignored, keyed by the event id."""
    from connectors.zendesk.webhook import classify as envelope

    raw = path.read_bytes()
    expected = envelope(json.loads(raw), {})
    with make_client(inbox, vendors=vendors_classifying(zendesk=envelope),
                     max_body_bytes=1 << 20) as c:
        r = zd_post(c, raw)
    assert r.status_code == 202
    assert r.json()["status"] == ("accepted" if expected.handled else "ignored")
    assert inbox.counts() == {"pending" if expected.handled else "ignored": 1}


@pytest.mark.parametrize(
    ("name", "status"),
    [("group_membership_created_event.json", 202), ("ticket_update_trigger.json", 400)],
)
def test_zendesk_static_secret_vectors_at_the_receiver(
    inbox: Inbox, name: str, status: int
) -> None:
    """The Zendesk signature vectors pass the receiver's check (at their timestamp); the event is
    recorded as ignored and the foreign trigger body is refused as unreadable (400)."""
    from connectors.zendesk.webhook import classify as envelope

    spec = json.loads((VENDOR / "zendesk" / "aaronellington_zendesk-go" / "signatures.json")
                      .read_text())
    sig = next(v["signature"] for v in spec["vectors"] if v["file"] == name)
    raw = (VENDOR / "zendesk" / "aaronellington_zendesk-go" / name).read_bytes()
    with make_client(inbox, secrets={"zendesk": spec["secret"]},
                     vendors=vendors_classifying(zendesk=envelope),
                     clock=lambda: datetime.fromtimestamp(1234, tz=UTC)) as c:
        r = c.post("/webhooks/zendesk", content=raw, headers={
            "Content-Type": "application/json", "X-Zendesk-Webhook-Signature": sig,
            "X-Zendesk-Webhook-Signature-Timestamp": spec["timestamp"]})
    assert r.status_code == status, r.text


def test_unescaped_zendesk_trigger_body_is_salvaged_not_lost(inbox: Inbox) -> None:
    """A trigger body broken by an unescaped quote is stored as a partial body, not refused."""
    from connectors.zendesk.webhook import classify as zendesk_envelope

    raw = (b'{"tierdesk": 1, "event_type": "trigger", "ticket_id": "777",'
           b' "current_user_id": "42", "subject": "It says "boom" and dies"}')
    with make_client(inbox, vendors=vendors_classifying(jira=fake_envelope,
                                                          zendesk=zendesk_envelope)) as c:
        r = zd_post(c, raw, headers={"X-Zendesk-Webhook-Invocation-Id": "inv-9"})
    assert r.status_code == 202, r.text
    [stored] = inbox.events_of("zendesk", "777")
    payload = json.loads(stored.payload_text)
    assert payload["partial"] is True
    assert payload["ticket_id"] == "777"


def test_zendesk_body_that_is_not_a_trigger_and_not_json_is_400(client: TestClient) -> None:
    """Bytes that are neither JSON nor tierdesk's trigger body are refused with the reason."""
    r = zd_post(client, b'{"id": 1, "broken": ')
    assert r.status_code == 400
    assert "body is not valid JSON" in r.json()["error"]


def test_json_that_only_the_json_module_reads_is_stored_not_refused(
    client: TestClient, inbox: Inbox
) -> None:
    """A lone UTF-16 surrogate escape (a broken character in a ticket's text) is refused by the
    fast parser but is JSON: the delivery is accepted and stored as received."""
    raw = b'{"ticket": "T-7", "id": "s1", "seq": 1, "summary": "broken \\ud800 text"}'
    assert jira_post(client, raw).status_code == 202
    [event] = inbox.events_of("jira", "T-7")
    assert event.payload["summary"] == "broken \ud800 text"


def test_many_concurrent_deliveries_each_get_their_own_answer(inbox: Inbox) -> None:
    """Deliveries committed in one group are answered one by one: new ones 202, repeats 200."""
    import asyncio

    import httpx

    client = make_client(inbox)
    app = client.app

    async def run() -> list[int]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            async def one(i: int) -> int:
                raw = body(ticket=f"T-{i % 7}", id=f"c{i % 40}")
                headers = {"Content-Type": "application/json",
                           "X-Hub-Signature": sign_jira(raw, JIRA_SECRET)}
                response = await http.post("/webhooks/jira", content=raw, headers=headers)
                return response.status_code

            return list(await asyncio.gather(*(one(i) for i in range(80))))

    with client:  # runs the lifespan: the group-commit thread
        statuses = asyncio.run(run())
    assert sorted(statuses) == [200] * 40 + [202] * 40
    assert inbox.counts() == {"pending": 40}


def test_other_methods_on_a_webhook_path_are_405(client: TestClient) -> None:
    """GET on a webhook URL (a browser, a health probe pointed at the wrong path) is 405."""
    assert client.get("/webhooks/jira").status_code == 405
    assert client.put("/webhooks/zendesk", content=b"{}").status_code == 405


def test_client_gone_before_its_body_arrived_stores_nothing(inbox: Inbox) -> None:
    """A sender that disconnects mid-body gets no answer and nothing is stored."""
    import asyncio

    app = make_client(inbox).app
    sent: list[dict[str, Any]] = []
    messages: list[dict[str, Any]] = [
        {"type": "http.request", "body": b'{"ticket": "T-1",', "more_body": True},
        {"type": "http.disconnect"},
    ]

    async def receive() -> dict[str, Any]:
        return messages.pop(0)

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
             "method": "POST", "scheme": "http", "path": "/webhooks/jira",
             "raw_path": b"/webhooks/jira", "query_string": b"", "root_path": "",
             "headers": [(b"content-type", b"application/json")],
             "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80), "state": {}}
    asyncio.run(app(scope, receive, send))
    assert sent == [] and inbox.counts() == {}


ROTATION = [
    # Jira, signed with the current secret: accepted
    ("jira", JIRA_SECRET, {"jira": "old-jira"}, 202),
    # Jira, signed with the previous secret during the overlap: accepted
    ("jira", "old-jira", {"jira": "old-jira"}, 202),
    # Jira, old secret after the previous one was removed: refused
    ("jira", "old-jira", {}, 401),
    # Zendesk, previous secret during the overlap: accepted
    ("zendesk", "old-zd", {"zendesk": "old-zd"}, 202),
    # Zendesk, old secret once the overlap ended: refused
    ("zendesk", "old-zd", {}, 401),
    # a secret that is neither current nor previous: refused
    ("jira", "unrelated", {"jira": "old-jira"}, 401),
]


@pytest.mark.parametrize(("vendor", "signed_with", "previous", "status"), ROTATION)
def test_previous_secret_is_accepted_only_during_the_overlap(
    inbox: Inbox, vendor: str, signed_with: str, previous: dict[str, str], status: int
) -> None:
    """Deliveries signed with the previous secret pass while it is configured, and are 401
    once it is removed; the current secret always passes."""
    with make_client(inbox, previous_secrets=previous) as c:
        if vendor == "jira":
            r = jira_post(c, body(), secret=signed_with)
        else:
            r = zd_post(c, body(ticket="501", id="inv-1"), secret=signed_with)
    assert r.status_code == status, r.text


def _basic(user: str, password: str) -> str:
    import base64

    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


BASIC = [
    # opted in, unsigned delivery with the right credentials: accepted
    ({"jira": ("jira", "p" * 20)}, {"Authorization": _basic("jira", "p" * 20)}, 202),
    # opted in, wrong password: refused
    ({"jira": ("jira", "p" * 20)}, {"Authorization": _basic("jira", "q" * 20)}, 401),
    # opted in, wrong user: refused
    ({"jira": ("jirb", "p" * 20)}, {"Authorization": _basic("jira", "p" * 20)}, 401),
    # opted in, no credentials at all: refused
    ({"jira": ("jira", "p" * 20)}, {}, 401),
    # not opted in: Basic credentials alone are refused as before
    ({}, {"Authorization": _basic("jira", "p" * 20)}, 401),
]


@pytest.mark.parametrize(("basic", "headers", "status"), BASIC)
def test_jira_basic_auth_is_an_explicit_opt_in(
    inbox: Inbox, basic: dict[str, tuple[str, str]], headers: dict[str, str], status: int
) -> None:
    """Unsigned Jira deliveries pass only with the configured Basic credentials, and only when
    the operator opted in; signed ones are still checked by HMAC."""
    with make_client(inbox, basic_auth=basic) as c:
        r = c.post("/webhooks/jira", content=body(),
                   headers={"Content-Type": "application/json", **headers})
    assert r.status_code == status, r.text


def test_basic_opt_in_still_checks_signatures(inbox: Inbox) -> None:
    """With Basic opted in, a delivery that carries a bad X-Hub-Signature is still 401."""
    with make_client(inbox, basic_auth={"jira": ("jira", "p" * 20)}) as c:
        r = jira_post(c, body(), secret="forged",
                      headers={"Authorization": _basic("jira", "p" * 20)})
    assert r.status_code == 401
