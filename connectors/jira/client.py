"""The `jira` library client, configured for tierdesk, and the one place its errors are translated.

    ConnectorError                 (connectors.base)
    ├── VendorUnavailable          5xx, timeouts, connection failures; `ambiguous` when a write
    │   │                          may have landed (read timeout, reset after sending, 5xx on PUT)
    │   └── RateLimited            429, or 503 with Retry-After: wait `retry_after` s, never sooner
    └── VendorRejected             other 4xx, with Jira's errorMessages / errors text (and
        │                          `errors` as field -> text; refusals.py names the policy key)
        └── ConfigurationRejected  403: a permission tierdesk's account lacks
            └── CredentialsRejected  401: TIERDESK_JIRA_EMAIL + _API_TOKEN / _PAT not accepted

Why the library is configured as it is (../shared/vendor/README.md, jira 3.10 source):

- `get_server_info=False`: otherwise `JIRA()` itself sends `GET /rest/api/2/serverInfo`.
- `max_retries=0`: `ResilientSession.request` retries 429/503 and connection errors for every
  method, POST and PUT included, sleeping at most 60 s (less than a long `Retry-After`), which
  can post a comment twice. With 0 it makes exactly one attempt; tierdesk's worker retries,
  honouring `Retry-After` and re-reading before re-writing after an ambiguous failure.
- `timeout=config.timeout`: the library's default is no timeout at all.
- Requests go through the library's own session (`JIRA._session`), so its auth, headers and
  error parsing (`raise_on_error` -> JIRAError) apply, but never through `issue.update()` (it
  re-reads the issue: 2 requests) or `assign_issue()` (searches users first: 2 requests).
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import requests
from jira import JIRA, JIRAError

from connectors.base import (
    ConfigurationRejected,
    ConnectorError,
    CredentialsRejected,
    RateLimited,
    VendorRejected,
    VendorUnavailable,
)
from connectors.http import retry_after_seconds
from connectors.jira.config import DEFAULT_RETRY_AFTER, JiraConfig


def rate_limit_reset_seconds(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds until `X-RateLimit-Reset`: Atlassian documents an ISO 8601 time (e.g.
    `2021-05-13T03:51Z`); an epoch-seconds value, as some clients report, is read too. None
    when absent or unreadable."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    current = time.time() if now is None else now
    try:
        if text.isdigit():
            return max(0.0, float(text) - current)
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except (ValueError, OverflowError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - current)


def make_client(config: JiraConfig, *, session: requests.Session | None = None) -> JIRA:
    """A JIRA client that makes no request on construction and never retries on its own.

    `session`, when given, lends its transport (mounted adapters, proxies, TLS settings) to the
    library's session; auth and headers stay the library's.
    """
    auth: dict[str, Any] = {}
    if config.pat:
        auth["token_auth"] = config.pat
    elif config.email and config.api_token:
        auth["basic_auth"] = (config.email, config.api_token)
    client = JIRA(
        server=config.base_url.rstrip("/"),
        options={"rest_api_version": "2", "check_update": False},
        get_server_info=False,
        max_retries=0,
        timeout=config.timeout,
        **auth,
    )
    if session is not None:
        for prefix, adapter in session.adapters.items():
            client._session.mount(prefix, adapter)
        client._session.proxies.update(session.proxies)
        client._session.verify = session.verify
        client._session.cert = session.cert
    return client


def jira_error_text(response: requests.Response | None, fallback: str = "") -> str:
    """Jira's own explanation of a failed request: `errorMessages` and `errors` joined."""
    if response is None:
        return fallback
    try:
        data = response.json()
    except ValueError:
        text = (response.text or "").strip()
        return text[:500] or fallback
    parts: list[str] = []
    if isinstance(data, Mapping):
        messages = data.get("errorMessages")
        if isinstance(messages, list):
            parts.extend(str(m) for m in messages if m)
        errors = data.get("errors")
        if isinstance(errors, Mapping):
            parts.extend(f"{k}: {v}" for k, v in errors.items())
    return "; ".join(parts) or json.dumps(data)[:500] or fallback


#: What to fix when Jira answers 401 (Atlassian "Basic auth for REST APIs": a wrong email or API
#: token, or a revoked one, is a 401; a Data Center personal access token likewise).
CREDENTIALS_FIX = (
    "TIERDESK_JIRA_EMAIL / TIERDESK_JIRA_API_TOKEN (Cloud) or TIERDESK_JIRA_PAT (Data Center):"
    " Jira does not accept these credentials; create a new token for tierdesk's account and set"
    " it (`tierdesk doctor` checks it)"
)


