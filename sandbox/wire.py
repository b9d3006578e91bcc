"""The request and response values the sandbox's HTTP layer hands to vendor handlers and back."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

JSON = Any


@dataclass
class Request:
    """One parsed HTTP request. `actor` is the vendor user the credentials map to."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: Mapping[str, str]
    body: bytes
    base_url: str
    actor: str | None = None
    params: dict[str, str] = field(default_factory=dict)
    #: Made through the control API by a scripted agent (JSON conveniences allowed).
    agent: bool = False

    def arg(self, name: str, default: str | None = None) -> str | None:
        """The last value of query parameter `name`."""
        values = self.query.get(name)
        return values[-1] if values else default

    def args(self, name: str) -> list[str]:
        """All values of a repeated or comma-separated query parameter."""
        out: list[str] = []
        for value in self.query.get(name, []):
            out.extend(v.strip() for v in value.split(",") if v.strip())
        return out


@dataclass
class Response:
    """What a handler answers; `body` None means no content."""

    status: int
    body: JSON = None
    headers: dict[str, str] = field(default_factory=dict)
    #: The request changed vendor state (faults like reset-after-write apply only to these).
    wrote: bool = False


class ApiError(Exception):
    """Raised by a handler to answer an error in the vendor's own error shape."""

    def __init__(self, status: int, body: JSON, headers: dict[str, str] | None = None) -> None:
        super().__init__(f"{status}: {body}")
        self.status = status
        self.body = body
        self.headers = headers or {}


Handler = Callable[[Request], Response]


@dataclass(frozen=True)
class Route:
    """A method and a path pattern with named groups, and its handler."""

    method: str
    pattern: re.Pattern[str]
    handler: Handler
    #: A write: counted as such in the figures, and subject to the write-only faults.
    write: bool = False
    #: Needs an administrator (Jira admin webhooks; Zendesk webhooks and triggers): else 403.
    admin: bool = False


def route(
    method: str, path: str, handler: Handler, *, write: bool = False, admin: bool = False
) -> Route:
    """Build a route; `{name}` in `path` matches one path segment (an optional `.json` follows)."""
    regex = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/.]+)", path)
    return Route(method, re.compile(f"^{regex}$"), handler, write, admin)


def parse_query(raw: str) -> dict[str, list[str]]:
    """Query string to lists of values (blank values kept)."""
    return parse_qs(raw, keep_blank_values=True)


def json_body(request: Request, error: Callable[[str], ApiError]) -> dict[str, Any]:
    """The request body as a JSON object, or the vendor's 400 built by `error(message)`."""
    if not request.body:
        raise error("the request has no body; send a JSON object")
    try:
        data = json.loads(request.body)
    except ValueError as exc:
        raise error(f"the body is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise error(f"the body must be a JSON object, got {type(data).__name__}")
    return data
