"""`tierdesk install zendesk` and `tierdesk backfill zendesk`: idempotent by name, dry runs
write nothing, backfill pages through search export into the inbox."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import responses
from click.testing import CliRunner

from connectors.backfill import BackfillSummary, run_backfill
from connectors.zendesk import ZendeskConnector
from connectors.zendesk.admin import (
    TRIGGER_TITLE,
    ZendeskAdmin,
    trigger_spec,
    webhook_spec,
)
from connectors.zendesk.trigger_body import render_template
from tiering import Policy
from webhooks.cli import main

from .conftest import BASE, HERE, sent
from .test_zendesk_faults import api_ticket

CALLBACK = "https://tierdesk.example.com/webhooks/zendesk"
HOOK_ID = "01GK8E6BKWMJZD2T8Y5AXJQMG5"
SECRET = "dw8vJM1byx3ZJRWUAEdvUrULMS3IwjnMIO4ajtatR"


def _secret(rsps: responses.RequestsMock) -> None:
    # zenpy_specification/webhook_secret.json, in the List response's envelope.
    rsps.get(f"{BASE}/api/v2/webhooks/{HOOK_ID}/signing_secret",
             json={"signing_secret": {"algorithm": "SHA256", "secret": SECRET}})


def _existing(policy: Policy, **hook_over: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    hook = webhook_spec(CALLBACK) | {"id": HOOK_ID, "created_at": "2022-12-02T03:31:00Z"}
    hook.update(hook_over)
    trigger = trigger_spec(HOOK_ID, render_template(policy), bot_user_id=777) | {
        "id": 360099, "position": 12, "updated_at": "2026-11-01T00:00:00Z"}
    return hook, trigger


def test_install_creates_webhook_and_trigger(
    connector: ZendeskConnector, policy: Policy, rsps: responses.RequestsMock
) -> None:
    """A fresh account gets one webhook and one trigger; the secret is read back."""
    rsps.get(f"{BASE}/api/v2/webhooks", json={"webhooks": [
        {"id": "OTHER", "name": "tierdesk-old", "subscriptions": ["conditional_ticket_events"]},
    ]})
    rsps.post(f"{BASE}/api/v2/webhooks", status=201, json={"webhook": {"id": HOOK_ID}})
    _secret(rsps)
    rsps.get(f"{BASE}/api/v2/triggers/search", json={"triggers": []})
    rsps.post(f"{BASE}/api/v2/triggers", status=201, json={"trigger": {"id": 360099}})
    result = ZendeskAdmin(connector).install_webhook(callback_url=CALLBACK)
    body_text = render_template(policy)
    assert sent(rsps) == [
        ("GET", "/api/v2/webhooks?filter%5Bname_contains%5D=tierdesk", None),
        ("POST", "/api/v2/webhooks", {"webhook": {
            "name": "tierdesk",
            "description": "tierdesk receiver: tiered-support evaluation of ticket changes",
            "status": "active", "endpoint": CALLBACK, "http_method": "POST",
            "request_format": "json", "subscriptions": ["conditional_ticket_events"]}}),
        ("GET", f"/api/v2/webhooks/{HOOK_ID}/signing_secret", None),
        ("GET", "/api/v2/triggers/search?query=tierdesk%3A+evaluate+ticket+tiers", None),
        ("POST", "/api/v2/triggers", {"trigger": {
            "title": TRIGGER_TITLE,
            "description": "Sends ticket changes to tierdesk (body template v1).",
            "active": True,
            "conditions": {
                "all": [
                    {"field": "status", "operator": "less_than", "value": "solved"},
                    {"field": "current_user", "operator": "is_not", "value": "777"},
                ],
                "any": [
                    {"field": "update_type", "operator": "is", "value": "Create"},
                    {"field": "update_type", "operator": "is", "value": "Change"},
                ],
            },
            "actions": [{"field": "notification_webhook", "value": [HOOK_ID, body_text]}],
        }}),
    ]
    assert (result.webhook_id, result.trigger_id) == (HOOK_ID, "360099")
    assert result.secret_line == f"TIERDESK_ZENDESK_WEBHOOK_SECRET={SECRET}"
    assert json.loads(body_text)["fields"] == {
        "360001111": "{{ticket.ticket_field_360001111}}",
        "360001114": "{{ticket.ticket_field_360001114}}",
    }


def test_install_again_writes_nothing(
    connector: ZendeskConnector, policy: Policy, rsps: responses.RequestsMock
) -> None:
    """Run twice, install finds both by name and sends no write (idempotent)."""
    hook, trigger = _existing(policy)
    rsps.get(f"{BASE}/api/v2/webhooks", json={"webhooks": [hook]})
    _secret(rsps)
    rsps.get(f"{BASE}/api/v2/triggers/search", json={"triggers": [trigger]})
    result = ZendeskAdmin(connector).install_webhook(callback_url=CALLBACK)
    assert [m for m, _, _ in sent(rsps)] == ["GET", "GET", "GET"]
    assert result.writes == [] and result.secret == SECRET


def test_install_updates_what_drifted(
    connector: ZendeskConnector, policy: Policy, rsps: responses.RequestsMock
) -> None:
    """A moved receiver URL is PATCHed alone; a trigger with an old body is PUT whole."""
    hook, trigger = _existing(policy, endpoint="https://old.example.com/hook")
    trigger["actions"] = [{"field": "notification_webhook", "value": [HOOK_ID, "{}"]}]
    rsps.get(f"{BASE}/api/v2/webhooks", json={"webhooks": [hook]})
    rsps.patch(f"{BASE}/api/v2/webhooks/{HOOK_ID}", status=204)
    _secret(rsps)
    rsps.get(f"{BASE}/api/v2/triggers/search", json={"triggers": [trigger]})
    rsps.put(f"{BASE}/api/v2/triggers/360099", json={"trigger": {"id": 360099}})
    ZendeskAdmin(connector).install_webhook(callback_url=CALLBACK)
    calls = sent(rsps)
    assert [(m, p.split("?")[0]) for m, p, _ in calls] == [
        ("GET", "/api/v2/webhooks"),
        ("PATCH", f"/api/v2/webhooks/{HOOK_ID}"),
        ("GET", f"/api/v2/webhooks/{HOOK_ID}/signing_secret"),
        ("GET", "/api/v2/triggers/search"),
        ("PUT", "/api/v2/triggers/360099"),
    ]
    assert calls[1][2] == {"webhook": {"endpoint": CALLBACK}}
    assert calls[4][2] == {"trigger": trigger_spec(
        HOOK_ID, render_template(policy), bot_user_id=777)}


def test_install_dry_run_sends_no_write(
    connector: ZendeskConnector, rsps: responses.RequestsMock
) -> None:
    """--dry-run reads what exists and lists the writes, sending none of them."""
    rsps.get(f"{BASE}/api/v2/webhooks", json={"webhooks": []})
    rsps.get(f"{BASE}/api/v2/triggers/search", json={"triggers": []})
    result = ZendeskAdmin(connector).install_webhook(callback_url=CALLBACK, dry_run=True)
    assert [m for m, _, _ in sent(rsps)] == ["GET", "GET"]
    assert [(w.method, w.path) for w in result.writes] == [
        ("POST", "/api/v2/webhooks"), ("POST", "/api/v2/triggers"),
    ]
    assert result.secret is None


def test_install_refuses_event_webhook_of_same_name(
    connector: ZendeskConnector, rsps: responses.RequestsMock
) -> None:
    """A same-named webhook subscribed to events cannot be reused; the error says what to do."""
    rsps.get(f"{BASE}/api/v2/webhooks", json={"webhooks": [
        {"id": HOOK_ID, "name": "tierdesk", "subscriptions": ["zen:event-type:ticket.created"]},
    ]})
    with pytest.raises(ValueError, match="delete or rename it in Admin Center"):
        ZendeskAdmin(connector).install_webhook(callback_url=CALLBACK)


def test_install_rejects_relative_callback(connector: ZendeskConnector) -> None:
    """A callback URL that is not absolute is refused before any request."""
    with pytest.raises(ValueError, match="--callback-url: expected an https:// URL"):
        ZendeskAdmin(connector).install_webhook(callback_url="/webhooks/zendesk")


# ------------------------------------------------------------------ CLI


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.chdir(tmp_path)
    for key, value in {
        "TIERDESK_ZENDESK_URL": BASE, "TIERDESK_ZENDESK_EMAIL": "bot@acme.example",
        "TIERDESK_ZENDESK_API_TOKEN": "tok", "TIERDESK_ZENDESK_USER_ID": "777",
        "TIERDESK_POLICY": str(HERE / "policy.yaml"),
        "TIERDESK_DATABASE_URL": f"sqlite:///{tmp_path / 'inbox.db'}",
    }.items():
        monkeypatch.setenv(key, value)
    return tmp_path


def test_cli_install_prints_secret_line(env: Path, rsps: responses.RequestsMock) -> None:
    """`tierdesk install zendesk` prints the secret variable line to set."""
    rsps.get(f"{BASE}/api/v2/webhooks", json={"webhooks": []})
    rsps.post(f"{BASE}/api/v2/webhooks", status=201, json={"webhook": {"id": HOOK_ID}})
    _secret(rsps)
    rsps.get(f"{BASE}/api/v2/triggers/search", json={"triggers": []})
    rsps.post(f"{BASE}/api/v2/triggers", status=201, json={"trigger": {"id": 360099}})
    out = CliRunner().invoke(main, ["install", "zendesk", "--callback-url", CALLBACK])
    assert out.exit_code == 0, out.output
    assert out.output.splitlines()[-1] == f"TIERDESK_ZENDESK_WEBHOOK_SECRET={SECRET}"


def test_cli_install_dry_run_prints_requests(env: Path, rsps: responses.RequestsMock) -> None:
    """`--dry-run` prints each write with its JSON body and sends no write."""
    rsps.get(f"{BASE}/api/v2/webhooks", json={"webhooks": []})
    rsps.get(f"{BASE}/api/v2/triggers/search", json={"triggers": []})
    out = CliRunner().invoke(main, ["install", "zendesk", "--callback-url", CALLBACK,
                                    "--dry-run"])
    assert out.exit_code == 0, out.output
    assert "POST /api/v2/webhooks\n{" in out.output and "POST /api/v2/triggers\n{" in out.output
    assert all(c.request.method == "GET" for c in rsps.calls)


def test_cli_install_without_zendesk_settings(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Without Zendesk settings the command says which variables to set."""
    monkeypatch.chdir(tmp_path)
    for key in ("TIERDESK_ZENDESK_URL", "TIERDESK_ZENDESK_SUBDOMAIN"):
        monkeypatch.delenv(key, raising=False)
    out = CliRunner().invoke(main, ["install", "zendesk", "--callback-url", CALLBACK])
    assert out.exit_code == 1
    assert "Zendesk is not configured: set TIERDESK_ZENDESK_SUBDOMAIN" in out.output


