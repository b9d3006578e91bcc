"""Zendesk administration: install tierdesk's webhook and trigger, and list tickets to backfill.

`ZendeskAdmin.install_webhook(...)` is idempotent and matches by name: the webhook named
`WEBHOOK_NAME` and the trigger titled `TRIGGER_TITLE` are created when absent, updated when they
differ from what the current policy needs, and left alone otherwise. A secret rotation replaces
the webhook (connectors/zendesk/rotation.py). Zendesk API documents used (developer.zendesk.com):

- Webhooks: `GET /api/v2/webhooks?filter[name_contains]=`, `POST /api/v2/webhooks`,
  `PATCH /api/v2/webhooks/{id}`, `DELETE /api/v2/webhooks/{id}` (rotation only),
  `GET /api/v2/webhooks/{id}/signing_secret` (Webhooks API reference,
  https://developer.zendesk.com/api-reference/event-connectors/webhooks/webhooks/; go-zendesk
  `zendesk/webhook.go` and zenpy 2.0.57 `WebhooksApi` use the same paths). A trigger can only
  call a webhook subscribed to `conditional_ticket_events` (../shared/vendor/zendesk/zendesk_docs/
  create_webhook_request_conditional_ticket_events.json); the subscription cannot change later.
- Triggers: `GET /api/v2/triggers/search?query=`, `POST /api/v2/triggers`,
  `PUT /api/v2/triggers/{id}`; action `notification_webhook` = [webhook id, JSON body].
- Search export: `GET /api/v2/search/export?query=&filter[type]=ticket&page[size]=` (cursor
  pagination, no 1,000-result cap unlike `/api/v2/search`), and `GET /api/v2/search/count`.

These calls go through the connector's own session (recorded, failures translated like every
other Zendesk call); zenpy's webhook `update` would PUT whole objects and it has no name filter.

Loop guard in the trigger (`loop_guard`):

- "user" (default): `{"field": "current_user", "operator": "is_not", "value": "<bot id>"}`, the
  trigger skips updates made by tierdesk's bot (`TIERDESK_ZENDESK_USER_ID`). The condition's use
  with a user id is not confirmed against a live account (the sandbox implements it so); if
  Zendesk refuses it (422 naming the condition), use "api".
- "api": `current_via_id is_not 5` (5 = "Web service (API)", the channel of tierdesk's writes);
  it also skips other integrations' API edits.

Either way the receiver drops deliveries whose `current_user_id` is the bot, with no request, and
decisions are idempotent, so the guard saves webhook invocations rather than carrying safety.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar
from urllib.parse import urlencode

from connectors.backfill import BackfillItem, change_line, skipped_line
from connectors.retry import READ_RETRY, RetryStrategy, retry_reads
from connectors.zendesk.client import calling, response_json
from connectors.zendesk.connector import ZendeskConnector
from connectors.zendesk.reply_trigger import REPLY_TRIGGER_TITLE, reply_trigger_spec
from connectors.zendesk.trigger_body import TEMPLATE_VERSION, render_template
from connectors.zendesk.webhook import classify, requeue_body
from tiering.models import Decision, Ticket

WEBHOOK_NAME = "tierdesk"
#: The name of the second webhook while a secret rotation is under way (connectors/zendesk/
#: rotation.py); it takes WEBHOOK_NAME when the old webhook is gone.
ROTATION_NAME = "tierdesk (rotation)"
TRIGGER_TITLE = "tierdesk: evaluate ticket tiers"
#: Zendesk's via id of the REST API ("Web service (API)"), the channel tierdesk writes through.
VIA_WEB_SERVICE = "5"
SECRET_VARIABLE = "TIERDESK_ZENDESK_WEBHOOK_SECRET"
PAGE_SIZE = 100


@dataclass(frozen=True)
class Request:
    """One request install makes (or, with dry_run, would make)."""

    method: str
    path: str
    body: Mapping[str, Any] | None = None

    def render(self) -> str:
        text = f"{self.method} {self.path}"
        if self.body is not None:
            text += "\n" + json.dumps(self.body, indent=2, ensure_ascii=False)
        return text


@dataclass
class InstallResult:
    """What `install` did: each write (sent or, in a dry run, only planned) and the secret."""

    webhook_id: str | None = None
    trigger_id: str | None = None
    #: The public reply trigger (connectors/zendesk/reply_trigger.py), when there is one.
    reply_trigger_id: str | None = None
    writes: list[Request] = field(default_factory=list)
    secret: str | None = None
    dry_run: bool = False
    #: With `rotate_secret`: where the rotation stands after this run (rotation.Stage).
    rotation: str | None = None
    #: During a rotation: the secret of the webhook being retired (the receiver's _PREVIOUS).
    previous_secret: str | None = None
    #: During a rotation: the webhook being retired (None once deleted).
    old_webhook_id: str | None = None

    @property
    def secret_line(self) -> str | None:
        """The line to put in the service's environment."""
        return f"{SECRET_VARIABLE}={self.secret}" if self.secret else None


