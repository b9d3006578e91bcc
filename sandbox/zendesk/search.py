"""The Zendesk sandbox's search: the query language over tickets, search, export and count."""

from __future__ import annotations

import base64
import re
from collections.abc import Callable

from sandbox.query import QueryError, parse_zendesk_query, zendesk_match
from sandbox.wire import Request, Response
from sandbox.zendesk.directory import ZendeskDirectory
from sandbox.zendesk.records import Ticket, _error


def _int(value: str | None, default: int, *, minimum: int) -> int:
    if value is None or value == "":
        return default
    try:
        number = int(value)
    except ValueError as exc:
        raise _error(400, "InvalidParameter", f"expected a whole number, got {value!r}") from exc
    if number < minimum:
        raise _error(400, "InvalidParameter", f"expected at least {minimum}, got {number}")
    return number


class ZendeskSearch(ZendeskDirectory):
    """Ticket search (page/per_page, the 1,000 cap), search/export (cursor) and search/count."""

    def _found(self, query: str, *, filter_type: str | None = None) -> list[Ticket]:
        try:
            terms = parse_zendesk_query(query)
        except QueryError as exc:
            raise _error(400, "InvalidSearch", str(exc)) from exc
        types = {t.value for t in terms if t.key == "type"} | (
            {filter_type} if filter_type else set()
        )
        if types - {"ticket"}:
            raise _error(400, "InvalidSearch", "the sandbox searches tickets only (type:ticket)")
        now = self.now()
        try:
            return [
                t for t in self.tickets.values() if zendesk_match(terms, self._values(t), now=now)
            ]
        except QueryError as exc:
            raise _error(400, "InvalidSearch", str(exc)) from exc

    def search_count(self, request: Request) -> Response:
        """GET /api/v2/search/count?query=: {"count": n}."""
        return Response(200, {"count": len(self._found(request.arg("query") or ""))})

    def search_export(self, request: Request) -> Response:
        """GET /api/v2/search/export: cursor pages (page[size] up to 1000, page[after]), no cap."""
        kind = request.arg("filter[type]")
        if not kind:
            raise _error(
                400, "InvalidSearch", "filter[type] is required (e.g. filter[type]=ticket)"
            )
        found = sorted(
            self._found(request.arg("query") or "", filter_type=kind), key=lambda t: t.id
        )
        size = min(_int(request.arg("page[size]"), 100, minimum=1), 1000)
        after = request.arg("page[after]")
        start = 0
        if after:
            try:
                start = int(base64.urlsafe_b64decode(after.encode()).decode())
            except ValueError as exc:
                raise _error(
                    400, "InvalidCursor", "page[after] is not a cursor this search returned"
                ) from exc
        chunk = found[start : start + size]
        more = start + size < len(found)
        cursor = base64.urlsafe_b64encode(str(start + size).encode()).decode() if more else None
        return Response(
            200,
            {
                "results": [{**self.ticket_json(t), "result_type": "ticket"} for t in chunk],
                "facets": None,
                "meta": {"has_more": more, "after_cursor": cursor, "before_cursor": None},
                "links": {
                    "next": None
                    if not more
                    else f"{request.base_url}/api/v2/search/export.json?page[after]={cursor}",
                    "prev": None,
                },
            },
        )

    def search(self, request: Request) -> Response:
        query = request.arg("query") or ""
        found = self._found(query)
        page = _int(request.arg("page"), 1, minimum=1)
        size = min(_int(request.arg("per_page"), 100, minimum=1), 100)
        if page * size > 1000:
            raise _error(
                422,
                "invalid",
                "Search results are limited to 1000; narrow the query"
                " (for example with updated>DATE) or use the export endpoint.",
            )
        sort_by = request.arg("sort_by") or "created_at"
        if sort_by in ("updated_at", "created_at", "status", "priority", "ticket_type"):
            attr = {"ticket_type": "type"}.get(sort_by, sort_by)
            found.sort(
                key=lambda t: (str(getattr(t, attr) or ""), t.id),
                reverse=request.arg("sort_order", "desc") == "desc",
            )
        chunk = found[(page - 1) * size : page * size]
        base = f"{request.base_url}/api/v2/search.json"

        def link(p: int) -> str:
            from urllib.parse import urlencode

            params = {"query": query, "page": p, "per_page": size}
            return f"{base}?{urlencode(params)}"

        return Response(
            200,
            {
                "results": [{**self.ticket_json(t), "result_type": "ticket"} for t in chunk],
                "facets": None,
                "count": len(found),
                "next_page": link(page + 1) if page * size < len(found) else None,
                "previous_page": link(page - 1) if page > 1 else None,
            },
        )

    def _values(self, t: Ticket) -> Callable[[str], list[str] | None]:
        def user(uid: int | None) -> list[str]:
            if uid is None or uid not in self.users:
                return []
            u = self.users[uid]
            return [str(u.id), u.email, u.name]

        def values(name: str) -> list[str] | None:
            org = self.organizations.get(t.organization_id) if t.organization_id else None
            table: dict[str, list[str]] = {
                "status": [t.status],
                "priority": [t.priority] if t.priority else [],
                "ticket_type": [t.type] if t.type else [],
                "tags": list(t.tags),
                "tag": list(t.tags),
                "group": [str(t.group_id), self.groups[t.group_id].name]
                if t.group_id in self.groups
                else [],
                "assignee": user(t.assignee_id),
                "requester": user(t.requester_id),
                "organization": [str(org.id), org.name] if org else [],
                "created": [t.created_at.isoformat()],
                "updated": [t.updated_at.isoformat()],
                "subject": [t.subject],
                "description": [t.description],
            }
            if name in table:
                return table[name]
            m = re.fullmatch(r"custom_field_(\d+)", name)
            if m and int(m.group(1)) in self.fields:
                v = t.custom.get(int(m.group(1)))
                return [] if v is None else [str(x) for x in (v if isinstance(v, list) else [v])]
            return None

        return values
