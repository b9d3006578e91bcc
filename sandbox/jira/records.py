"""The Jira sandbox's records (issues, comments, webhooks), its error shape and the site's clock."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sandbox.jira.seed import (
    JiraComponentSeed,
    JiraOrganizationSeed,
    JiraProjectSeed,
    JiraSeed,
    JiraUserSeed,
)
from sandbox.wire import ApiError

#: The site's statuses: name -> (status id, status category key). The category keys are "new",
#: "indeterminate" and "done" in real issue payloads (see tiering/sla_models.py); "Waiting for
#: customer" is the JSM service desk workflow's waiting status (category In Progress).
STATUSES = {
    "To Do": ("10000", "new"),
    "In Progress": ("3", "indeterminate"),
    "Waiting for customer": ("10002", "indeterminate"),
    "Done": ("10001", "done"),
}
#: Status category key -> (id, name): Jira's fixed categories (statusCategory in IssueBean
#: fields, platform-openapi-v3.json StatusCategory: id, key, name, colorName).
CATEGORIES = {"new": (2, "To Do"), "indeterminate": (4, "In Progress"), "done": (3, "Done")}
#: The workflow's transitions, all global (any status to any other): id -> target status.
#: `GET /rest/api/2/issue/{key}/transitions` lists those that lead elsewhere.
TRANSITIONS = {"11": "To Do", "21": "In Progress", "41": "Waiting for customer", "31": "Done"}
ISSUE_TYPES = {"Task": "10002", "Bug": "10004", "Story": "10001", "Service Request": "10010"}


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
    #: comments.py, JiraComments._new_comment); everything else is public, `jsdPublic: true`.
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


class JiraSiteBase:
    """What every part of the Jira site holds (set by `JiraSim.__init__`), its clock and lookups."""

    vendor = "jira"

    seed: JiraSeed
    cloud: bool
    emit: Emit
    _wall: Callable[[], datetime]
    _last: datetime
    base_url: str
    users: dict[str, JiraUserSeed]
    projects: dict[str, JiraProjectSeed]
    components: dict[str, JiraComponentSeed]
    field_names: dict[str, str]
    field_types: dict[str, str]
    organization_fields: set[str]
    organizations: dict[str, JiraOrganizationSeed]
    priorities: dict[str, str]
    issues: dict[str, Issue]
    webhooks: dict[int, Webhook]
    _ids: Iterator[int]
    _comment_ids: Iterator[int]
    _changelog_ids: Iterator[int]
    _webhook_ids: Iterator[int]
    _numbers: dict[str, int]
    permissions: dict[str, dict[str, frozenset[str]]]

    def now(self) -> datetime:
        """The site's clock in whole milliseconds, strictly increasing: two changes never share
        a `timestamp`/`updated`, as on a real site where each edit takes longer than 1 ms."""
        t = self._wall()
        t = t.replace(microsecond=t.microsecond // 1000 * 1000)
        if t <= self._last:
            t = self._last + timedelta(milliseconds=1)
        self._last = t
        return t

    def find(self, key: str) -> Issue:
        issue = self.issues.get(key)
        if issue is None:
            for candidate in self.issues.values():
                if candidate.id == key:
                    return candidate
            raise _error(404, "Issue does not exist or you do not have permission to see it.")
        return issue

    @property
    def version_numbers(self) -> list[int]:
        return [1001, 0, 0] if self.cloud else [int(n) for n in self.seed.version.split(".")]

    @property
    def dc10_webhooks(self) -> bool:
        """True when this site serves the Data Center 10 webhook resource (and not the old)."""
        return not self.cloud and self.version_numbers[0] >= 10
