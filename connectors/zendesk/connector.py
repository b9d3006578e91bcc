"""ZendeskConnector: payloads to Tickets with the fewest reads, a Decision to at most one PUT.

Requests per decision (measured in tests/connectors/zendesk/ and bench/zendesk_requests.py):

- tierdesk trigger body: 0 reads to build the Ticket (the organization's plan, when its
  placeholder is empty, costs at most one organization read per organization per
  `organization_cache_seconds`).
- event-subscribed ticket event, backfill body, salvaged body or `fresh=True`: one ticket read
  with the requester and organization sideloaded; plus one comments read when `fresh` asks for
  tierdesk's note marker or when an attachment count can matter (the policy requires an
  attachment and the ticket has no tier yet or carries an `escalate-*` request).
- write: none when the desired state already holds, else one `PUT /api/v2/tickets/{id}.json`
  (tags, group/assignee, the checklist or SLA note, the SLA due field only when it differs:
  connectors/zendesk/due.py).
  A tags write needs the ticket's `updated_at` to the second; Zendesk documents the trigger
  placeholder to the minute only, so then one `GET` of the ticket comes first (1 read + 1 write).
  A 409 (an agent changed the ticket meanwhile) costs one read, one re-decision, one more PUT.

Write body (Zendesk "Update Ticket"; ../shared/vendor/README.md): `tags` replaces the whole set,
so it is sent only when the set changes and then always with `safe_update: true` and
`updated_stamp` (the ticket's `updated_at`): Zendesk answers 409 instead of dropping a tag an
agent added in between. A comment or assignment alone carries no collision guard (nothing can be
lost). The checklist is an internal note (`comment.public: false`) and is left out when the
ticket already carries a note with the same key (`Ticket.last_note_key`), so a resent write never
adds it twice.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

import requests
from zenpy import Zenpy
from zenpy.lib.api_objects import Comment
from zenpy.lib.api_objects import Ticket as ZenpyTicket

from connectors import due as due_field
from connectors.base import (
    Applied,
    Call,
    Decide,
    Envelope,
    PayloadInvalid,
    VendorRejected,
    VendorUnavailable,
)
from connectors.zendesk import due, refusals, webhook
from connectors.zendesk.client import HTTPFailure, calling, make_zenpy, response_json, translate
from connectors.zendesk.config import ZendeskConfig
from connectors.zendesk.tickets import (
    count_attachments,
    first_reply_in,
    plan_of,
    ticket_from_api,
    ticket_from_trigger,
)
from connectors.zendesk.trigger_body import needs_attachments
from tiering.models import Decision, Ticket, note_key_in
from tiering.policy import Policy

log = logging.getLogger("tierdesk.connectors.zendesk")

#: Comments read per fresh look for the note marker: the newest page, newest first (Zendesk
#: "List Comments" `sort_order=desc`); tierdesk's latest note is recent by construction.
COMMENTS_PAGE = 100

#: Organizations whose plan is cached at most (memory bound for very large accounts).
PLAN_CACHE_MAX = 10_000


class ZendeskConnector:
    """The Zendesk side of tierdesk (see connectors.base.Connector)."""

    vendor = webhook.VENDOR

    def __init__(
        self,
        config: ZendeskConfig,
        policy: Policy,
        *,
        session: requests.Session | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self.policy = policy
        self.clock = clock
        client, self.recorder = make_zenpy(config, session=session)
        self._session = client.tickets.session
        # One Zenpy per worker thread (same session and recorder): zenpy keeps the object being
        # written on the shared API object and clears it after *any* response, so two threads on
        # one Zenpy corrupt each other's calls.
        self._local = threading.local()
        self._local.zenpy = client
        #: organization id -> (plan or None, when it was read by `clock`).
        self._plans: dict[str, tuple[str | None, float]] = {}
        self._ttl = float(policy.doc.entitlement.organization_cache_seconds)

    @property
    def zenpy(self) -> Zenpy:
        """This thread's zenpy client."""
        client: Zenpy | None = getattr(self._local, "zenpy", None)
        if client is None:
            client, _ = make_zenpy(self.config, session=self._session, recorder=self.recorder)
            self._local.zenpy = client
        return client

    # ------------------------------------------------------------------ events in

    def is_own_event(self, envelope: Envelope) -> bool:
        """True when the bot (`TIERDESK_ZENDESK_USER_ID`) caused the event: dropped, 0 requests."""
        bot = self.config.bot_user_id
        return bot is not None and envelope.actor is not None and envelope.actor == str(bot)

    def current_ticket(
        self,
        payloads: Sequence[Mapping[str, Any]],
        *,
        fresh: bool = False,
        last_note_key: str | None = None,
    ) -> Ticket:
        """The newest payload's ticket: 0 reads for a complete trigger body, else one read
        (plus the comments when attachments or, with `fresh`, the note marker are needed).
        The first public agent reply is the earliest any payload marks (the reply trigger's
        body: trigger_body.REPLY_KEY): the API's ticket carries none, and a group may end with
        the main trigger's body of the same update."""
        ticket = self._current_ticket(payloads, fresh=fresh, last_note_key=last_note_key)
        reply = first_reply_in(payloads)
        if reply is not None and (ticket.first_reply_at is None or reply < ticket.first_reply_at):
            ticket = replace(ticket, first_reply_at=reply)
        return ticket

    def _current_ticket(
        self,
        payloads: Sequence[Mapping[str, Any]],
        *,
        fresh: bool,
        last_note_key: str | None,
    ) -> Ticket:
        if not payloads:
            raise ValueError("current_ticket needs at least one payload")
        self.recorder.take()  # a new decision starts: count its requests from here
        body = payloads[-1]
        env = webhook.classify(body, {})
        if not env.handled or env.ticket is None:
            raise PayloadInvalid(f"{env.event_type}: not a ticket event tierdesk handles")
        if webhook.is_tierdesk_body(body) and not fresh:
            found = ticket_from_trigger(body, self.policy, last_note_key=last_note_key)
            if found is not None:
                ticket, org_lookup = found
                if org_lookup is not None:
                    plan = self._organization_plan(org_lookup)
                    ticket = _with_plan(ticket, plan)
                return ticket
        return self.read_ticket(
            env.ticket, actor=env.actor, fresh=fresh, last_note_key=last_note_key
        )

    def payload_ticket(
        self, payload: Mapping[str, Any], *, last_note_key: str | None = None
    ) -> Ticket | None:
        """The ticket a stored payload shows, with no request (`tierdesk plan` over the inbox),
        or None when the payload alone does not show it: only tierdesk's trigger body carries a
        whole ticket (an event webhook or a backfill body needs a read), and only when
        `ticket_from_trigger` trusts it under this policy. An organization plan the body left
        empty is taken as "the organization names no plan" (the worker would confirm it with a
        read); one left unrendered makes the body unusable."""
        if not webhook.is_tierdesk_body(payload):
            return None
        # The plan measures no SLA clock: a body without status and creation shows enough.
        found = ticket_from_trigger(payload, self.policy, last_note_key=last_note_key,
                                    clocks=False)
        if found is None:
            return None
        ticket, org_lookup = found
        if org_lookup is not None:
            raw = payload.get("organization_plan")
            if not (isinstance(raw, str) and not raw.strip()):
                return None
        return ticket

    def read_ticket(
        self,
        ticket_id: str,
        *,
        actor: str | None = None,
        fresh: bool = False,
        last_note_key: str | None = None,
    ) -> Ticket:
        """Read the ticket with its requester and organization sideloaded (one request), and its
        comments when the policy counts attachments or `fresh` looks for the note marker."""
        path = f"/api/v2/tickets/{ticket_id}.json"
        with calling(self.recorder, f"read ticket {ticket_id}", path=path):
            self.zenpy.tickets(id=int(ticket_id), include=["users", "organizations"])
        data = response_json(self.recorder, what=f"read ticket {ticket_id}")
        raw = data.get("ticket")
        org_id = raw.get("organization_id") if isinstance(raw, Mapping) else None
        organizations = data.get("organizations")
        for org in organizations if isinstance(organizations, list) else ():
            if isinstance(org, Mapping) and org.get("id") is not None:
                # A sideloaded organization is as fresh as it gets: refresh the plan cache.
                self._remember_plan(str(org["id"]), plan_of(org, self.policy))
        plan = None
        if org_id is not None and self.policy.doc.entitlement.zendesk_organization_field:
            cached = self._plans.get(str(org_id))
            plan = cached[0] if cached else self._organization_plan(str(org_id))
        attachments = 0
        note_key = last_note_key
        tags = raw.get("tags") if isinstance(raw, Mapping) else None
        if fresh or self._attachments_matter(tags if isinstance(tags, list) else []):
            comments = self._comments(ticket_id)
            attachments = count_attachments(comments)
            if fresh:
                note_key = self._note_key(comments) or last_note_key
        ticket = ticket_from_api(
            data, self.policy, actor=actor, attachments=attachments, plan=plan,
            last_note_key=note_key,
        )
        if fresh:  # the SLA notes on the ticket, so one that landed is not posted again
            found = dict(ticket.fields)
            due_field.with_sla_notes(found, [_body(c) for c in comments])
            ticket = replace(ticket, fields=found)
        return ticket

    def _attachments_matter(self, tags: Sequence[Any]) -> bool:
        """Whether the attachment count can change the decision, so the comments must be read.

        The engine checks documentation only on the way into a higher tier: for a ticket with
        no tier yet (first triage) or with an `escalate-*` request. A settled ticket (a tier
        label, no request) needs no count, which saves the comments read for most events."""
        if not needs_attachments(self.policy):
            return False
        labels = {str(t).lower() for t in tags}
        has_tier = any(label in labels for label in self.policy.tier_by_label)
        has_request = any(label in labels for label in self.policy.tier_by_request)
        return has_request or not has_tier

    def refresh(self, ticket: Ticket) -> Ticket:
        """`ticket` with what agents can change meanwhile (tags, fields, group, assignee,
        priority, text, `updated_at`) read again: one `GET /api/v2/tickets/{id}.json`, no
        sideloads (the customer and the attachment count are kept)."""
        path = f"/api/v2/tickets/{ticket.key}.json"
        with calling(self.recorder, f"refresh ticket {ticket.key}", path=path):
            self.zenpy.tickets(id=int(ticket.key))
        data = response_json(self.recorder, what=f"refresh ticket {ticket.key}")
        fresh = ticket_from_api(data, self.policy, actor=ticket.actor,
                                attachments=ticket.attachments,
                                last_note_key=ticket.last_note_key)
        return replace(fresh, customer=ticket.customer)

    def _comments(self, ticket_id: str) -> list[Mapping[str, Any]]:
        path = f"/api/v2/tickets/{ticket_id}/comments.json"
        # zenpy's `tickets.comments()` cannot ask for newest-first, so the same session and
        # zenpy's URL base are used directly (still one request, still recorded and translated).
        url = self.zenpy.tickets._build_url(
            endpoint=self.zenpy.tickets.endpoint.comments(id=int(ticket_id))
        )
        with calling(self.recorder, f"read comments of ticket {ticket_id}", path=path):
            self.zenpy.tickets.session.get(
                url,
                params={"sort_order": "desc", "per_page": COMMENTS_PAGE},
                timeout=self.config.timeout,
            )
        data = response_json(self.recorder, what=f"read comments of ticket {ticket_id}")
        items = data.get("comments")
        return [c for c in items if isinstance(c, Mapping)] if isinstance(items, list) else []

    def _note_key(self, comments: Sequence[Mapping[str, Any]]) -> str | None:
        """The key of the newest note tierdesk (the bot, when known) posted, else None."""
        bot = self.config.bot_user_id
        for comment in comments:  # newest first
            if bot is not None and comment.get("author_id") != bot:
                continue
            body = comment.get("body") or comment.get("plain_body")
            key = note_key_in(body if isinstance(body, str) else None)
            if key:
                return key
        return None

    def _organization_plan(self, org_id: str) -> str | None:
        """The organization's plan, read at most once per `organization_cache_seconds`."""
        cached = self._plans.get(org_id)
        now = self.clock()
        if cached is not None and now - cached[1] < self._ttl:
            return cached[0]
        path = f"/api/v2/organizations/{org_id}.json"
        try:
            with calling(self.recorder, f"read organization {org_id}", path=path):
                self.zenpy.organizations(id=int(org_id))
        except VendorRejected as exc:
            if exc.status != 404:
                raise
            # Deleted since the trigger fired: no plan (the customers list may still match).
            self._remember_plan(org_id, None)
            return None
        data = response_json(self.recorder, what=f"read organization {org_id}")
        org = data.get("organization")
        plan = plan_of(org if isinstance(org, Mapping) else None, self.policy)
        self._remember_plan(org_id, plan)
        return plan

    def _remember_plan(self, org_id: str, plan: str | None) -> None:
        """Cache an organization's plan; past PLAN_CACHE_MAX entries, forget expired ones."""
        now = self.clock()
        if len(self._plans) >= PLAN_CACHE_MAX and org_id not in self._plans:
            self._plans = {
                k: v for k, v in self._plans.items() if now - v[1] < self._ttl
            }
            if len(self._plans) >= PLAN_CACHE_MAX:  # all fresh: drop the oldest half
                keep = sorted(self._plans.items(), key=lambda kv: kv[1][1])[PLAN_CACHE_MAX // 2:]
                self._plans = dict(keep)
        self._plans[org_id] = (plan, now)

    # ------------------------------------------------------------------ writes out

    def _target_assignees(self) -> frozenset[str]:
        """The Zendesk users some target assigns to (tierdesk-managed assignees)."""
        return frozenset(
            str(t.zendesk.assignee_id) for t in self.policy.targets.values()
            if t.zendesk is not None and t.zendesk.assignee_id is not None
        )

    def plan(self, ticket: Ticket, decision: Decision) -> dict[str, Any] | None:
        """The `ticket` object of the PUT that makes `decision` true, or None when it holds."""
        body: dict[str, Any] = {}
        after = decision.labels_after(ticket.labels)
        if after != ticket.labels:
            body["tags"] = sorted(after)
        if decision.assign is not None:
            target = self.policy.targets.get(decision.assign)
            zd = target.zendesk if target is not None else None
            if zd is not None:
                if zd.group_id is not None and str(zd.group_id) != ticket.group:
                    body["group_id"] = zd.group_id
                if zd.assignee_id is not None and str(zd.assignee_id) != ticket.assignee:
                    body["assignee_id"] = zd.assignee_id
                elif zd.assignee_id is None and ticket.assignee and (
                    "group_id" in body or ticket.assignee in self._target_assignees()
                ):
                    # Moving to a group the assignee may not belong to: Zendesk rejects an
                    # assignee outside the group (422), so the ticket goes to the group queue.
                    # In the same group, the previous tier's own assignee (a target's) hands
                    # the ticket to the queue too; an agent who took it by hand keeps it.
                    body["assignee_id"] = None
        if decision.comment and (not (
            decision.note_key is not None and decision.note_key == ticket.last_note_key
        ) or due_field.sla_note_due(ticket, decision)):
            # An SLA note keeps the checklist's note key (tiering/sla_actions.py): posted once.
            body["comment"] = {"body": decision.comment, "public": False}
        body.update(due.write(self.policy, ticket, decision))  # SLA due field: zendesk/due.py
        if not body:
            return None
        if "tags" in body and ticket.updated_at:
            body["safe_update"] = True
            body["updated_stamp"] = ticket.updated_at
        return body

    def writes_for(self, ticket: Ticket, decision: Decision) -> int:
        """The writes `apply` would send for `decision` on `ticket`, computed without a request:
        one PUT when `plan` has a body, else none. (A 409 collision's second PUT cannot be
        foreseen; a tags write on a minute-precision `updated_at` costs one read before it.)"""
        if not decision.changed:
            return 0
        return 0 if self.plan(ticket, decision) is None else 1

    def apply(self, ticket: Ticket, decision: Decision, *, decide: Decide) -> Applied:
        """At most one PUT (none when nothing changes); on 409 read, re-decide, PUT once more.

        `Applied.calls` lists every request since `current_ticket` began this decision: its
        reads, then the writes (the measured cost of the decision)."""
        if not decision.changed:
            return Applied(
                calls=self.recorder.take(), decision=decision, note_key=ticket.last_note_key
            )
        if "tags" in (self.plan(ticket, decision) or {}) and not precise_stamp(
            ticket.updated_at
        ):
            # Zendesk documents `{{ticket.updated_at_with_timestamp}}` to the minute
            # ("2013-12-12T05:35Z"), but `updated_stamp` must equal the ticket's `updated_at`
            # (to the second) or Zendesk answers 409. Rather than a certain 409 and a re-read, read
            # the ticket's current state once and decide on that: 1 read + 1 write.
            ticket = self.refresh(ticket)
            decision = decide(ticket)
        try:
            return self._apply_once(ticket, decision, decide=decide)
        except VendorRejected as exc:
            # A refusal the configuration causes names the policy key to fix.
            explained = refusals.explain(exc, policy=self.policy, decision=decision)
            if explained is exc:
                raise
            raise explained from exc

    def _apply_once(self, ticket: Ticket, decision: Decision, *, decide: Decide) -> Applied:
        """One PUT; on 409 read, re-decide and PUT once more."""
        try:
            return self._put(ticket, decision, calls=())
        except _Collision as collision:
            log.info(
                "zendesk update collided with a concurrent edit; re-deciding",
                extra={"vendor": self.vendor, "ticket": ticket.key},
            )
            fresh = self.read_ticket(
                ticket.key, actor=ticket.actor, last_note_key=ticket.last_note_key
            )
            redecided = decide(fresh)
            try:
                applied = self._put(fresh, redecided, calls=collision.calls)
            except _Collision as again:
                raise VendorUnavailable(
                    f"ticket {ticket.key} changed again while tierdesk updated it (409 twice);"
                    " retrying later",
                    status=409,
                ) from again
            details = dict(applied.details) | {"collision": True}
            return Applied(
                calls=applied.calls, decision=applied.decision, note_key=applied.note_key,
                wrote=applied.wrote, details=details,
            )

    def _put(self, ticket: Ticket, decision: Decision, *, calls: tuple[Call, ...]) -> Applied:
        body = self.plan(ticket, decision) if decision.changed else None
        if body is None:
            return Applied(
                calls=calls + self.recorder.take(), decision=decision,
                note_key=ticket.last_note_key,
            )
        path = f"/api/v2/tickets/{ticket.key}.json"
        what = f"update ticket {ticket.key}"
        update = ZenpyTicket(id=int(ticket.key))
        for key, value in body.items():
            setattr(update, key, Comment(**value) if key == "comment" else value)
        self.recorder.purpose = what
        try:
            self.zenpy.tickets.update(update)
        except HTTPFailure as exc:
            if exc.response.status_code == 409:
                raise _Collision(calls + self.recorder.take()) from exc
            raise translate(exc, what=what, write=True) from exc
        except Exception as exc:
            if isinstance(exc, requests.RequestException):
                self.recorder.calls.append(Call("PUT", path, None, what))
            raise translate(exc, what=what, write=True) from exc
        posted = "comment" in body
        return Applied(
            calls=calls + self.recorder.take(),
            decision=decision,
            note_key=decision.note_key if posted else ticket.last_note_key,
            wrote=True,
            details={"sent": sorted(k for k in body if k not in ("safe_update", "updated_stamp"))},
        )

    def take_calls(self) -> tuple[Call, ...]:
        """Requests recorded since the last `apply` or `take_calls()`, and forget them."""
        return self.recorder.take()


class _Collision(Exception):
    """Zendesk answered 409 to a safe_update: the ticket changed since `updated_stamp`."""

    def __init__(self, calls: tuple[Call, ...]) -> None:
        super().__init__("409 collision")
        self.calls = calls


_SECONDS = re.compile(r"T\d{2}:\d{2}:\d{2}")


def precise_stamp(updated_at: str | None) -> bool:
    """True when `updated_at` is given to the second, as `updated_stamp` needs it."""
    return bool(updated_at and _SECONDS.search(updated_at))


def _body(comment: Mapping[str, Any]) -> str | None:
    body = comment.get("body") or comment.get("plain_body")
    return body if isinstance(body, str) else None


def _with_plan(ticket: Ticket, plan: str | None) -> Ticket:
    return replace(ticket, customer=replace(ticket.customer, plan=plan))
