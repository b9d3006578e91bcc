"""`install zendesk --rotate-secret`: the rotation by replacement, step by step, with the exact
requests of each stage (connectors/zendesk/rotation.py)."""

from __future__ import annotations

from typing import Any

import pytest
import responses
from responses import matchers

from connectors.zendesk import ZendeskConnector
from connectors.zendesk.admin import (
    ROTATION_NAME,
    TRIGGER_TITLE,
    WEBHOOK_NAME,
    ZendeskAdmin,
    loop_guard_condition,
    trigger_spec,
    webhook_spec,
)
from connectors.zendesk.reply_trigger import REPLY_TRIGGER_TITLE, reply_trigger_spec
from connectors.zendesk.rotation import RotationError, RotationNotReady
from connectors.zendesk.trigger_body import render_template
from tiering import Policy

from .conftest import BASE, sent

CALLBACK = "https://tierdesk.example.com/webhooks/zendesk"
OLD, NEW = "01OLDHOOK000000000000000000", "01NEWHOOK000000000000000000"
OLD_SECRET, NEW_SECRET = "old-secret-" + "o" * 30, "new-secret-" + "n" * 30
TRIGGER_ID = 360099
REPLY_ID = 360100
REPLY_SEARCH = ("GET", "/api/v2/triggers/search?query=tierdesk+%28public+reply%29", None)


def _hook(hook_id: str, name: str) -> dict[str, Any]:
    return webhook_spec(CALLBACK) | {"id": hook_id, "name": name}


def _trigger(policy: Policy, hook_id: str) -> dict[str, Any]:
    return trigger_spec(hook_id, render_template(policy), bot_user_id=777) | {"id": TRIGGER_ID}


def _reply(policy: Policy, hook_id: str) -> dict[str, Any]:
    return _reply_spec(policy, hook_id) | {"id": REPLY_ID}


def _reply_spec(policy: Policy, hook_id: str) -> dict[str, Any]:
    return reply_trigger_spec(hook_id, render_template(policy, reply=True),
                              loop_guard=loop_guard_condition(777, "user"))


def _account(rsps: responses.RequestsMock, policy: Policy, *, hooks: list[dict[str, Any]],
             calls: str, reply_calls: str | None = None) -> None:
    """Zendesk holding `hooks` and the trigger calling `calls` (and the public reply trigger
    calling `reply_calls`, if given); both signing secrets readable."""
    rsps.get(f"{BASE}/api/v2/webhooks", json={"webhooks": hooks})
    rsps.get(f"{BASE}/api/v2/triggers/search", json={"triggers": [_trigger(policy, calls)]},
             match=[matchers.query_param_matcher({"query": TRIGGER_TITLE})])
    replies = [_reply(policy, reply_calls)] if reply_calls is not None else []
    rsps.get(f"{BASE}/api/v2/triggers/search", json={"triggers": replies},
             match=[matchers.query_param_matcher({"query": REPLY_TRIGGER_TITLE})])
    for hook_id, secret in ((OLD, OLD_SECRET), (NEW, NEW_SECRET)):
        rsps.get(f"{BASE}/api/v2/webhooks/{hook_id}/signing_secret",
                 json={"signing_secret": {"algorithm": "SHA256", "secret": secret}})


def _rotate(connector: ZendeskConnector, **kw: Any) -> Any:
    return ZendeskAdmin(connector).install_webhook(callback_url=CALLBACK, rotate_secret=True,
                                                   **kw)


def test_first_run_creates_the_replacement_and_changes_nothing_else(
    connector: ZendeskConnector, policy: Policy, rsps: responses.RequestsMock
) -> None:
    """Step 1: one POST (a second webhook, named for the rotation) and the two secrets read;
    the trigger and the old webhook are left alone, so the old secret keeps signing."""
    _account(rsps, policy, hooks=[_hook(OLD, WEBHOOK_NAME)], calls=OLD)
    rsps.post(f"{BASE}/api/v2/webhooks", status=201, json={"webhook": {"id": NEW}})
    result = _rotate(connector, secret=OLD_SECRET)
    assert sent(rsps) == [
        ("GET", "/api/v2/webhooks?filter%5Bname_contains%5D=tierdesk", None),
        ("GET", "/api/v2/triggers/search?query=tierdesk%3A+evaluate+ticket+tiers", None),
        REPLY_SEARCH,
        ("POST", "/api/v2/webhooks", {"webhook": webhook_spec(CALLBACK) | {
            "name": ROTATION_NAME}}),
        ("GET", f"/api/v2/webhooks/{NEW}/signing_secret", None),
        ("GET", f"/api/v2/webhooks/{OLD}/signing_secret", None),
    ]
    assert (result.rotation, result.webhook_id, result.old_webhook_id) == ("started", NEW, OLD)
    assert (result.secret, result.previous_secret) == (NEW_SECRET, OLD_SECRET)


