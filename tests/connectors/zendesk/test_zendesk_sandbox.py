"""End to end against the sandbox's Zendesk over real HTTP: install, a ticket change fires the
trigger, its body becomes one guarded write, and tierdesk's own write fires nothing."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import requests

from connectors.zendesk import ZendeskConnector
from connectors.zendesk import webhook as zendesk_webhook
from connectors.zendesk.admin import ZendeskAdmin
from connectors.zendesk.config import ZendeskConfig
from tiering import Decision, Ticket, decide, load_policy
from webhooks.defaults import default_policy_text

sandbox_server = pytest.importorskip("sandbox.server")
from tests.webhook_receiver import Receiver, running_receiver  # noqa: E402

BOT_ID = 9001  # the seed's "tierdesk bot"
AGENT = ("agent@tierdesk.example/token", "sandbox-token")


@pytest.fixture
def inbox() -> Iterator[Receiver]:
    """The webhook endpoint the sandbox delivers to (raw bodies and headers, in order)."""
    with running_receiver() as rec:
        yield rec


@pytest.fixture
def sandbox() -> Iterator[Any]:
    handle = sandbox_server.run_in_thread(retry_base=0.05)
    try:
        yield handle
    finally:
        handle.stop()


def installed_worker(sandbox: Any, inbox: Receiver, tmp_path: Any) -> tuple[Any, Any]:
    """tierdesk installed on the sandbox with the example policy (webhook and triggers calling
    `inbox`), and a real inbox and worker over it: (inbox, worker)."""
    from webhooks.inbox.store import Inbox as EventInbox
    from webhooks.worker import Worker

    policy = load_policy(default_policy_text(), source="example policy")
    config = ZendeskConfig(base_url=sandbox.zendesk_url, email="bot@tierdesk.example",
                           api_token="sandbox-token", bot_user_id=BOT_ID, timeout=5.0)
    connector = ZendeskConnector(config, policy)
    ZendeskAdmin(connector).install_webhook(callback_url=inbox.url + "/webhooks/zendesk")
    events = EventInbox.connect(f"sqlite:///{tmp_path / 'inbox.db'}")
    return events, Worker(inbox=events, connectors={"zendesk": connector}, policy=policy)


def test_trigger_round_trip_through_sandbox(sandbox: Any, inbox: Receiver) -> None:
    """An agent's change reaches tierdesk as the installed trigger body; the decision lands in
    one guarded PUT and nothing else; the bot's own write fires no further delivery."""
    from connectors.zendesk.webhook import verify_signature as verify_zendesk

    policy = load_policy(default_policy_text(), source="example policy")
    config = ZendeskConfig(base_url=sandbox.zendesk_url, email="bot@tierdesk.example",
                           api_token="sandbox-token", bot_user_id=BOT_ID, timeout=5.0)
    connector = ZendeskConnector(config, policy)
    admin = ZendeskAdmin(connector)
    first = admin.install_webhook(callback_url=inbox.url + "/webhooks/zendesk")
    # webhook, main trigger, public reply trigger (the example policy has SLA clocks)
    assert [w.method for w in first.writes] == ["POST", "POST", "POST"] and first.secret
    assert admin.install_webhook(callback_url=inbox.url + "/webhooks/zendesk").writes == []

    created = requests.post(f"{sandbox.zendesk_url}/api/v2/tickets.json", auth=AGENT, timeout=5,
                            json={"ticket": {"subject": "Reports page crash", "priority": "high",
                                             "requester_id": 9101,
                                             "comment": {"body": "The app crashes on export."}}})
    assert created.status_code == 201, created.text
    ticket_id = created.json()["ticket"]["id"]

    delivery = inbox.wait_for(1)[0]
    raw, headers = delivery.body, delivery.headers
    verify_zendesk(raw, signature=headers.get("X-Zendesk-Webhook-Signature"),
                   timestamp=headers.get("X-Zendesk-Webhook-Signature-Timestamp"),
                   secret=first.secret)
    body = zendesk_webhook.parse(raw)
    env = zendesk_webhook.classify(body, headers)
    assert (env.event_type, env.ticket, env.actor) == ("trigger", str(ticket_id), "9002")
    assert not connector.is_own_event(env)

    now = datetime.now(UTC)

    def run(t: Ticket) -> Decision:
        return decide(t, policy, now=now)

    ticket = connector.current_ticket([body])
    assert ticket.customer.plan == "premium" and ticket.customer.organization == "Acme Corp"
    decision = run(ticket)
    applied = connector.apply(ticket, decision, decide=run)
    assert applied.wrote
    assert all(c.status == 200 for c in applied.calls)
    # The sandbox renders the stamp to the second: no refresh read, just the PUT.
    assert [(c.method, c.path) for c in applied.calls] == [
        ("PUT", f"/api/v2/tickets/{ticket_id}.json")
    ]

    after = requests.get(f"{sandbox.zendesk_url}/api/v2/tickets/{ticket_id}.json", auth=AGENT,
                         timeout=5).json()["ticket"]
    final = applied.decision
    assert final is not None
    assert set(after["tags"]) == set(final.labels_after(ticket.labels))
    assert after["group_id"] == policy.targets["L1"].zendesk.group_id  # type: ignore[union-attr]

    # tierdesk's own update must not fire the trigger (current_user is the bot).
    assert len(inbox.wait_for(2, timeout=1.0)) == 1


