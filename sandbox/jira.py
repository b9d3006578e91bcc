"""The Jira half of the sandbox: issues, comments, search and admin webhooks, in memory.

Answers the Jira REST API v2 the way Jira Cloud (or Data Center, `deployment: "Server"` in the
seed) does, with the shapes of platform-openapi-v3.json and the real payloads in
../shared/vendor/jira/webhooks/. Covered:

    GET  /rest/api/2/serverInfo, /rest/api/2/myself, /rest/api/2/user/search
    GET  /rest/api/2/issue/{key}?fields=...           PUT (204) with fields + update
    PUT  /rest/api/2/issue/{key}/assignee             POST /rest/api/2/issue (create)
    GET  /rest/api/2/issue/{key}/comment              POST (201)
    GET|POST /rest/api/{2,3}/search/jql (Cloud: nextPageToken; unbounded JQL refused)
    GET|POST /rest/api/2/search (Data Center; Cloud answers 410 Gone, as Cloud does since 2025)
    /rest/webhooks/1.0/webhook: POST, GET; GET|PUT|DELETE /{id}

What the site holds comes from the seed: users, projects, components, custom fields (any JSON,
except a field of `type: organizations`, Jira Service Management's Organizations field: set with
organization ids, read as `{id, name, _links}` objects), JSM organizations and the priority
scheme (Highest ... Lowest unless the seed names others, e.g. an added "Urgent").

Every change to an issue emits the webhooks Jira would send: `jira:issue_created`,
`jira:issue_updated` (with `changelog.items[].fieldId`; `issue_event_type_name` issue_updated,
issue_assigned or issue_commented) and Cloud `comment_created` (no `user`, trimmed issue
fields), each to the registered webhooks whose events and JQL filter match.
"""

from __future__ import annotations

import base64
import email.policy
import functools
import hmac
import itertools
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.parser import BytesParser
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from sandbox import contract
from sandbox.query import QueryError, evaluate, parse_jql
from sandbox.wire import (
    ApiError,
    Handler,
    Request,
    Response,
    Route,
    json_body,
    route,
)

# ---------------------------------------------------------------------------------------- seed


class _Seed(BaseModel):
    model_config = ConfigDict(extra="forbid")


class JiraUserSeed(_Seed):
    accountId: str
    name: str
    displayName: str
    emailAddress: str | None = None
    #: A Data Center personal access token that authenticates as this user.
    pat: str | None = None
    #: The API token (Cloud, with the email) or password (Data Center, with the name) that
    #: authenticates this user with basic auth; anything else is a 401. None: no basic auth.
    api_token: str | None = "sandbox-token"
    #: Jira administrator: admin webhooks, and every project permission (`permissions`).
    admin: bool = False


class JiraProjectSeed(_Seed):
    key: str
    id: str
    name: str


class JiraComponentSeed(_Seed):
    id: str
    name: str
    project: str


class JiraFieldSeed(_Seed):
    id: str = Field(pattern=r"^customfield_\d+$")
    name: str
    #: "any" holds whatever JSON is set. "organizations" is Jira Service Management's
    #: Organizations field (sd-customer-organizations): set with a list of organization ids
    #: (`[8]`), read as `[{"id": "8", "name": ..., "_links": {...}}]`, empty as `[]`.
    type: Literal["any", "organizations"] = "any"


class JiraOrganizationSeed(_Seed):
    """A JSM customer organization (the objects of GET /rest/servicedeskapi/organization)."""

    id: str = Field(pattern=r"^\d+$")
    name: str


class JiraCommentSeed(_Seed):
    author: str
    body: str


class JiraIssueSeed(_Seed):
    key: str = Field(pattern=r"^[A-Z][A-Z0-9_]*-\d+$")
    summary: str
    description: str | None = None
    labels: list[str] = []
    priority: str | None = "Medium"
    reporter: str | None = None
    assignee: str | None = None
    components: list[str] = []
    status: str = "To Do"
    issuetype: str = "Task"
    custom: dict[str, Any] = {}
    comments: list[JiraCommentSeed] = []
    #: File names of attachments already on the issue.
    attachments: list[str] = []


class JiraSeed(_Seed):
    deployment: Literal["Cloud", "Server"] = "Cloud"
    #: The Data Center version serverInfo reports (`versionNumbers`). It decides the admin
    #: webhook API the site serves, and only that one: before 10.0 `/rest/webhooks/1.0/webhook`,
    #: from 10.0 `/rest/jira-webhook/1.0/webhooks` (Atlassian "Webhooks", Jira Data Center
    #: developer docs: "Starting from Jira 10.0.x, the URL to webhook resource has changed",
    #: quoted in getsentry/sentry #92806; sentry PR #90116, n8n-io/n8n #12351). Ignored on Cloud.
    version: str = Field(default="9.12.0", pattern=r"^\d+\.\d+\.\d+$")
    #: Refuse (403) admin webhooks to users without `admin`, and every project permission to
    #: users the `permissions` table does not name, as Jira does. Off by default so tests may
    #: act as any seeded user; a user the table names has exactly its permissions either way.
    strict_permissions: bool = False
    users: list[JiraUserSeed] = []
    #: Project permissions per user (accountId or name) and project key, with Jira's permission
    #: keys (BROWSE_PROJECTS, EDIT_ISSUES, ADD_COMMENTS, ASSIGN_ISSUES, ADMINISTER_PROJECTS for
    #: a project administrator, ...: "Built-in permissions", Atlassian's page "Manage project
    #: permissions"; keys as in GET /rest/api/3/permissions, platform-openapi-v3.json).
    permissions: dict[str, dict[str, list[str]]] = {}
    #: Project roles per project: role name -> member accountIds (comment visibility by role).
    roles: dict[str, dict[str, list[str]]] = {}
    #: Groups: name -> member accountIds (comment visibility by group).
    groups: dict[str, list[str]] = {}
    #: A Jira Service Management site: `POST /rest/servicedeskapi/request/{key}/comment` exists
    #: (404 otherwise) and comments reach the customer portal unless made internal (below).
    service_management: bool = False
    projects: list[JiraProjectSeed] = []
    components: list[JiraComponentSeed] = []
    fields: list[JiraFieldSeed] = []
    organizations: list[JiraOrganizationSeed] = []
    #: Priority names, highest first (ids "1", "2", ... in this order). Jira administrators can
    #: add priorities such as "Urgent" to the default five.
    priorities: list[str] = Field(
        default_factory=lambda: ["Highest", "High", "Medium", "Low", "Lowest"], min_length=1
    )
    issues: list[JiraIssueSeed] = []


#: Jira's project permission keys the sandbox knows: key -> (id, name, description), as
#: GET /rest/api/3/permissions lists them (platform-openapi-v3.json "Get all permissions";
#: Atlassian "Manage project permissions").
PERMISSIONS: dict[str, tuple[str, str, str]] = {
    "ADMINISTER_PROJECTS": ("23", "Administer Projects", "Ability to administer a project."),
    "BROWSE_PROJECTS": ("10", "Browse Projects", "Ability to browse projects and issues."),
    "CREATE_ISSUES": ("11", "Create Issues", "Ability to create issues."),
    "EDIT_ISSUES": ("12", "Edit Issues", "Ability to edit issues."),
    "ASSIGN_ISSUES": ("13", "Assign Issues", "Ability to assign issues to other people."),
    "ASSIGNABLE_USER": ("17", "Assignable User", "Users with this permission may be assigned."),
    "ADD_COMMENTS": ("15", "Add Comments", "Ability to comment on issues."),
    "CREATE_ATTACHMENTS": ("19", "Create Attachments", "Users may attach files."),
    "TRANSITION_ISSUES": ("46", "Transition Issues", "Ability to transition issues."),
    "RESOLVE_ISSUES": ("14", "Resolve Issues", "Ability to resolve and reopen issues."),
    "CLOSE_ISSUES": ("18", "Close Issues", "Ability to close issues."),
    "DELETE_ISSUES": ("16", "Delete Issues", "Ability to delete issues."),
    "LINK_ISSUES": ("21", "Link Issues", "Ability to link issues together."),
    "EDIT_ALL_COMMENTS": ("34", "Edit All Comments", "Ability to edit all comments."),
    "SERVICEDESK_AGENT": ("44", "Service Desk Agent", "Jira Service Management agent."),
}

STATUSES = {
    "To Do": ("10000", "new"),
    "In Progress": ("3", "indeterminate"),
    "Done": ("10001", "done"),
}
ISSUE_TYPES = {"Task": "10002", "Bug": "10004", "Story": "10001", "Service Request": "10010"}
ISSUE_EVENTS = ("jira:issue_created", "jira:issue_updated", "jira:issue_deleted")
COMMENT_EVENTS = ("comment_created", "comment_updated", "comment_deleted")
FILTER_KEY = "issue-related-events-section"
SYSTEM_FIELDS = frozenset(
    {"summary", "description", "labels", "assignee", "priority", "components", "reporter"}
)

# ------------------------------------------------------------------------------------- records


@dataclass
class Comment:
    id: str
    author: str
    body: str
    created: datetime
    updated: datetime
    visibility: dict[str, Any] | None = None
    properties: list[dict[str, Any]] = field(default_factory=list)
    #: JSM internal (agents only). Only a documented path makes a comment internal (see
    #: JiraSim._new_comment); everything else is public, `jsdPublic: true`.
    internal: bool = False


