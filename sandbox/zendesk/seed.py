"""The Zendesk sandbox's seed: users, groups, forms, fields, organizations and tickets."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict


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
    #: `active` of GET /api/v2/ticket_fields: "Whether this field is available" (Ticket Fields
    #: API, developer.zendesk.com/api-reference/ticketing/tickets/ticket_fields/).
    active: bool = True


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
