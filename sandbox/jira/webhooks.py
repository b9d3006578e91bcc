"""The Jira sandbox's admin webhooks (both APIs) and the events each change sends to them."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from sandbox.jira.records import Comment, Issue, Webhook, _bad_json, _error, _ms
from sandbox.jira.search import JiraSearch, parse_jql_safe
from sandbox.query import QueryError, evaluate, parse_jql
from sandbox.wire import Request, Response, json_body

ISSUE_EVENTS = ("jira:issue_created", "jira:issue_updated", "jira:issue_deleted")
COMMENT_EVENTS = ("comment_created", "comment_updated", "comment_deleted")
FILTER_KEY = "issue-related-events-section"


class JiraWebhooks(JiraSearch):
    """Admin webhook CRUD, and webhook events delivered to each matching webhook."""

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

    def _issue_updated(
        self, issue: Issue, actor: str, items: list[dict[str, Any]], comment: Comment | None
    ) -> None:
        now = self.now()
        if comment is not None and not items:
            kind = "issue_commented"
        elif items and all(i["fieldId"] == "assignee" for i in items) and comment is None:
            kind = "issue_assigned"
        elif items and all(i["fieldId"] == "status" for i in items) and comment is None:
            kind = "issue_generic"  # a workflow transition (sandbox/jira/issues.py, transition)
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
