"""Jira admin tasks: register tierdesk's webhook, and page through issues for a backfill.

Both take a configured `jira.JIRA` client (connectors.jira.client.make_client) and go through
`connectors.jira.client.send`, so errors arrive as the connectors.base tree. The CLI
(webhooks/cli_jira.py) only parses options, prints and enqueues.

Webhook registration (../shared/vendor/README.md, Jira section): admin webhooks live at
`/rest/webhooks/1.0/webhook` on Cloud and Data Center (`GET` lists, `POST` creates, `PUT`/`DELETE`
on `/rest/webhooks/1.0/webhook/{id}`); `/rest/api/3/webhook` is for Connect/OAuth apps only and
expires after 30 days, so it is not used.
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlsplit

from jira import JIRA

from connectors.base import Envelope, PayloadInvalid, VendorUnavailable
from connectors.jira import events
from connectors.jira.client import json_object, send
from connectors.jira.config import JiraConfig
from connectors.jira.tickets import fields_to_read, ticket_from_issue
from tiering.models import Decision, Ticket
from tiering.policy import Policy

WEBHOOK_PATH = "/rest/webhooks/1.0/webhook"
#: The four events tierdesk handles (connectors.jira.events.HANDLED_EVENTS minus backfill).
WEBHOOK_EVENTS = ("jira:issue_created", "jira:issue_updated", "comment_created", "comment_updated")
DEFAULT_WEBHOOK_NAME = "tierdesk"
#: Search page size: Jira caps maxResults (100 on Cloud for most field sets).
PAGE_SIZE = 100

_WEBHOOK_ID = re.compile(r"/rest/webhooks/1\.0/webhook/(\d+)/?$")


class AdminError(ValueError):
    """An admin command cannot run as asked; the message says what to change."""


# --------------------------------------------------------------------------- install


@dataclass(frozen=True, slots=True)
class WebhookPlan:
    """The one request `install` makes (or, with --dry-run, would make)."""

    method: Literal["POST", "PUT"]
    path: str
    body: Mapping[str, Any]
    #: None when a dry run could not look up whether the webhook exists (it sends nothing).
    existing_id: str | None = None


@dataclass(frozen=True, slots=True)
class InstallResult:
    action: Literal["created", "updated", "would create or update"]
    plan: WebhookPlan
    secret: str
    webhook_url: str | None = None


def new_secret() -> str:
    """A fresh webhook secret: 32 random bytes, URL-safe text (Python's `secrets` module)."""
    return secrets.token_urlsafe(32)


def check_callback_url(url: str) -> str:
    """The callback URL if it is an absolute http(s) URL, else AdminError saying so."""
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.netloc:
        raise AdminError(
            f"--callback-url {url!r}: give the absolute URL Jira should call, e.g."
            " https://tierdesk.example.com/webhooks/jira"
        )
    return url


def webhook_body(*, name: str, callback_url: str, jql: str | None, secret: str) -> dict[str, Any]:
    """The admin webhook registration body (Cloud and Data Center)."""
    body: dict[str, Any] = {
        "name": name,
        "url": check_callback_url(callback_url),
        "events": list(WEBHOOK_EVENTS),
        "excludeBody": False,
        "secret": secret,
    }
    if jql:
        body["filters"] = {"issue-related-events-section": jql}
    return body


def _webhook_id(entry: Mapping[str, Any]) -> str | None:
    url = entry.get("self")
    if isinstance(url, str):
        found = _WEBHOOK_ID.search(url)
        if found:
            return found.group(1)
    return None


def find_webhook(client: JIRA, name: str) -> str | None:
    """The id of the admin webhook called `name`, or None (one GET)."""
    response = send(client, "GET", WEBHOOK_PATH)
    try:
        entries = response.json()
    except ValueError as exc:
        raise VendorUnavailable(f"Jira GET {WEBHOOK_PATH}: answer is not JSON") from exc
    if not isinstance(entries, list):
        raise VendorUnavailable(f"Jira GET {WEBHOOK_PATH}: expected a list of webhooks")
    for entry in entries:
        if isinstance(entry, Mapping) and entry.get("name") == name:
            ident = _webhook_id(entry)
            if ident is not None:
                return ident
    return None


def install_webhook(
    client: JIRA,
    *,
    callback_url: str,
    jql: str | None = None,
    name: str = DEFAULT_WEBHOOK_NAME,
    dry_run: bool = False,
    secret: str | None = None,
) -> InstallResult:
    """Create the webhook `name`, or update it in place when it exists (idempotent by name).

    A real run costs 2 requests (GET list, then POST or PUT). A dry run sends nothing at all and
    shows the POST it would send (a PUT to the same body if a webhook of that name exists).
    """
    secret = secret or new_secret()
    body = webhook_body(name=name, callback_url=callback_url, jql=jql, secret=secret)
    if dry_run:
        plan = WebhookPlan("POST", WEBHOOK_PATH, body)
        return InstallResult("would create or update", plan, secret)
    existing = find_webhook(client, name)
    if existing is None:
        plan = WebhookPlan("POST", WEBHOOK_PATH, body)
        response = send(client, "POST", WEBHOOK_PATH, body=body, write=True)
        action: Literal["created", "updated"] = "created"
    else:
        plan = WebhookPlan("PUT", f"{WEBHOOK_PATH}/{existing}", body, existing_id=existing)
        response = send(client, "PUT", plan.path, body=body, write=True)
        action = "updated"
    url: str | None = None
    if response.content:
        try:
            data = response.json()
        except ValueError:
            data = None
        if isinstance(data, Mapping) and isinstance(data.get("self"), str):
            url = data["self"]
    return InstallResult(action, plan, secret, webhook_url=url)


# --------------------------------------------------------------------------- backfill


def search_page(
    client: JIRA,
    config: JiraConfig,
    *,
    jql: str,
    fields: Sequence[str],
    cursor: str | int | None,
    page_size: int = PAGE_SIZE,
) -> tuple[list[Mapping[str, Any]], str | int | None]:
    """One page of issues matching `jql` and the cursor of the next page (None at the end).

    Cloud: `GET /rest/api/2/search/jql` with `nextPageToken` (the offset-paged `/search` was
    retired on Cloud: Atlassian changelog CHANGE-2046). Data Center: `GET /rest/api/2/search`
    with `startAt`.
    """
    params: dict[str, str] = {"jql": jql, "fields": ",".join(fields), "maxResults": str(page_size)}
    if config.deployment == "cloud":
        path = "/rest/api/2/search/jql"
        if cursor is not None:
            params["nextPageToken"] = str(cursor)
    else:
        path = "/rest/api/2/search"
        params["startAt"] = str(cursor or 0)
    data = json_object(send(client, "GET", path, params=params), what=f"Jira GET {path}")
    raw = data.get("issues")
    if not isinstance(raw, list):
        raise VendorUnavailable(f"Jira GET {path}: answer has no issues list")
    issues = [i for i in raw if isinstance(i, Mapping)]
    if config.deployment == "cloud":
        token = data.get("nextPageToken")
        last = data.get("isLast") is True or not isinstance(token, str) or not token
        return issues, None if last else token
    given = data.get("startAt")
    start = given if isinstance(given, int) else int(cursor or 0)
    total = data.get("total")
    following = start + len(issues)
    done = not issues or (isinstance(total, int) and following >= total)
    return issues, None if done else following


def check_jql(jql: str) -> str:
    """`jql` if it is not blank, else AdminError with an example."""
    if not jql.strip():
        raise AdminError('--jql: give a JQL query, e.g. "project = SUP AND resolution IS EMPTY"')
    return jql


def count_issues(client: JIRA, config: JiraConfig, *, jql: str) -> int | None:
    """How many issues match (for the progress bar); None when Jira cannot say cheaply."""
    if config.deployment == "cloud":
        path = "/rest/api/2/search/approximate-count"
        data = json_object(send(client, "POST", path, body={"jql": jql}), what=path)
        count = data.get("count")
    else:
        path = "/rest/api/2/search"
        params = {"jql": jql, "maxResults": "0", "fields": "key"}
        data = json_object(send(client, "GET", path, params=params), what=path)
        count = data.get("total")
    return count if isinstance(count, int) and not isinstance(count, bool) else None


def search_issues(
    client: JIRA,
    config: JiraConfig,
    policy: Policy,
    *,
    jql: str,
    page_size: int = PAGE_SIZE,
) -> Iterator[Mapping[str, Any]]:
    """Every issue matching `jql`, with only the fields the policy uses, page by page."""
    check_jql(jql)
    fields = fields_to_read(policy, config)
    cursor: str | int | None = None
    while True:
        issues, cursor = search_page(
            client, config, jql=jql, fields=fields, cursor=cursor, page_size=page_size
        )
        yield from issues
        if cursor is None:
            return


def backfill_payload(issue: Mapping[str, Any], *, now_ms: int) -> dict[str, Any]:
    """The synthetic webhook body the worker evaluates like a full `jira:issue_updated`."""
    return {"webhookEvent": events.BACKFILL_EVENT, "timestamp": now_ms, "issue": dict(issue)}


@dataclass(frozen=True, slots=True)
class BackfillItem:
    """What happened to one issue in a backfill."""

    key: str
    envelope: Envelope | None
    payload: Mapping[str, Any]
    #: Set on a dry run: the decision the worker would make now.
    decision: Decision | None = None
    ticket: Ticket | None = None
    #: Set when the issue could not be read into a ticket (it is skipped, not enqueued).
    error: str | None = None


@dataclass
class BackfillSummary:
    seen: int = 0
    enqueued: int = 0
    duplicates: int = 0
    would_change: int = 0
    unchanged: int = 0
    skipped: list[str] = field(default_factory=list)


def backfill_items(
    issues: Iterator[Mapping[str, Any]],
    *,
    policy: Policy,
    config: JiraConfig,
    decide: Callable[[Ticket], Decision] | None = None,
    clock: Callable[[], float] = time.time,
) -> Iterator[BackfillItem]:
    """Turn searched issues into backfill payloads and envelopes; with `decide`, a dry run
    also maps each issue to a Ticket and decides it (nothing is written anywhere)."""
    for issue in issues:
        payload = backfill_payload(issue, now_ms=int(clock() * 1000))
        key = issue.get("key") if isinstance(issue.get("key"), str) else "?"
        try:
            envelope = events.envelope(payload, {})
            if decide is None:
                yield BackfillItem(str(key), envelope, payload)
                continue
            ticket = ticket_from_issue(issue, policy=policy, config=config)
        except PayloadInvalid as exc:
            yield BackfillItem(str(key), None, payload, error=str(exc))
            continue
        yield BackfillItem(str(key), envelope, payload, decision=decide(ticket), ticket=ticket)


def describe(item: BackfillItem, policy: Policy) -> str:
    """One line for a dry run (connectors/backfill.py's format, shared with Zendesk)."""
    from connectors.backfill import change_line, skipped_line

    if item.error is not None:
        return skipped_line(item.key, item.error)
    decision = item.decision
    if decision is None:
        return f"{item.key}: queued"
    who = None
    if decision.assign:
        target = policy.targets.get(decision.assign)
        jira = target.jira if target is not None else None
        who = ", ".join(
            x for x in ((jira.assignee if jira else None),
                        (f"component {jira.component}" if jira and jira.component else None)) if x
        ) or None
    return change_line(item.key, decision, labels="labels", assignee=who)
