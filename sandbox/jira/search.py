"""The Jira sandbox's search: JQL over the issues, search/jql (Cloud), search (Data Center)."""

from __future__ import annotations

import base64
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sandbox.jira.directory import JiraDirectory
from sandbox.jira.records import Issue, _bad_json, _error, _field_text, _int
from sandbox.query import QueryError, evaluate, parse_jql
from sandbox.wire import Request, Response, json_body


def parse_jql_safe(jql: str) -> Any:
    try:
        return parse_jql(jql)
    except QueryError as exc:
        raise _error(400, str(exc)) from exc


class JiraSearch(JiraDirectory):
    """JQL search and approximate count, each in its deployment's shape."""

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
