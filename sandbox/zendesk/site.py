"""The Zendesk half of the sandbox: tickets, comments, organizations, search, webhooks, triggers.

Answers the Zendesk Support API v2 with the shapes of ../shared/vendor/zendesk/ (zenpy's
specification objects and the recorded create/update exchange). Paths work with and without
the `.json` suffix, as Zendesk's do. Covered:

    GET|PUT /api/v2/tickets/{id}     POST /api/v2/tickets     GET /api/v2/tickets/{id}/comments
    GET /api/v2/users/{id}, /api/v2/users/me, /api/v2/organizations/{id}, /api/v2/groups,
        /api/v2/ticket_fields, /api/v2/search (query, page, per_page, sort_by, sort_order)
    /api/v2/webhooks: POST, GET; GET|PUT|PATCH|DELETE /{id}; GET|POST /{id}/signing_secret
    /api/v2/triggers: POST, GET; GET|PUT|DELETE /{id}

A ticket update with `safe_update: true` whose `updated_stamp` is not the ticket's `updated_at`
answers 409 UpdateConflict, as Zendesk does. Zendesk keeps `updated_at` to the second; the
sandbox moves it on by at least one second per change so that a stale stamp is always caught.

After each change the active triggers run in position order; a `notification_webhook` action
renders its body template (every `{{placeholder}}` resolved from the ticket, its requester,
organization, group, assignee and the current user; unknown ones render empty; values are
JSON-escaped when the webhook's request_format is json) and posts it. Webhooks subscribed to
`zen:event-type:ticket.*` get the event envelope of ../shared/vendor/zendesk/dust-tt_dust/.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sandbox.wire import Request, Response, Route, route
from sandbox.zendesk.records import VIA_API, Comment, Emit, Ticket, Trigger, Webhook, _tags, zd_time
from sandbox.zendesk.seed import ZendeskSeed
from sandbox.zendesk.tickets import ZendeskTickets


class ZendeskSim(ZendeskTickets):
    """In-memory Zendesk account. All methods run under the sandbox lock held by the HTTP layer."""

    def __init__(self, seed: ZendeskSeed, *, emit: Emit, now: Callable[[], datetime]) -> None:
        self.seed = seed
        self.emit = emit
        self.now = now
        self.base_url = "http://127.0.0.1"
        self.users = {u.id: u for u in seed.users}
        self.groups = {g.id: g for g in seed.groups}
        for g in seed.groups:
            for member in g.members:
                if member not in {u.id for u in seed.users if u.role != "end-user"}:
                    raise ValueError(
                        f"seed: zendesk.groups {g.id}: member {member} is not an agent in"
                        " zendesk.users"
                    )
        for form in seed.ticket_forms:
            for fid in form.ticket_field_ids:
                if fid not in {f.id for f in seed.ticket_fields}:
                    raise ValueError(
                        f"seed: zendesk.ticket_forms {form.id}: field {fid} is not in"
                        " zendesk.ticket_fields"
                    )
        self.organizations = {o.id: o for o in seed.organizations}
        self.fields = {f.id: f for f in seed.ticket_fields}
        self.tickets: dict[int, Ticket] = {}
        self.webhooks: dict[str, Webhook] = {}
        self.triggers: dict[int, Trigger] = {}
        #: Upload tokens not yet attached to a comment, and their attachments.
        self.uploads: dict[str, list[dict[str, Any]]] = {}
        self._attachment_ids = itertools.count(500000)
        self._ticket_ids = itertools.count(max([t.id for t in seed.tickets] or [0]) + 1)
        self._comment_ids = itertools.count(900000)
        self._audit_ids = itertools.count(700000)
        self._trigger_ids = itertools.count(360000)
        self._user_ids = itertools.count(max([u.id for u in seed.users] or [0]) + 1000)
        self._invocations = itertools.count(8350205582)
        #: The channel of the update being applied (see VIA_API), for via conditions.
        self._via = VIA_API
        start = now().replace(microsecond=0)
        for s in seed.tickets:
            for uid in (s.requester_id, s.assignee_id, *(c.author_id for c in s.comments)):
                if uid is not None and uid not in self.users:
                    raise ValueError(
                        f"seed: zendesk.tickets {s.id}: user {uid} is not in zendesk.users"
                    )
            if s.group_id is not None and s.group_id not in self.groups:
                raise ValueError(
                    f"seed: zendesk.tickets {s.id}: group {s.group_id} is not in zendesk.groups"
                )
            custom: dict[int, Any] = {}
            for key, value in s.custom_fields.items():
                if not key.isdigit() or int(key) not in self.fields:
                    raise ValueError(
                        f"seed: zendesk.tickets {s.id}: custom field {key} is not in"
                        " zendesk.ticket_fields"
                    )
                custom[int(key)] = value
            org = s.organization_id or self.users[s.requester_id].organization_id
            ticket = Ticket(
                s.id,
                s.subject,
                s.description,
                s.requester_id,
                s.requester_id,
                org,
                s.group_id,
                s.assignee_id,
                _tags(s.tags),
                s.priority,
                s.status,
                s.type,
                custom,
                start,
                start,
            )
            audit = next(self._audit_ids)
            if s.description:
                ticket.comments.append(
                    Comment(
                        next(self._comment_ids), s.requester_id, s.description, True, start, audit
                    )
                )
            for c in s.comments:
                ticket.comments.append(
                    Comment(
                        next(self._comment_ids),
                        c.author_id,
                        c.body,
                        c.public,
                        start,
                        audit,
                        [self._attachment(name, b"") for name in c.attachments],
                    )
                )
            self.tickets[s.id] = ticket

    def routes(self) -> list[Route]:
        def r(
            method: str, path: str, handler: Callable[[Request], Response], *, write: bool = False
        ) -> list[Route]:
            # Webhooks and triggers are an administrator's business in Zendesk.
            admin = path.startswith(("/api/v2/webhooks", "/api/v2/triggers"))
            return [
                route(method, path, handler, write=write, admin=admin),
                route(method, path + ".json", handler, write=write, admin=admin),
            ]

        return [
            *r("GET", "/api/v2/users/me", self.me),
            *r("GET", "/api/v2/users/{id}", self.get_user),
            *r("GET", "/api/v2/organizations/{id}", self.get_organization),
            *r("GET", "/api/v2/groups", self.list_groups),
            *r("GET", "/api/v2/groups/{id}/memberships", self.group_memberships),
            *r("GET", "/api/v2/ticket_fields", self.list_fields),
            *r("GET", "/api/v2/ticket_forms", self.list_forms),
            *r("GET", "/api/v2/organization_fields", self.list_organization_fields),
            *r("POST", "/api/v2/webhooks/test", self.test_webhook),
            *r("POST", "/api/v2/tickets", self.create_ticket, write=True),
            *r("POST", "/api/v2/uploads", self.upload, write=True),
            *r("GET", "/api/v2/tickets/{id}", self.get_ticket),
            *r("PUT", "/api/v2/tickets/{id}", self.update_ticket, write=True),
            *r("GET", "/api/v2/tickets/{id}/comments", self.list_comments),
            *r("GET", "/api/v2/search", self.search),
            *r("GET", "/api/v2/search/count", self.search_count),
            *r("GET", "/api/v2/search/export", self.search_export),
            *r("POST", "/api/v2/webhooks", self.create_webhook, write=True),
            *r("GET", "/api/v2/webhooks", self.list_webhooks),
            *r("GET", "/api/v2/webhooks/{id}", self.get_webhook),
            *r("PUT", "/api/v2/webhooks/{id}", self.update_webhook, write=True),
            *r("PATCH", "/api/v2/webhooks/{id}", self.patch_webhook, write=True),
            *r("DELETE", "/api/v2/webhooks/{id}", self.delete_webhook, write=True),
            *r("GET", "/api/v2/webhooks/{id}/signing_secret", self.signing_secret),
            *r("POST", "/api/v2/webhooks/{id}/signing_secret", self.reset_signing_secret,
               write=True),
            *r("POST", "/api/v2/triggers", self.create_trigger, write=True),
            *r("GET", "/api/v2/triggers", self.list_triggers),
            *r("GET", "/api/v2/triggers/search", self.search_triggers),
            *r("GET", "/api/v2/triggers/{id}", self.get_trigger),
            *r("PUT", "/api/v2/triggers/{id}", self.update_trigger, write=True),
            *r("DELETE", "/api/v2/triggers/{id}", self.delete_trigger, write=True),
        ]

    def state(self) -> dict[str, Any]:
        """A compact JSON view for `/_sandbox/state`."""
        return {
            "tickets": {
                str(t.id): {
                    "subject": t.subject,
                    "tags": sorted(t.tags),
                    "group_id": t.group_id,
                    "assignee_id": t.assignee_id,
                    "status": t.status,
                    "priority": t.priority,
                    "organization_id": t.organization_id,
                    "custom_fields": {str(k): v for k, v in t.custom.items()},
                    "updated_at": zd_time(t.updated_at),
                    "comments": [
                        {
                            "id": c.id,
                            "author_id": c.author_id,
                            "body": c.body,
                            "public": c.public,
                            "attachments": [a["file_name"] for a in c.attachments],
                        }
                        for c in t.comments
                    ],
                }
                for t in self.tickets.values()
            },
            "webhooks": [self._webhook_json(w) for w in self.webhooks.values()],
            "triggers": [self._trigger_json(t) for t in self.triggers.values()],
        }