def jira_errors(response: requests.Response | None) -> dict[str, str]:
    """Jira's per-field `errors` object of a failed request (field -> text), or {}."""
    if response is None:
        return {}
    try:
        data = response.json()
    except ValueError:
        return {}
    errors = data.get("errors") if isinstance(data, Mapping) else None
    if not isinstance(errors, Mapping):
        return {}
    return {str(k): str(v) for k, v in errors.items()}


def translate(exc: Exception, *, method: str, path: str, write: bool) -> ConnectorError:
    """The connectors.base error for a failed `method path` (raise it `from exc`)."""
    where = f"Jira {method} {path}"
    if isinstance(exc, JIRAError):
        response: requests.Response | None = exc.response
        status = exc.status_code if isinstance(exc.status_code, int) else None
        detail = jira_error_text(response, str(exc.text or ""))
        header = response.headers.get("Retry-After") if response is not None else None
        wait = retry_after_seconds(header)
        if wait is None and status == 429 and response is not None:
            # No Retry-After: X-RateLimit-Reset says when the limit resets (may be absent too).
            wait = rate_limit_reset_seconds(response.headers.get("X-RateLimit-Reset"))
        if status == 429:
            return RateLimited(
                f"{where}: rate limited (429); retry after {wait or DEFAULT_RETRY_AFTER:g} s",
                retry_after=wait if wait is not None else DEFAULT_RETRY_AFTER,
            )
        if status == 503 and wait is not None:
            # Atlassian sometimes rate-limits with 503 + Retry-After: the request was refused.
            return RateLimited(
                f"{where}: unavailable (503); retry after {wait:g} s", retry_after=wait, status=503
            )
        text = f"{where}: rejected ({status}): {detail}"
        if status == 401:
            return CredentialsRejected(text, fix=CREDENTIALS_FIX)
        if status == 403:
            return ConfigurationRejected(
                text,
                reason="permission",
                fix=(
                    "TIERDESK_JIRA_EMAIL: tierdesk's Jira account lacks a permission for"
                    f" {method} {path}: grant what `tierdesk doctor` lists as missing"
                ),
                status=status,
                errors=jira_errors(response),
            )
        if status is not None and 400 <= status < 500:
            return VendorRejected(text, status=status, errors=jira_errors(response))
        # Other 5xx (and anything odd): a gateway error may hide a write that did land.
        return VendorUnavailable(
            f"{where}: server error ({status}): {detail}",
            status=status,
            retry_after=wait,
            ambiguous=write,
        )
    if isinstance(exc, requests.ConnectTimeout):
        return VendorUnavailable(f"{where}: connect timeout: {exc}")
    if isinstance(exc, requests.Timeout):
        # Read timeout: the request was sent; Jira may have applied it.
        return VendorUnavailable(f"{where}: read timeout: {exc}", ambiguous=write)
    if isinstance(exc, requests.ConnectionError):
        # A reset can come after Jira received (and applied) the request.
        return VendorUnavailable(f"{where}: connection failed: {exc}", ambiguous=write)
    if isinstance(exc, requests.RequestException):
        return VendorUnavailable(f"{where}: request failed: {exc}", ambiguous=write)
    return ConnectorError(f"{where}: {type(exc).__name__}: {exc}")


def send(
    client: JIRA,
    method: str,
    path: str,
    *,
    params: Mapping[str, str] | None = None,
    body: Any = None,
    write: bool = False,
) -> requests.Response:
    """One request through the library's session, errors translated; `path` starts with /rest/."""
    url = client.server_url + path
    kwargs: dict[str, Any] = {}
    if params:
        kwargs["params"] = dict(params)
    if body is not None:
        kwargs["data"] = json.dumps(body)
        kwargs["headers"] = {"Content-Type": "application/json"}
    try:
        response: requests.Response = client._session.request(method, url, **kwargs)
    except (JIRAError, requests.RequestException) as exc:
        raise translate(exc, method=method, path=path, write=write) from exc
    return response


def json_object(response: requests.Response, *, what: str) -> Mapping[str, Any]:
    """The JSON object in a 2xx response, or VendorUnavailable if Jira answered something else."""
    try:
        data = response.json()
    except ValueError as exc:
        raise VendorUnavailable(
            f"{what}: Jira answered {response.status_code} without JSON"
            " (a proxy or login page?)", status=response.status_code
        ) from exc
    if not isinstance(data, Mapping):
        raise VendorUnavailable(
            f"{what}: expected a JSON object, got {type(data).__name__}",
            status=response.status_code,
        )
    return data
