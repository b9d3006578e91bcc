"""The call recorder both connectors share: the requests a decision cost, per worker thread."""

from __future__ import annotations

import threading
from typing import Any
from urllib.parse import urlsplit

import requests

from connectors.base import Call


class Recorder:
    """Counts every request a decision costs, with the purpose the caller declared.

    Zendesk installs `hook` on its session (every response is recorded); Jira appends to
    `calls` after each request it sends. The worker runs several threads on one connector, so
    what is recorded is per thread (the response hook runs in the thread that sent the
    request)."""

    def __init__(self) -> None:
        self._local = threading.local()

    @property
    def calls(self) -> list[Call]:
        calls: list[Call] | None = getattr(self._local, "calls", None)
        if calls is None:
            calls = self._local.calls = []
        return calls

    @property
    def purpose(self) -> str:
        return str(getattr(self._local, "purpose", ""))

    @purpose.setter
    def purpose(self, value: str) -> None:
        self._local.purpose = value

    @property
    def last(self) -> requests.Response | None:
        last: requests.Response | None = getattr(self._local, "last", None)
        return last

    def hook(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        request = response.request
        self.calls.append(
            Call(
                method=str(request.method),
                path=urlsplit(str(request.url)).path,
                status=response.status_code,
                purpose=self.purpose,
            )
        )
        self._local.last = response

    def take(self) -> tuple[Call, ...]:
        """The calls this thread recorded since its last `take`, and forget them."""
        out = tuple(self.calls)
        self.calls.clear()
        return out