T = TypeVar("T")


class ZendeskAdmin:
    """Zendesk admin requests on the connector's session (every call recorded and translated):
    the webhook's install and rotation, and the backfill's search.

    A long backfill must not stop at the first 429 on page 40: reads (GET, safe to repeat) are
    retried (connectors/retry.py `retry_reads`, waits from `retry`, a `RetryStrategy`),
    waiting at least Zendesk's `Retry-After`; writes are sent once."""

    def __init__(
        self,
        connector: ZendeskConnector,
        *,
        sleep: Callable[[float], None] = time.sleep,
        retry: RetryStrategy = READ_RETRY,
    ) -> None:
        self.connector = connector
        self.base = connector.config.base_url.rstrip("/")
        self.sleep = sleep
        self.retry = retry

    def retry_reads(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run a read (safe to repeat) with retries on RateLimited / VendorUnavailable:
        connectors.retry.retry_reads, sleeping with `self.sleep`, waits from `self.retry`."""
        return retry_reads(fn, *args, sleep=self.sleep, strategy=self.retry, **kwargs)

    def read(
        self, path: str, *, params: Mapping[str, str | int] | None = None
    ) -> Mapping[str, Any]:
        """GET `path`, retried as `retry_reads` says."""
        return self.retry_reads(self.call, "GET", path, params=params)

    def call(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str | int] | None = None,
        body: Mapping[str, Any] | None = None,
    ) -> Mapping[str, Any]:
        """Send one request and return its JSON object (empty for a 204)."""
        recorder = self.connector.recorder
        session = self.connector.zenpy.tickets.session
        url = self.base + path + ("?" + urlencode(params) if params else "")
        what = f"{method} {path}"
        with calling(recorder, what, method=method, path=path, write=method != "GET"):
            session.request(method, url, json=body, timeout=self.connector.config.timeout)
        last = recorder.last
        if last is not None and last.status_code == 204:
            return {}
        return response_json(recorder, what=what)

    # ------------------------------------------------------------------ install

    def install_webhook(
        self,
        *,
        callback_url: str,
        dry_run: bool = False,
        loop_guard: LoopGuard = "user",
        rotate_secret: bool = False,
        secret: str | None = None,
        previous_secret: str | None = None,
    ) -> InstallResult:
        """Create or update (matched by name) the webhook and the trigger; read the signing
        secret (a rerun keeps it).

        With `rotate_secret`, one step of the lossless rotation by replacement runs instead
        (connectors/zendesk/rotation.py): a second webhook is created, the trigger is moved to
        it once the receiver accepts both secrets (`secret` = the new one, `previous_secret` =
        the old one, as TIERDESK_ZENDESK_WEBHOOK_SECRET[_PREVIOUS] say), then the old webhook is
        deleted and the new one renamed. Each rerun finds where the rotation stands on Zendesk.

        With `dry_run`, only reads are sent; each write is returned in `writes` but not sent."""
        check_callback_url(callback_url)
        if loop_guard == "user" and self.connector.config.bot_user_id is None:
            trigger_spec("", "", bot_user_id=None)  # raises the explanation before any request
        if rotate_secret:
            from connectors.zendesk.rotation import rotate

            return rotate(self, callback_url=callback_url, dry_run=dry_run,
                          loop_guard=loop_guard, secret=secret, previous_secret=previous_secret)
        result = InstallResult(dry_run=dry_run)
        write = self.writer(result)

        # 1. The webhook, matched by exact name (`GET /api/v2/webhooks?filter[name_contains]=`,
        # Webhooks API "List Webhooks").
        hook, replacement = self.find_webhooks()
        if replacement is not None:
            raise ValueError(
                f"a secret rotation is in progress (Zendesk webhook {replacement.get('id')} is"
                f" named {ROTATION_NAME!r}): continue it with `tierdesk install zendesk"
                " --rotate-secret` (admin guide, \"Rotating a webhook secret\"); install changes"
                " nothing meanwhile"
            )
        wanted_hook = webhook_spec(callback_url)
        if hook is None:
            # Webhooks API "Create or Clone Webhook": POST /api/v2/webhooks {"webhook": {...}}
            # answers 201 {"webhook": {"id": ...}}.
            created = write("POST", "/api/v2/webhooks", {"webhook": wanted_hook})
            made = created.get("webhook")
            result.webhook_id = str(made["id"]) if isinstance(made, Mapping) else None
            if result.webhook_id is None and not dry_run:
                raise ValueError(f"Zendesk created the webhook but returned no id: {created!r}")
        else:
            result.webhook_id = str(hook["id"])
            self.check_subscription(hook)
            changes = hook_changes(hook, wanted_hook)
            if changes:
                write("PATCH", f"/api/v2/webhooks/{result.webhook_id}", {"webhook": changes})

        # 2. Its signing secret (what the receiver verifies deliveries with).
        if result.webhook_id is not None:
            result.secret = self.signing_secret(result.webhook_id)

        # 3. The trigger, matched by exact title.
        self.sync_trigger(result, write, result.webhook_id, loop_guard=loop_guard)
        # 4. With SLA clocks: the public reply trigger, which stops first_response.
        if self.connector.policy.sla.enabled:
            self.sync_reply_trigger(result, write, result.webhook_id, loop_guard=loop_guard)
        return result

    def writer(self, result: InstallResult) -> Callable[..., Mapping[str, Any]]:
        """`write(method, path, body)`: record the write in `result`, send it unless a dry run."""

        def write(
            method: str, path: str, body: Mapping[str, Any] | None = None
        ) -> Mapping[str, Any]:
            result.writes.append(Request(method, path, body))
            return {} if result.dry_run else self.call(method, path, body=body)

        return write

    def find_webhooks(self) -> tuple[Mapping[str, Any] | None, Mapping[str, Any] | None]:
        """tierdesk's webhook (named WEBHOOK_NAME) and the replacement of an unfinished rotation
        (ROTATION_NAME), each None when absent: one GET, as both names contain "tierdesk".
        Zendesk does not require unique names (Webhooks API, "Creating and monitoring
        webhooks": "The name doesn't need to be unique"), so a repeated one is refused."""
        listed = self.read("/api/v2/webhooks", params={"filter[name_contains]": WEBHOOK_NAME})
        hooks = [h for h in listed.get("webhooks") or () if isinstance(h, Mapping)]
        found: dict[str, Mapping[str, Any] | None] = {}
        for name in (WEBHOOK_NAME, ROTATION_NAME):
            named = [h for h in hooks if h.get("name") == name]
            if len(named) > 1:
                ids = ", ".join(str(h.get("id")) for h in named)
                raise ValueError(
                    f"Zendesk has {len(named)} webhooks named {name!r} ({ids}): tierdesk cannot"
                    " tell which one is its own; delete the extra ones in Admin Center (Apps and"
                    " integrations > Webhooks), keeping the one the trigger"
                    f" {TRIGGER_TITLE!r} calls, then run install again"
                )
            found[name] = named[0] if named else None
        return found[WEBHOOK_NAME], found[ROTATION_NAME]

    def check_subscription(self, hook: Mapping[str, Any]) -> None:
        if hook.get("subscriptions") != ["conditional_ticket_events"]:
            raise ValueError(
                f"Zendesk webhook {hook.get('id')} named {hook.get('name')!r} subscribes to"
                f" {hook.get('subscriptions')!r}, and a webhook's subscription cannot be changed:"
                " delete or rename it in Admin Center, then run install again"
            )

    def signing_secret(self, webhook_id: str) -> str | None:
        """The webhook's signing secret (Webhooks API "Show Webhook Signing Secret",
        `GET /api/v2/webhooks/{id}/signing_secret` -> {"signing_secret": {"secret": ...}})."""
        data = self.read(f"/api/v2/webhooks/{webhook_id}/signing_secret").get("signing_secret")
        if isinstance(data, Mapping) and isinstance(data.get("secret"), str):
            return str(data["secret"])
        return None

    def find_trigger(self, title: str = TRIGGER_TITLE) -> Mapping[str, Any] | None:
        """tierdesk's trigger (or the one titled `title`), matched by exact title (one GET
        /api/v2/triggers/search, Triggers API "Search Triggers")."""
        found = self.read("/api/v2/triggers/search", params={"query": title})
        triggers = [t for t in found.get("triggers") or () if isinstance(t, Mapping)]
        return next((t for t in triggers if t.get("title") == title), None)

    def find_reply_trigger(self) -> Mapping[str, Any] | None:
        """The public reply trigger (connectors/zendesk/reply_trigger.py), or None: one GET."""
        return self.find_trigger(REPLY_TRIGGER_TITLE)

    def sync_reply_trigger(
        self,
        result: InstallResult,
        write: Callable[..., Mapping[str, Any]],
        webhook_id: str | None,
        *,
        loop_guard: LoopGuard,
        trigger: Mapping[str, Any] | None = None,
    ) -> None:
        """Create the public reply trigger, or PUT it whole when it differs from what the policy
        needs and calls `webhook_id`; `trigger` is the one already read, if any."""
        hook_ref = webhook_id or "<id of the webhook created above>"
        wanted = reply_trigger_spec(
            hook_ref, render_template(self.connector.policy, reply=True),
            loop_guard=loop_guard_condition(self.connector.config.bot_user_id, loop_guard),
        )
        if trigger is None:
            trigger = self.find_reply_trigger()
        result.reply_trigger_id = _put_trigger(write, wanted, trigger)

    def sync_trigger(
        self,
        result: InstallResult,
        write: Callable[..., Mapping[str, Any]],
        webhook_id: str | None,
        *,
        loop_guard: LoopGuard,
        trigger: Mapping[str, Any] | None = None,
    ) -> None:
        """Create the trigger, or PUT it whole when it differs from what the policy needs and
        calls `webhook_id` (Triggers API "Update Trigger"; the whole trigger is sent, so whether
        Zendesk merges or replaces its arrays does not matter). `trigger` is the one already
        read, if any (saves the search)."""
        hook_ref = webhook_id or "<id of the webhook created above>"
        wanted = trigger_spec(
            hook_ref, render_template(self.connector.policy),
            bot_user_id=self.connector.config.bot_user_id, loop_guard=loop_guard,
            through_solved=self.connector.policy.sla.enabled,
        )
        if trigger is None:
            trigger = self.find_trigger()
        result.trigger_id = _put_trigger(write, wanted, trigger)

    # ------------------------------------------------------------------ backfill

    def count_tickets(self, query: str) -> int | None:
        """How many tickets the query matches (for the progress bar); None if Zendesk won't say."""
        data = self.read("/api/v2/search/count", params={"query": f"type:ticket {query}"})
        count = data.get("count")
        return count if isinstance(count, int) else None


    def search_tickets(self, query: str) -> Iterator[Mapping[str, Any]]:
        """Every ticket the Zendesk search `query` matches, page by page (one request per page)."""
        params: dict[str, str | int] = {
            "query": query, "filter[type]": "ticket", "page[size]": PAGE_SIZE,
        }
        while True:
            data = self.read("/api/v2/search/export", params=params)
            for item in data.get("results") or ():
                if isinstance(item, Mapping) and item.get("id") is not None:
                    yield item
            meta = data.get("meta")
            if not isinstance(meta, Mapping) or not meta.get("has_more") or not meta.get(
                "after_cursor"
            ):
                return
            params = dict(params, **{"page[after]": str(meta["after_cursor"])})


    def backfill_items(
        self,
        *,
        query: str,
        decide: Callable[[Ticket], Decision] | None = None,
        run: str | None = None,
    ) -> Iterator[BackfillItem]:
        """Every matching ticket as a backfill item to enqueue; with `decide` (a dry run), each
        ticket is also read and decided (nothing is written anywhere)."""
        run = run or new_run_id()
        for found in self.search_tickets(query):
            ticket_id = str(found["id"])
            key = f"#{ticket_id}"
            body = backfill_body(ticket_id, run)
            envelope = classify(body, {})
            if decide is None:
                yield BackfillItem(key, envelope, body)
                continue
            try:
                ticket = self.retry_reads(self.connector.read_ticket, ticket_id)
            except Exception as exc:  # reported per ticket; the run goes on
                yield BackfillItem(key, None, body, error=f"cannot read: {exc}")
                continue
            yield BackfillItem(key, envelope, body, decision=decide(ticket), ticket=ticket)


    def describe(self, item: BackfillItem) -> str:
        """One line for a dry run (connectors/backfill.py's format, shared with Jira)."""
        if item.error is not None:
            return skipped_line(item.key, item.error)
        if item.decision is None:
            return f"{item.key}: queued"
        return change_line(item.key, item.decision, labels="tags",
                           assignee=self._target_detail(item.decision))


    def _target_detail(self, decision: Decision) -> str | None:
        """Who the decision's assign target is on Zendesk ("group 360001, agent 7")."""
        if not decision.assign:
            return None
        target = self.connector.policy.targets.get(decision.assign)
        zendesk = target.zendesk if target is not None else None
        if zendesk is None:
            return None
        parts = [f"group {zendesk.group_id}" if zendesk.group_id is not None else None,
                 f"agent {zendesk.assignee_id}" if zendesk.assignee_id is not None else None]
        return ", ".join(p for p in parts if p) or None


# ---------------------------------------------------------------------- install


def webhook_spec(callback_url: str) -> dict[str, Any]:
    """The webhook tierdesk needs (a trigger-connected JSON POST to the receiver)."""
    return {
        "name": WEBHOOK_NAME,
        "description": "tierdesk receiver: tiered-support evaluation of ticket changes",
        "status": "active",
        "endpoint": callback_url,
        "http_method": "POST",
        "request_format": "json",
        "subscriptions": ["conditional_ticket_events"],
    }


LoopGuard = Literal["user", "api"]


def trigger_spec(
    webhook_id: str, body_text: str, *, bot_user_id: int | None, loop_guard: LoopGuard = "user",
    through_solved: bool = False,
) -> dict[str, Any]:
    """The trigger: on ticket create or change by anyone but the bot, call the webhook.

    `through_solved` (a policy with SLA clocks): solved tickets too, so that solving a ticket
    reaches tierdesk and stops its clocks. Status "less than closed" is new to solved: statuses
    are ordered New < Open < Pending < On-hold < Solved < Closed for Less Than / Greater Than
    (Zendesk "Ticket trigger conditions and actions reference", Ticket > Status)."""
    conditions_all: list[dict[str, str]] = [
        {"field": "status", "operator": "less_than",
         "value": "closed" if through_solved else "solved"},
        loop_guard_condition(bot_user_id, loop_guard),
    ]
    return {
        "title": TRIGGER_TITLE,
        "description": f"Sends ticket changes to tierdesk (body template v{TEMPLATE_VERSION}).",
        "active": True,
        "conditions": {
            "all": conditions_all,
            "any": [
                {"field": "update_type", "operator": "is", "value": "Create"},
                {"field": "update_type", "operator": "is", "value": "Change"},
            ],
        },
        "actions": [{"field": "notification_webhook", "value": [webhook_id, body_text]}],
    }


def loop_guard_condition(bot_user_id: int | None, loop_guard: LoopGuard) -> dict[str, str]:
    """The trigger condition that skips tierdesk's own updates (module docstring)."""
    if loop_guard == "user":
        if bot_user_id is None:
            raise ValueError(
                "set TIERDESK_ZENDESK_USER_ID to the bot user's id so the trigger can skip"
                " tierdesk's own updates (or use --loop-guard api)"
            )
        return {"field": "current_user", "operator": "is_not", "value": str(bot_user_id)}
    return {"field": "current_via_id", "operator": "is_not", "value": VIA_WEB_SERVICE}


def trigger_stale(trigger: Mapping[str, Any], wanted: Mapping[str, Any]) -> bool:
    """True when the trigger Zendesk holds differs from `wanted` in what tierdesk sets."""
    return (
        trigger.get("active") is not True
        or trigger.get("description") != wanted["description"]
        or not _conditions_equal(trigger.get("conditions"), wanted["conditions"])
        or trigger.get("actions") != wanted["actions"]
    )


def _put_trigger(
    write: Callable[..., Mapping[str, Any]],
    wanted: Mapping[str, Any],
    trigger: Mapping[str, Any] | None,
) -> str | None:
    """POST `wanted` when `trigger` is None, PUT it whole when `trigger` is stale (Triggers API
    "Create Trigger", "Update Trigger"), nothing otherwise; the trigger's id."""
    if trigger is None:
        created = write("POST", "/api/v2/triggers", {"trigger": wanted})
        made = created.get("trigger")
        return str(made["id"]) if isinstance(made, Mapping) else None
    trigger_id = str(trigger["id"])
    if trigger_stale(trigger, wanted):
        write("PUT", f"/api/v2/triggers/{trigger_id}", {"trigger": wanted})
    return trigger_id


def _differs(current: Mapping[str, Any], wanted: Mapping[str, Any]) -> dict[str, Any]:
    """The keys of `wanted` whose value `current` does not have."""
    return {k: v for k, v in wanted.items() if current.get(k) != v}


def _conditions_equal(current: Any, wanted: Mapping[str, Any]) -> bool:
    if not isinstance(current, Mapping):
        return False

    def norm(items: Any) -> list[tuple[str, str, str]]:
        return sorted(
            (str(c.get("field")), str(c.get("operator")), str(c.get("value")))
            for c in items or () if isinstance(c, Mapping)
        )

    return all(norm(current.get(k)) == norm(wanted.get(k)) for k in ("all", "any"))


def hook_changes(hook: Mapping[str, Any], wanted: Mapping[str, Any]) -> dict[str, Any]:
    """What a PATCH must change for the existing webhook to be `wanted` (name aside)."""
    return _differs(hook, {k: wanted[k] for k in ("endpoint", "http_method", "request_format",
                                                   "status", "description")})


def check_callback_url(callback_url: str) -> None:
    if not callback_url.startswith(("https://", "http://")):
        raise ValueError(f"--callback-url: expected an https:// URL, got {callback_url!r}")


def trigger_webhook_ids(trigger: Mapping[str, Any]) -> list[str]:
    """The webhook ids the trigger's `notification_webhook` actions call, in order."""
    ids: list[str] = []
    for action in trigger.get("actions") or ():
        if isinstance(action, Mapping) and action.get("field") == "notification_webhook":
            value = action.get("value")
            if isinstance(value, list) and value:
                ids.append(str(value[0]))
    return ids


# ---------------------------------------------------------------------- backfill


def backfill_body(ticket_id: int | str, run: str) -> dict[str, Any]:
    """The inbox payload for one backfilled ticket; `run` keeps separate backfills distinct
    (the dedupe key is the body hash) while a rerun of one page does not queue twice."""
    return requeue_body(str(ticket_id), run, now_ms=0)


def new_run_id() -> str:
    return uuid.uuid4().hex
