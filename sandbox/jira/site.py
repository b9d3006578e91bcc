"""The Jira half of the sandbox: issues, comments, search and admin webhooks, in memory.

Answers the Jira REST API v2 the way Jira Cloud (or Data Center, `deployment: "Server"` in the
seed) does, with the shapes of platform-openapi-v3.json and the real payloads in
../shared/vendor/jira/webhooks/. Covered:

    GET  /rest/api/2/serverInfo, /rest/api/2/myself, /rest/api/2/user/search
    GET  /rest/api/2/issue/{key}?fields=...           PUT (204) with fields + update
    PUT  /rest/api/2/issue/{key}/assignee             POST /rest/api/2/issue (create)
    GET  /rest/api/2/issue/{key}/comment              POST (201)
    GET  /rest/api/2/issue/{key}/transitions          POST (204): the status changes
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

import functools
import itertools
import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sandbox.jira import contract
from sandbox.jira.issues import JiraIssues
from sandbox.jira.records import Comment, Emit, Issue, Webhook, _error, jira_time
from sandbox.jira.seed import JiraSeed
from sandbox.wire import ApiError, Handler, Request, Response, Route, route


class JiraSim(JiraIssues):
    """In-memory Jira site. All methods run under the sandbox lock held by the HTTP layer."""

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
        self.field_types = {f.id: f.type for f in seed.fields}
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
            route("GET", "/rest/api/2/issue/{key}/transitions", self.transitions),
            route("POST", "/rest/api/2/issue/{key}/transitions", self.transition, write=True),
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
