"""The Jira sandbox's seed: the site's users, projects, fields and issues, validated on load."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


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
    #: "datetime" is a date time picker: set as YYYY-MM-DDThh:mm:ss.sss+hhmm (jira/fields.py).
    #: "date" is a date picker: set as YYYY-MM-DD, like duedate (jira/fields.py).
    type: Literal["any", "organizations", "datetime", "date"] = "any"


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