@dataclass
class Issue:
    id: str
    key: str
    project: str
    summary: str
    description: str | None
    labels: list[str]
    priority: str | None
    reporter: str | None
    creator: str | None
    assignee: str | None
    components: list[str]
    status: str
    issuetype: str
    custom: dict[str, Any]
    created: datetime
    updated: datetime
    comments: list[Comment] = field(default_factory=list)
    attachments: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Webhook:
    id: int
    name: str
    url: str
    events: list[str]
    filters: dict[str, str]
    exclude_body: bool
    secret: str | None
    enabled: bool
    updated_by: str | None
    updated: datetime


def jira_time(when: datetime) -> str:
    """Jira's timestamp format: 2019-02-16T13:12:10.037+0000."""
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}+0000"


Emit = Callable[[str, str, str, str | None, dict[str, Any], str], None]
"""emit(webhook_id, url, event, secret, body, ticket): hand one delivery to the deliverer."""


def _error(code: int, /, *messages: str, **errors: str) -> ApiError:
    return ApiError(code, {"errorMessages": list(messages), "errors": errors})


def _bad_json(message: str) -> ApiError:
    return _error(400, message)


class JiraSim:
    """In-memory Jira site. All methods run under the sandbox lock held by the HTTP layer."""

    vendor = "jira"

    def __init__(self, seed: JiraSeed, *, emit: Emit, now: Callable[[], datetime]) -> None:
        self.seed = seed
        self.cloud = seed.deployment == "Cloud"
        self.emit = emit
        self._wall = now
        self._last = datetime.min.replace(tzinfo=UTC)
        self.base_url = "http://127.0.0.1"
        self.users = {u.accountId: u for u in seed.users}
        self.projects = {p.key: p for p in seed.projects}
        self.components = {c.id: c for c in seed.components}
        self.field_names = {f.id: f.name for f in seed.fields}
        self.organization_fields = {f.id for f in seed.fields if f.type == "organizations"}
        self.organizations = {o.id: o for o in seed.organizations}
        self.priorities = {name: str(n) for n, name in enumerate(seed.priorities, 1)}
        self.issues: dict[str, Issue] = {}
        self.webhooks: dict[int, Webhook] = {}
        self._ids = itertools.count(10000)
        self._comment_ids = itertools.count(20000)
        self._changelog_ids = itertools.count(30000)
        self._webhook_ids = itertools.count(1)
        self._numbers: dict[str, int] = {}
        self.permissions = self._permission_table(seed)
        for project, roles in seed.roles.items():
            if project not in self.projects:
                raise ValueError(f"seed: jira.roles: project {project} is not in jira.projects")
            for role, members in roles.items():
                for m in members:
                    if m not in self.users:
                        raise ValueError(f"seed: jira.roles.{project}.{role}: {m!r} is not a user")
        for group, members in seed.groups.items():
            for m in members:
                if m not in self.users:
                    raise ValueError(f"seed: jira.groups.{group}: {m!r} is not in jira.users")
        start = now()
        for s in seed.issues:
            project = s.key.split("-")[0]
            if project not in self.projects:
                raise ValueError(
                    f"seed: jira.issues {s.key}: project {project} is not in jira.projects"
                )
            for who in (s.reporter, s.assignee, *(c.author for c in s.comments)):
                if who is not None and who not in self.users:
                    raise ValueError(
                        f"seed: jira.issues {s.key}: user {who!r} is not in jira.users"
                    )
            custom: dict[str, Any] = {}
            for key, value in s.custom.items():
                if key not in self.field_names:
                    raise ValueError(f"seed: jira.issues {s.key}: {key} is not in jira.fields")
                try:
                    custom[key] = self._custom_value(key, value)
                except ApiError as exc:
                    raise ValueError(f"seed: jira.issues {s.key}: {key}: {exc}") from exc
            issue = Issue(
                id=str(next(self._ids)),
                key=s.key,
                project=project,
                summary=s.summary,
                description=s.description,
                labels=list(s.labels),
                priority=s.priority,
                reporter=s.reporter,
                creator=s.reporter,
                assignee=s.assignee,
                components=[
                    self._component(project, {"name": n}, "components").id for n in s.components
                ],
                status=s.status,
                issuetype=s.issuetype,
                custom={k: v for k, v in custom.items() if v is not None},
                created=start,
                updated=start,
            )
            issue.attachments = [self._attachment(n, 0, s.reporter) for n in s.attachments]
            for c in s.comments:
                issue.comments.append(
                    Comment(str(next(self._comment_ids)), c.author, c.body, start, start)
                )
            self.issues[issue.key] = issue
            number = int(s.key.split("-")[1])
            self._numbers[project] = max(self._numbers.get(project, 0), number)

    def _permission_table(self, seed: JiraSeed) -> dict[str, dict[str, frozenset[str]]]:
        """`seed.permissions` keyed by accountId, checked against the seeded users, projects
        and Jira's permission keys (a typo in the seed is an error, not a silent denial)."""
        by_name = {u.name: u.accountId for u in seed.users}
        table: dict[str, dict[str, frozenset[str]]] = {}
        for who, projects in seed.permissions.items():
            account = who if who in self.users else by_name.get(who)
            if account is None:
                raise ValueError(f"seed: jira.permissions: user {who!r} is not in jira.users")
            for project, keys in projects.items():
                if project not in self.projects:
                    raise ValueError(
                        f"seed: jira.permissions.{who}: project {project} is not in jira.projects"
                    )
                unknown = sorted(set(keys) - set(PERMISSIONS))
                if unknown:
                    raise ValueError(
                        f"seed: jira.permissions.{who}.{project}: unknown permission key(s)"
                        f" {', '.join(unknown)}; Jira's keys: {', '.join(sorted(PERMISSIONS))}"
                    )
                table.setdefault(account, {})[project] = frozenset(keys)
        return table

    def has_permission(self, user: str | None, project: str, key: str) -> bool:
        """Whether `user` (accountId or name) holds project permission `key` in `project`.

        Jira administrators hold every permission (the sandbox's simplification: on a real site
        the permission scheme grants them, Atlassian "Manage global permissions"). A user the
        seed's `permissions` table names holds exactly the keys listed for that project; a user
        it does not name holds all of them unless the seed has `strict_permissions`.
        """
        if user is None:
            return False
        account = user if user in self.users else next(
            (u.accountId for u in self.users.values() if u.name == user), None
        )
        if account is None:
            return False
        if self.users[account].admin:
            return True
        granted = self.permissions.get(account)
        if granted is None:
            return not self.seed.strict_permissions
        return key in granted.get(project, frozenset())

    def now(self) -> datetime:
        """The site's clock in whole milliseconds, strictly increasing: two changes never share
        a `timestamp`/`updated`, as on a real site where each edit takes longer than 1 ms."""
        t = self._wall()
        t = t.replace(microsecond=t.microsecond // 1000 * 1000)
        if t <= self._last:
            t = self._last + timedelta(milliseconds=1)
        self._last = t
        return t

    # ----------------------------------------------------------------------------- identity

    def authenticate(self, headers: Mapping[str, str]) -> str:
        """The accountId the request's credentials belong to, or a 401 like Jira's."""
        auth = headers.get("Authorization") or headers.get("authorization") or ""
        if auth.startswith("Basic "):
            try:
                login = base64.b64decode(auth[6:]).decode().split(":", 1)[0]
            except (ValueError, UnicodeDecodeError) as exc:
                raise _error(401, "Basic authentication header is malformed.") from exc
            password = base64.b64decode(auth[6:]).decode().partition(":")[2]
            for user in self.users.values():
                if login in (user.emailAddress, user.name):
                    if user.api_token is None or not hmac.compare_digest(
                        password.encode(), user.api_token.encode()
                    ):
                        # A wrong API token or password is a 401 with no detail, as Jira
                        # answers it (Atlassian "Basic auth for REST APIs": "401 Unauthorized"
                        # for bad credentials; pycontribs/jira #808 met it after moving to
                        # API tokens).
                        raise _error(
                            401,
                            "Client must be authenticated to access this resource."
                            f" (the sandbox: wrong API token or password for {login!r}; the"
                            " seed's jira.users[].api_token)",
                        )
                    return user.accountId
            raise _error(
                401,
                f"Client must be authenticated: no sandbox user has login {login!r}"
                " (add it to the seed's jira.users).",
            )
        if auth.startswith("Bearer "):
            token = auth[7:]
            for user in self.users.values():
                if user.pat and user.pat == token:
                    return user.accountId
            raise _error(401, "Client must be authenticated: unknown personal access token.")
        raise _error(401, "Client must be authenticated to access this resource.")

    def user_json(self, account_id: str | None) -> dict[str, Any] | None:
        if account_id is None:
            return None
        u = self.users[account_id]
        data: dict[str, Any] = {
            "self": f"{self.base_url}/rest/api/2/user?accountId={u.accountId}",
            "accountId": u.accountId,
            "displayName": u.displayName,
            "active": True,
            "timeZone": "UTC",
            "accountType": "atlassian",
            "avatarUrls": {"48x48": f"{self.base_url}/avatar/{u.accountId}"},
        }
        if not self.cloud:
            data["name"] = u.name
            data["key"] = u.name
        if u.emailAddress:
            data["emailAddress"] = u.emailAddress
        return data

    def _user_ref(self, value: Any, field_id: str) -> str | None:
        """An accountId from `{"accountId": ...}` (Cloud) or `{"name": ...}` (Data Center)."""
        if value is None:
            return None
        if not isinstance(value, dict):
            raise _error(
                400, errors_field(field_id, 'expected an object such as {"accountId": ...}')
            )
        if self.cloud:
            if "accountId" not in value:
                raise _error(
                    400,
                    **{
                        field_id: "'accountId' must be the only user identifying query"
                        " parameter in GDPR strict mode."
                    },
                )
            account = value["accountId"]
            if account is None:
                return None
            if account not in self.users:
                raise _error(
                    400,
                    **{
                        field_id: "Specified user does not exist or you do not have"
                        " required permissions"
                    },
                )
            return str(account)
        name = value.get("name")
        if name is None:
            raise _error(400, **{field_id: 'expected {"name": ...} on Jira Data Center'})
        for u in self.users.values():
            if u.name == name:
                return u.accountId
        raise _error(400, **{field_id: f"User '{name}' does not exist."})

    # --------------------------------------------------------------------------- rendering

    def issue_json(self, issue: Issue, wanted: set[str] | None = None) -> dict[str, Any]:
        """GET issue's shape; `wanted` None means all fields."""
        base = self.base_url
        project = self.projects[issue.project]
        status_id, category = STATUSES.get(issue.status, ("10000", "new"))
        fields: dict[str, Any] = {
            "summary": issue.summary,
            "description": issue.description,
            "labels": list(issue.labels),
            "priority": None
            if issue.priority is None
            else {
                "self": f"{base}/rest/api/2/priority/{self.priorities.get(issue.priority, '3')}",
                "name": issue.priority,
                "id": self.priorities.get(issue.priority, "3"),
            },
            "reporter": self.user_json(issue.reporter),
            "creator": self.user_json(issue.creator),
            "assignee": self.user_json(issue.assignee),
            "components": [
                {
                    "self": f"{base}/rest/api/2/component/{cid}",
                    "id": cid,
                    "name": self.components[cid].name,
                }
                for cid in issue.components
            ],
            "status": {
                "self": f"{base}/rest/api/2/status/{status_id}",
                "name": issue.status,
                "id": status_id,
                "description": "",
                "statusCategory": {"id": 2, "key": category, "name": issue.status},
            },
            "issuetype": {
                "self": f"{base}/rest/api/2/issuetype/{ISSUE_TYPES.get(issue.issuetype, '10002')}",
                "id": ISSUE_TYPES.get(issue.issuetype, "10002"),
                "name": issue.issuetype,
                "subtask": False,
            },
            "project": {
                "self": f"{base}/rest/api/2/project/{project.id}",
                "id": project.id,
                "key": project.key,
                "name": project.name,
                "projectTypeKey": "service_desk",
            },
            "created": jira_time(issue.created),
            "updated": jira_time(issue.updated),
            "attachment": [
                {
                    **a,
                    "self": f"{base}/rest/api/2/attachment/{a['id']}",
                    "author": self.user_json(a["author"]),
                    "content": f"{base}/secure/attachment/{a['id']}/{a['filename']}",
                }
                for a in issue.attachments
            ],
            "comment": {
                "comments": [self.comment_json(issue, c) for c in issue.comments],
                "self": f"{base}/rest/api/2/issue/{issue.id}/comment",
                "maxResults": len(issue.comments),
                "total": len(issue.comments),
                "startAt": 0,
            },
        }
        for fid in self.field_names:
            fields[fid] = self.custom_json(fid, issue.custom.get(fid))
        if wanted is not None:
            fields = {k: v for k, v in fields.items() if k in wanted}
        return {
            "expand": "renderedFields,names,schema,operations,editmeta,changelog",
            "id": issue.id,
            "self": f"{base}/rest/api/2/issue/{issue.id}",
            "key": issue.key,
            "fields": fields,
        }

    def comment_json(self, issue: Issue, c: Comment, *, properties: bool = False) -> dict[str, Any]:
        data: dict[str, Any] = {
            "self": f"{self.base_url}/rest/api/2/issue/{issue.id}/comment/{c.id}",
            "id": c.id,
            "author": self.user_json(c.author),
            "body": c.body,
            "updateAuthor": self.user_json(c.author),
            "created": jira_time(c.created),
            "updated": jira_time(c.updated),
            # "Defaults to true when comments are created in the Jira Cloud Platform"
            # (Comment.jsdPublic, platform-openapi-v3.json).
            "jsdPublic": not c.internal,
        }
        if c.visibility:
            data["visibility"] = c.visibility
        if properties:
            data["properties"] = c.properties
        return data

    def wanted_fields(self, request: Request, *, default: str = "*all") -> set[str] | None:
        names = request.args("fields") or [default]
        everything = set(self.issue_json_keys())
        chosen: set[str] = set()
        for name in names:
            if name in ("*all", "*navigable"):
                chosen |= everything
            elif name.startswith("-"):
                chosen.discard(name[1:])
            elif name == "id":
                continue
            else:
                chosen.add(name)
        for name in names:
            if name.startswith("-"):
                chosen.discard(name[1:])
        return chosen

    def issue_json_keys(self) -> list[str]:
        return [
            "summary",
            "description",
            "labels",
            "priority",
            "reporter",
            "creator",
            "assignee",
            "components",
            "status",
            "issuetype",
            "project",
            "created",
            "updated",
            "attachment",
            "comment",
            *self.field_names,
        ]

    def find(self, key: str) -> Issue:
        issue = self.issues.get(key)
        if issue is None:
            for candidate in self.issues.values():
                if candidate.id == key:
                    return candidate
            raise _error(404, "Issue does not exist or you do not have permission to see it.")
        return issue

    # ------------------------------------------------------------------------------ routes

    @property
    def version_numbers(self) -> list[int]:
        return [1001, 0, 0] if self.cloud else [int(n) for n in self.seed.version.split(".")]

    @property
    def dc10_webhooks(self) -> bool:
        """True when this site serves the Data Center 10 webhook resource (and not the old)."""
        return not self.cloud and self.version_numbers[0] >= 10

    def webhook_routes(self) -> list[Route]:
        """The admin webhook API of this site's version, and only that one: the other path
        answers 404 as on a real site (getsentry/sentry #92806: the old path 404s on 10.x)."""
        base = "/rest/webhooks/1.0/webhook"
        if self.dc10_webhooks:
            base = "/rest/jira-webhook/1.0/webhooks"
        return [
            route("POST", base, self.create_webhook, write=True, admin=True),
            route("GET", base, self.list_webhooks, admin=True),
            route("GET", base + "/{id}", self.get_webhook, admin=True),
            route("PUT", base + "/{id}", self.update_webhook, write=True, admin=True),
            route("DELETE", base + "/{id}", self.delete_webhook, write=True, admin=True),
        ]

    def routes(self) -> list[Route]:
        return [
            route("GET", "/rest/api/2/serverInfo", self.server_info),
            route("GET", "/rest/api/2/myself", self.myself),
            route("GET", "/rest/api/{v}/mypermissions", self.my_permissions),
            route("GET", "/rest/api/2/user/search", self.user_search),
            route("GET", "/rest/api/2/user", self.get_user),
            route("GET", "/rest/api/2/user/assignable/search", self.assignable_search),
            route("GET", "/rest/api/2/project/{key}/components", self.project_components),
            route("GET", "/rest/api/2/project/{key}/role", self.project_roles),
            route("GET", "/rest/api/2/project/{key}/role/{id}", self.project_role),
            route("GET", "/rest/api/2/field", self.list_fields),
            route(
                "POST", "/rest/api/2/issue", self._checked("create-issue", self.create_issue),
                write=True,
            ),
            route("GET", "/rest/api/2/issue/{key}", self.get_issue),
            route(
                "PUT", "/rest/api/2/issue/{key}", self._checked("edit-issue", self.edit_issue),
                write=True,
            ),
            route(
                "PUT", "/rest/api/2/issue/{key}/assignee",
                self._checked("assign-issue", self.assign), write=True,
            ),
            route("GET", "/rest/api/2/issue/{key}/comment", self.list_comments),
            route("POST", "/rest/api/2/issue/{key}/attachments", self.attach, write=True),
            route(
                "POST", "/rest/api/2/issue/{key}/comment",
                self._checked("add-comment", self.add_comment), write=True,
            ),
            route(
                "POST",
                "/rest/servicedeskapi/request/{key}/comment",
                self.service_desk_comment,
                write=True,
            ),
            route("GET", "/rest/api/{v}/search/jql", self.search_jql),
            route("POST", "/rest/api/{v}/search/jql", self.search_jql),
            route("POST", "/rest/api/{v}/search/approximate-count", self.approximate_count),
            route("GET", "/rest/api/2/search", self.search),
            route("POST", "/rest/api/2/search", self._checked("search", self.search)),
            *self.webhook_routes(),
        ]

    def _checked(self, operation: str, handler: Handler) -> Handler:
        """`handler` behind the OpenAPI request schema of `operation` (sandbox/
        contract.py): a body the published schema refuses is answered 400 and changes nothing,
        so a malformed request fails the end-to-end suite as it fails the contract tests.
        Scripted agents (the control API) may use JSON conveniences and are not checked."""

        @functools.wraps(handler)
        def checked(request: Request) -> Response:
            if not request.agent and request.body:
                try:
                    body = json.loads(request.body)
                except ValueError:
                    body = None  # the handler answers Jira's own 400 for broken JSON
                problems = contract.check(operation, body) if body is not None else []
                if problems:
                    raise _error(
                        400,
                        *(f"request body does not match the {operation} schema of"
                          f" platform-openapi-v3.json: {p}" for p in problems),
                    )
            return handler(request)

        return checked

    def server_info(self, request: Request) -> Response:
        now = self.now()
        version = self.version_numbers
        return Response(
            200,
            {
                "baseUrl": self.base_url,
                "version": ".".join(map(str, version)) + ("-SNAPSHOT" if self.cloud else ""),
                "versionNumbers": version,
                "deploymentType": self.seed.deployment,
                "buildNumber": 100260,
                "buildDate": "2026-01-01T00:00:00.000+0000",
                "serverTime": jira_time(now),
                "scmInfo": "sandbox",
                "serverTitle": "tierdesk Jira sandbox",
            },
        )

    # ------------------------------------------------------------ users, projects, roles

    def _account(self, request: Request, *names: str) -> str | None:
        """The accountId named by query parameter `accountId` (Cloud) or `username` (DC)."""
        for name in names:
            value = request.arg(name)
            if value:
                for u in self.users.values():
                    if value in (u.accountId, u.name):
                        return u.accountId
                return None
        raise _error(400, f"The {' or '.join(names)} query parameter is required.")

    def get_user(self, request: Request) -> Response:
        """GET /rest/api/2/user?accountId=|username=&expand=groups (Get user)."""
        account = self._account(request, "accountId", "username", "key")
        if account is None:
            raise _error(404, "The user does not exist.")
        data = self.user_json(account) or {}
        if "groups" in (request.arg("expand") or ""):
            names = sorted(g for g, members in self.seed.groups.items() if account in members)
            data["groups"] = {"size": len(names), "items": [{"name": n} for n in names]}
        return Response(200, data)

    def assignable_search(self, request: Request) -> Response:
        """GET /rest/api/2/user/assignable/search?project=KEY&accountId=|username=: the users
        with Assignable User in the project (Find users assignable to issues; 400 without a
        project, 404 for an unknown one)."""
        project = request.arg("project")
        if not project:
            raise _error(400, "The project or issueKey query parameter is required.")
        if project not in self.projects:
            raise _error(404, f"No project could be found with key '{project}'.")
        wanted = self._account(request, "accountId", "username", "query")
        found = [
            self.user_json(u.accountId)
            for u in self.users.values()
            if u.accountId == wanted
            and self.has_permission(u.accountId, project, "ASSIGNABLE_USER")
        ]
        return Response(200, found)

    def _project(self, request: Request) -> JiraProjectSeed:
        key = request.params["key"]
        project = self.projects.get(key) or next(
            (p for p in self.projects.values() if p.id == key), None
        )
        if project is None or not self.has_permission(
            request.actor, project.key, "BROWSE_PROJECTS"
        ):
            raise _error(404, f"No project could be found with key '{key}'.")
        return project

    def project_components(self, request: Request) -> Response:
        """GET /rest/api/2/project/{key}/components (Get project components)."""
        project = self._project(request)
        return Response(
            200,
            [
                {
                    "self": f"{self.base_url}/rest/api/2/component/{c.id}",
                    "id": c.id,
                    "name": c.name,
                    "project": project.key,
                    "projectId": int(project.id),
                }
                for c in self.components.values()
                if c.project == project.key
            ],
        )

    def _role_ids(self, project: str) -> dict[str, str]:
        names = sorted(self.seed.roles.get(project, {}))
        return {name: str(10000 + i) for i, name in enumerate(names)}

    def _roles_admin(self, request: Request) -> JiraProjectSeed:
        project = self._project(request)
        if not self.has_permission(request.actor, project.key, "ADMINISTER_PROJECTS"):
            # Reading a project's roles needs Administer Projects; Jira answers 401 "You cannot
            # edit the configuration of this project." (pycontribs/jira #535).
            raise _error(401, "You cannot edit the configuration of this project.")
        return project

    def project_roles(self, request: Request) -> Response:
        """GET /rest/api/2/project/{key}/role: role name -> role URL (Get project roles)."""
        project = self._roles_admin(request)
        return Response(
            200,
            {
                name: f"{self.base_url}/rest/api/2/project/{project.key}/role/{rid}"
                for name, rid in self._role_ids(project.key).items()
            },
        )

    def project_role(self, request: Request) -> Response:
        """GET /rest/api/2/project/{key}/role/{id}: the role and its user actors."""
        project = self._roles_admin(request)
        for name, rid in self._role_ids(project.key).items():
            if rid == request.params["id"]:
                members = self.seed.roles[project.key][name]
                return Response(
                    200,
                    {
                        "self": f"{self.base_url}/rest/api/2/project/{project.key}/role/{rid}",
                        "name": name,
                        "id": int(rid),
                        "actors": [
                            {
                                "id": n,
                                "displayName": self.users[m].displayName,
                                "type": "atlassian-user-role-actor",
                                "actorUser": {"accountId": m},
                            }
                            for n, m in enumerate(members, 1)
                        ],
                    },
                )
        raise _error(404, f"No project role with id {request.params['id']}.")

    def my_permissions(self, request: Request) -> Response:
        """GET /rest/api/{2,3}/mypermissions?projectKey=&permissions=A,B: Jira's shape,
        `{"permissions": {KEY: {id, key, name, type, description, havePermission}}}`.
        `permissions` is required and an unknown key is a 400; an unknown project a 404
        ("Get my permissions", platform-openapi-v3.json)."""
        wanted = [k.strip() for k in (request.arg("permissions") or "").split(",") if k.strip()]
        if not wanted:
            raise _error(400, "The permissions parameter is required.")
        unknown = [k for k in wanted if k not in PERMISSIONS]
        if unknown:
            raise _error(400, f"Permission key(s) not recognised: {', '.join(unknown)}.")
        project = request.arg("projectKey")
        if project is not None and project not in self.projects:
            raise _error(404, f"No project could be found with key '{project}'.")
        out: dict[str, Any] = {}
        for key in wanted:
            pid, name, description = PERMISSIONS[key]
            have = (
                self.has_permission(request.actor, project, key)
                if project is not None
                # Without a project: whether the user holds it in any project.
                else any(self.has_permission(request.actor, p, key) for p in self.projects)
            )
            out[key] = {
                "id": pid,
                "key": key,
                "name": name,
                "type": "PROJECT",
                "description": description,
                "havePermission": have,
            }
        return Response(200, {"permissions": out})

    def myself(self, request: Request) -> Response:
        return Response(200, self.user_json(request.actor))

    def user_search(self, request: Request) -> Response:
        text = (request.arg("query") or request.arg("username") or "").lower()
        found = [
            self.user_json(u.accountId)
            for u in self.users.values()
            if text
            and any(text in (v or "").lower() for v in (u.displayName, u.emailAddress, u.name))
        ]
        return Response(200, found)

    def list_fields(self, request: Request) -> Response:
        """GET /rest/api/2/field: system and custom fields (the library caches the names)."""
        out = [
            {
                "id": name,
                "key": name,
                "name": name.capitalize(),
                "custom": False,
                "orderable": True,
                "navigable": True,
                "searchable": True,
                "clauseNames": [name],
            }
            for name in self.issue_json_keys()
            if not name.startswith("customfield_")
        ]
        for fid, title in self.field_names.items():
            number = fid.rsplit("_", 1)[1]
            out.append(
                {
                    "id": fid,
                    "key": fid,
                    "name": title,
                    "custom": True,
                    "orderable": True,
                    "navigable": True,
                    "searchable": True,
                    "clauseNames": [f"cf[{number}]", title],
                    "schema": {"type": "any", "custom": "sandbox", "customId": int(number)}
                    if fid not in self.organization_fields
                    else {
                        "type": "array",
                        "items": "sd-customer-organization",
                        "custom": "com.atlassian.servicedesk:sd-customer-organizations",
                        "customId": int(number),
                    },
                }
            )
        return Response(200, out)

    def get_issue(self, request: Request) -> Response:
        issue = self.find(request.params["key"])
        return Response(200, self.issue_json(issue, self.wanted_fields(request)))

    # ---------------------------------------------------------------------------- editing

    def is_admin(self, actor: str | None) -> bool:
        """True for Jira administrators (admin webhooks), and for everyone unless the seed has
        strict_permissions."""
        if not self.seed.strict_permissions:
            return True
        return actor is not None and actor in self.users and self.users[actor].admin

    def edit_issue(self, request: Request) -> Response:
        issue = self.find(request.params["key"])
        self._can_see(request.actor, issue)
        if (request.arg("notifyUsers") or "").lower() == "false" and not self.has_permission(
            request.actor, issue.project, "ADMINISTER_PROJECTS"
        ):
            # Jira refuses the whole edit: notifyUsers=false needs Jira admin or project admin
            # (Edit issue, platform-openapi-v3.json; the 403 body as met by
            # lesstif/php-jira-rest-client #390 and ankitpokhrel/jira-cli #1013).
            raise _error(
                403,
                "To discard the user notification either admin or project admin"
                " permissions are required.",
            )
        body = json_body(request, _bad_json)
        fields = body.get("fields") or {}
        update = body.get("update") or {}
        if not isinstance(fields, dict) or not isinstance(update, dict):
            raise _error(400, "'fields' and 'update' must be JSON objects.")
        both = sorted(set(fields) & set(update))
        if both:
            raise _error(
                400, **{f: f"Field '{f}' cannot be set in both 'fields' and 'update'" for f in both}
            )
        actor = request.actor
        assert actor is not None
        self._can_edit(actor, issue, [*fields, *update])
        items, comment = self._apply(issue, fields, update, actor)
        if items or comment:
            issue.updated = self.now()
            self._issue_updated(issue, actor, items, comment)
        return Response(204, None, wrote=True)

    def _can_see(self, actor: str | None, issue: Issue) -> None:
        """404 without Browse projects: Jira does not tell such a user that the issue exists
        (Edit issue / Get issue, platform-openapi-v3.json: "404 ... the user does not have
        permission to view it")."""
        if not self.has_permission(actor, issue.project, "BROWSE_PROJECTS"):
            raise _error(404, "Issue does not exist or you do not have permission to see it.")

    def _can_edit(self, actor: str, issue: Issue, names: list[str]) -> None:
        """400 per field the user may not set. Jira names a permission it lacks as a field "not
        on the appropriate screen": without Edit issues every field (pycontribs/jira #1, "The
        user did not have access to edit issues"), without Assign issues the assignee
        (ansible-collections/community.general #818). Without Add comments, a comment in the
        edit is refused the same way (the sandbox's reading: no public report found)."""
        needs = {"comment": "ADD_COMMENTS", "assignee": "ASSIGN_ISSUES"}
        refused = {
            name: f"Field '{name}' cannot be set. It is not on the appropriate screen, or unknown."
            for name in names
            if not self.has_permission(actor, issue.project, "EDIT_ISSUES")
            or not self.has_permission(actor, issue.project, needs.get(name, "EDIT_ISSUES"))
        }
        if refused:
            raise _error(400, **refused)

    def _apply(
        self, issue: Issue, fields: Mapping[str, Any], update: Mapping[str, Any], actor: str
    ) -> tuple[list[dict[str, Any]], Comment | None]:
        """Validate everything first, then change the issue; returns changelog items, comment."""
        for name in [*fields, *update]:
            if name not in SYSTEM_FIELDS and name not in self.field_names and name != "comment":
                raise _error(
                    400,
                    **{
                        name: f"Field '{name}' cannot be set. It is not on the"
                        " appropriate screen, or unknown."
                    },
                )
        new: dict[str, Any] = {
            "labels": list(issue.labels),
            "components": list(issue.components),
            "assignee": issue.assignee,
            "reporter": issue.reporter,
            "priority": issue.priority,
            "summary": issue.summary,
            "description": issue.description,
            **{fid: issue.custom.get(fid) for fid in self.field_names},
        }
        comments: list[Comment] = []
        for name, value in fields.items():
            new[name] = self._set_value(issue, name, value)
        for name, ops in update.items():
            if not isinstance(ops, list):
                raise _error(400, **{name: "expected a list of operations"})
            for op in ops:
                if not isinstance(op, dict) or len(op) != 1:
                    raise _error(400, **{name: "each operation is one of add, remove, set, edit"})
                verb, value = next(iter(op.items()))
                if name == "comment":
                    if verb != "add":
                        raise _error(400, comment="only 'add' is supported for comments here")
                    comments.append(self._new_comment(value, actor, via="edit"))
                elif name == "labels":
                    new["labels"] = _list_op(new["labels"], verb, value, name, self._label)
                elif name == "components":
                    new["components"] = _list_op(
                        new["components"],
                        verb,
                        value,
                        name,
                        lambda v: self._component(issue.project, v, "components").id,
                    )
                elif verb == "set":
                    new[name] = self._set_value(issue, name, value)
                else:
                    raise _error(400, **{name: f"operation '{verb}' is not supported for {name}"})
        items = self._changelog(issue, new)
        issue.labels = new["labels"]
        issue.components = new["components"]
        issue.assignee = new["assignee"]
        issue.reporter = new["reporter"]
        issue.priority = new["priority"]
        issue.summary = new["summary"]
        issue.description = new["description"]
        for fid in self.field_names:
            if new[fid] is None:
                issue.custom.pop(fid, None)
            else:
                issue.custom[fid] = new[fid]
        issue.comments.extend(comments)
        return items, comments[-1] if comments else None

    def _label(self, value: Any) -> str:
        if not isinstance(value, str) or not value:
            raise _error(400, labels="a label must be a non-empty string")
        if " " in value:
            raise _error(400, labels=f"The label '{value}' contains spaces which is invalid.")
        return value

    def _component(self, project: str, value: Any, name: str) -> JiraComponentSeed:
        if isinstance(value, dict):
            for c in self.components.values():
                if c.project == project and (
                    c.id == value.get("id") or c.name == value.get("name")
                ):
                    return c
        raise _error(400, **{name: f"Component name '{value}' is not valid"})

    def _set_value(self, issue: Issue, name: str, value: Any) -> Any:
        if name == "labels":
            if not isinstance(value, list):
                raise _error(400, labels="expected a list of labels")
            return [self._label(v) for v in value]
        if name == "components":
            if not isinstance(value, list):
                raise _error(400, components="expected a list of components")
            return [self._component(issue.project, v, name).id for v in value]
        if name == "assignee":
            account = self._user_ref(value, name)
            if account is not None and not self.has_permission(
                account, issue.project, "ASSIGNABLE_USER"
            ):
                # Jira's own REST tests (IssueClient.assign: 400, errors.assignee "User 'joe'
                # cannot be assigned issues."); Mylyn's Jira connector tests meet the same text.
                who = account if self.cloud else self.users[account].name
                raise _error(400, assignee=f"User '{who}' cannot be assigned issues.")
            return account
        if name == "reporter":
            return self._user_ref(value, name)
        if name == "priority":
            if not isinstance(value, dict) or value.get("name") not in self.priorities:
                raise _error(
                    400, priority=f"Specify a valid priority name: {sorted(self.priorities)}"
                )
            return value["name"]
        if name in ("summary", "description"):
            if value is not None and not isinstance(value, str):
                raise _error(400, **{name: "Operation value must be a string"})
            if name == "summary" and not value:
                raise _error(400, summary="You must specify a summary of the issue.")
            return value
        return self._custom_value(name, value)

    def _custom_value(self, fid: str, value: Any) -> Any:
        """A custom field's stored value: as set, or (Organizations) the list of ids."""
        if fid not in self.organization_fields or value is None:
            return value  # custom fields hold whatever JSON the client sets
        # JSM: the Organizations field is set with organization ids, e.g. [8] (numbers; digit
        # strings are taken too). An unknown id is refused and the edit changes nothing.
        if not isinstance(value, list) or not all(
            isinstance(v, int | str) and not isinstance(v, bool) for v in value
        ):
            raise _error(400, **{fid: "Organizations are set with a list of organization ids."})
        ids = [str(v) for v in value]
        for oid in ids:
            if oid not in self.organizations:
                raise _error(400, **{fid: f"Organization with id {oid} does not exist."})
        return ids or None

    def custom_json(self, fid: str, stored: Any) -> Any:
        """A custom field as GET issue and webhooks show it (Organizations: objects, [] empty)."""
        if fid not in self.organization_fields:
            return stored
        return [
            {
                "id": oid,
                "name": self.organizations[oid].name,
                "_links": {"self": f"{self.base_url}/rest/servicedeskapi/organization/{oid}"},
            }
            for oid in stored or []
        ]

    def _new_comment(
        self, value: Any, actor: str, *, via: Literal["edit", "comment"] = "comment"
    ) -> Comment:
        """A comment from a request body. It is JSM-internal only when it came in through a
        documented internal path: `POST /rest/api/2/issue/{key}/comment` with the property
        `sd.public.comment = {"internal": true}` (pycontribs/jira #313, jenkinsci/jira-plugin
        #375), or the Service Management API (`service_desk_comment`). The same property inside
        an edit's `update.comment.add` (`via="edit"`) is kept but not honoured: no public
        source shows Jira honouring it there, so the sandbox assumes the portal shows it."""
        if not isinstance(value, dict) or not isinstance(value.get("body"), str):
            raise _error(400, comment="Comment body can not be empty! (v2 takes a plain string)")
        if not value["body"].strip():
            raise _error(400, comment="Comment body can not be empty!")
        visibility = value.get("visibility")
        if visibility is not None and (
            not isinstance(visibility, dict)
            or visibility.get("type") not in ("role", "group")
            or not visibility.get("value")
        ):
            raise _error(400, comment='visibility must be {"type": "role"|"group", "value": ...}')
        if visibility is not None:
            self._check_visibility(visibility, actor)
        properties = value.get("properties") or []
        if not isinstance(properties, list):
            raise _error(400, comment="properties must be a list of {key, value}")
        internal = via == "comment" and any(
            isinstance(p, dict)
            and p.get("key") == "sd.public.comment"
            and isinstance(p.get("value"), dict)
            and p["value"].get("internal") is True
            for p in properties
        )
        now = self.now()
        return Comment(
            str(next(self._comment_ids)),
            actor,
            value["body"],
            now,
            now,
            visibility,
            properties,
            internal=internal,
        )

    def _check_visibility(self, visibility: Mapping[str, Any], actor: str) -> None:
        """A comment restricted to a role or group that does not exist, or that the author is
        not in, is a 400 in `errors.commentLevel` ({"errorMessages": [], "errors":
        {"commentLevel": "You are currently not a member of the project role: Developers."}}:
        reload/github-security-jira #128; "Role with id: Administrators does not exist.":
        atlassian/atlassian-mcp-server #105). The group texts follow the role ones (unconfirmed).
        Roles are checked across the seed's projects (the sandbox keeps one role set)."""
        kind, value = visibility["type"], str(visibility["value"])
        if kind == "role":
            members = [m for roles in self.seed.roles.values() for m in roles.get(value, [])]
            if not any(value in roles for roles in self.seed.roles.values()):
                raise _error(400, commentLevel=f"Role with id: {value} does not exist.")
            if actor not in members and not self.users[actor].admin:
                raise _error(
                    400,
                    commentLevel=f"You are currently not a member of the project role: {value}.",
                )
        else:
            if value not in self.seed.groups:
                raise _error(400, commentLevel=f"Group: {value} does not exist.")
            if actor not in self.seed.groups[value]:
                raise _error(
                    400, commentLevel=f"You are currently not a member of the group: {value}."
                )

    def _changelog(self, issue: Issue, new: Mapping[str, Any]) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []

        def item(
            fid: str, name: str, kind: str, old: Any, to: Any, old_s: Any, to_s: Any, **extra: Any
        ) -> None:
            items.append(
                {
                    "field": name,
                    "fieldtype": kind,
                    "fieldId": fid,
                    "from": old,
                    "fromString": old_s,
                    "to": to,
                    "toString": to_s,
                    **extra,
                }
            )

        if sorted(new["labels"]) != sorted(issue.labels):
            item(
                "labels",
                "labels",
                "jira",
                None,
                None,
                " ".join(issue.labels),
                " ".join(new["labels"]),
            )
        if new["assignee"] != issue.assignee:
            old, to = issue.assignee, new["assignee"]
            item(
                "assignee",
                "assignee",
                "jira",
                old,
                to,
                self.users[old].displayName if old else None,
                self.users[to].displayName if to else None,
                tmpFromAccountId=old,
                tmpToAccountId=to,
            )
        if new["components"] != issue.components:
            item(
                "components",
                "Component",
                "jira",
                ",".join(issue.components) or None,
                ",".join(new["components"]) or None,
                ", ".join(self.components[c].name for c in issue.components) or None,
                ", ".join(self.components[c].name for c in new["components"]) or None,
            )
        for fid in ("priority", "summary", "description", "reporter"):
            if new[fid] != getattr(issue, fid):
                item(fid, fid, "jira", None, None, getattr(issue, fid), new[fid])
        for fid, name in self.field_names.items():
            if new[fid] != issue.custom.get(fid):
                item(
                    fid,
                    name,
                    "custom",
                    None,
                    None,
                    _field_text(self.custom_json(fid, issue.custom.get(fid))),
                    _field_text(self.custom_json(fid, new[fid])),
                )
        return items

    def assign(self, request: Request) -> Response:
        issue = self.find(request.params["key"])
        self._can_see(request.actor, issue)
        if not self.has_permission(request.actor, issue.project, "ASSIGN_ISSUES"):
            # Assign issue, platform-openapi-v3.json: "403 ... the necessary permission".
            raise _error(403, "You do not have permission to assign issues.")
        body = json_body(request, _bad_json)
        assignee = self._user_ref(body, "assignee")
        actor = request.actor
        assert actor is not None
        items, _ = self._apply(
            issue,
            {
                "assignee": {"accountId": assignee}
                if self.cloud
                else {"name": self.users[assignee].name if assignee else None}
            },
            {},
            actor,
        )
        if items:
            issue.updated = self.now()
            self._issue_updated(issue, actor, items, None)
        return Response(204, None, wrote=True)

    def create_issue(self, request: Request) -> Response:
        body = json_body(request, _bad_json)
        fields = dict(body.get("fields") or {})
        project_ref = fields.pop("project", None)
        project = None
        if isinstance(project_ref, dict):
            for p in self.projects.values():
                if project_ref.get("key") == p.key or project_ref.get("id") == p.id:
                    project = p
        if project is None:
            raise _error(400, project="valid project is required")
        kind = fields.pop("issuetype", None)
        if not isinstance(kind, dict) or kind.get("name", "Task") not in ISSUE_TYPES:
            raise _error(400, issuetype=f"valid issue type is required: {sorted(ISSUE_TYPES)}")
        if not isinstance(fields.get("summary"), str) or not fields["summary"]:
            raise _error(400, summary="You must specify a summary of the issue.")
        actor = request.actor
        assert actor is not None
        number = self._numbers.get(project.key, 0) + 1
        now = self.now()
        issue = Issue(
            id=str(next(self._ids)),
            key=f"{project.key}-{number}",
            project=project.key,
            summary=fields["summary"],
            description=None,
            labels=[],
            priority="Medium",
            reporter=actor,
            creator=actor,
            assignee=None,
            components=[],
            status="To Do",
            issuetype=kind.get("name", "Task"),
            custom={},
            created=now,
            updated=now,
        )
        fields.setdefault(
            "reporter", {"accountId": actor} if self.cloud else {"name": self.users[actor].name}
        )
        blank = Issue(
            **{
                **issue.__dict__,
                "summary": "",
                "priority": None,
                "reporter": None,
                "custom": {},
                "labels": [],
                "components": [],
            }
        )
        items, _ = self._apply(blank, fields, {}, actor)
        issue = Issue(**{**blank.__dict__, "summary": fields["summary"]})
        self.issues[issue.key] = issue
        self._numbers[project.key] = number
        self._deliver(
            "jira:issue_created",
            issue,
            lambda: {
                "timestamp": _ms(now),
                "webhookEvent": "jira:issue_created",
                "issue_event_type_name": "issue_created",
                "user": self.user_json(actor),
                "issue": self.issue_json(issue),
                "changelog": {"id": str(next(self._changelog_ids)), "items": items},
            },
        )
        return Response(
            201,
            {
                "id": issue.id,
                "key": issue.key,
                "self": f"{self.base_url}/rest/api/2/issue/{issue.id}",
            },
            wrote=True,
        )

    # ------------------------------------------------------------------------- attachments

    def _attachment(self, name: str, size: int, author: str | None) -> dict[str, Any]:
        return {
            "id": str(next(self._ids)),
            "filename": name,
            "author": author,
            "created": jira_time(self.now()),
            "size": size,
            "mimeType": "application/octet-stream",
        }

    def attach(self, request: Request) -> Response:
        """POST issue/{key}/attachments: multipart `file` parts (XSRF header required, as Jira).

        A scripted agent may send JSON `{"filename": ..., "content": ...}` instead."""
        issue = self.find(request.params["key"])
        files: list[tuple[str, bytes]] = []
        if request.agent:
            body = json_body(request, _bad_json)
            files.append(
                (str(body.get("filename") or "file.txt"), str(body.get("content") or "").encode())
            )
        else:
            if request.headers.get("X-Atlassian-Token", "").lower() != "no-check":
                raise _error(403, "XSRF check failed: send X-Atlassian-Token: no-check.")
            files = _multipart_files(request)
            if not files:
                raise _error(400, "No file parts named 'file' in the multipart body.")
        actor = request.actor
        assert actor is not None
        added = [self._attachment(name, len(data), actor) for name, data in files]
        issue.attachments.extend(added)
        issue.updated = self.now()
        items = [
            {
                "field": "Attachment",
                "fieldtype": "jira",
                "fieldId": "attachment",
                "from": None,
                "fromString": None,
                "to": a["id"],
                "toString": a["filename"],
            }
            for a in added
        ]
        self._issue_updated(issue, actor, items, None)
        rendered = self.issue_json(issue, {"attachment"})["fields"]["attachment"]
        return Response(200, rendered[-len(added) :], wrote=True)

    # ---------------------------------------------------------------------------- comments

    def list_comments(self, request: Request) -> Response:
        issue = self.find(request.params["key"])
        start = _int(request.arg("startAt"), 0, "startAt")
        size = _int(request.arg("maxResults"), 5000, "maxResults")
        ordered = list(issue.comments)
        if (request.arg("orderBy") or "").lstrip("+") == "-created":
            ordered.reverse()
        props = "properties" in (request.arg("expand") or "")
        page = ordered[start : start + size]
        return Response(
            200,
            {
                "startAt": start,
                "maxResults": size,
                "total": len(ordered),
                "comments": [self.comment_json(issue, c, properties=props) for c in page],
            },
        )

    def add_comment(self, request: Request) -> Response:
        issue = self.find(request.params["key"])
        self._can_see(request.actor, issue)
        actor = request.actor
        assert actor is not None
        if not self.has_permission(actor, issue.project, "ADD_COMMENTS"):
            # Add comment, platform-openapi-v3.json lists 400 "the request is invalid" (no 403).
            raise _error(400, comment="You do not have the permission to comment on this issue.")
        comment = self._new_comment(json_body(request, _bad_json), actor)
        issue.comments.append(comment)
        issue.updated = comment.created
        self._issue_updated(issue, actor, [], comment)
        return Response(201, self.comment_json(issue, comment), wrote=True)

    def service_desk_comment(self, request: Request) -> Response:
        """JSM "Create request comment": `{"body": ..., "public": bool}`; `public: false` is an
        internal comment (developer.atlassian.com/cloud/jira/service-desk/rest/
        api-group-request/#api-rest-servicedeskapi-request-issueidorkey-comment-post). 404 on
        a site without Service Management."""
        if not self.seed.service_management:
            raise _error(404, "Service Management is not installed on this site.")
        issue = self.find(request.params["key"])
        actor = request.actor
        assert actor is not None
        body = json_body(request, _bad_json)
        text = body.get("body")
        public = body.get("public", True)
        if not isinstance(text, str) or not text.strip():
            raise _error(400, "The comment body is required.")
        if not isinstance(public, bool):
            raise _error(400, "public must be true or false.")
        now = self.now()
        comment = Comment(
            str(next(self._comment_ids)), actor, text, now, now, internal=not public
        )
        issue.comments.append(comment)
        issue.updated = comment.created
        self._issue_updated(issue, actor, [], comment)
        return Response(
            201,
            {
                "id": comment.id,
                "body": comment.body,
                "public": public,
                "author": self.user_json(actor),
                "created": {"iso8601": jira_time(now), "epochMillis": _ms(now)},
                "_links": {
                    "self": f"{self.base_url}/rest/servicedeskapi/request/{issue.id}"
                    f"/comment/{comment.id}"
                },
            },
            wrote=True,
        )

    # ------------------------------------------------------------------------------ search

    def _values(self, issue: Issue) -> Callable[[str], list[str] | None]:
        def user(a: str | None) -> list[str]:
            if a is None:
                return []
            u = self.users[a]
            return [
                u.accountId,
                u.name,
                u.displayName,
                *([u.emailAddress] if u.emailAddress else []),
            ]

        def values(name: str) -> list[str] | None:
            project = self.projects[issue.project]
            table: dict[str, list[str]] = {
                "project": [project.key, project.id, project.name],
                "key": [issue.key, issue.id],
                "issuekey": [issue.key, issue.id],
                "id": [issue.id],
                "labels": list(issue.labels),
                "status": [issue.status],
                "issuetype": [issue.issuetype],
                "type": [issue.issuetype],
                "assignee": user(issue.assignee),
                "reporter": user(issue.reporter),
                "priority": [issue.priority] if issue.priority else [],
                "component": [self.components[c].name for c in issue.components],
                "summary": [issue.summary],
                "description": [issue.description or ""],
                "comment": [c.body for c in issue.comments],
                "text": [issue.summary, issue.description or "", *(c.body for c in issue.comments)],
                "created": [issue.created.isoformat()],
                "updated": [issue.updated.isoformat()],
                "createddate": [issue.created.isoformat()],
                "updateddate": [issue.updated.isoformat()],
            }
            if name in table:
                return table[name]
            fid = name
            if name.startswith("cf[") and name.endswith("]"):
                fid = f"customfield_{name[3:-1]}"
            for known, title in self.field_names.items():
                if fid in (known, title.lower()):
                    raw = self.custom_json(known, issue.custom.get(known))
                    return (
                        []
                        if raw is None
                        else [
                            _field_text(v) or "" for v in (raw if isinstance(raw, list) else [raw])
                        ]
                    )
            return None

        return values

    def matching(self, jql: str) -> list[Issue]:
        """Issues matching `jql`, in its ORDER BY (default: key)."""
        try:
            parsed = parse_jql(jql)
            now = self.now()
            found = [
                i for i in self.issues.values() if evaluate(parsed.where, self._values(i), now=now)
            ]
        except QueryError as exc:
            raise _error(400, str(exc)) from exc
        found.sort(key=lambda i: (i.project, int(i.key.split("-")[1])))
        for name, desc in reversed(parsed.order):
            if name in ("updated", "created"):
                attr: str = name

                def when(i: Issue, attr: str = attr) -> datetime:
                    return getattr(i, attr)  # type: ignore[no-any-return]

                found.sort(key=when, reverse=desc)
            elif name in ("key", "id", "issuekey"):
                found.sort(key=lambda i: (i.project, int(i.key.split("-")[1])), reverse=desc)
        return found

    def _search_params(self, request: Request) -> dict[str, Any]:
        if request.method == "POST":
            body = json_body(request, _bad_json)
            return body
        params: dict[str, Any] = {k: v[-1] for k, v in request.query.items()}
        params["fields"] = request.args("fields") or None
        return params

    def search_jql(self, request: Request) -> Response:
        if not self.cloud:
            raise _error(404, "The /search/jql API exists on Jira Cloud only.")
        params = self._search_params(request)
        jql = str(params.get("jql") or "")
        if not jql.strip() or parse_jql_safe(jql).where is None:
            raise _error(
                400,
                "Unbounded JQL queries are not allowed here. Please add a search"
                " restriction to your query.",
            )
        size = min(_int(params.get("maxResults"), 50, "maxResults"), 5000)
        token = params.get("nextPageToken")
        start = 0
        if token:
            try:
                start = int(base64.urlsafe_b64decode(str(token)).decode())
            except ValueError as exc:
                raise _error(400, "The nextPageToken is invalid.") from exc
        found = self.matching(jql)
        page = found[start : start + size]
        wanted = self._fields_param(params.get("fields"), default="id")
        result: dict[str, Any] = {
            "issues": [self.issue_json(i, wanted) for i in page],
            "isLast": start + size >= len(found),
        }
        if start + size < len(found):
            result["nextPageToken"] = base64.urlsafe_b64encode(str(start + size).encode()).decode()
        return Response(200, result)

    def approximate_count(self, request: Request) -> Response:
        """POST /rest/api/2/search/approximate-count (Cloud): {"count": n}."""
        if not self.cloud:
            raise _error(404, "The approximate-count API exists on Jira Cloud only.")
        jql = str(json_body(request, _bad_json).get("jql") or "")
        if not jql.strip() or parse_jql_safe(jql).where is None:
            raise _error(
                400,
                "Unbounded JQL queries are not allowed here. Please add a search"
                " restriction to your query.",
            )
        return Response(200, {"count": len(self.matching(jql))})

    def search(self, request: Request) -> Response:
        if self.cloud:
            raise _error(
                410,
                "The requested API has been removed. Please migrate to the"
                " /rest/api/3/search/jql API.",
            )
        params = self._search_params(request)
        start = _int(params.get("startAt"), 0, "startAt")
        size = min(_int(params.get("maxResults"), 50, "maxResults"), 1000)
        found = self.matching(str(params.get("jql") or ""))
        wanted = self._fields_param(params.get("fields"), default="*navigable")
        return Response(
            200,
            {
                "expand": "schema,names",
                "startAt": start,
                "maxResults": size,
                "total": len(found),
                "issues": [self.issue_json(i, wanted) for i in found[start : start + size]],
            },
        )

    def _fields_param(self, value: Any, *, default: str) -> set[str] | None:
        names = (
            value if isinstance(value, list) else (str(value).split(",") if value else [default])
        )
        fake = Request("GET", "", {"fields": [",".join(str(n) for n in names)]}, {}, b"", "")
        return self.wanted_fields(fake, default=default)

    # ---------------------------------------------------------------------------- webhooks

    def _webhook_from(self, body: Mapping[str, Any], wid: int, actor: str | None) -> Webhook:
        url = body.get("url")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise _error(400, url="Webhook url must be an absolute http(s) URL.")
        events = body.get("events")
        if (
            not isinstance(events, list)
            or not events
            or not all(isinstance(e, str) for e in events)
        ):
            raise _error(400, events="Webhook events must be a non-empty list of event names.")
        filters = body.get("filters") or {}
        if not isinstance(filters, dict):
            raise _error(400, filters="filters must be an object")
        jql = filters.get(FILTER_KEY)
        if jql:
            try:
                parse_jql(str(jql))
            except QueryError as exc:
                raise _error(400, filters=f"Invalid JQL in {FILTER_KEY}: {exc}") from exc
        if self.dc10_webhooks:
            # DC 10: the secret is `configuration.SECRET`; a top-level `secret` is silently
            # ignored and deliveries then arrive unsigned (reported by clients registering DC 10
            # webhooks: OpenHands' Jira DC integration sends configuration.SECRET; an
            # agentic-sdlc setup guide: "a top-level secret field is silently ignored").
            configuration = body.get("configuration") or {}
            if not isinstance(configuration, dict):
                raise _error(400, configuration="configuration must be an object")
            secret = configuration.get("SECRET")
            exclude = str(configuration.get("EXCLUDE_BODY", body.get("excludeBody", "false")))
            enabled = body.get("active", body.get("enabled", True))
        else:
            secret = body.get("secret")
            exclude = str(body.get("excludeBody", "false"))
            enabled = body.get("enabled", True)
        if secret is not None and not isinstance(secret, str):
            raise _error(400, secret="secret must be a string")
        return Webhook(
            wid,
            str(body.get("name") or f"webhook {wid}"),
            url,
            list(events),
            {k: str(v) for k, v in filters.items()},
            exclude.lower() == "true",
            secret or None,
            bool(enabled),
            actor,
            self.now(),
        )

    def webhook_json(self, w: Webhook) -> dict[str, Any]:
        # The secret is write-only: Jira does not echo it back.
        if self.dc10_webhooks:
            # DC 10: a numeric `id` and no `self` (jira-webhook resource, as typed by DC
            # clients: "their ids are numbers"); the secret lives in `configuration`.
            return {
                "id": w.id,
                "name": w.name,
                "url": w.url,
                "events": w.events,
                "filters": w.filters,
                "active": w.enabled,
                "scopeType": "global",
                "configuration": {"EXCLUDE_BODY": "true" if w.exclude_body else "false"},
                "updatedDate": _ms(w.updated),
                "updatedUser": w.updated_by,
            }
        return {
            "name": w.name,
            "url": w.url,
            "excludeBody": w.exclude_body,
            "filters": w.filters,
            "events": w.events,
            "enabled": w.enabled,
            "self": f"{self.base_url}/rest/webhooks/1.0/webhook/{w.id}",
            "lastUpdatedUser": w.updated_by,
            "lastUpdated": _ms(w.updated),
            "lastUpdatedDisplayName": self.users[w.updated_by].displayName
            if w.updated_by
            else None,
        }

    def create_webhook(self, request: Request) -> Response:
        wid = next(self._webhook_ids)
        hook = self._webhook_from(json_body(request, _bad_json), wid, request.actor)
        self.webhooks[wid] = hook
        return Response(201, self.webhook_json(hook), wrote=True)

    def list_webhooks(self, request: Request) -> Response:
        return Response(200, [self.webhook_json(w) for w in self.webhooks.values()])

    def _hook(self, request: Request) -> Webhook:
        try:
            return self.webhooks[int(request.params["id"])]
        except (KeyError, ValueError) as exc:
            raise _error(404, f"Webhook {request.params['id']} does not exist.") from exc

    def get_webhook(self, request: Request) -> Response:
        return Response(200, self.webhook_json(self._hook(request)))

    def update_webhook(self, request: Request) -> Response:
        old = self._hook(request)
        body = json_body(request, _bad_json)
        merged: dict[str, Any] = {
            "name": old.name,
            "url": old.url,
            "events": old.events,
            "filters": old.filters,
            "excludeBody": old.exclude_body,
            "enabled": old.enabled,
            **body,
        }
        if self.dc10_webhooks:
            configuration = body.get("configuration")
            if isinstance(configuration, dict) and "SECRET" not in configuration:
                merged["configuration"] = {**configuration, "SECRET": old.secret}
            elif configuration is None:
                merged["configuration"] = {"SECRET": old.secret}
        elif "secret" not in body:
            merged["secret"] = old.secret
        self.webhooks[old.id] = self._webhook_from(merged, old.id, request.actor)
        return Response(200, self.webhook_json(self.webhooks[old.id]), wrote=True)

    def delete_webhook(self, request: Request) -> Response:
        hook = self._hook(request)
        del self.webhooks[hook.id]
        return Response(204, None, wrote=True)

    # --------------------------------------------------------------------------- emitting

    def _issue_updated(
        self, issue: Issue, actor: str, items: list[dict[str, Any]], comment: Comment | None
    ) -> None:
        now = self.now()
        if comment is not None and not items:
            kind = "issue_commented"
        elif items and all(i["fieldId"] == "assignee" for i in items) and comment is None:
            kind = "issue_assigned"
        else:
            kind = "issue_updated"

        def body() -> dict[str, Any]:
            data: dict[str, Any] = {
                "timestamp": _ms(now),
                "webhookEvent": "jira:issue_updated",
                "issue_event_type_name": kind,
                "user": self.user_json(actor),
                "issue": self.issue_json(issue),
            }
            if items:
                data["changelog"] = {"id": str(next(self._changelog_ids)), "items": items}
            if comment is not None:
                data["comment"] = self.comment_json(issue, comment)
            return data

        self._deliver("jira:issue_updated", issue, body)
        if comment is not None:
            self._deliver(
                "comment_created", issue, lambda: self._comment_event(issue, comment, now)
            )

    def _comment_event(self, issue: Issue, comment: Comment, now: datetime) -> dict[str, Any]:
        full = self.issue_json(issue)
        if not self.cloud:
            # Data Center comment_created carries no issue at all (see the Server fixture).
            return {
                "timestamp": _ms(now),
                "webhookEvent": "comment_created",
                "comment": self.comment_json(issue, comment),
            }
        trimmed = {
            k: full["fields"][k]
            for k in ("summary", "issuetype", "project", "assignee", "priority", "status")
        }
        return {
            "timestamp": _ms(now),
            "webhookEvent": "comment_created",
            "comment": self.comment_json(issue, comment),
            "issue": {
                "id": full["id"],
                "self": full["self"],
                "key": full["key"],
                "fields": trimmed,
            },
        }

    def _deliver(self, event: str, issue: Issue, body: Callable[[], dict[str, Any]]) -> None:
        built: dict[str, Any] | None = None
        now = self.now()
        for hook in self.webhooks.values():
            if not hook.enabled or event not in hook.events:
                continue
            jql = hook.filters.get(FILTER_KEY)
            if jql:
                parsed = parse_jql_safe(jql)
                try:
                    if not evaluate(parsed.where, self._values(issue), now=now):
                        continue
                except QueryError:
                    continue
            if built is None:
                built = body()
            payload = built
            if hook.exclude_body:
                payload = {}
            self.emit(str(hook.id), hook.url, event, hook.secret, payload, issue.key)

    # ------------------------------------------------------------------------------ agent

    def state(self) -> dict[str, Any]:
        """A compact JSON view for `/_sandbox/state`."""
        return {
            "deployment": self.seed.deployment,
            "issues": {
                k: {
                    "labels": sorted(i.labels),
                    "assignee": i.assignee,
                    "components": [self.components[c].name for c in i.components],
                    "priority": i.priority,
                    "summary": i.summary,
                    "custom": i.custom,
                    "updated": jira_time(i.updated),
                    "comments": [
                        {
                            "id": c.id,
                            "author": c.author,
                            "body": c.body,
                            "visibility": c.visibility,
                            "properties": c.properties,
                            "jsdPublic": not c.internal,
                        }
                        for c in i.comments
                    ],
                }
                for k, i in self.issues.items()
            },
            "webhooks": [
                {**self.webhook_json(w), "id": w.id, "signed": w.secret is not None}
                for w in self.webhooks.values()
            ],
        }


def _multipart_files(request: Request) -> list[tuple[str, bytes]]:
    """The (filename, bytes) of each `file` part of a multipart/form-data body."""
    kind = request.headers.get("Content-Type") or request.headers.get("content-type") or ""
    if not kind.startswith("multipart/form-data"):
        raise _error(415, "Send the attachment as multipart/form-data with a 'file' part.")
    message = BytesParser(policy=email.policy.HTTP).parsebytes(
        f"Content-Type: {kind}\r\n\r\n".encode() + request.body
    )
    files: list[tuple[str, bytes]] = []
    for part in message.iter_parts():
        if part.get_param("name", header="content-disposition") == "file":
            payload = part.get_payload(decode=True)
            files.append(
                (part.get_filename() or "file", payload if isinstance(payload, bytes) else b"")
            )
    return files


def parse_jql_safe(jql: str) -> Any:
    try:
        return parse_jql(jql)
    except QueryError as exc:
        raise _error(400, str(exc)) from exc


def errors_field(name: str, message: str) -> str:
    return f"{name}: {message}"


def _list_op(
    current: list[str], verb: str, value: Any, name: str, check: Callable[[Any], str]
) -> list[str]:
    if verb == "add":
        item = check(value)
        return current if item in current else [*current, item]
    if verb == "remove":
        item = check(value)
        return [c for c in current if c != item]
    if verb == "set":
        if not isinstance(value, list):
            raise _error(400, **{name: "set takes a list"})
        return [check(v) for v in value]
    raise _error(400, **{name: f"operation '{verb}' is not supported; use add, remove or set"})


def _field_text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, dict):
        return str(value.get("value") or value.get("name") or value.get("id") or value)
    if isinstance(value, list):
        return ", ".join(_field_text(v) or "" for v in value)
    return str(value)


def _int(value: Any, default: int, name: str) -> int:
    if value is None or value == "":
        return default
    try:
        number = int(value)
    except (TypeError, ValueError) as exc:
        raise _error(400, f"'{name}' must be a whole number, got {value!r}.") from exc
    if number < 0:
        raise _error(400, f"'{name}' must not be negative.")
    return number


def _ms(when: datetime) -> int:
    return int(when.astimezone(UTC).timestamp() * 1000)
