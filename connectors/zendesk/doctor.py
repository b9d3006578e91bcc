"""`tierdesk doctor` for Zendesk: read-only checks of an account against the settings and policy.

Requests (all GET, except the webhook test, which writes nothing in Zendesk):

    GET  /api/v2/users/me                        credentials and the bot's identity
    GET  /api/v2/ticket_fields, /api/v2/ticket_forms   policy fields exist, usable type, on a form;
                                                 the SLA due field exists, active, date or text
    GET  /api/v2/groups, /api/v2/groups/{id}/memberships   target groups and agents
    GET  /api/v2/organization_fields             entitlement.zendesk_organization_field exists
    GET  /api/v2/webhooks?filter[name_contains]=tierdesk   the webhook: active, endpoint
    GET  /api/v2/triggers/search?query=...       the trigger: active, same template and fields
    POST /api/v2/webhooks/test?webhook_id=ID     Zendesk sends one signed request to the
                                                 receiver: a non-ticket event, which the
                                                 receiver verifies and records as ignored

Unknown custom field ids are accepted by Zendesk without a word (its API ignores what it does
not know, support article 4418443326106), so a typo in `fields.*.zendesk` is caught only here.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from typing import Any

from connectors.base import ConnectorError, CredentialsRejected
from connectors.checks import Check, fail, ok, warn
from connectors.zendesk import due
from connectors.zendesk.admin import (
    TRIGGER_TITLE,
    WEBHOOK_NAME,
    LoopGuard,
    ZendeskAdmin,
    _conditions_equal,
    trigger_spec,
)
from connectors.zendesk.client import CREDENTIALS_FIX
from connectors.zendesk.trigger_body import render_template
from tiering.policy import Policy

V = "zendesk"
#: The name of the SLA due field check.
NAME_DUE = "sla due field"
#: Ticket field types whose value is text (min_length, pattern); any listed type can be read.
TEXT_TYPES = frozenset({"text", "textarea", "regexp", "integer", "decimal"})
CHOICE_TYPES = TEXT_TYPES | frozenset({"tagger", "multiselect", "checkbox", "date"})


def _items(data: Mapping[str, Any], key: str) -> list[Mapping[str, Any]]:
    items = data.get(key)
    return [i for i in items if isinstance(i, Mapping)] if isinstance(items, list) else []


def run_checks(
    admin: ZendeskAdmin, *, callback_url: str | None = None, test_delivery: bool = True
) -> list[Check]:
    """Every Zendesk check, in order; stops after the credentials check if that fails."""
    connector = admin.connector
    config, policy = connector.config, connector.policy
    checks: list[Check] = []
    try:
        me = admin.call("GET", "/api/v2/users/me")
    except CredentialsRejected as exc:
        return [fail(V, "credentials", f"Zendesk answered 401: {exc.vendor_text}",
                     CREDENTIALS_FIX)]
    except ConnectorError as exc:
        return [fail(V, "reachable", str(exc),
                     f"TIERDESK_ZENDESK_URL / _SUBDOMAIN ({config.base_url}): check the address")]
    found = me.get("user")
    user: Mapping[str, Any] = found if isinstance(found, Mapping) else {}
    uid = user.get("id")
    if uid is None:
        # Zendesk answers users/me for an anonymous caller with a user without id.
        return [fail(V, "credentials", "Zendesk treats the request as anonymous",
                     CREDENTIALS_FIX)]
    role = user.get("role")
    checks.append(ok(V, "credentials", f"authenticated as {user.get('name')!r} ({uid}, {role})"))
    setting = "TIERDESK_ZENDESK_USER_ID"
    if config.bot_user_id is None:
        checks.append(fail(V, "bot identity", f"{setting} is not set",
                           f"set {setting}={uid} so tierdesk ignores its own updates"))
    elif int(config.bot_user_id) != int(uid):
        checks.append(fail(V, "bot identity",
                           f"{setting}={config.bot_user_id} but the credentials are {uid}",
                           f"set {setting}={uid}: otherwise tierdesk answers its own writes"))
    else:
        checks.append(ok(V, "bot identity", f"{setting} matches the credentials ({uid})"))
    if role != "admin":
        checks.append(warn(V, "role", f"the user is {role!r}, not admin",
                           "install and doctor need an admin (webhooks and triggers); the worker"
                           " needs an agent"))
    fields = _field_checks(admin, policy, checks)
    if fields is not None:
        _due_field_check(policy, fields, checks)
    _target_checks(admin, policy, checks)
    _organization_field_check(admin, policy, checks)
    hook_id = _webhook_checks(admin, checks, callback_url)
    if hook_id is not None:
        _trigger_check(admin, checks, hook_id)
        if test_delivery:
            _test_delivery(admin, checks, hook_id)
    return checks


def _field_checks(
    admin: ZendeskAdmin, policy: Any, checks: list[Check]
) -> dict[Any, Mapping[str, Any]] | None:
    """The policy's documentation fields; returns the ticket fields read (by id) for the due
    field check, or None when they could not be listed."""
    try:
        fields = {f.get("id"): f for f in _items(admin.read("/api/v2/ticket_fields"),
                                                  "ticket_fields")}
        forms = [f for f in _items(admin.read("/api/v2/ticket_forms"), "ticket_forms")
                 if f.get("active", True)]
    except ConnectorError as exc:
        checks.append(fail(V, "fields", str(exc), "the user must be able to list ticket fields"))
        return None
    text_fields = {
        r.field for reqs in policy.doc.documentation.values() for r in reqs
        if r.min_length is not None or r.pattern is not None
    }
    on_forms = {fid for form in forms for fid in form.get("ticket_field_ids") or ()}
    for name, fid in sorted(policy.zendesk_fields.items()):
        key = f"fields.{name}.zendesk"
        found = fields.get(int(fid))
        if found is None:
            checks.append(fail(V, f"field {name}", f"{key}: {fid} is not a ticket field",
                               f"{key}: use the id Admin Center > Objects and rules > Fields"
                               " shows (Zendesk ignores unknown ids without an error)"))
            continue
        kind = str(found.get("type") or "")
        allowed = TEXT_TYPES if name in text_fields else CHOICE_TYPES
        if not found.get("active", True):
            checks.append(fail(V, f"field {name}", f"{key}: {fid} is inactive",
                               f"{key}: activate the field or use another"))
        elif kind not in allowed:
            checks.append(fail(V, f"field {name}", f"{key}: {fid} is of type {kind}",
                               f"{key}: the documentation rule needs a text field"))
        elif forms and int(fid) not in on_forms:
            checks.append(fail(V, f"field {name}",
                               f"{key}: {fid} ({found.get('title')!r}) is on no active ticket"
                               " form, so agents cannot fill it",
                               f"add field {fid} to the ticket forms in use"))
        else:
            checks.append(ok(V, f"field {name}", f"{fid} ({found.get('title')!r}, {kind})"))
    return fields


def _due_field_check(
    policy: Policy, fields: Mapping[Any, Mapping[str, Any]], checks: list[Check]
) -> None:
    """`sla.due_field.zendesk`, from the ticket fields already listed (no request)."""
    found = due.field(policy)
    spec = policy.sla.spec
    if found is not None and spec is not None and spec.due_field is not None:
        fid = found[0]
        checks.append(due_field_check(fid, spec.due_field.zendesk_type, fields.get(fid)))


def due_field_check(fid: int, declared: str, found: Mapping[str, Any] | None) -> Check:
    """Whether ticket field `fid` (as GET /api/v2/ticket_fields lists it, or None) can hold the
    due time written as `declared` (`sla.due_field.zendesk_type`: date or text).

    Ticket Fields API (developer.zendesk.com/api-reference/ticketing/tickets/ticket_fields/):
    `active` "Whether this field is available"; `type` is the field type (text, textarea,
    checkbox, date, integer, decimal, regexp, tagger, multiselect, ...). connectors/zendesk/due.py
    writes `YYYY-MM-DD` to a date field (a datetime is refused with 422, facetoe/zenpy #425) and
    the UTC minute as text to a text field. Zendesk ignores an unknown field id without an error
    (support article 4418443326106), so a wrong id would go unnoticed but for this check.
    """
    key = "sla.due_field.zendesk"
    if found is None:
        return fail(V, NAME_DUE, f"{key}: {fid} is not a ticket field",
                    f"{key}: the id of a date ticket field (or a text one, with zendesk_type:"
                    " text), as Admin Center > Objects and rules > Tickets > Fields shows"
                    " (Zendesk ignores unknown ids without an error)")
    kind = str(found.get("type") or "")
    label = f"{fid} ({found.get('title')!r}, {kind})"
    if found.get("active") is False:
        return fail(V, NAME_DUE, f"{key}: {label} is inactive, so agents do not see the due"
                    " time", f"{key}: activate field {fid} (Admin Center > Objects and rules >"
                    " Tickets > Fields), or name an active date field")
    if kind not in ("date", "text"):
        return fail(V, NAME_DUE, f"{key}: {label} is neither a date nor a text field",
                    f"{key}: the id of a date ticket field (or a text one, with zendesk_type:"
                    " text)")
    if kind != declared:
        why = ("Zendesk refuses the due time written as text to a date field (422)"
               if kind == "date" else "the due time would be written as a bare date")
        return fail(V, NAME_DUE, f"{key}: {label} is a {kind} field but sla.due_field."
                    f"zendesk_type is {declared}: {why}",
                    f"set sla.due_field.zendesk_type: {kind}")
    return ok(V, NAME_DUE, f"{label}, active")


def _target_checks(admin: ZendeskAdmin, policy: Any, checks: list[Check]) -> None:
    try:
        groups = {g.get("id"): g for g in _items(admin.read("/api/v2/groups"), "groups")}
    except ConnectorError as exc:
        checks.append(fail(V, "groups", str(exc), "the user must be able to list groups"))
        return
    for name, target in sorted(policy.targets.items()):
        zd = target.zendesk
        if zd is None:
            continue
        if zd.group_id is not None:
            where = f"targets.{name}.zendesk.group_id"
            if zd.group_id not in groups or groups[zd.group_id].get("deleted"):
                checks.append(fail(V, f"target {name}", f"{where}: no group {zd.group_id}",
                                   f"{where}: the id of an existing group (Admin Center > People"
                                   " > Groups)"))
                continue
            checks.append(ok(V, f"target {name}",
                             f"group {zd.group_id} ({groups[zd.group_id].get('name')!r})"))
        if zd.assignee_id is not None:
            where = f"targets.{name}.zendesk.assignee_id"
            if zd.group_id is None:
                checks.append(warn(V, f"target {name} agent",
                                   f"{where}: {zd.assignee_id} without a group is not checked"))
                continue
            try:
                members = _items(
                    admin.read(f"/api/v2/groups/{zd.group_id}/memberships"), "group_memberships"
                )
            except ConnectorError as exc:
                checks.append(fail(V, f"target {name} agent", str(exc),
                                   "the user must be able to read group memberships"))
                continue
            if zd.assignee_id in {m.get("user_id") for m in members}:
                checks.append(ok(V, f"target {name} agent",
                                 f"{zd.assignee_id} is a member of group {zd.group_id}"))
            else:
                checks.append(fail(V, f"target {name} agent",
                                   f"{where}: {zd.assignee_id} is not a member of group"
                                   f" {zd.group_id} (Zendesk refuses such an assignee: 422)",
                                   f"{where}: add the agent to the group, or name a member"))


def _organization_field_check(admin: ZendeskAdmin, policy: Any, checks: list[Check]) -> None:
    key = policy.doc.entitlement.zendesk_organization_field
    if not key:
        return
    where = "entitlement.zendesk_organization_field"
    try:
        fields = _items(admin.read("/api/v2/organization_fields"), "organization_fields")
    except ConnectorError as exc:
        checks.append(fail(V, "organization field", str(exc),
                           "the user must be able to list organization fields"))
        return
    keys = {str(f.get("key")) for f in fields}
    if key in keys:
        checks.append(ok(V, "organization field", f"{key!r} exists"))
    else:
        checks.append(fail(V, "organization field", f"{where}: no organization field {key!r}",
                           f"{where}: one of {', '.join(sorted(keys)) or '(none defined)'}"))


def _webhook_checks(
    admin: ZendeskAdmin, checks: list[Check], callback_url: str | None
) -> str | None:
    try:
        listed = admin.read("/api/v2/webhooks", params={"filter[name_contains]": WEBHOOK_NAME})
    except ConnectorError as exc:
        checks.append(fail(V, "webhook", f"cannot list webhooks: {exc}",
                           "doctor needs an admin's credentials to read webhooks and triggers"))
        return None
    hook = next((h for h in _items(listed, "webhooks") if h.get("name") == WEBHOOK_NAME), None)
    if hook is None:
        checks.append(fail(V, "webhook", f"no webhook named {WEBHOOK_NAME!r}",
                           "run `tierdesk install zendesk --callback-url URL`"))
        return None
    endpoint = hook.get("endpoint")
    if hook.get("status") != "active":
        checks.append(fail(V, "webhook", f"tierdesk's webhook is {hook.get('status')}",
                           "activate it (Admin Center > Apps and integrations > Webhooks)"))
    elif callback_url and endpoint != callback_url:
        checks.append(fail(V, "webhook", f"tierdesk's webhook calls {endpoint}",
                           f"rerun `tierdesk install zendesk --callback-url {callback_url}`"))
    else:
        checks.append(ok(V, "webhook", f"active, calls {endpoint}"))
    return str(hook.get("id"))


def _trigger_check(admin: ZendeskAdmin, checks: list[Check], hook_id: str) -> None:
    connector = admin.connector
    try:
        found = admin.read("/api/v2/triggers/search", params={"query": TRIGGER_TITLE})
    except ConnectorError as exc:
        checks.append(fail(V, "trigger", str(exc), "doctor needs an admin to read triggers"))
        return
    trigger = next((t for t in _items(found, "triggers") if t.get("title") == TRIGGER_TITLE), None)
    if trigger is None:
        checks.append(fail(V, "trigger", f"no trigger titled {TRIGGER_TITLE!r}",
                           "run `tierdesk install zendesk --callback-url URL`"))
        return
    body = render_template(connector.policy)
    rerun = "rerun `tierdesk install zendesk` (the policy changed since it was installed)"
    if trigger.get("active") is not True:
        checks.append(fail(V, "trigger", "tierdesk's trigger is inactive",
                           "activate it, or rerun `tierdesk install zendesk`"))
        return
    actions = trigger.get("actions")
    sent = None
    for action in actions if isinstance(actions, list) else ():
        if isinstance(action, Mapping) and action.get("field") == "notification_webhook":
            sent = action.get("value")
    if not isinstance(sent, list) or len(sent) != 2 or str(sent[0]) != hook_id:
        checks.append(fail(V, "trigger", "the trigger does not call tierdesk's webhook", rerun))
        return
    if sent[1] != body:
        checks.append(fail(V, "trigger", _template_difference(sent[1], body), rerun))
        return
    guards: tuple[LoopGuard, ...] = ("user", "api")
    for guard in guards:
        try:
            wanted = trigger_spec(hook_id, body, bot_user_id=connector.config.bot_user_id,
                                  loop_guard=guard,
                                  through_solved=connector.policy.sla.enabled)
        except ValueError:
            continue
        if _conditions_equal(trigger.get("conditions"), wanted["conditions"]):
            checks.append(ok(V, "trigger", "active, current template and fields"))
            return
    checks.append(fail(V, "trigger", "the trigger's conditions differ (loop guard or bot id)",
                       rerun))


def _template_difference(current: Any, wanted: str) -> str:
    """What differs between the installed body template and the current policy's."""
    try:
        have, want = json.loads(str(current)), json.loads(wanted)
    except ValueError:
        return "the trigger's body is not tierdesk's template"
    if have.get("tierdesk") != want.get("tierdesk"):
        return f"template version {have.get('tierdesk')}, current {want.get('tierdesk')}"
    fields_have = set((have.get("fields") or {}).keys())
    fields_want = set((want.get("fields") or {}).keys())
    if fields_have != fields_want:
        missing = sorted(fields_want - fields_have)
        extra = sorted(fields_have - fields_want)
        return ("the trigger's field list differs from the policy:"
                + (f" missing {', '.join(missing)}" if missing else "")
                + (f" no longer used {', '.join(extra)}" if extra else ""))
    return "the trigger's body differs from the current policy's template"


def _test_delivery(admin: ZendeskAdmin, checks: list[Check], hook_id: str) -> None:
    """Zendesk sends one signed request to the receiver (a non-ticket event, recorded as
    ignored): a 2xx proves the receiver is reachable from Zendesk and its secret matches."""
    payload = {
        "type": "zen:event-type:doctor.test",
        "id": f"tierdesk-doctor-{uuid.uuid4()}",
        "time": "2026-01-01T00:00:00Z",
        "detail": {},
        "event": {},
    }
    try:
        answer = admin.call(
            "POST", "/api/v2/webhooks/test", params={"webhook_id": hook_id},
            body={"request": {"http_method": "POST", "request_format": "json",
                              "payload": json.dumps(payload)}},
        )
    except ConnectorError as exc:
        checks.append(fail(V, "test delivery", str(exc),
                           "doctor needs an admin to send a webhook test"))
        return
    response = answer.get("response") if isinstance(answer.get("response"), Mapping) else {}
    status = (response or {}).get("status")
    if isinstance(status, int) and 200 <= status < 300:
        checks.append(ok(V, "test delivery", f"the receiver verified it and answered {status}"))
    elif status == 401:
        checks.append(fail(V, "test delivery", "the receiver refused the signature (401)",
                           "TIERDESK_ZENDESK_WEBHOOK_SECRET: set the webhook's signing secret"
                           " (rerun `tierdesk install zendesk` to print it)"))
    else:
        checks.append(fail(V, "test delivery",
                           f"the receiver answered {status}:"
                           f" {str((response or {}).get('body'))[:200]}",
                           "check that the webhook's endpoint reaches `tierdesk serve`"))