def _search(rsps: responses.RequestsMock) -> None:
    rsps.get(f"{BASE}/api/v2/search/count", json={"count": 3})
    rsps.get(f"{BASE}/api/v2/search/export", json={
        "results": [{"id": 42, "result_type": "ticket"}, {"id": 43, "result_type": "ticket"}],
        "meta": {"has_more": True, "after_cursor": "c2"},
    }, match=[responses.matchers.query_param_matcher(
        {"query": "status<solved", "filter[type]": "ticket", "page[size]": "100"})])
    rsps.get(f"{BASE}/api/v2/search/export", json={
        "results": [{"id": 44, "result_type": "ticket"}],
        "meta": {"has_more": False, "after_cursor": None},
    }, match=[responses.matchers.query_param_matcher(
        {"query": "status<solved", "filter[type]": "ticket", "page[size]": "100",
         "page[after]": "c2"})])


def test_cli_backfill_enqueues_each_ticket(env: Path, rsps: responses.RequestsMock) -> None:
    """Backfill pages through search export and queues one event per ticket in the inbox."""
    from webhooks.inbox.store import Inbox

    _search(rsps)
    out = CliRunner().invoke(main, ["backfill", "zendesk", "--query", "status<solved"])
    assert out.exit_code == 0, out.output
    assert out.output.splitlines()[-1] == (
        "Backfill: 3 ticket(s): 3 queued, 0 already queued, 0 skipped.")
    assert "Zendesk tickets" not in out.output  # no stray heading when not on a terminal
    assert len(rsps.calls) == 3
    inbox = Inbox.connect(f"sqlite:///{env / 'inbox.db'}")
    try:
        for ticket in ("42", "43", "44"):
            stored = inbox.events_of("zendesk", ticket)
            assert [(e.event_type, e.payload["ticket_id"]) for e in stored] == [
                ("tierdesk:backfill", ticket)
            ]
    finally:
        inbox.close()


