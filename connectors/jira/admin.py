"""Jira admin tasks: register tierdesk's webhook, and page through issues for a backfill.

`JiraAdmin` holds a configured `jira.JIRA` client (connectors.jira.client.make_client), like
connectors.zendesk.admin.ZendeskAdmin holds the connector's session; every request goes through
`connectors.jira.client.send`, so errors arrive as the connectors.base tree. The CLI
(webhooks/cli/jira.py) only parses options, prints and enqueues.

Webhook registration (../shared/vendor/README.md, Jira section): `install` first reads
`GET /rest/api/2/serverInfo` (`deploymentType`, `versionNumbers`) and uses the API the site has:

- Cloud and Data Center before 10.0: `/rest/webhooks/1.0/webhook` (`GET` lists, `POST` creates,
  `PUT`/`DELETE` on `.../webhook/{id}`, the id taken from the entry's `self`), the secret as a
  top-level `secret`;
- Data Center 10.0 and later: `/rest/jira-webhook/1.0/webhooks` (Atlassian "Webhooks", Jira
  Data Center developer docs: "Starting from Jira 10.0.x, the URL to webhook resource has
  changed", quoted in getsentry/sentry #92806; sentry PR #90116 and n8n-io/n8n #12351 pick the
  path by the serverInfo major version), the secret in `configuration.SECRET` (a top-level
  `secret` is reported to be ignored silently, leaving deliveries unsigned), entries with a
  numeric `id` and no `self` (as clients registering DC 10 webhooks read them).

`/rest/api/3/webhook` is for Connect/OAuth apps only and expires after 30 days, so it is not used.
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit

from jira import JIRA

from connectors.backfill import BackfillItem, change_line, skipped_line
from connectors.base import PayloadInvalid, VendorUnavailable
from connectors.jira import webhook
from connectors.jira.client import json_object, make_client, send
from connectors.jira.config import JiraConfig
from connectors.jira.tickets import fields_to_read, ticket_from_issue
from connectors.retry import retry_reads
from tiering.models import Decision, Ticket
from tiering.policy import Policy

WEBHOOK_PATH = "/rest/webhooks/1.0/webhook"
#: Jira Data Center 10.0 and later (see the module docstring).
DC10_WEBHOOK_PATH = "/rest/jira-webhook/1.0/webhooks"
#: The four events tierdesk handles (connectors.jira.webhook.HANDLED_EVENTS minus backfill).
WEBHOOK_EVENTS = ("jira:issue_created", "jira:issue_updated", "comment_created", "comment_updated")
DEFAULT_WEBHOOK_NAME = "tierdesk"
#: Search page size: Jira caps maxResults (100 on Cloud for most field sets).
PAGE_SIZE = 100

_WEBHOOK_ID = re.compile(r"/rest/webhooks/1\.0/webhook/(\d+)/?$")


class AdminError(ValueError):
    """An admin command cannot run as asked; the message says what to change."""


# --------------------------------------------------------------------------- install


@dataclass(frozen=True, slots=True)
class WebhookApi:
    """Which admin webhook resource a site serves, from its serverInfo."""

    path: str
    #: Data Center 10 shape: `configuration.SECRET`, numeric `id`, no `self`.
    dc10: bool
    #: For the operator: "Cloud", "Data Center 9.12.0", ...
    site: str


LEGACY_API = WebhookApi(WEBHOOK_PATH, False, "Cloud or Data Center before 10")


def webhook_api_for(info: Mapping[str, Any]) -> WebhookApi:
    """The webhook API of a site whose serverInfo is `info` (pure)."""
    deployment = info.get("deploymentType")
    numbers = info.get("versionNumbers")
    version = str(info.get("version") or "")
    if deployment == "Cloud":
        return WebhookApi(WEBHOOK_PATH, False, "Cloud")
    if not (isinstance(numbers, list) and numbers and isinstance(numbers[0], int)):
        raise VendorUnavailable(
            "Jira GET /rest/api/2/serverInfo: no versionNumbers, so the webhook API cannot be"
            f" chosen (deploymentType {deployment!r}, version {version!r})"
        )
    site = f"Data Center {'.'.join(str(n) for n in numbers)}"
    if numbers[0] >= 10:
        return WebhookApi(DC10_WEBHOOK_PATH, True, site)
    return WebhookApi(WEBHOOK_PATH, False, site)


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
    webhook_id: str | None = None
    api: WebhookApi | None = None


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


def webhook_body(
    *,
    name: str,
    callback_url: str,
    jql: str | None,
    secret: str,
    api: WebhookApi = LEGACY_API,
) -> dict[str, Any]:
    """The admin webhook registration body for the site's webhook API."""
    body: dict[str, Any] = {
        "name": name,
        "url": check_callback_url(callback_url),
        "events": list(WEBHOOK_EVENTS),
    }
    if api.dc10:
        # DC 10: the secret only counts inside `configuration` (module docstring).
        body["active"] = True
        body["configuration"] = {"SECRET": secret, "EXCLUDE_BODY": "false"}
    else:
        body["excludeBody"] = False
        body["secret"] = secret
    if jql:
        body["filters"] = {"issue-related-events-section": jql}
    return body