def test_second_run_waits_until_the_settings_hold_both_secrets(
    connector: ZendeskConnector, policy: Policy, rsps: responses.RequestsMock
) -> None:
    """Before the receiver has both secrets the trigger is not moved: no write, and the error
    carries the two values to set."""
    _account(rsps, policy, hooks=[_hook(OLD, WEBHOOK_NAME), _hook(NEW, ROTATION_NAME)],
             calls=OLD)
    with pytest.raises(RotationNotReady, match="does not accept the new webhook") as caught:
        _rotate(connector, secret=OLD_SECRET)
    assert [m for m, _, _ in sent(rsps)] == ["GET"] * 5
    assert (caught.value.result.secret, caught.value.result.previous_secret) == (
        NEW_SECRET, OLD_SECRET)


def test_second_run_moves_the_trigger_then_retires_the_old_webhook(
    connector: ZendeskConnector, policy: Policy, rsps: responses.RequestsMock
) -> None:
    """With SECRET=new and SECRET_PREVIOUS=old: the trigger's action is pointed at the new
    webhook first, only then is the old one deleted and the new one renamed."""
    _account(rsps, policy, hooks=[_hook(OLD, WEBHOOK_NAME), _hook(NEW, ROTATION_NAME)],
             calls=OLD)
    rsps.put(f"{BASE}/api/v2/triggers/{TRIGGER_ID}", json={"trigger": {"id": TRIGGER_ID}})
    rsps.delete(f"{BASE}/api/v2/webhooks/{OLD}", status=204)
    rsps.patch(f"{BASE}/api/v2/webhooks/{NEW}", status=204)
    result = _rotate(connector, secret=NEW_SECRET, previous_secret=OLD_SECRET)
    writes = [(m, p, b) for m, p, b in sent(rsps) if m != "GET"]
    assert writes == [
        ("PUT", f"/api/v2/triggers/{TRIGGER_ID}", {"trigger": trigger_spec(
            NEW, render_template(policy), bot_user_id=777)}),
        ("DELETE", f"/api/v2/webhooks/{OLD}", None),
        ("PATCH", f"/api/v2/webhooks/{NEW}", {"webhook": {"name": WEBHOOK_NAME}}),
    ]
    assert len(sent(rsps)) == 8  # 5 reads, 3 writes
    assert (result.rotation, result.webhook_id) == ("finished", NEW)


@pytest.mark.parametrize(
    ("hooks", "expected"),
    [
        # crashed after the PUT: the trigger already calls the new webhook
        ([(OLD, WEBHOOK_NAME), (NEW, ROTATION_NAME)],
         [("DELETE", f"/api/v2/webhooks/{OLD}"), ("PATCH", f"/api/v2/webhooks/{NEW}")]),
        # crashed after the DELETE: only the rename is left
        ([(NEW, ROTATION_NAME)], [("PATCH", f"/api/v2/webhooks/{NEW}")]),
    ],
)
def test_a_rerun_resumes_an_interrupted_finish(
    connector: ZendeskConnector, policy: Policy, rsps: responses.RequestsMock,
    hooks: list[tuple[str, str]], expected: list[tuple[str, str]],
) -> None:
    """Rerunning after a crash sends only the writes not yet done (no second PUT)."""
    _account(rsps, policy, hooks=[_hook(i, n) for i, n in hooks], calls=NEW)
    rsps.delete(f"{BASE}/api/v2/webhooks/{OLD}", status=204)
    rsps.patch(f"{BASE}/api/v2/webhooks/{NEW}", status=204)
    result = _rotate(connector, secret=NEW_SECRET, previous_secret=OLD_SECRET)
    assert [(m, p) for m, p, _ in sent(rsps) if m != "GET"] == expected
    assert result.rotation == "finished"


