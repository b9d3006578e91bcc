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

import base64
import hmac
import itertools
import json
import re
import secrets
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import requests
from pydantic import BaseModel, ConfigDict

from sandbox.delivery import DELIVERY_TIMEOUT, Delivery
from sandbox.query import QueryError, parse_zendesk_query, zendesk_match
from sandbox.wire import ApiError, Request, Response, Route, json_body, route

# ---------------------------------------------------------------------------------------- seed


class _Seed(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ZendeskUserSeed(_Seed):
    id: int
    name: str
    email: str
    role: Literal["end-user", "agent", "admin"] = "end-user"
    organization_id: int | None = None
    #: The API token that authenticates this agent (`email/token:<api_token>`); anything else
    #: is a 401. None: the user cannot use the API.
    api_token: str | None = "sandbox-token"


class ZendeskGroupSeed(_Seed):
    id: int
    name: str
    #: The agents who are members (group memberships): only they can be assigned its tickets.
    members: list[int] = []


class ZendeskFormSeed(_Seed):
    """A ticket form (GET /api/v2/ticket_forms): which ticket fields agents see and fill."""

    id: int
    name: str
    ticket_field_ids: list[int] = []
    active: bool = True
    default: bool = False


class ZendeskOrganizationFieldSeed(_Seed):
    """An organization field definition (GET /api/v2/organization_fields)."""

    id: int
    key: str
    title: str
    type: str = "text"


class ZendeskOrganizationSeed(_Seed):
    id: int
    name: str
    domain_names: list[str] = []
    organization_fields: dict[str, Any] = {}


class ZendeskFieldSeed(_Seed):
    id: int
    title: str
    type: str = "text"


class ZendeskCommentSeed(_Seed):
    author_id: int
    body: str
    public: bool = True
    #: File names of attachments on this comment.
    attachments: list[str] = []


class ZendeskTicketSeed(_Seed):
    id: int
    subject: str
    description: str = ""
    requester_id: int
    organization_id: int | None = None
    group_id: int | None = None
    assignee_id: int | None = None
    tags: list[str] = []
    priority: str | None = None
    status: str = "open"
    type: str | None = None
    custom_fields: dict[str, Any] = {}
    comments: list[ZendeskCommentSeed] = []


class ZendeskSeed(_Seed):
    account_id: int = 1234567
    #: Refuse (403) webhooks and triggers to users whose role is not admin, as Zendesk does
    #: (Webhooks API and Triggers API: "Allowed for: Admins"). On by default; a seed may turn it
    #: off so that tests can act as any seeded agent.
    strict_permissions: bool = True
    subdomain: str = "tierdesk-sandbox"
    users: list[ZendeskUserSeed] = []
    groups: list[ZendeskGroupSeed] = []
    organizations: list[ZendeskOrganizationSeed] = []
    ticket_fields: list[ZendeskFieldSeed] = []
    ticket_forms: list[ZendeskFormSeed] = []
    organization_fields: list[ZendeskOrganizationFieldSeed] = []
    tickets: list[ZendeskTicketSeed] = []


STATUSES = ("new", "open", "pending", "hold", "solved", "closed")
PRIORITIES = ("low", "normal", "high", "urgent")
CONDITION_FIELDS = frozenset(
    {
        "update_type",
        "current_user",
        "role",
        "status",
        "priority",
        "type",
        "ticket_type_id",
        "group_id",
        "assignee_id",
        "organization_id",
        "requester_id",
        "tags",
        "subject_includes_word",
        "comment_is_public",
        "current_via_id",
        "via_id",
        "comment_includes_word",
    }
)
CONDITION_OPERATORS = frozenset(
    {
        "is",
        "is_not",
        "includes",
        "not_includes",
        "changed",
        "not_changed",
        "value",
        "value_previous",
        "not_value",
        "not_value_previous",
        "present",
        "not_present",
        "less_than",
        "greater_than",
    }
)
EVENT_PREFIX = "zen:event-type:ticket."
#: Zendesk via ids: requests through the REST API come "via" 5 (Web service); the sandbox's
#: scripted agents stand for people in the agent interface, via 0 (Web form).
VIA_API = 5
VIA_WEB = 0
UPDATE_CONFLICT = {
    "error": "UpdateConflict",
    "description": "Safe Update prevented the update due to outdated ticket data. Please fetch"
    " the latest ticket data and try again.",
}

# ------------------------------------------------------------------------------------- records


@dataclass
class Comment:
    id: int
    author_id: int
    body: str
    public: bool
    created_at: datetime
    audit_id: int
    attachments: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Ticket:
    id: int
    subject: str
    description: str
    requester_id: int
    submitter_id: int
    organization_id: int | None
    group_id: int | None
    assignee_id: int | None
    tags: list[str]
    priority: str | None
    status: str
    type: str | None
    custom: dict[int, Any]
    created_at: datetime
    updated_at: datetime
    comments: list[Comment] = field(default_factory=list)
    #: The channel the ticket was created through (Zendesk via ids: 0 web form, 5 API).
    via_id: int = VIA_API


@dataclass
class Webhook:
    id: str
    body: dict[str, Any]
    secret: str
    created_at: datetime


@dataclass
class Trigger:
    id: int
    body: dict[str, Any]
    created_at: datetime
    updated_at: datetime


#: Zendesk's 403 for an agent on an admin-only endpoint (its standard "Forbidden" body).
FORBIDDEN = {
    "error": "Forbidden",
    "description": "You do not have access to this page. Please contact the account owner of"
    " this help desk for further help.",
}
#: The static secret Zendesk signs test deliveries of a not-yet-created webhook with.
STATIC_TEST_SECRET = "dGhpc19zZWNyZXRfaXNfZm9yX3Rlc3Rpbmdfb25seQ=="


def zd_time(when: datetime) -> str:
    """Zendesk's timestamp format: 2024-05-01T10:12:07Z (seconds)."""
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _error(code: int, error: str, description: str, /, **details: str) -> ApiError:
    body: dict[str, Any] = {"error": error, "description": description}
    if details:
        body["details"] = {k: [{"description": v}] for k, v in details.items()}
    return ApiError(code, body)


def _invalid(**details: str) -> ApiError:
    return _error(422, "RecordInvalid", "Record validation errors", **details)


def _bad_json(message: str) -> ApiError:
    return _error(400, "InvalidJSON", message)


def _not_found() -> ApiError:
    return ApiError(404, {"error": "RecordNotFound", "description": "Not found"})


Emit = Callable[[str, str, str, str | None, bytes, str], None]
"""emit(webhook_id, url, event, secret, raw_body, ticket): hand one delivery to the deliverer."""


class ZendeskSim:
    """In-memory Zendesk account. All methods run under the sandbox lock held by the HTTP layer."""

    vendor = "zendesk"

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

    # ----------------------------------------------------------------------------- identity

    def authenticate(self, headers: Mapping[str, str]) -> str:
        """The user id (as text) the request's credentials belong to, or Zendesk's 401."""
        auth = headers.get("Authorization") or headers.get("authorization") or ""
        if auth.startswith("Basic "):
            try:
                login = base64.b64decode(auth[6:]).decode().split(":", 1)[0]
            except (ValueError, UnicodeDecodeError) as exc:
                raise ApiError(401, {"error": "Couldn't authenticate you"}) from exc
            login, _, token = base64.b64decode(auth[6:]).decode().partition(":")
            email = login.removesuffix("/token")
            for user in self.users.values():
                if (
                    user.email == email
                    and user.role in ("agent", "admin")
                    and user.api_token is not None
                    and hmac.compare_digest(token.encode(), user.api_token.encode())
                ):
                    return str(user.id)
        # Zendesk's answer to a wrong or missing credential: 401 {"error": "Couldn't
        # authenticate you"} (API reference, "Security and authentication"; zenpy surfaces the
        # same body as APIException).
        raise ApiError(401, {"error": "Couldn't authenticate you"})

    def user_json(self, uid: int) -> dict[str, Any]:
        u = self.users[uid]
        return {
            "id": u.id,
            "url": f"{self.base_url}/api/v2/users/{u.id}.json",
            "name": u.name,
            "email": u.email,
            "role": u.role,
            "organization_id": u.organization_id,
            "active": True,
            "verified": True,
            "time_zone": "UTC",
            "locale": "en-US",
            "created_at": "2026-01-01T00:00:00Z",
            "updated_at": "2026-01-01T00:00:00Z",
            "tags": [],
            "user_fields": {},
            "suspended": False,
        }

    def organization_json(self, oid: int) -> dict[str, Any]:
        o = self.organizations[oid]
        return {
            "id": o.id,
            "url": f"{self.base_url}/api/v2/organizations/{o.id}.json",
            "name": o.name,
            "domain_names": o.domain_names,
            "details": "",
            "notes": "",
            "group_id": None,
            "shared_tickets": False,
            "shared_comments": False,
            "tags": [],
            "organization_fields": dict(o.organization_fields),
            "external_id": None,
            "created_at": "2026-01-01T00:00:00Z",
            "updated_at": "2026-01-01T00:00:00Z",
        }

    def ticket_json(self, t: Ticket) -> dict[str, Any]:
        custom = [{"id": fid, "value": t.custom.get(fid)} for fid in self.fields]
        return {
            "url": f"{self.base_url}/api/v2/tickets/{t.id}.json",
            "id": t.id,
            "external_id": None,
            "via": {
                "channel": "web" if t.via_id == VIA_WEB else "api",
                "source": {"from": {}, "to": {}, "rel": None},
            },
            "created_at": zd_time(t.created_at),
            "updated_at": zd_time(t.updated_at),
            "generated_timestamp": int(t.updated_at.timestamp()),
            "type": t.type,
            "subject": t.subject,
            "raw_subject": t.subject,
            "description": t.description,
            "priority": t.priority,
            "status": t.status,
            "recipient": None,
            "requester_id": t.requester_id,
            "submitter_id": t.submitter_id,
            "assignee_id": t.assignee_id,
            "organization_id": t.organization_id,
            "group_id": t.group_id,
            "collaborator_ids": [],
            "follower_ids": [],
            "email_cc_ids": [],
            "forum_topic_id": None,
            "problem_id": None,
            "has_incidents": False,
            "is_public": any(c.public for c in t.comments) or not t.comments,
            "due_at": None,
            "tags": list(t.tags),
            "custom_fields": custom,
            "fields": custom,
            "satisfaction_rating": None,
            "sharing_agreement_ids": [],
            "custom_status_id": 1,
            "followup_ids": [],
            "brand_id": 1,
            "allow_channelback": False,
            "allow_attachments": True,
            "from_messaging_channel": False,
        }

    def comment_json(self, c: Comment) -> dict[str, Any]:
        return {
            "id": c.id,
            "type": "Comment",
            "author_id": c.author_id,
            "body": c.body,
            "html_body": f'<div class="zd-comment"><p>{c.body}</p></div>',
            "plain_body": c.body,
            "public": c.public,
            "attachments": list(c.attachments),
            "audit_id": c.audit_id,
            "via": {"channel": "api", "source": {"from": {}, "to": {}, "rel": None}},
            "created_at": zd_time(c.created_at),
            "metadata": {"system": {}, "custom": {}},
        }

    def find(self, raw: str) -> Ticket:
        try:
            return self.tickets[int(raw)]
        except (KeyError, ValueError) as exc:
            raise _not_found() from exc

    # ------------------------------------------------------------------------------ routes

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

    def me(self, request: Request) -> Response:
        return Response(200, {"user": self.user_json(int(request.actor or 0))})

    def get_user(self, request: Request) -> Response:
        try:
            return Response(200, {"user": self.user_json(int(request.params["id"]))})
        except (KeyError, ValueError) as exc:
            raise _not_found() from exc

    def get_organization(self, request: Request) -> Response:
        try:
            oid = int(request.params["id"])
            return Response(200, {"organization": self.organization_json(oid)})
        except (KeyError, ValueError) as exc:
            raise _not_found() from exc

    def list_groups(self, request: Request) -> Response:
        groups = [
            {
                "id": g.id,
                "name": g.name,
                "url": f"{self.base_url}/api/v2/groups/{g.id}.json",
                "deleted": False,
                "default": False,
            }
            for g in self.groups.values()
        ]
        return Response(
            200, {"groups": groups, "next_page": None, "previous_page": None, "count": len(groups)}
        )

    def group_memberships(self, request: Request) -> Response:
        """GET /api/v2/groups/{id}/memberships (Group Memberships API: "List Memberships")."""
        try:
            group = self.groups[int(request.params["id"])]
        except (KeyError, ValueError) as exc:
            raise _not_found() from exc
        memberships = [
            {
                "id": group.id * 100000 + uid,
                "user_id": uid,
                "group_id": group.id,
                "default": False,
                "url": f"{self.base_url}/api/v2/group_memberships/{group.id * 100000 + uid}.json",
            }
            for uid in group.members
        ]
        return Response(
            200,
            {
                "group_memberships": memberships,
                "next_page": None,
                "previous_page": None,
                "count": len(memberships),
            },
        )

    def list_forms(self, request: Request) -> Response:
        """GET /api/v2/ticket_forms (Ticket Forms API)."""
        forms = [
            {
                "id": f.id,
                "name": f.name,
                "display_name": f.name,
                "active": f.active,
                "default": f.default,
                "end_user_visible": True,
                "ticket_field_ids": list(f.ticket_field_ids),
                "url": f"{self.base_url}/api/v2/ticket_forms/{f.id}.json",
            }
            for f in self.seed.ticket_forms
        ]
        return Response(
            200, {"ticket_forms": forms, "next_page": None, "previous_page": None,
                  "count": len(forms)}
        )

    def list_organization_fields(self, request: Request) -> Response:
        """GET /api/v2/organization_fields (Organization Fields API)."""
        fields = [
            {
                "id": f.id,
                "key": f.key,
                "title": f.title,
                "type": f.type,
                "active": True,
                "url": f"{self.base_url}/api/v2/organization_fields/{f.id}.json",
            }
            for f in self.seed.organization_fields
        ]
        return Response(
            200, {"organization_fields": fields, "next_page": None, "previous_page": None,
                  "count": len(fields)}
        )

    def list_fields(self, request: Request) -> Response:
        fields = [
            {
                "id": f.id,
                "title": f.title,
                "type": f.type,
                "active": True,
                "url": f"{self.base_url}/api/v2/ticket_fields/{f.id}.json",
            }
            for f in self.fields.values()
        ]
        return Response(
            200,
            {
                "ticket_fields": fields,
                "next_page": None,
                "previous_page": None,
                "count": len(fields),
            },
        )

    def _attachment(self, name: str, content: bytes) -> dict[str, Any]:
        aid = next(self._attachment_ids)
        return {
            "id": aid,
            "file_name": name,
            "content_type": "application/octet-stream",
            "content_url": f"{self.base_url}/attachments/token/{aid}/?name={name}",
            "size": len(content),
            "inline": False,
            "deleted": False,
            "thumbnails": [],
        }

    def upload(self, request: Request) -> Response:
        """POST /api/v2/uploads?filename=x (raw bytes): a token to put in comment.uploads."""
        name = request.arg("filename")
        if not name:
            raise _error(400, "InvalidParameter", "filename is required: /api/v2/uploads?filename=")
        token = request.arg("token") or secrets.token_hex(12)
        attachment = self._attachment(name, request.body)
        self.uploads.setdefault(token, []).append(attachment)
        return Response(
            201,
            {
                "upload": {
                    "token": token,
                    "expires_at": zd_time(self.now() + timedelta(days=3)),
                    "attachment": attachment,
                    "attachments": self.uploads[token],
                }
            },
            wrote=True,
        )

    def get_ticket(self, request: Request) -> Response:
        t = self.find(request.params["id"])
        body: dict[str, Any] = {"ticket": self.ticket_json(t)}
        include = set(request.args("include"))
        if "users" in include:
            ids = [t.requester_id, t.submitter_id, t.assignee_id]
            body["users"] = [self.user_json(u) for u in dict.fromkeys(ids) if u in self.users]
        if "organizations" in include:
            body["organizations"] = (
                [self.organization_json(t.organization_id)]
                if t.organization_id in self.organizations
                else []
            )
        if "groups" in include:
            body["groups"] = (
                [{"id": t.group_id, "name": self.groups[t.group_id].name}]
                if t.group_id in self.groups
                else []
            )
        return Response(200, body)

    def list_comments(self, request: Request) -> Response:
        t = self.find(request.params["id"])
        comments = [self.comment_json(c) for c in t.comments]
        if request.arg("sort_order") == "desc":
            comments.reverse()
        return Response(
            200,
            {
                "comments": comments,
                "next_page": None,
                "previous_page": None,
                "count": len(comments),
            },
        )

    # ---------------------------------------------------------------------------- writing

    def _ticket_body(self, request: Request) -> dict[str, Any]:
        body = json_body(request, _bad_json)
        data = body.get("ticket")
        if not isinstance(data, dict):
            raise _error(400, "InvalidJSON", 'expected {"ticket": {...}}')
        return data

    def is_admin(self, actor: str | None) -> bool:
        """True for admins, and for every agent unless the seed has strict_permissions."""
        if not self.seed.strict_permissions:
            return True
        uid = int(actor) if actor and actor.isdigit() else None
        return uid is not None and uid in self.users and self.users[uid].role == "admin"

    def update_ticket(self, request: Request) -> Response:
        t = self.find(request.params["id"])
        if t.status == "closed":
            raise _invalid(status="Status: closed prevents ticket update")
        data = self._ticket_body(request)
        if data.get("safe_update"):
            stamp = data.get("updated_stamp")
            if not isinstance(stamp, str):
                raise _invalid(
                    updated_stamp="safe_update needs updated_stamp, the ticket's updated_at"
                )
            if stamp != zd_time(t.updated_at):
                raise ApiError(409, dict(UPDATE_CONFLICT))
        actor = int(request.actor or 0)
        self._via = VIA_WEB if request.agent else VIA_API
        return self._change(t, data, actor, created=False)

    def touch(self, t: Ticket) -> None:
        """Another agent saved the ticket: updated_at moves on, nothing visible changes."""
        t.updated_at = self._next_stamp(t)

    def _next_stamp(self, t: Ticket) -> datetime:
        now = self.now().replace(microsecond=0)
        return max(now, t.updated_at + timedelta(seconds=1))

    def create_ticket(self, request: Request) -> Response:
        data = self._ticket_body(request)
        actor = int(request.actor or 0)
        requester = data.get("requester_id")
        if requester is None and isinstance(data.get("requester"), dict):
            requester = self._requester(data["requester"])
        requester = int(requester) if requester is not None else actor
        if requester not in self.users:
            raise _invalid(requester="Requester: is invalid")
        comment = data.get("comment")
        if not isinstance(comment, dict) or not (comment.get("body") or comment.get("html_body")):
            raise _invalid(description="Description: cannot be blank")
        if not data.get("subject"):
            raise _invalid(subject="Subject: cannot be blank")
        now = self.now().replace(microsecond=0)
        org = data.get("organization_id", self.users[requester].organization_id)
        t = Ticket(
            next(self._ticket_ids),
            "",
            str(comment.get("body") or comment.get("html_body")),
            requester,
            actor,
            org,
            None,
            None,
            [],
            None,
            "new",
            None,
            {},
            now,
            now,
        )
        self.tickets[t.id] = t
        try:
            self._via = t.via_id = VIA_WEB if request.agent else VIA_API
            return self._change(t, data, actor, created=True)
        except ApiError:
            del self.tickets[t.id]
            raise

    def _requester(self, spec: Mapping[str, Any]) -> int:
        email = spec.get("email")
        for u in self.users.values():
            if u.email == email:
                return u.id
        if not isinstance(email, str) or "@" not in email:
            raise _invalid(requester="Requester: an email is required for a new requester")
        uid = next(self._user_ids)
        self.users[uid] = ZendeskUserSeed(id=uid, name=str(spec.get("name") or email), email=email)
        return uid

    def _change(self, t: Ticket, data: Mapping[str, Any], actor: int, *, created: bool) -> Response:
        """Validate and apply a ticket write, then run triggers and event webhooks."""
        before = Ticket(
            **{
                **t.__dict__,
                "tags": list(t.tags),
                "custom": dict(t.custom),
                "comments": list(t.comments),
            }
        )
        tags = list(t.tags)
        if "tags" in data:
            if not isinstance(data["tags"], list):
                raise _invalid(tags="Tags: must be a list of strings")
            tags = _tags(data["tags"])
        for extra in _tags(data.get("additional_tags") or []):
            if extra not in tags:
                tags.append(extra)
        gone = set(_tags(data.get("remove_tags") or []))
        tags = [x for x in tags if x not in gone]
        group_id = t.group_id
        if "group_id" in data:
            group_id = data["group_id"]
            if group_id is not None and group_id not in self.groups:
                raise _invalid(group="Group: is invalid")
        assignee_id = t.assignee_id
        if "assignee_id" in data:
            assignee_id = data["assignee_id"]
            if assignee_id is not None and (
                assignee_id not in self.users or self.users[assignee_id].role == "end-user"
            ):
                # 422 RecordInvalid, details.assignee (facetoe/zenpy #628 shows the body).
                raise _invalid(assignee="Assignee: is invalid")
        if (
            assignee_id is not None
            and group_id is not None
            and ("assignee_id" in data or "group_id" in data)
            and assignee_id not in self.groups[group_id].members
        ):
            # An assignee must be a member of the ticket's group: 422 RecordInvalid with
            # details.assignee "Assignee: is not a member of the group" (facetoe/zenpy #628).
            raise _invalid(assignee="Assignee: is not a member of the group")
        status = data.get("status", t.status)
        if status not in STATUSES:
            raise _invalid(status=f"Status: must be one of {', '.join(STATUSES)}")
        priority = data.get("priority", t.priority)
        if priority is not None and priority not in PRIORITIES:
            raise _invalid(priority=f"Priority: must be one of {', '.join(PRIORITIES)}")
        custom = dict(t.custom)
        for entry in data.get("custom_fields") or []:
            if not isinstance(entry, dict) or "id" not in entry:
                raise _invalid(custom_fields='each custom field is {"id": ..., "value": ...}')
            fid = int(entry["id"])
            # Zendesk ignores ids that are not ticket fields of the account: "The REST API is
            # permissive. It ignores attributes that do not exist" (Zendesk support article
            # 4418443326106, "REST API gives 200 response but the request didn't work"; for
            # custom field ids in particular unconfirmed). tierdesk doctor catches such ids.
            if fid in self.fields:
                if entry.get("value") in (None, ""):
                    custom.pop(fid, None)
                else:
                    custom[fid] = entry["value"]
        comment_in = data.get("comment")
        new_comment: Comment | None = None
        if (comment_in is not None and not created) and (
            not isinstance(comment_in, dict)
            or not (comment_in.get("body") or comment_in.get("html_body"))
        ):
            raise _invalid(comment="Comment: body cannot be blank")
        files: list[dict[str, Any]] = []
        if isinstance(comment_in, dict):
            tokens = comment_in.get("uploads") or []
            if not isinstance(tokens, list) or any(tok not in self.uploads for tok in tokens):
                raise _invalid(uploads="Uploads: a token is invalid or already used")
            files = [a for tok in tokens for a in self.uploads[tok]]
            for tok in tokens:
                del self.uploads[tok]
        subject = data.get("subject", t.subject)
        t.tags, t.group_id, t.assignee_id = tags, group_id, assignee_id
        t.status, t.priority, t.custom, t.subject = status, priority, custom, str(subject)
        t.type = data.get("type", t.type)
        if created and t.status == "new" and (assignee_id is not None):
            t.status = "open"
        audit_id = next(self._audit_ids)
        if isinstance(comment_in, dict):
            author = int(comment_in.get("author_id") or actor) if not created else t.requester_id
            new_comment = Comment(
                next(self._comment_ids),
                author,
                str(comment_in.get("body") or comment_in.get("html_body")),
                bool(comment_in.get("public", True)),
                self.now().replace(microsecond=0),
                audit_id,
                files,
            )
            t.comments.append(new_comment)
        changes = _diff(before, t)
        if not created and not changes and new_comment is None:
            return Response(
                200,
                {"ticket": self.ticket_json(t), "audit": self._audit(t, audit_id, actor, [])},
                wrote=True,
            )
        t.updated_at = t.updated_at if created else self._next_stamp(before)
        events = self._audit_events(changes, new_comment)
        self._run_triggers(t, before, actor, created=created, changes=changes, comment=new_comment)
        self._emit_events(t, before, actor, created=created, changes=changes, comment=new_comment)
        return Response(
            201 if created else 200,
            {"ticket": self.ticket_json(t), "audit": self._audit(t, audit_id, actor, events)},
            wrote=True,
        )

    def _audit(
        self, t: Ticket, audit_id: int, actor: int, events: list[dict[str, Any]]
    ) -> dict[str, Any]:
        return {
            "id": audit_id,
            "ticket_id": t.id,
            "created_at": zd_time(t.updated_at),
            "author_id": actor,
            "metadata": {"system": {}, "custom": {}},
            "via": {"channel": "api", "source": {"from": {}, "to": {}, "rel": None}},
            "events": events,
        }

    def _audit_events(
        self, changes: Mapping[str, tuple[Any, Any]], comment: Comment | None
    ) -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = []
        for name, (old, new) in changes.items():
            events.append(
                {
                    "id": next(self._audit_ids),
                    "type": "Change",
                    "field_name": name,
                    "value": new,
                    "previous_value": old,
                }
            )
        if comment is not None:
            events.append({**self.comment_json(comment), "type": "Comment"})
        return events

    # ---------------------------------------------------------------------------- triggers

    def _check_trigger(self, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict) or not body.get("title"):
            raise _invalid(title="Title: cannot be blank")
        conditions = body.get("conditions") or {}
        if not isinstance(conditions, dict) or not (conditions.get("all") or conditions.get("any")):
            raise _invalid(conditions="Conditions: give at least one in all or any")
        for group in ("all", "any"):
            for c in conditions.get(group) or []:
                if not isinstance(c, dict):
                    raise _invalid(conditions="each condition is {field, operator, value}")
                fname = str(c.get("field", ""))
                if fname not in CONDITION_FIELDS and not re.fullmatch(r"custom_fields_\d+", fname):
                    raise _invalid(
                        conditions=f"the sandbox does not know the condition field"
                        f" {fname!r}; known: {', '.join(sorted(CONDITION_FIELDS))},"
                        " custom_fields_<id>"
                    )
                if c.get("operator") not in CONDITION_OPERATORS:
                    raise _invalid(conditions=f"unknown operator {c.get('operator')!r} for {fname}")
        actions = body.get("actions")
        if not isinstance(actions, list) or not actions:
            raise _invalid(actions="Actions: give at least one")
        for a in actions:
            if not isinstance(a, dict) or a.get("field") != "notification_webhook":
                raise _invalid(
                    actions="the sandbox runs notification_webhook actions only, got"
                    f" {a.get('field') if isinstance(a, dict) else a!r}"
                )
            value = a.get("value")
            if not (
                isinstance(value, list)
                and len(value) == 2
                and all(isinstance(v, str) for v in value)
            ):
                raise _invalid(actions="notification_webhook value is [webhook_id, body]")
            try:
                render_liquid(value[1], {}, escape=False)
            except ValueError as exc:
                raise _invalid(actions=f"notification_webhook body: {exc}") from exc
            if value[0] not in self.webhooks:
                raise _invalid(actions=f"webhook {value[0]} does not exist")
        return body

    def _trigger_json(self, tr: Trigger) -> dict[str, Any]:
        return {
            "url": f"{self.base_url}/api/v2/triggers/{tr.id}.json",
            "id": tr.id,
            "active": True,
            "position": 0,
            "description": None,
            "default": False,
            "raw_title": tr.body.get("title"),
            "category_id": None,
            **tr.body,
            "created_at": zd_time(tr.created_at),
            "updated_at": zd_time(tr.updated_at),
        }

    def create_trigger(self, request: Request) -> Response:
        body = json_body(request, _bad_json).get("trigger")
        now = self.now()
        tr = Trigger(next(self._trigger_ids), self._check_trigger(body), now, now)
        self.triggers[tr.id] = tr
        return Response(201, {"trigger": self._trigger_json(tr)}, wrote=True)

    def list_triggers(self, request: Request) -> Response:
        found = [self._trigger_json(t) for t in self.triggers.values()]
        return Response(
            200, {"triggers": found, "next_page": None, "previous_page": None, "count": len(found)}
        )

    def search_triggers(self, request: Request) -> Response:
        """GET /api/v2/triggers/search?query=: triggers whose title contains the words."""
        needle = (request.arg("query") or "").lower()
        found = [
            self._trigger_json(t)
            for t in self.triggers.values()
            if needle in str(t.body.get("title", "")).lower()
        ]
        return Response(
            200, {"triggers": found, "next_page": None, "previous_page": None, "count": len(found)}
        )

    def _trigger(self, request: Request) -> Trigger:
        try:
            return self.triggers[int(request.params["id"])]
        except (KeyError, ValueError) as exc:
            raise _not_found() from exc

    def get_trigger(self, request: Request) -> Response:
        return Response(200, {"trigger": self._trigger_json(self._trigger(request))})

    def update_trigger(self, request: Request) -> Response:
        tr = self._trigger(request)
        body = json_body(request, _bad_json).get("trigger")
        if not isinstance(body, dict):
            raise _invalid(trigger='expected {"trigger": {...}}')
        merged = {**tr.body, **body}
        tr.body = self._check_trigger(merged)
        tr.updated_at = self.now()
        return Response(200, {"trigger": self._trigger_json(tr)}, wrote=True)

    def delete_trigger(self, request: Request) -> Response:
        del self.triggers[self._trigger(request).id]
        return Response(204, None, wrote=True)

    def _condition(
        self,
        c: Mapping[str, Any],
        t: Ticket,
        before: Ticket,
        actor: int,
        *,
        created: bool,
        changes: Mapping[str, tuple[Any, Any]],
        comment: Comment | None,
    ) -> bool:
        fname, op, value = str(c["field"]), str(c["operator"]), c.get("value")
        if fname == "update_type":
            kind = "Create" if created else "Change"
            return (str(value) == kind) == (op == "is")
        if fname == "current_user":
            role = self.users[actor].role if actor in self.users else "agent"
            names = {str(actor), "end_user" if role == "end-user" else "agent"}
            return (str(value) in names) == (op == "is")
        if fname in ("current_via_id", "via_id"):
            via = self._via if fname == "current_via_id" else t.via_id
            return (str(value) == str(via)) == (op == "is")
        if fname == "role":
            role = self.users[actor].role if actor in self.users else "agent"
            hit = str(value) == ("end_user" if role == "end-user" else "agent")
            return hit == (op == "is")
        if fname == "tags":
            wanted = set(_tags(str(value or "").split()))
            hit = bool(wanted & set(t.tags))
            return hit if op == "includes" else not hit
        if fname == "comment_is_public":
            if comment is None:
                return str(value) == "not_relevant"
            return str(value) in (str(comment.public).lower(), "not_relevant")
        if fname in ("comment_includes_word", "subject_includes_word"):
            text = (comment.body if comment and fname.startswith("comment") else t.subject).lower()
            hit = any(w in text for w in str(value or "").lower().split())
            return hit if op == "includes" else not hit
        key = fname
        current: Any
        previous: Any
        if fname.startswith("custom_fields_"):
            fid = int(fname.rsplit("_", 1)[1])
            current, previous = t.custom.get(fid), before.custom.get(fid)
            key = f"custom_field_{fid}"
        else:
            attr = {"ticket_type_id": "type"}.get(fname, fname)
            current, previous = getattr(t, attr), getattr(before, attr)
            key = attr
        changed = key in changes or (created and current is not None)
        as_text = "" if current is None else str(current)
        want = "" if value is None else str(value)
        if op == "is":
            return as_text == want
        if op == "is_not":
            return as_text != want
        if op == "present":
            return current not in (None, "")
        if op == "not_present":
            return current in (None, "")
        if op == "changed":
            return changed
        if op == "not_changed":
            return not changed
        if op == "value":
            return changed and as_text == want
        if op == "not_value":
            return changed and as_text != want
        if op == "value_previous":
            return changed and str(previous or "") == want
        if op == "not_value_previous":
            return changed and str(previous or "") != want
        if fname == "status" and op in ("less_than", "greater_than"):
            a, b = STATUSES.index(t.status), STATUSES.index(want) if want in STATUSES else 0
            return a < b if op == "less_than" else a > b
        return False

    def _run_triggers(
        self,
        t: Ticket,
        before: Ticket,
        actor: int,
        *,
        created: bool,
        changes: Mapping[str, tuple[Any, Any]],
        comment: Comment | None,
    ) -> None:
        ordered = sorted(
            self.triggers.values(), key=lambda tr: (int(tr.body.get("position") or 0), tr.id)
        )
        for tr in ordered:
            if tr.body.get("active") is False:
                continue
            conds = tr.body.get("conditions") or {}

            def ok(c: Mapping[str, Any]) -> bool:
                return self._condition(
                    c, t, before, actor, created=created, changes=changes, comment=comment
                )

            if not all(ok(c) for c in conds.get("all") or []):
                continue
            anys = conds.get("any") or []
            if anys and not any(ok(c) for c in anys):
                continue
            for action in tr.body.get("actions") or []:
                hook_id, template = action["value"]
                hook = self.webhooks.get(hook_id)
                if hook is None or hook.body.get("status") != "active":
                    continue
                escape = hook.body.get("request_format", "json") == "json"
                body = self.render(template, t, actor, comment, escape=escape)
                self.emit(
                    hook.id,
                    str(hook.body["endpoint"]),
                    "trigger",
                    hook.secret,
                    body.encode(),
                    str(t.id),
                )

    def render(
        self, template: str, t: Ticket, actor: int, comment: Comment | None, *, escape: bool
    ) -> str:
        """Substitute Zendesk placeholders ({{ticket.id}}, {{current_user.email}}, ...) and run
        Liquid `{% for x in list %}...{% endfor %}` loops (the only Liquid tag supported)."""
        return render_liquid(template, self._placeholder_context(t, actor, comment), escape=escape)

    def _placeholder_context(
        self, t: Ticket, actor: int, comment: Comment | None
    ) -> dict[str, Any]:
        def user(uid: int | None) -> dict[str, Any]:
            if uid is None or uid not in self.users:
                return {}
            u = self.users[uid]
            first, _, last = u.name.partition(" ")
            return {
                "id": u.id,
                "email": u.email,
                "name": u.name,
                "first_name": first,
                "last_name": last,
                "role": u.role,
                "organization": {"id": u.organization_id} if u.organization_id else {},
            }

        org: dict[str, Any] = {}
        if t.organization_id in self.organizations:
            o = self.organizations[t.organization_id]
            org = {
                "id": o.id,
                "name": o.name,
                "custom_fields": dict(o.organization_fields),
                "external_id": "",
            }
        group: dict[str, Any] = {}
        if t.group_id in self.groups:
            group = {"id": t.group_id, "name": self.groups[t.group_id].name}
        latest = comment or (t.comments[-1] if t.comments else None)
        ticket: dict[str, Any] = {
            "id": t.id,
            "title": t.subject,
            "description": t.description,
            # Placeholders give display names ("High", "Open"), not the API's values.
            "priority": (t.priority or "").capitalize(),
            "status": t.status.capitalize(),
            "ticket_type": t.type or "",
            "tags": " ".join(t.tags),
            "url": f"{self.seed.subdomain}.zendesk.com/agent/tickets/{t.id}",
            "link": f"https://{self.seed.subdomain}.zendesk.com/agent/tickets/{t.id}",
            "via": "Web Service",
            "account": self.seed.subdomain,
            "created_at": zd_time(t.created_at),
            "updated_at": zd_time(t.updated_at),
            "created_at_with_timestamp": zd_time(t.created_at),
            "updated_at_with_timestamp": zd_time(t.updated_at),
            "group": group,
            "assignee": user(t.assignee_id),
            "requester": user(t.requester_id),
            "organization": org,
            "comments": [
                {
                    "value": c.body,
                    "id": c.id,
                    "is_public": str(c.public).lower(),
                    "author": user(c.author_id),
                    "attachments": [
                        {"filename": a["file_name"], "url": a["content_url"]} for a in c.attachments
                    ],
                }
                for c in t.comments
            ],
            "latest_comment": {
                "value": latest.body,
                "id": latest.id,
                "is_public": str(latest.public).lower(),
                "author": user(latest.author_id),
            }
            if latest
            else {},
        }
        for fid, fdef in self.fields.items():
            value = t.custom.get(fid)
            if isinstance(value, list):
                value = " ".join(str(v) for v in value)
            ticket[f"ticket_field_{fid}"] = "" if value is None else value
            ticket[f"ticket_field_option_title_{fid}"] = "" if value is None else value
            del fdef
        return {
            "ticket": ticket,
            "current_user": user(actor),
            "satisfaction": {},
            "account": self.seed.subdomain,
        }

    # ------------------------------------------------------------------------ event hooks

    def _emit_events(
        self,
        t: Ticket,
        before: Ticket,
        actor: int,
        *,
        created: bool,
        changes: Mapping[str, tuple[Any, Any]],
        comment: Comment | None,
    ) -> None:
        events: list[tuple[str, dict[str, Any]]] = []
        if created:
            events.append(("created", {}))
        else:
            for name, (old, new) in changes.items():
                if name == "tags":
                    events.append(
                        (
                            "tags_changed",
                            {
                                "tags_added": [x for x in new if x not in old],
                                "tags_removed": [x for x in old if x not in new],
                            },
                        )
                    )
                elif name in ("status", "priority"):
                    events.append(
                        (f"{name}_changed", {"current": _upper(new), "previous": _upper(old)})
                    )
                elif name == "group_id":
                    events.append(
                        ("group_assignment_changed", {"current": _ref(new), "previous": _ref(old)})
                    )
                elif name == "assignee_id":
                    events.append(
                        ("agent_assignment_changed", {"current": _ref(new), "previous": _ref(old)})
                    )
                elif name == "subject":
                    events.append(("subject_changed", {"current": new, "previous": old}))
                elif name.startswith("custom_field_"):
                    events.append(
                        (
                            "custom_field_changed",
                            {
                                "current": new,
                                "previous": old,
                                "custom_field": {"id": name.rsplit("_", 1)[1]},
                            },
                        )
                    )
            if comment is not None:
                author = self.users.get(comment.author_id)
                events.append(
                    (
                        "comment_added",
                        {
                            "comment": {
                                "id": str(comment.id),
                                "body": comment.body,
                                "is_public": comment.public,
                                "author": {
                                    "id": str(comment.author_id),
                                    "is_staff": bool(author and author.role != "end-user"),
                                    "name": author.name if author else "",
                                },
                            }
                        },
                    )
                )
        if not events:
            return
        detail = self._detail(t, actor)
        for name, event in events:
            kind = EVENT_PREFIX + name
            for hook in self.webhooks.values():
                if hook.body.get("status") != "active" or kind not in (
                    hook.body.get("subscriptions") or []
                ):
                    continue
                envelope = {
                    "account_id": self.seed.account_id,
                    "detail": detail,
                    "event": event,
                    "id": str(uuid.uuid4()),
                    "subject": f"zen:ticket:{t.id}",
                    "time": t.updated_at.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
                    "type": kind,
                    "zendesk_event_version": "2022-11-06",
                }
                self.emit(
                    hook.id,
                    str(hook.body["endpoint"]),
                    kind,
                    hook.secret,
                    json.dumps(envelope).encode(),
                    str(t.id),
                )

    def _detail(self, t: Ticket, actor: int) -> dict[str, Any]:
        def s(v: Any) -> str | None:
            return None if v is None else str(v)

        return {
            "actor_id": str(actor),
            "assignee_id": s(t.assignee_id),
            "brand_id": "1",
            "created_at": zd_time(t.created_at),
            "custom_status": "1",
            "description": t.description,
            "external_id": None,
            "form_id": "1",
            "group_id": s(t.group_id),
            "id": str(t.id),
            "is_public": True,
            "organization_id": s(t.organization_id),
            "priority": _upper(t.priority),
            "requester_id": str(t.requester_id),
            "status": _upper(t.status),
            "subject": t.subject,
            "submitter_id": str(t.submitter_id),
            "tags": list(t.tags),
            "type": _upper(t.type),
            "updated_at": zd_time(t.updated_at),
            "via": {"channel": "web_service"},
        }

    # ---------------------------------------------------------------------------- webhooks

    def _check_webhook(self, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise _invalid(webhook='expected {"webhook": {...}}')
        for key in ("name", "endpoint", "http_method", "request_format", "status"):
            if not body.get(key):
                raise _invalid(**{key: f"{key} is required"})
        if not str(body["endpoint"]).startswith(("http://", "https://")):
            raise _invalid(endpoint="endpoint must be an absolute http(s) URL")
        if body["status"] not in ("active", "inactive"):
            raise _invalid(status="status is active or inactive")
        subs = body.get("subscriptions")
        if not isinstance(subs, list) or not subs:
            raise _invalid(subscriptions="give conditional_ticket_events or zen:event-type:...")
        for sub in subs:
            if sub != "conditional_ticket_events" and not str(sub).startswith("zen:event-type:"):
                raise _invalid(subscriptions=f"unknown subscription {sub!r}")
        return body

    def _webhook_json(self, w: Webhook) -> dict[str, Any]:
        data = {k: v for k, v in w.body.items() if k != "signing_secret"}
        return {
            **data,
            "id": w.id,
            "created_at": zd_time(w.created_at),
            "created_by": "-1",
            "updated_at": zd_time(w.created_at),
            "updated_by": "-1",
            "signing_secret": {"algorithm": "SHA256", "secret": None},
        }

    def create_webhook(self, request: Request) -> Response:
        body = self._check_webhook(json_body(request, _bad_json).get("webhook"))
        given = body.get("signing_secret") or {}
        secret = given.get("secret") if isinstance(given, dict) else None
        wid = "01" + uuid.uuid4().hex[:24].upper()
        hook = Webhook(wid, dict(body), str(secret or secrets.token_urlsafe(30)), self.now())
        self.webhooks[wid] = hook
        return Response(201, {"webhook": self._webhook_json(hook)}, wrote=True)

    def list_webhooks(self, request: Request) -> Response:
        needle = (request.arg("filter[name_contains]") or "").lower()
        found = [
            self._webhook_json(w)
            for w in self.webhooks.values()
            if needle in str(w.body.get("name", "")).lower()
        ]
        return Response(
            200,
            {
                "webhooks": found,
                "meta": {"has_more": False, "after_cursor": None, "before_cursor": None},
                "links": {"prev": None, "next": None},
            },
        )

    def _hook(self, request: Request) -> Webhook:
        hook = self.webhooks.get(request.params["id"])
        if hook is None:
            raise _not_found()
        return hook

    def get_webhook(self, request: Request) -> Response:
        return Response(200, {"webhook": self._webhook_json(self._hook(request))})

    def update_webhook(self, request: Request) -> Response:
        hook = self._hook(request)
        hook.body = self._check_webhook(json_body(request, _bad_json).get("webhook"))
        return Response(204, None, wrote=True)

    def patch_webhook(self, request: Request) -> Response:
        hook = self._hook(request)
        patch = json_body(request, _bad_json).get("webhook")
        if not isinstance(patch, dict):
            raise _invalid(webhook='expected {"webhook": {...}}')
        hook.body = self._check_webhook({**hook.body, **patch})
        return Response(204, None, wrote=True)

    def delete_webhook(self, request: Request) -> Response:
        del self.webhooks[self._hook(request).id]
        return Response(204, None, wrote=True)

    def test_webhook(self, request: Request) -> Response:
        """POST /api/v2/webhooks/test[?webhook_id=ID] with {"request": {"endpoint",
        "http_method", "request_format", "payload"}}: one request sent now, answered with what
        the endpoint said ({"response": {"status", "body", "headers"}}). With `webhook_id` the
        webhook's endpoint and signing secret are used; without, the static test secret that
        Zendesk documents for webhooks not created yet (../shared/vendor/README.md, Zendesk
        signing). Admins only (Webhooks API "Test Webhook"). Which secret Zendesk signs a test of
        an existing webhook with is not confirmed: the sandbox uses the webhook's own."""
        if not self.is_admin(request.actor):
            raise ApiError(403, dict(FORBIDDEN))
        spec = json_body(request, _bad_json).get("request") or {}
        if not isinstance(spec, dict):
            raise _invalid(request='expected {"request": {"endpoint": ..., ...}}')
        hook = self.webhooks.get(request.arg("webhook_id") or "")
        if request.arg("webhook_id") and hook is None:
            raise _not_found()
        endpoint = spec.get("endpoint") or (hook.body.get("endpoint") if hook else None)
        if not isinstance(endpoint, str) or not endpoint.startswith(("http://", "https://")):
            raise _invalid(endpoint="endpoint must be an absolute http(s) URL")
        payload = spec.get("payload")
        raw = (payload if isinstance(payload, str) else json.dumps(payload or {})).encode()
        delivery = Delivery(
            "zendesk", hook.id if hook else "test", endpoint, raw, "test", "",
            f"test-{uuid.uuid4().hex[:12]}", hook.secret if hook else STATIC_TEST_SECRET,
            account_id=self.seed.account_id,
        )
        try:
            answer = requests.post(endpoint, data=raw, headers=delivery.headers(),
                                   timeout=DELIVERY_TIMEOUT)
        except requests.RequestException as exc:
            return Response(200, {"response": {"status": None, "body": str(exc)[:500],
                                               "headers": []}})
        return Response(
            200,
            {
                "response": {
                    "status": answer.status_code,
                    "body": answer.text[:2000],
                    "headers": [{"key": k, "value": v} for k, v in answer.headers.items()],
                }
            },
        )

    def signing_secret(self, request: Request) -> Response:
        hook = self._hook(request)
        return Response(200, {"signing_secret": {"algorithm": "SHA256", "secret": hook.secret}})

    def reset_signing_secret(self, request: Request) -> Response:
        """Zendesk "Reset Webhook Signing Secret" (POST .../signing_secret): a new secret made
        by Zendesk, used for every delivery from now on (Zendesk Webhooks API; zenpy 2.0.57
        `WebhooksApi.reset_secret` POSTs to the same path)."""
        hook = self._hook(request)
        hook.secret = secrets.token_urlsafe(30)
        return Response(
            201, {"signing_secret": {"algorithm": "SHA256", "secret": hook.secret}}, wrote=True
        )

    # ------------------------------------------------------------------------------ search

    def _found(self, query: str, *, filter_type: str | None = None) -> list[Ticket]:
        try:
            terms = parse_zendesk_query(query)
        except QueryError as exc:
            raise _error(400, "InvalidSearch", str(exc)) from exc
        types = {t.value for t in terms if t.key == "type"} | (
            {filter_type} if filter_type else set()
        )
        if types - {"ticket"}:
            raise _error(400, "InvalidSearch", "the sandbox searches tickets only (type:ticket)")
        now = self.now()
        try:
            return [
                t for t in self.tickets.values() if zendesk_match(terms, self._values(t), now=now)
            ]
        except QueryError as exc:
            raise _error(400, "InvalidSearch", str(exc)) from exc

    def search_count(self, request: Request) -> Response:
        """GET /api/v2/search/count?query=: {"count": n}."""
        return Response(200, {"count": len(self._found(request.arg("query") or ""))})

    def search_export(self, request: Request) -> Response:
        """GET /api/v2/search/export: cursor pages (page[size] up to 1000, page[after]), no cap."""
        kind = request.arg("filter[type]")
        if not kind:
            raise _error(
                400, "InvalidSearch", "filter[type] is required (e.g. filter[type]=ticket)"
            )
        found = sorted(
            self._found(request.arg("query") or "", filter_type=kind), key=lambda t: t.id
        )
        size = min(_int(request.arg("page[size]"), 100, minimum=1), 1000)
        after = request.arg("page[after]")
        start = 0
        if after:
            try:
                start = int(base64.urlsafe_b64decode(after.encode()).decode())
            except ValueError as exc:
                raise _error(
                    400, "InvalidCursor", "page[after] is not a cursor this search returned"
                ) from exc
        chunk = found[start : start + size]
        more = start + size < len(found)
        cursor = base64.urlsafe_b64encode(str(start + size).encode()).decode() if more else None
        return Response(
            200,
            {
                "results": [{**self.ticket_json(t), "result_type": "ticket"} for t in chunk],
                "facets": None,
                "meta": {"has_more": more, "after_cursor": cursor, "before_cursor": None},
                "links": {
                    "next": None
                    if not more
                    else f"{request.base_url}/api/v2/search/export.json?page[after]={cursor}",
                    "prev": None,
                },
            },
        )

    def search(self, request: Request) -> Response:
        query = request.arg("query") or ""
        found = self._found(query)
        page = _int(request.arg("page"), 1, minimum=1)
        size = min(_int(request.arg("per_page"), 100, minimum=1), 100)
        if page * size > 1000:
            raise _error(
                422,
                "invalid",
                "Search results are limited to 1000; narrow the query"
                " (for example with updated>DATE) or use the export endpoint.",
            )
        sort_by = request.arg("sort_by") or "created_at"
        if sort_by in ("updated_at", "created_at", "status", "priority", "ticket_type"):
            attr = {"ticket_type": "type"}.get(sort_by, sort_by)
            found.sort(
                key=lambda t: (str(getattr(t, attr) or ""), t.id),
                reverse=request.arg("sort_order", "desc") == "desc",
            )
        chunk = found[(page - 1) * size : page * size]
        base = f"{request.base_url}/api/v2/search.json"

        def link(p: int) -> str:
            from urllib.parse import urlencode

            params = {"query": query, "page": p, "per_page": size}
            return f"{base}?{urlencode(params)}"

        return Response(
            200,
            {
                "results": [{**self.ticket_json(t), "result_type": "ticket"} for t in chunk],
                "facets": None,
                "count": len(found),
                "next_page": link(page + 1) if page * size < len(found) else None,
                "previous_page": link(page - 1) if page > 1 else None,
            },
        )

    def _values(self, t: Ticket) -> Callable[[str], list[str] | None]:
        def user(uid: int | None) -> list[str]:
            if uid is None or uid not in self.users:
                return []
            u = self.users[uid]
            return [str(u.id), u.email, u.name]

        def values(name: str) -> list[str] | None:
            org = self.organizations.get(t.organization_id) if t.organization_id else None
            table: dict[str, list[str]] = {
                "status": [t.status],
                "priority": [t.priority] if t.priority else [],
                "ticket_type": [t.type] if t.type else [],
                "tags": list(t.tags),
                "tag": list(t.tags),
                "group": [str(t.group_id), self.groups[t.group_id].name]
                if t.group_id in self.groups
                else [],
                "assignee": user(t.assignee_id),
                "requester": user(t.requester_id),
                "organization": [str(org.id), org.name] if org else [],
                "created": [t.created_at.isoformat()],
                "updated": [t.updated_at.isoformat()],
                "subject": [t.subject],
                "description": [t.description],
            }
            if name in table:
                return table[name]
            m = re.fullmatch(r"custom_field_(\d+)", name)
            if m and int(m.group(1)) in self.fields:
                v = t.custom.get(int(m.group(1)))
                return [] if v is None else [str(x) for x in (v if isinstance(v, list) else [v])]
            return None

        return values

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


_LIQUID = re.compile(r"\{%\s*(for\s+(\w+)\s+in\s+([\w.]+)|endfor)\s*%\}")
_PLACEHOLDER = re.compile(r"\{\{\s*([\w.]+)\s*\}\}")


def _lookup(context: Mapping[str, Any], path: str) -> Any:
    node: Any = context
    for part in path.split("."):
        if isinstance(node, Mapping) and part in node:
            node = node[part]
        else:
            return ""
    return node


def render_liquid(template: str, context: Mapping[str, Any], *, escape: bool) -> str:
    """Render placeholders and `for` loops. Unknown placeholders render empty; with `escape`
    values are JSON-escaped (no quotes added) so a JSON template stays valid JSON."""
    out: list[str] = []
    pos = 0
    while True:
        m = _LIQUID.search(template, pos)
        if m is None:
            out.append(_placeholders(template[pos:], context, escape=escape))
            return "".join(out)
        out.append(_placeholders(template[pos : m.start()], context, escape=escape))
        if m.group(1) == "endfor":
            raise ValueError("{% endfor %} without {% for %}")
        depth, scan, body_end = 1, m.end(), m.end()
        while depth:
            inner = _LIQUID.search(template, scan)
            if inner is None:
                raise ValueError(f"{{% {m.group(1)} %}} has no {{% endfor %}}")
            depth += -1 if inner.group(1) == "endfor" else 1
            body_end, scan = inner.start(), inner.end()
        body = template[m.end() : body_end]
        items = _lookup(context, m.group(3))
        for item in items if isinstance(items, list) else []:
            out.append(render_liquid(body, {**context, m.group(2): item}, escape=escape))
        pos = scan


def _placeholders(text: str, context: Mapping[str, Any], *, escape: bool) -> str:
    def resolve(match: re.Match[str]) -> str:
        node = _lookup(context, match.group(1))
        if isinstance(node, Mapping):
            node = node.get("id", "")
        if isinstance(node, list):
            node = " ".join(str(n) for n in node)
        value = "" if node is None else str(node)
        return json.dumps(value)[1:-1] if escape else value

    return _PLACEHOLDER.sub(resolve, text)


def _tags(values: Any) -> list[str]:
    """Zendesk stores tags lower-cased; a tag with spaces becomes several tags."""
    out: list[str] = []
    for v in values if isinstance(values, list) else [values]:
        for part in str(v).lower().split():
            if part not in out:
                out.append(part)
    return out


def _diff(before: Ticket, after: Ticket) -> dict[str, tuple[Any, Any]]:
    changes: dict[str, tuple[Any, Any]] = {}
    for name in ("subject", "status", "priority", "type", "group_id", "assignee_id"):
        if getattr(before, name) != getattr(after, name):
            changes[name] = (getattr(before, name), getattr(after, name))
    if sorted(before.tags) != sorted(after.tags):
        changes["tags"] = (list(before.tags), list(after.tags))
    for fid in set(before.custom) | set(after.custom):
        if before.custom.get(fid) != after.custom.get(fid):
            changes[f"custom_field_{fid}"] = (before.custom.get(fid), after.custom.get(fid))
    return changes


def _upper(value: Any) -> str | None:
    return None if value is None else str(value).upper()


def _ref(value: Any) -> dict[str, str] | None:
    return None if value is None else {"id": str(value)}


def _int(value: str | None, default: int, *, minimum: int) -> int:
    if value is None or value == "":
        return default
    try:
        number = int(value)
    except ValueError as exc:
        raise _error(400, "InvalidParameter", f"expected a whole number, got {value!r}") from exc
    if number < minimum:
        raise _error(400, "InvalidParameter", f"expected at least {minimum}, got {number}")
    return number