def test_cli_backfill_stopped_by_zendesk_says_how_far_it_got(
    env: Path, rsps: responses.RequestsMock
) -> None:
    """A refusal half-way stops the run with the line `backfill jira` prints too (one body
    for every vendor, webhooks/backfill_command.py): how many were seen and stay queued."""
    rsps.get(f"{BASE}/api/v2/search/count", status=400, json={"error": "InvalidQuery"})
    rsps.get(f"{BASE}/api/v2/search/export", json={
        "results": [{"id": 42, "result_type": "ticket"}],
        "meta": {"has_more": True, "after_cursor": "c2"},
    }, match=[responses.matchers.query_param_matcher(
        {"query": "status<solved", "filter[type]": "ticket", "page[size]": "100"})])
    rsps.get(f"{BASE}/api/v2/search/export", status=400, json={"error": "InvalidCursor"})
    out = CliRunner().invoke(main, ["backfill", "zendesk", "--query", "status<solved"])
    assert out.exit_code == 1, out.output
    # The count failing only costs the progress bar its length; the search's failure stops it.
    assert "backfill stopped after 1 ticket(s):" in out.output
    assert "; 1 were queued and will be processed" in out.output


def test_cli_backfill_dry_run_decides_and_writes_nothing(
    env: Path, rsps: responses.RequestsMock
) -> None:
    """--dry-run reads each ticket, prints what would change, and creates no inbox."""
    _search(rsps)
    for tid, tags in ((42, ["tier-l1"]), (43, []), (44, ["tier-l1", "escalate-l2"])):
        answer = api_ticket(tags)
        answer["ticket"]["id"] = tid
        rsps.get(f"{BASE}/api/v2/tickets/{tid}.json", json=answer)
        rsps.get(f"{BASE}/api/v2/tickets/{tid}/comments.json", json={"comments": []})
    out = CliRunner().invoke(main, ["backfill", "zendesk", "--query", "status<solved",
                                    "--dry-run"])
    assert out.exit_code == 0, out.output
    lines = out.output.splitlines()
    # The same line format as `backfill jira` (connectors/backfill.py): no Python None.
    assert "#42: no change (tier L1)" in lines
    assert "#43: tier - -> L1; tags +tier-l1; assign L1 (group 100)" in lines
    assert ("#44: tier L1 -> L1; tags +tier-docs-missing; missing: Steps to reproduce (missing);"
            " Logs attached (no attachment yet); checklist note") in lines
    assert lines[-1] == (
        "Dry run: 3 ticket(s): 2 would change, 1 unchanged, 0 skipped. Nothing was written."
    )
    assert all(c.request.method == "GET" for c in rsps.calls)
    assert not (env / "inbox.db").exists()