def test_a_rerun_after_the_rotation_writes_nothing_and_says_it_is_finished(
    connector: ZendeskConnector, policy: Policy, rsps: responses.RequestsMock
) -> None:
    """One webhook, signing with the settings' secret, _PREVIOUS still set: finished, no write
    (a second rotation is not started by accident)."""
    _account(rsps, policy, hooks=[_hook(NEW, WEBHOOK_NAME)], calls=NEW)
    result = _rotate(connector, secret=NEW_SECRET, previous_secret=OLD_SECRET)
    assert [m for m, _, _ in sent(rsps)] == ["GET"] * 4
    assert (result.rotation, result.writes) == ("finished", [])


def test_a_new_rotation_waits_for_the_last_overlap_to_close(
    connector: ZendeskConnector, policy: Policy, rsps: responses.RequestsMock
) -> None:
    """_PREVIOUS set but not matching a finished rotation: refused, nothing written."""
    _account(rsps, policy, hooks=[_hook(OLD, WEBHOOK_NAME)], calls=OLD)
    with pytest.raises(RotationError, match="overlap is still open"):
        _rotate(connector, secret="something-else", previous_secret="older")
    assert all(m == "GET" for m, _, _ in sent(rsps))


def test_a_trigger_calling_another_webhook_stops_the_rotation(
    connector: ZendeskConnector, policy: Policy, rsps: responses.RequestsMock
) -> None:
    """A trigger edited by hand to call some other webhook: refused with the fix, no write."""
    _account(rsps, policy, hooks=[_hook(OLD, WEBHOOK_NAME)], calls="01SOMEONEELSE")
    with pytest.raises(RotationError, match="without --rotate-secret to repair"):
        _rotate(connector, secret=OLD_SECRET)
    assert all(m == "GET" for m, _, _ in sent(rsps))


def test_plain_install_leaves_a_rotation_in_progress_alone(
    connector: ZendeskConnector, policy: Policy, rsps: responses.RequestsMock
) -> None:
    """`install zendesk` without --rotate-secret during a rotation writes nothing and says how
    to continue (it would otherwise point the trigger back at the old webhook)."""
    _account(rsps, policy, hooks=[_hook(OLD, WEBHOOK_NAME), _hook(NEW, ROTATION_NAME)],
             calls=NEW)
    with pytest.raises(ValueError, match="rotation is in progress"):
        ZendeskAdmin(connector).install_webhook(callback_url=CALLBACK)
    assert [m for m, _, _ in sent(rsps)] == ["GET"]


def test_dry_run_shows_the_next_step_and_sends_no_write(
    connector: ZendeskConnector, policy: Policy, rsps: responses.RequestsMock
) -> None:
    """--dry-run: the reads run, the POST of step 1 is listed, nothing is written."""
    _account(rsps, policy, hooks=[_hook(OLD, WEBHOOK_NAME)], calls=OLD)
    result = _rotate(connector, secret=OLD_SECRET, dry_run=True)
    assert [(r.method, r.path) for r in result.writes] == [("POST", "/api/v2/webhooks")]
    assert all(m == "GET" for m, _, _ in sent(rsps))


# ---------------------------------------------------------------- with the public reply trigger


def _finish_mocks(rsps: responses.RequestsMock) -> None:
    rsps.put(f"{BASE}/api/v2/triggers/{REPLY_ID}", json={"trigger": {"id": REPLY_ID}})
    rsps.put(f"{BASE}/api/v2/triggers/{TRIGGER_ID}", json={"trigger": {"id": TRIGGER_ID}})
    rsps.delete(f"{BASE}/api/v2/webhooks/{OLD}", status=204)
    rsps.patch(f"{BASE}/api/v2/webhooks/{NEW}", status=204)


