"""The zenpy client tierdesk uses, the requests it makes, and its one exception translation.

Why the client is built this way (../shared/vendor/README.md, Zendesk section; zenpy 2.0.57
source, `zenpy/__init__.py` and `zenpy/lib/api.py`):

- zenpy's default session mounts an HTTPAdapter that retries 503s and read timeouts for every
  method, PUT included, which can post one internal note twice. tierdesk passes its own
  `requests.Session` (requests' default adapter never retries), so each call is sent once.
- zenpy sleeps on 429 for as long as `Retry-After` says, inside the call, and forever unless
  `ratelimit_budget` is set. tierdesk's session carries a response hook that raises
  `HTTPFailure` for every non-2xx answer before zenpy looks at it: zenpy never sleeps, and the
  worker gets `RateLimited(retry_after)` to schedule the retry itself.
- zenpy's object caches never expire: `disable_cache=True`.
- The base URL comes from `ZendeskConfig.base_url` (`TIERDESK_ZENDESK_URL`): its scheme, host
  (split at the first dot into zenpy's subdomain and domain) and path prefix are set on zenpy's
  API objects, so no process-wide `ZENPY_FORCE_*` variable is needed.

Errors, translated once here (always `raise ... from exc`):

    ConnectorError
    ├── VendorUnavailable      5xx, 409 outside apply, timeouts, connection errors, odd answers
    │   │                      (ambiguous=True when a write may have landed)
    │   └── RateLimited        429, or 503 with Retry-After: retry after `retry_after` seconds
    └── VendorRejected         other 4xx, with Zendesk's error text (`errors`: its `details`
        │                      as field -> text; refusals.py names the policy key)
        └── ConfigurationRejected  403: the bot user's role lacks a permission
            └── CredentialsRejected  401: TIERDESK_ZENDESK_EMAIL + _API_TOKEN not accepted
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

import requests
from zenpy import Zenpy
from zenpy.lib.api import BaseApi
from zenpy.lib.exception import ZenpyException

from connectors.base import (
    Call,
    ConfigurationRejected,
    ConnectorError,
    CredentialsRejected,
    RateLimited,
    VendorRejected,
    VendorUnavailable,
)
from connectors.calls import Recorder
from connectors.http import retry_after_seconds
from connectors.zendesk.config import DEFAULT_RETRY_AFTER, ZendeskConfig

#: Server errors after which a write may have been applied (the request reached Zendesk's app);
#: 503 is Zendesk's "unavailable / maintenance" answer, sent before the request is processed.
_MAYBE_APPLIED = frozenset({500, 502, 504})


class HTTPFailure(Exception):
    """A non-2xx answer, raised from the session's response hook before zenpy handles it."""

    def __init__(self, response: requests.Response) -> None:
        super().__init__(f"HTTP {response.status_code}")
        self.response = response


def _raise_for_failure(response: requests.Response, *args: Any, **kwargs: Any) -> None:
    if not 200 <= response.status_code < 300:
        raise HTTPFailure(response)


