"""Zendesk signing-secret rotation by replacement: a second webhook, then the trigger moves to it.

Zendesk's own reset (`POST /api/v2/webhooks/{id}/signing_secret`) makes the new secret itself
and signs with it at once, so the receiver cannot know it in advance and every delivery until
`serve` restarts gets 401. Instead, a second webhook carries the new secret while the old one
keeps signing, and the receiver accepts both (TIERDESK_ZENDESK_WEBHOOK_SECRET and _PREVIOUS)
before the trigger is moved:

    stage       on Zendesk                                       `--rotate-secret` does
    none        "tierdesk"; trigger -> it                        create "tierdesk (rotation)",
                                                                 read both secrets -> started
    started     both; trigger -> old                             if the settings hold new and
                                                                 old: PUT trigger -> new, then
                                                                 as below; else -> waiting
    switched    both; trigger -> new                             DELETE old, PATCH name
    renaming    "tierdesk (rotation)" only; trigger -> it        PATCH name -> finished
    finished    "tierdesk" only, settings still hold _PREVIOUS   nothing (drop _PREVIOUS)

The stage is read from Zendesk on every run (the webhooks' names and the trigger's action), so
an interrupted run is resumed by running the same command again, and nothing is written twice.
At every moment each trigger calls exactly one webhook, and the receiver accepts that
webhook's secret: deliveries signed with the old secret (still being delivered or retried) pass
as the previous one until the admin removes it.

The public reply trigger (connectors/zendesk/reply_trigger.py), when there is one, moves too,
and first: it is PUT to the new webhook before the main trigger, so the main trigger's action
stays the stage marker (a run interrupted between the two PUTs is still "started", and the
rerun's PUT of the reply trigger finds nothing to change). Before the old webhook is deleted,
a reply trigger still calling it (whatever put it there) is moved as well, so no trigger is
ever left calling a deleted webhook.

Zendesk documents each call in the Webhooks API reference
(https://developer.zendesk.com/api-reference/event-connectors/webhooks/webhooks/): "Create or
Clone Webhook" (POST /api/v2/webhooks), "Show Webhook Signing Secret" (GET .../signing_secret),
"Patch Webhook" (PATCH /api/v2/webhooks/{id}; zenpy 2.0.57 `WebhooksApi.patch`) and "Delete
Webhook" (DELETE /api/v2/webhooks/{id}; go-zendesk `zendesk/webhook.go` `DeleteWebhook`); the
trigger is PUT whole ("Update Trigger"). Whether Zendesk refuses to delete a webhook that a
trigger still calls, and the PATCH's content type, are not confirmed (connectors/zendesk/
README.md): the order here never deletes a webhook in use.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from connectors.zendesk.admin import (
    ROTATION_NAME,
    SECRET_VARIABLE,
    TRIGGER_TITLE,
    WEBHOOK_NAME,
    InstallResult,
    LoopGuard,
    ZendeskAdmin,
    hook_changes,
    trigger_webhook_ids,
    webhook_spec,
)

Stage = Literal["started", "waiting", "finished"]
PREVIOUS_VARIABLE = f"{SECRET_VARIABLE}_PREVIOUS"
GUIDE = 'admin guide, "Rotating a webhook secret"'


class RotationError(ValueError):
    """The rotation cannot go on from what Zendesk or the settings hold; the text says why."""


class RotationNotReady(RotationError):
    """Step 1 is done but the settings do not yet hold both secrets; `result` says which."""

    def __init__(self, message: str, result: InstallResult) -> None:
        super().__init__(message)
        self.result = result


def rotate(
    admin: ZendeskAdmin,
    *,
    callback_url: str,
    dry_run: bool,
    loop_guard: LoopGuard,
    secret: str | None,
    previous_secret: str | None,
) -> InstallResult:
    """Run the next step(s) of the rotation from the stage Zendesk is in (module docstring).

    `secret` and `previous_secret` are the settings' TIERDESK_ZENDESK_WEBHOOK_SECRET and
    _PREVIOUS, the values `serve` must be running with. Reads: 3 (webhooks, trigger, reply
    trigger) plus the signing secrets needed; writes: 1 to start (POST), 3 to finish (PUT
    trigger, DELETE, PATCH), plus 1 PUT of the public reply trigger when there is one.
    """
    result = InstallResult(dry_run=dry_run)
    write = admin.writer(result)
    old, new = admin.find_webhooks()
    trigger = admin.find_trigger()
    if trigger is None:
        raise RotationError(
            f"Zendesk has no trigger titled {TRIGGER_TITLE!r}, so there is nothing to rotate:"
            " run `tierdesk install zendesk --callback-url ...` without --rotate-secret first"
        )
    result.trigger_id = str(trigger.get("id"))
    reply = admin.find_reply_trigger()
    result.reply_trigger_id = str(reply.get("id")) if reply is not None else None
    calls = trigger_webhook_ids(trigger)
    target = calls[0] if len(calls) == 1 else None
    old_id = str(old["id"]) if old is not None else None
    new_id = str(new["id"]) if new is not None else None
    if target is None or target not in {old_id, new_id}:
        raise RotationError(
            f"the trigger {result.trigger_id} ({TRIGGER_TITLE!r}) calls {calls or 'no webhook'},"
            f" not tierdesk's webhook ({old_id or '-'}) or its replacement ({new_id or '-'}):"
            " run `tierdesk install zendesk` without --rotate-secret to repair it, then rotate"
        )
    result.old_webhook_id = old_id

    if new is None:  # stage none: start (or a rotation has just finished)
        assert old is not None and old_id is not None  # the trigger calls it
        admin.check_subscription(old)
        result.webhook_id = old_id
        if previous_secret:
            current = admin.signing_secret(old_id)
            if current is not None and current == secret:
                result.rotation = "finished"
                result.secret = current
                return result
            raise RotationError(
                f"{PREVIOUS_VARIABLE} is set, so an earlier rotation's overlap is still open:"
                f" remove it, restart tierdesk serve, then run --rotate-secret again ({GUIDE})"
            )
        spec = dict(webhook_spec(callback_url), name=ROTATION_NAME)
        created = write("POST", "/api/v2/webhooks", {"webhook": spec})
        made = created.get("webhook")
        if not dry_run:
            if not isinstance(made, Mapping) or made.get("id") is None:
                raise RotationError(f"Zendesk created the webhook but returned no id: {created!r}")
            result.webhook_id = str(made["id"])
            result.secret = admin.signing_secret(result.webhook_id)
            result.previous_secret = admin.signing_secret(old_id)
        result.rotation = "started"
        return result

    assert new_id is not None
    admin.check_subscription(new)
    result.webhook_id = new_id
    if target == old_id:  # stage started: move the trigger once the receiver takes both
        result.secret = admin.signing_secret(new_id)
        result.previous_secret = admin.signing_secret(str(old_id))
        if not (result.secret and secret == result.secret
                and previous_secret == result.previous_secret):
            result.rotation = "waiting"
            raise RotationNotReady(
                f"the receiver does not accept the new webhook's secret yet: set"
                f" {SECRET_VARIABLE} to the new secret and {PREVIOUS_VARIABLE} to the old one"
                " (printed below), restart tierdesk serve, then run this command again with"
                " those settings",
                result,
            )
        if reply is not None:  # first: the main trigger's action is the stage marker
            admin.sync_reply_trigger(result, write, new_id, loop_guard=loop_guard, trigger=reply)
            reply = None
        admin.sync_trigger(result, write, new_id, loop_guard=loop_guard, trigger=trigger)

    # stage switched / renaming: the trigger calls the new webhook; retire the old one.
    if reply is not None and old_id is not None and old_id in trigger_webhook_ids(reply):
        admin.sync_reply_trigger(result, write, new_id, loop_guard=loop_guard, trigger=reply)
    if old_id is not None:
        write("DELETE", f"/api/v2/webhooks/{old_id}")
    changes: dict[str, Any] = dict(hook_changes(new, webhook_spec(callback_url)),
                                   name=WEBHOOK_NAME)
    write("PATCH", f"/api/v2/webhooks/{new_id}", {"webhook": changes})
    result.rotation = "finished"
    return result