def test_worker_pipeline_through_sandbox(sandbox: Any, inbox: Receiver, tmp_path: Any) -> None:
    """Deliveries go through the real inbox and worker: triage, then an agent's escalation
    request without documentation gets the checklist note once; every decision is 1 PUT."""
    events, worker = installed_worker(sandbox, inbox, tmp_path)

    def deliver(count: int) -> None:
        for call in inbox.wait_for(count)[count - 1:count]:
            raw, headers = call.body, call.headers
            body = zendesk_webhook.parse(raw)
            assert events.enqueue(zendesk_webhook.classify(body, headers), body, raw=raw)
        assert worker.drain() == 1

    api = f"{sandbox.zendesk_url}/api/v2/tickets"
    created = requests.post(f"{api}.json", auth=AGENT, timeout=5, json={"ticket": {
        "subject": "Export question", "requester_id": 9102,
        "comment": {"body": "Where is the export button?"}}})
    tid = created.json()["ticket"]["id"]
    deliver(1)
    after = requests.get(f"{api}/{tid}.json", auth=AGENT, timeout=5).json()["ticket"]
    assert "tier-l1" in after["tags"]

    tags = [*after["tags"], "escalate-l2"]
    changed = requests.put(f"{api}/{tid}.json", auth=AGENT, timeout=5,
                           json={"ticket": {"tags": tags}})
    assert changed.status_code == 200, changed.text
    deliver(2)
    after = requests.get(f"{api}/{tid}.json", auth=AGENT, timeout=5).json()["ticket"]
    assert {"tier-l1", "escalate-l2", "tier-docs-missing"} <= set(after["tags"])
    comments = requests.get(f"{api}/{tid}/comments.json", auth=AGENT, timeout=5).json()
    notes = [c for c in comments["comments"] if "tierdesk-note:" in c["body"]]
    assert len(notes) == 1 and notes[0]["public"] is False and notes[0]["author_id"] == BOT_ID

    history = events.history("zendesk", str(tid))
    assert [r.outcome for r in history] == ["applied", "applied"]
    assert all([c["method"] for c in r.calls] == ["PUT"] for r in history)
    # Neither of the bot's two writes fired the trigger.
    assert len(inbox.wait_for(3, timeout=1.0)) == 2
    events.close()