def test_the_reply_trigger_moves_first_then_the_main_trigger_then_the_old_webhook_goes(
    connector: ZendeskConnector, policy: Policy, rsps: responses.RequestsMock
) -> None:
    """Both triggers move to the new webhook, the reply trigger first (the main trigger's
    action stays the stage marker), and only then is the old webhook deleted."""
    _account(rsps, policy, hooks=[_hook(OLD, WEBHOOK_NAME), _hook(NEW, ROTATION_NAME)],
             calls=OLD, reply_calls=OLD)
    _finish_mocks(rsps)
    result = _rotate(connector, secret=NEW_SECRET, previous_secret=OLD_SECRET)
    assert [(m, p, b) for m, p, b in sent(rsps) if m != "GET"] == [
        ("PUT", f"/api/v2/triggers/{REPLY_ID}", {"trigger": _reply_spec(policy, NEW)}),
        ("PUT", f"/api/v2/triggers/{TRIGGER_ID}", {"trigger": trigger_spec(
            NEW, render_template(policy), bot_user_id=777)}),
        ("DELETE", f"/api/v2/webhooks/{OLD}", None),
        ("PATCH", f"/api/v2/webhooks/{NEW}", {"webhook": {"name": WEBHOOK_NAME}}),
    ]
    assert (result.rotation, result.reply_trigger_id) == ("finished", str(REPLY_ID))


@pytest.mark.parametrize(
    ("hooks", "calls", "reply_calls", "expected"),
    [
        # crashed after the reply trigger's PUT: still "started" (the main trigger calls old)
        ([(OLD, WEBHOOK_NAME), (NEW, ROTATION_NAME)], OLD, NEW,
         [("PUT", f"/api/v2/triggers/{TRIGGER_ID}"), ("DELETE", f"/api/v2/webhooks/{OLD}"),
          ("PATCH", f"/api/v2/webhooks/{NEW}")]),
        # crashed after the main trigger's PUT
        ([(OLD, WEBHOOK_NAME), (NEW, ROTATION_NAME)], NEW, NEW,
         [("DELETE", f"/api/v2/webhooks/{OLD}"), ("PATCH", f"/api/v2/webhooks/{NEW}")]),
        # crashed after the DELETE
        ([(NEW, ROTATION_NAME)], NEW, NEW, [("PATCH", f"/api/v2/webhooks/{NEW}")]),
        # the main trigger moved but the reply trigger still calls the old webhook (say, an
        # earlier tierdesk version rotated it): it is moved before the DELETE
        ([(OLD, WEBHOOK_NAME), (NEW, ROTATION_NAME)], NEW, OLD,
         [("PUT", f"/api/v2/triggers/{REPLY_ID}"), ("DELETE", f"/api/v2/webhooks/{OLD}"),
          ("PATCH", f"/api/v2/webhooks/{NEW}")]),
    ],
)
def test_a_rerun_resumes_each_crash_point_with_two_triggers(
    connector: ZendeskConnector, policy: Policy, rsps: responses.RequestsMock,
    hooks: list[tuple[str, str]], calls: str, reply_calls: str,
    expected: list[tuple[str, str]],
) -> None:
    """After a crash at any point of the finish, the rerun sends only the writes left."""
    _account(rsps, policy, hooks=[_hook(i, n) for i, n in hooks], calls=calls,
             reply_calls=reply_calls)
    _finish_mocks(rsps)
    result = _rotate(connector, secret=NEW_SECRET, previous_secret=OLD_SECRET)
    assert [(m, p) for m, p, _ in sent(rsps) if m != "GET"] == expected
    assert result.rotation == "finished"


def test_a_rerun_after_a_rotation_with_two_triggers_writes_nothing(
    connector: ZendeskConnector, policy: Policy, rsps: responses.RequestsMock
) -> None:
    """Finished with both triggers on the new webhook: a rerun reads and writes nothing."""
    _account(rsps, policy, hooks=[_hook(NEW, WEBHOOK_NAME)], calls=NEW, reply_calls=NEW)
    result = _rotate(connector, secret=NEW_SECRET, previous_secret=OLD_SECRET)
    assert [m for m, _, _ in sent(rsps)] == ["GET"] * 4
    assert (result.rotation, result.writes) == ("finished", [])


def test_waiting_for_the_secrets_moves_neither_trigger(
    connector: ZendeskConnector, policy: Policy, rsps: responses.RequestsMock
) -> None:
    """Before the receiver holds both secrets, neither trigger is moved."""
    _account(rsps, policy, hooks=[_hook(OLD, WEBHOOK_NAME), _hook(NEW, ROTATION_NAME)],
             calls=OLD, reply_calls=OLD)
    with pytest.raises(RotationNotReady):
        _rotate(connector, secret=OLD_SECRET)
    assert all(m == "GET" for m, _, _ in sent(rsps))