def split_base_url(base_url: str) -> tuple[str, str, str, str]:
    """(scheme, subdomain, domain, path prefix) of a base URL, as zenpy builds its URLs.

    zenpy joins `subdomain.domain`, so the host must contain a dot: `localhost` cannot be
    expressed (use 127.0.0.1)."""
    parts = urlsplit(base_url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(
            f"TIERDESK_ZENDESK_URL: expected an http:// or https:// URL, got {base_url!r}"
        )
    if "." not in parts.netloc:
        raise ValueError(
            f"TIERDESK_ZENDESK_URL: the host of {base_url!r} has no dot, which zenpy cannot"
            " address; use an IP address such as 127.0.0.1 or a full host name"
        )
    subdomain, domain = parts.netloc.split(".", 1)
    return parts.scheme, subdomain, domain, parts.path.strip("/")


def make_zenpy(
    config: ZendeskConfig,
    *,
    session: requests.Session | None = None,
    recorder: Recorder | None = None,
) -> tuple[Zenpy, Recorder]:
    """A zenpy client on tierdesk's own session (no retrying adapter, hook-raised failures).

    Pass the `session` and `recorder` of an existing client to make another client for another
    thread: zenpy keeps per-call state on its API objects (`_dirty_object`), so one Zenpy must
    not be used by two threads at once."""
    if not config.email or not config.api_token:
        raise ValueError(
            "Zendesk needs TIERDESK_ZENDESK_EMAIL and TIERDESK_ZENDESK_API_TOKEN (an API token of"
            " the bot user)"
        )
    scheme, subdomain, domain, prefix = split_base_url(config.base_url)
    session = session if session is not None else requests.Session()
    recorder = recorder if recorder is not None else Recorder()
    # Order matters: record first, then raise, so failed calls are counted too.
    session.hooks["response"] = [recorder.hook, _raise_for_failure]
    client = Zenpy(
        subdomain=subdomain,
        domain=domain,
        email=config.email,
        token=config.api_token,
        session=session,
        timeout=config.timeout,
        disable_cache=True,
    )
    for api in vars(client).values():
        if isinstance(api, BaseApi):
            api.protocol = scheme
            if prefix:
                api.api_prefix = f"{prefix}/api/v2"
    return client, recorder


def zendesk_error_text(response: requests.Response) -> str:
    """Zendesk's own words for a failed request (`error`, `description`, `details`), short."""
    try:
        data = response.json()
    except ValueError:
        return (response.text or response.reason or "").strip()[:500]
    if not isinstance(data, Mapping):
        return str(data)[:500]
    parts: list[str] = []
    error = data.get("error")
    if isinstance(error, Mapping):
        parts.extend(str(error[k]) for k in ("title", "message") if error.get(k))
    elif error:
        parts.append(str(error))
    if data.get("description"):
        parts.append(str(data["description"]))
    details = data.get("details")
    if isinstance(details, Mapping):
        for key, items in details.items():
            for item in items if isinstance(items, list) else [items]:
                text = item.get("description") if isinstance(item, Mapping) else item
                parts.append(f"{key}: {text}")
    errors = data.get("errors")
    if isinstance(errors, list):
        for item in errors:
            if isinstance(item, Mapping):
                parts.append(str(item.get("detail") or item.get("title") or item))
    return ": ".join(parts)[:500] or str(data)[:500]


#: What to fix when Zendesk answers 401 {"error": "Couldn't authenticate you"} (API reference,
#: "Security and authentication": API token auth is `{email}/token:{api_token}`).
CREDENTIALS_FIX = (
    "TIERDESK_ZENDESK_EMAIL / TIERDESK_ZENDESK_API_TOKEN: Zendesk does not accept these"
    " credentials (API token access must be enabled, and the token belong to that agent's"
    " account); set a working token (`tierdesk doctor` checks it)"
)


def zendesk_errors(response: requests.Response) -> dict[str, str]:
    """Zendesk's `details` of a 422 as field -> joined descriptions, or {}."""
    try:
        data = response.json()
    except ValueError:
        return {}
    details = data.get("details") if isinstance(data, Mapping) else None
    if not isinstance(details, Mapping):
        return {}
    out: dict[str, str] = {}
    for key, items in details.items():
        texts = [
            str(item.get("description") if isinstance(item, Mapping) else item)
            for item in (items if isinstance(items, list) else [items])
        ]
        out[str(key)] = "; ".join(texts)
    return out


def translate(exc: Exception, *, what: str, write: bool) -> ConnectorError:
    """The one mapping from requests/zenpy failures to the connectors.base error tree."""
    if isinstance(exc, HTTPFailure):
        response = exc.response
        status = response.status_code
        text = zendesk_error_text(response)
        message = f"Zendesk answered {status} to {what}: {text}".rstrip(": ")
        retry_after = retry_after_seconds(response.headers.get("Retry-After"))
        if status == 429:
            return RateLimited(message, retry_after=retry_after or DEFAULT_RETRY_AFTER)
        if status == 503 and retry_after is not None:
            return RateLimited(message, retry_after=retry_after, status=503)
        if status >= 500 or status == 409:
            return VendorUnavailable(
                message,
                status=status,
                retry_after=retry_after,
                ambiguous=write and status in _MAYBE_APPLIED,
            )
        if status == 401:
            return CredentialsRejected(message, fix=CREDENTIALS_FIX)
        if status == 403:
            return ConfigurationRejected(
                message,
                reason="permission",
                fix=(
                    f"TIERDESK_ZENDESK_EMAIL: Zendesk does not let tierdesk's user {what}:"
                    " give it an agent role that may (admin for webhooks and triggers)"
                ),
                status=status,
            )
        return VendorRejected(message, status=status, errors=zendesk_errors(response))
    if isinstance(exc, requests.ConnectTimeout):
        # Not connected: nothing was sent.
        return VendorUnavailable(f"Zendesk connect timeout on {what}: {exc}")
    if isinstance(exc, requests.Timeout):
        return VendorUnavailable(f"Zendesk read timeout on {what}: {exc}", ambiguous=write)
    if isinstance(exc, requests.ConnectionError):
        # A reset after sending cannot be told apart from one before: assume it may have landed.
        return VendorUnavailable(f"connection to Zendesk failed on {what}: {exc}", ambiguous=write)
    if isinstance(exc, requests.RequestException | ZenpyException | ValueError | KeyError):
        return VendorUnavailable(
            f"unexpected answer from Zendesk to {what}: {exc}", ambiguous=write
        )
    return ConnectorError(f"{what} failed: {exc}")


@contextmanager
def calling(
    recorder: Recorder, what: str, *, method: str = "GET", path: str = "", write: bool = False
) -> Iterator[None]:
    """Run one zenpy call: label the requests it sends, translate whatever it raises.

    A request that got no answer (timeout, connection error) is recorded with status None."""
    recorder.purpose = what
    try:
        yield
    except ConnectorError:
        raise
    except Exception as exc:
        if isinstance(exc, requests.RequestException) and not isinstance(exc, HTTPFailure):
            recorder.calls.append(Call(method=method, path=path, status=None, purpose=what))
        raise translate(exc, what=what, write=write) from exc


def response_json(recorder: Recorder, *, what: str) -> Mapping[str, Any]:
    """The JSON object of the last response (zenpy's objects drop sideloads without a cache)."""
    response = recorder.last
    if response is None:
        raise VendorUnavailable(f"no answer recorded for {what}")
    try:
        data = response.json()
    except ValueError as exc:
        raise VendorUnavailable(f"Zendesk answered {what} with non-JSON text") from exc
    if not isinstance(data, Mapping):
        raise VendorUnavailable(
            f"Zendesk answered {what} with {type(data).__name__}, not an object"
        )
    return data