def test_event_subscribed_webhook_through_sandbox(
    sandbox: Any, inbox: Receiver, tmp_path: Any
) -> None:
    """Event-subscribed deliveries: a created ticket costs its reads and one PUT; the events
    tierdesk's own PUT causes are dropped by the worker without any request."""
    from webhooks.inbox.store import Inbox as EventInbox
    from webhooks.worker import Worker

    policy = load_policy(default_policy_text(), source="example policy")
    config = ZendeskConfig(base_url=sandbox.zendesk_url, email="bot@tierdesk.example",
                           api_token="sandbox-token", bot_user_id=BOT_ID, timeout=5.0)
    connector = ZendeskConnector(config, policy)
    # Webhooks are an administrator's business (an agent gets 403): as the admin bot.
    admin = ("bot@tierdesk.example/token", "sandbox-token")
    hook = requests.post(f"{sandbox.zendesk_url}/api/v2/webhooks", auth=admin, timeout=5, json={
        "webhook": {"name": "tierdesk-events", "endpoint": inbox.url + "/webhooks/zendesk",
                    "http_method": "POST", "request_format": "json", "status": "active",
                    "subscriptions": ["zen:event-type:ticket.created",
                                      "zen:event-type:ticket.tags_changed",
                                      "zen:event-type:ticket.group_assignment_changed",
                                      "zen:event-type:ticket.comment_added"]}})
    assert hook.status_code in (200, 201), hook.text
    events = EventInbox.connect(f"sqlite:///{tmp_path / 'inbox.db'}")
    worker = Worker(inbox=events, connectors={"zendesk": connector}, policy=policy)
    api = f"{sandbox.zendesk_url}/api/v2/tickets"
    created = requests.post(f"{api}.json", auth=AGENT, timeout=5, json={"ticket": {
        "subject": "Export question", "requester_id": 9102,
        "comment": {"body": "Where is the export button?"}}})
    tid = str(created.json()["ticket"]["id"])

    delivery = inbox.wait_for(1)[0]
    raw, headers = delivery.body, delivery.headers
    body = zendesk_webhook.parse(raw)
    env = zendesk_webhook.classify(body, headers)
    assert (env.event_type, env.ticket, env.handled) == (
        "zen:event-type:ticket.created", tid, True)
    events.enqueue(env, body, raw=raw)
    assert worker.drain() == 1
    first = events.history("zendesk", tid)[0]
    assert first.outcome == "applied"
    assert [(c["method"], c["path"]) for c in first.calls] == [
        ("GET", f"/api/v2/tickets/{tid}.json"),
        ("GET", f"/api/v2/tickets/{tid}/comments.json"),
        ("PUT", f"/api/v2/tickets/{tid}.json"),
    ]

    # tierdesk's PUT changed tags and group: those events come back with the bot as actor.
    echoes = inbox.wait_for(3)[1:]
    assert len(echoes) >= 2
    for echo in echoes:
        raw, headers = echo.body, echo.headers
        body = zendesk_webhook.parse(raw)
        env = zendesk_webhook.classify(body, headers)
        assert env.actor == str(BOT_ID) and connector.is_own_event(env)
        events.enqueue(env, body, raw=raw)
    assert worker.drain() == 1
    dropped = events.history("zendesk", tid)[0]
    assert (dropped.outcome, dropped.calls) == ("own-event", ())
    events.close()


class _Crash(Exception):
    """The admin process dies (after the write it just sent landed)."""


class _CrashingAdmin(ZendeskAdmin):
    """A ZendeskAdmin that dies right after its `crash_after`-th write landed."""

    def __init__(self, connector: ZendeskConnector, crash_after: int) -> None:
        super().__init__(connector)
        self.crash_after = crash_after
        self.sent = 0

    def call(self, method: str, path: str, **kw: Any) -> Any:
        answer = super().call(method, path, **kw)
        if method != "GET":
            self.sent += 1
            if self.sent == self.crash_after:
                raise _Crash(f"died after {method} {path}")
        return answer


@pytest.mark.parametrize("crash_after", [None, 1, 2, 3])
def test_an_interrupted_rotation_is_finished_by_rerunning(
    sandbox: Any, inbox: Receiver, crash_after: int | None
) -> None:
    """The finishing run dies after its 1st (trigger moved), 2nd (old webhook deleted) or 3rd
    write; after each death the trigger calls a webhook whose secret the receiver holds, and
    rerunning the same command completes the rotation: one webhook named "tierdesk", signing
    with the new secret, called by the trigger."""
    from connectors.zendesk.admin import TRIGGER_TITLE, WEBHOOK_NAME, trigger_webhook_ids

    policy = load_policy(default_policy_text(), source="example policy")
    config = ZendeskConfig(base_url=sandbox.zendesk_url, email="bot@tierdesk.example",
                           api_token="sandbox-token", bot_user_id=BOT_ID, timeout=5.0)
    connector = ZendeskConnector(config, policy)
    url = inbox.url + "/webhooks/zendesk"
    old_secret = ZendeskAdmin(connector).install_webhook(callback_url=url).secret
    started = ZendeskAdmin(connector).install_webhook(callback_url=url, rotate_secret=True,
                                                      secret=old_secret)
    new_secret = started.secret
    assert started.rotation == "started" and new_secret and new_secret != old_secret
    settings = {"secret": new_secret, "previous_secret": old_secret}

    def calls() -> tuple[str, str | None]:
        admin = ZendeskAdmin(connector)
        trigger = admin.find_trigger()
        assert trigger is not None and trigger["title"] == TRIGGER_TITLE
        [hook_id] = trigger_webhook_ids(trigger)
        return hook_id, admin.signing_secret(hook_id)

    if crash_after is not None:
        with pytest.raises(_Crash):
            _CrashingAdmin(connector, crash_after).install_webhook(
                callback_url=url, rotate_secret=True, **settings)
        assert calls()[1] in (old_secret, new_secret)
    done = ZendeskAdmin(connector).install_webhook(callback_url=url, rotate_secret=True,
                                                   **settings)
    assert done.rotation == "finished"
    hooks = sandbox.state()["zendesk"]["webhooks"]
    assert [h["name"] for h in hooks] == [WEBHOOK_NAME]
    assert calls() == (hooks[0]["id"], new_secret)
    again = ZendeskAdmin(connector).install_webhook(callback_url=url, rotate_secret=True,
                                                    **settings)
    assert (again.rotation, again.writes) == ("finished", [])