def _webhook_id(entry: Mapping[str, Any], api: WebhookApi) -> str | None:
    if api.dc10:
        ident = entry.get("id")
        if isinstance(ident, int) and not isinstance(ident, bool):
            return str(ident)
        return ident if isinstance(ident, str) and ident.isdigit() else None
    url = entry.get("self")
    if isinstance(url, str):
        found = _WEBHOOK_ID.search(url)
        if found:
            return found.group(1)
    return None


# --------------------------------------------------------------------------- backfill


def check_jql(jql: str) -> str:
    """`jql` if it is not blank, else AdminError with an example."""
    if not jql.strip():
        raise AdminError('--jql: give a JQL query, e.g. "project = SUP AND resolution IS EMPTY"')
    return jql


def backfill_payload(issue: Mapping[str, Any], *, now_ms: int) -> dict[str, Any]:
    """The synthetic webhook body the worker evaluates like a full `jira:issue_updated`."""
    return {"webhookEvent": webhook.BACKFILL_EVENT, "timestamp": now_ms, "issue": dict(issue)}


# --------------------------------------------------------------------------- the admin class


class JiraAdmin:
    """Jira admin tasks over one configured client: the webhook's install, searches, backfill.

    Every request goes through `connectors.jira.client.send`, so errors arrive as the
    connectors.base tree. `policy` is needed only to search and backfill (the fields to read,
    the decisions of a dry run)."""

    def __init__(self, client: JIRA, config: JiraConfig, policy: Policy | None = None, *,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.client = client
        self.config = config
        self._policy = policy
        #: How search reads wait between retries (connectors.retry.retry_reads).
        self.sleep = sleep

    @classmethod
    def from_config(cls, config: JiraConfig, policy: Policy | None = None) -> JiraAdmin:
        """An admin over a new client for `config` (connectors.jira.client.make_client)."""
        return cls(make_client(config), config, policy)

    #: Issues read per backfill search request (`tierdesk backfill jira --page-size`).
    page_size: int = PAGE_SIZE

    @property
    def policy(self) -> Policy:
        if self._policy is None:
            raise AdminError("this Jira admin task needs the policy (JiraAdmin(policy=...))")
        return self._policy

    # ------------------------------------------------------------------ install

    def webhook_api(self) -> WebhookApi:
        """Read `GET /rest/api/2/serverInfo` (one request) and pick the site's webhook API."""
        path = "/rest/api/2/serverInfo"
        info = json_object(send(self.client, "GET", path), what=f"Jira GET {path}")
        return webhook_api_for(info)

    def find_webhook(self, name: str, api: WebhookApi = LEGACY_API) -> str | None:
        """The id of the admin webhook called `name`, or None (one GET)."""
        response = send(self.client, "GET", api.path)
        try:
            entries = response.json()
        except ValueError as exc:
            raise VendorUnavailable(f"Jira GET {api.path}: answer is not JSON") from exc
        if not isinstance(entries, list):
            raise VendorUnavailable(f"Jira GET {api.path}: expected a list of webhooks")
        for entry in entries:
            if isinstance(entry, Mapping) and entry.get("name") == name:
                ident = _webhook_id(entry, api)
                if ident is not None:
                    return ident
        return None

    def install_webhook(
        self,
        *,
        callback_url: str,
        jql: str | None = None,
        name: str = DEFAULT_WEBHOOK_NAME,
        dry_run: bool = False,
        secret: str | None = None,
        previous_secret: str | None = None,
        rotate: bool = False,
        api: WebhookApi | None = None,
    ) -> InstallResult:
        """Create the webhook `name`, or update it in place when it exists (idempotent by name).

        `secret` is the receiver's current secret (TIERDESK_JIRA_WEBHOOK_SECRET). A new webhook gets
        it (or a fresh one when it is None). An existing webhook keeps the secret the receiver
        holds: the PUT carries `secret` again, since Jira never shows a secret back. Sending a
        different secret to an existing webhook is a rotation and needs `rotate` and the receiver
        already accepting both (`previous_secret` set): otherwise deliveries signed with the new
        secret would get 401 until the receiver restarts, and Jira does not retry a 401.

        A real run costs 3 requests (serverInfo, GET list, then POST or PUT). A dry run sends
        nothing and shows the POST for the API given (the legacy one when `api` is None).
        """
        if dry_run:
            chosen = api or LEGACY_API
            shown = secret or new_secret()
            body = webhook_body(
                name=name, callback_url=callback_url, jql=jql, secret=shown, api=chosen
            )
            return InstallResult("would create or update", WebhookPlan("POST", chosen.path, body),
                                 shown)
        check_callback_url(callback_url)
        if rotate:
            if not secret or not previous_secret:
                raise AdminError(
                    "--rotate-secret: first make the receiver accept both secrets: set"
                    " TIERDESK_JIRA_WEBHOOK_SECRET_PREVIOUS to the secret Jira signs with now and"
                    " TIERDESK_JIRA_WEBHOOK_SECRET to the new one (for example"
                    f" {new_secret()}), restart tierdesk serve, then rerun this command with the"
                    " same settings (admin guide, \"Rotating a webhook secret\")"
                )
            if secret == previous_secret:
                raise AdminError(
                    "--rotate-secret: TIERDESK_JIRA_WEBHOOK_SECRET equals"
                    " TIERDESK_JIRA_WEBHOOK_SECRET_PREVIOUS; set a new secret first"
                )
        api = api or self.webhook_api()
        existing = self.find_webhook(name, api)
        if existing is not None and not secret:
            raise AdminError(
                f"Jira already has a webhook named {name!r} and tierdesk cannot read its secret"
                " back (Jira never returns it): set TIERDESK_JIRA_WEBHOOK_SECRET to the secret the"
                " receiver uses, so this rerun keeps it; or rotate it on purpose with"
                " --rotate-secret (admin guide, \"Rotating a webhook secret\")"
            )
        secret = secret or new_secret()
        body = webhook_body(name=name, callback_url=callback_url, jql=jql, secret=secret, api=api)
        if existing is None:
            plan = WebhookPlan("POST", api.path, body)
            response = send(self.client, "POST", api.path, body=body, write=True)
            action: Literal["created", "updated"] = "created"
        else:
            plan = WebhookPlan("PUT", f"{api.path}/{existing}", body, existing_id=existing)
            response = send(self.client, "PUT", plan.path, body=body, write=True)
            action = "updated"
        url: str | None = None
        ident: str | None = existing
        if response.content:
            try:
                data = response.json()
            except ValueError:
                data = None
            if isinstance(data, Mapping):
                if isinstance(data.get("self"), str):
                    url = data["self"]
                ident = _webhook_id(data, api) or ident
        if url is None and ident is not None:
            url = f"{self.client.server_url}{api.path}/{ident}"
        return InstallResult(action, plan, secret, webhook_url=url, webhook_id=ident, api=api)

    # ------------------------------------------------------------------ backfill

    def search_page(
        self,
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
        params: dict[str, str] = {
            "jql": jql, "fields": ",".join(fields), "maxResults": str(page_size),
        }
        if self.config.deployment == "cloud":
            path = "/rest/api/2/search/jql"
            if cursor is not None:
                params["nextPageToken"] = str(cursor)
        else:
            path = "/rest/api/2/search"
            params["startAt"] = str(cursor or 0)
        data = json_object(send(self.client, "GET", path, params=params), what=f"Jira GET {path}")
        raw = data.get("issues")
        if not isinstance(raw, list):
            raise VendorUnavailable(f"Jira GET {path}: answer has no issues list")
        issues = [i for i in raw if isinstance(i, Mapping)]
        if self.config.deployment == "cloud":
            token = data.get("nextPageToken")
            last = data.get("isLast") is True or not isinstance(token, str) or not token
            return issues, None if last else token
        given = data.get("startAt")
        start = given if isinstance(given, int) else int(cursor or 0)
        total = data.get("total")
        following = start + len(issues)
        done = not issues or (isinstance(total, int) and following >= total)
        return issues, None if done else following

    def count_tickets(self, query: str) -> int | None:
        """How many issues the JQL `query` matches (for the progress bar); None when Jira cannot
        say cheaply. (The backfill shape both connectors share: connectors.backfill.Backfill.)"""
        if self.config.deployment == "cloud":
            path = "/rest/api/2/search/approximate-count"
            data = json_object(send(self.client, "POST", path, body={"jql": query}), what=path)
            count = data.get("count")
        else:
            path = "/rest/api/2/search"
            params = {"jql": query, "maxResults": "0", "fields": "key"}
            data = json_object(send(self.client, "GET", path, params=params), what=path)
            count = data.get("total")
        return count if isinstance(count, int) and not isinstance(count, bool) else None

    def search_tickets(
        self, query: str, *, page_size: int | None = None
    ) -> Iterator[Mapping[str, Any]]:
        """Every issue the JQL `query` matches, with only the fields the policy uses, page by
        page (`page_size` issues a request, default `self.page_size`)."""
        check_jql(query)
        fields = fields_to_read(self.policy, self.config)
        cursor: str | int | None = None
        while True:
            # A page is a read, safe to repeat: a 429 or an outage on page 40 is waited out
            # (Retry-After honoured) instead of ending the backfill there.
            issues, cursor = retry_reads(
                self.search_page, jql=query, fields=fields, cursor=cursor,
                page_size=page_size or self.page_size, sleep=self.sleep,
            )
            yield from issues
            if cursor is None:
                return

    def backfill_items(
        self,
        *,
        query: str,
        decide: Callable[[Ticket], Decision] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> Iterator[BackfillItem]:
        """Every issue the JQL `query` matches as a backfill item to enqueue; with `decide`, a dry
        run also maps each issue to a Ticket and decides it (nothing is written anywhere)."""
        for issue in self.search_tickets(query):
            payload = backfill_payload(issue, now_ms=int(clock() * 1000))
            key = issue.get("key") if isinstance(issue.get("key"), str) else "?"
            try:
                envelope = webhook.classify(payload, {})
                if decide is None:
                    yield BackfillItem(str(key), envelope, payload)
                    continue
                ticket = ticket_from_issue(issue, policy=self.policy, config=self.config)
            except PayloadInvalid as exc:
                yield BackfillItem(str(key), None, payload, error=str(exc))
                continue
            yield BackfillItem(str(key), envelope, payload, decision=decide(ticket), ticket=ticket)

    def describe(self, item: BackfillItem) -> str:
        """One line for a dry run (connectors/backfill.py's format, shared with Zendesk)."""
        if item.error is not None:
            return skipped_line(item.key, item.error)
        decision = item.decision
        if decision is None:
            return f"{item.key}: queued"
        who = None
        if decision.assign:
            target = self.policy.targets.get(decision.assign)
            jira = target.jira if target is not None else None
            component = f"component {jira.component}" if jira and jira.component else None
            who = ", ".join(
                x for x in ((jira.assignee if jira else None), component) if x
            ) or None
        return change_line(item.key, decision, labels="labels", assignee=who)
