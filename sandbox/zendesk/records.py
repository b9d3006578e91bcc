"""The Zendesk sandbox's records (tickets, comments, webhooks, triggers), its errors and auth."""

from __future__ import annotations

import base64
import hmac
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sandbox.wire import ApiError, Response
from sandbox.zendesk.seed import (
    ZendeskFieldSeed,
    ZendeskGroupSeed,
    ZendeskOrganizationSeed,
    ZendeskSeed,
    ZendeskUserSeed,
)

STATUSES = ("new", "open", "pending", "hold", "solved", "closed")
PRIORITIES = ("low", "normal", "high", "urgent")
#: Zendesk via ids: requests through the REST API come "via" 5 (Web service); the sandbox's
#: scripted agents stand for people in the agent interface, via 0 (Web form).
VIA_API = 5
VIA_WEB = 0


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


def one_page(key: str, items: list[Any]) -> Response:
    """A whole list as Zendesk's offset pagination answers its last page: no next or previous
    page, and the count (Zendesk API reference, "Pagination": `next_page`, `previous_page`,
    `count`)."""
    return Response(200, {key: items, "next_page": None, "previous_page": None,
                          "count": len(items)})


def _not_found() -> ApiError:
    return ApiError(404, {"error": "RecordNotFound", "description": "Not found"})


Emit = Callable[[str, str, str, str | None, bytes, str], None]
"""emit(webhook_id, url, event, secret, raw_body, ticket): hand one delivery to the deliverer."""


def _tags(values: Any) -> list[str]:
    """Zendesk stores tags lower-cased; a tag with spaces becomes several tags."""
    out: list[str] = []
    for v in values if isinstance(values, list) else [values]:
        for part in str(v).lower().split():
            if part not in out:
                out.append(part)
    return out


class ZendeskAccountBase:
    """What every part of the account holds (set by `ZendeskSim.__init__`), auth and lookups."""

    vendor = "zendesk"

    seed: ZendeskSeed
    emit: Emit
    now: Callable[[], datetime]
    base_url: str
    users: dict[int, ZendeskUserSeed]
    groups: dict[int, ZendeskGroupSeed]
    organizations: dict[int, ZendeskOrganizationSeed]
    fields: dict[int, ZendeskFieldSeed]
    tickets: dict[int, Ticket]
    webhooks: dict[str, Webhook]
    triggers: dict[int, Trigger]
    uploads: dict[str, list[dict[str, Any]]]
    _attachment_ids: Iterator[int]
    _ticket_ids: Iterator[int]
    _comment_ids: Iterator[int]
    _audit_ids: Iterator[int]
    _trigger_ids: Iterator[int]
    _user_ids: Iterator[int]
    _invocations: Iterator[int]
    _via: int

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

    def find(self, raw: str) -> Ticket:
        try:
            return self.tickets[int(raw)]
        except (KeyError, ValueError) as exc:
            raise _not_found() from exc

    def is_admin(self, actor: str | None) -> bool:
        """True for admins, and for every agent unless the seed has strict_permissions."""
        if not self.seed.strict_permissions:
            return True
        uid = int(actor) if actor and actor.isdigit() else None
        return uid is not None and uid in self.users and self.users[uid].role == "admin"