@pytest.mark.parametrize("reply_first", [False, True], ids=["main-first", "reply-first"])
def test_a_public_reply_that_also_changes_the_ticket_costs_one_write(
    sandbox: Any, inbox: Receiver, tmp_path: Any, reply_first: bool
) -> None:
    """An agent's public reply that also asks for L2 fires both triggers. The first delivery
    decided writes once; the second, showing the ticket before that write, writes nothing.
    Whichever comes first, the reply is recorded (first_response stops)."""
    events, worker = installed_worker(sandbox, inbox, tmp_path)

    def enqueue(call: Any) -> dict[str, Any]:
        body = zendesk_webhook.parse(call.body)
        assert events.enqueue(zendesk_webhook.classify(body, call.headers), body, raw=call.body)
        return body

    api = f"{sandbox.zendesk_url}/api/v2/tickets"
    created = requests.post(f"{api}.json", auth=AGENT, timeout=5, json={"ticket": {
        "subject": "Export question", "requester_id": 9102,
        "comment": {"body": "Where is the export button?"}}})
    tid = created.json()["ticket"]["id"]
    enqueue(inbox.wait_for(1)[0])
    assert worker.drain() == 1
    after = requests.get(f"{api}/{tid}.json", auth=AGENT, timeout=5).json()["ticket"]
    # The sandbox moves `updated_at` on by at least a second per change (creation, then
    # tierdesk's write), so a change right after would be stamped up to two seconds ahead;
    # a reply dated after the worker's `now` is recorded at `now` (webhooks/sla_work.py
    # observed_marks), and the wait keeps the recorded reply at the stamp Zendesk sent
    # (`{{ticket.updated_at_with_timestamp}}`, to the minute).
    time.sleep(2.1)

    changed = requests.put(f"{api}/{tid}.json", auth=AGENT, timeout=5, json={"ticket": {
        "tags": [*after["tags"], "escalate-l2"],
        "comment": {"body": "Looking into it with L2.", "public": True}}})
    assert changed.status_code == 200, changed.text
    pair = inbox.wait_for(3)[1:3]
    assert len(pair) == 2
    # The deliveries may arrive in either order: play them in the order the case asks for.
    main, reply = sorted(pair, key=lambda c: "public_reply_at" in json.loads(c.body))
    assert "public_reply_at" in json.loads(reply.body)
    assert "public_reply_at" not in json.loads(main.body)
    for call in ((reply, main) if reply_first else (main, reply)):
        enqueue(call)
        assert worker.drain() == 1
    later, first, triage = events.history("zendesk", str(tid))  # newest first
    assert (triage.outcome, first.outcome, later.outcome) == ("applied", "applied", "unchanged")
    applied = [c for r in (first, later) for c in r.calls
               if c["method"] != "GET" and c["status"] < 400]
    assert len(applied) == 1  # one write for the update, whichever delivery made it
    # The later delivery shows the ticket before tierdesk's write. It is decided on a fresh
    # read when its stamp predates that write (Zendesk's stamps are to the minute), else its
    # guarded PUT is refused (409, nothing written) and re-decided on a read: no change.
    refused = [c["status"] for c in later.calls if c["method"] != "GET"]
    assert refused in ([], [409]), later.calls
    sla = events.sla_history("zendesk", str(tid))
    assert sla is not None and sla.first_reply_at is not None
    events.close()
