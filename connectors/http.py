"""HTTP details both vendor connectors share: header look-up, Retry-After, and the transport
that asks the vendor's limit.

`LimitAdapter` sends every request of a connector's session through the vendor's `VendorLimit`
(connectors/vendor_limit.py, the one owner of the vendor's rate limit in this process). With
`concurrency=1` (the default) no request of this process can reach the vendor after a 429 or
503 and before its Retry-After has passed: the refusal is read, and the limit closed, before the
next request may start. With more requests in flight, one already on the wire when a sibling's
429 comes back lands inside the window.
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import requests
from requests.adapters import HTTPAdapter

if TYPE_CHECKING:  # connectors.vendor_limit imports connectors.base, which imports this module
    from connectors.vendor_limit import VendorLimit


def header(headers: Mapping[str, str], name: str) -> str | None:
    """The value of header `name`, looked up case-insensitively (HTTP header names are)."""
    wanted = name.lower()
    for key, value in headers.items():
        if key.lower() == wanted:
            return value
    return None


def retry_after_seconds(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait per a Retry-After header: delta-seconds or an HTTP date (RFC 9110
    10.2.3); None when there is no usable header."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    current = time.time() if now is None else now
    return max(0.0, when.timestamp() - current)


class LimitAdapter(HTTPAdapter):
    """A `requests` transport that asks the vendor's `VendorLimit` (connectors/vendor_limit.py)
    before each request and tells it each answer: no request starts while the limit is closed
    (`VendorPaused`, a `RateLimited`, is raised instead, nothing is sent), at most
    `limit.concurrency` are in flight, and a refusal closes the limit (for this process at once,
    for the others through the inbox) before the next request starts.

    Mount it on a connector's session (`webhooks.service` does, for `http://` and `https://`);
    it never retries (`max_retries=0`, as the connectors require)."""

    def __init__(self, limit: VendorLimit) -> None:
        super().__init__(max_retries=0)
        self.limit = limit

    def send(
        self, request: requests.PreparedRequest, *args: Any, **kwargs: Any
    ) -> requests.Response:
        with self.limit.slot():
            self.limit.check()
            response = super().send(request, *args, **kwargs)
            self.limit.note_answer(
                response.status_code,
                retry_after_seconds(header(response.headers, "Retry-After")),
            )
            return response


def session_on(limit: VendorLimit) -> requests.Session:
    """A session whose every request asks `limit`."""
    session = requests.Session()
    adapter = LimitAdapter(limit)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session