def test_trigger_loop_guard_api_variant() -> None:
    """--loop-guard api excludes updates made through the API (via id 5) instead of the bot."""
    spec = trigger_spec(HOOK_ID, "{}", bot_user_id=None, loop_guard="api")
    assert spec["conditions"]["all"][-1] == {
        "field": "current_via_id", "operator": "is_not", "value": "5",
    }


def test_install_needs_bot_id_for_user_guard(
    policy: Policy, rsps: responses.RequestsMock
) -> None:
    """Without the bot's user id the default loop guard cannot be built: said before any request."""
    from connectors.zendesk.config import ZendeskConfig

    connector = ZendeskConnector(
        ZendeskConfig(base_url=BASE, email="bot@acme.example", api_token="tok"), policy
    )
    with pytest.raises(ValueError, match="set TIERDESK_ZENDESK_USER_ID"):
        ZendeskAdmin(connector).install_webhook(callback_url=CALLBACK)
    assert len(rsps.calls) == 0


def test_backfill_waits_out_rate_limits(
    connector: ZendeskConnector, rsps: responses.RequestsMock
) -> None:
    """A 429 on a search page waits Retry-After and carries on; nothing is queued twice."""
    waits: list[float] = []
    export = f"{BASE}/api/v2/search/export"
    rsps.get(export, status=429, headers={"Retry-After": "3"})
    rsps.get(export, json={"results": [{"id": 42}, {"id": 43}], "meta": {"has_more": False}})
    queued: list[str] = []

    def enqueue(env: Any, payload: Any) -> bool:
        queued.append(str(env.ticket))
        return True

    admin = ZendeskAdmin(connector, sleep=waits.append)
    summary = run_backfill(admin.backfill_items(query="status<solved", run="run-1"),
                           BackfillSummary(), enqueue=enqueue,
                           describe=admin.describe, report=lambda _line: None)
    assert waits == [3.0]
    assert queued == ["42", "43"] and (summary.seen, summary.queued) == (2, 2)


def test_backfill_gives_up_after_repeated_outage(
    connector: ZendeskConnector, rsps: responses.RequestsMock
) -> None:
    """Five 503s in a row stop the backfill with the vendor error (backoff between attempts)."""
    from connectors.base import VendorUnavailable
    from connectors.retry import READ_ATTEMPTS

    waits: list[float] = []
    rsps.get(f"{BASE}/api/v2/search/export", status=503)
    with pytest.raises(VendorUnavailable, match="503"):
        list(ZendeskAdmin(connector, sleep=waits.append).backfill_items(query="x"))
    assert len(rsps.calls) == READ_ATTEMPTS and len(waits) == READ_ATTEMPTS - 1
    assert all(w > 0 for w in waits)


def test_backfill_bodies_distinct_per_run() -> None:
    """Two backfill runs queue the same ticket again (distinct dedupe keys); one run does not."""
    from connectors.zendesk.admin import backfill_body
    from connectors.zendesk.webhook import classify as envelope

    one = envelope(backfill_body(42, "run-1"), {}).delivery_id
    assert one == envelope(backfill_body(42, "run-1"), {}).delivery_id
    assert one != envelope(backfill_body(42, "run-2"), {}).delivery_id
