"""The vendor registry, the envelope types, what every connector offers and the one error tree.

`VENDORS` names each vendor's parts; the receiver, the worker and the CLI loop over it. At the
receiver, pure and without I/O (`connectors/<vendor>/webhook.py`):

    vendor.verify(body, headers, auth, now=now)   # raw bytes; SignatureInvalid -> 401
    payload  = vendor.parse(body)                  # JSON object (PayloadInvalid/ValueError -> 400)
    envelope = vendor.classify(payload, headers)   # PayloadInvalid -> 400
    vendor.replayed(envelope, auth, now=now)       # a reason -> 401, else None

The worker (webhooks/worker.py) drives a connector in two steps per ticket:

    ticket   = connector.current_ticket(payloads, ...)  # 0 reads, or 1 if the payload lacks data
    applied  = connector.apply(ticket, decision, ...)   # 0 writes if nothing changes, else 1

Errors, translated once per connector from its library's exceptions (always `raise ... from exc`):

    ConnectorError                 anything the vendor or the network did wrong
    ├── VendorUnavailable          5xx, timeouts, connection failures: retry with backoff
    │   └── RateLimited            429 (or 503 with Retry-After): wait `retry_after` s, not less
    └── VendorRejected             other 4xx: do not retry; dead-letter with the vendor's text
        └── ConfigurationRejected  a refusal tierdesk's configuration causes (unknown target,
            │                      field or role, missing permission): dead letter at once
            │                      whose message starts with the policy key or setting to fix
            └── CredentialsRejected  401: the vendor is paused (the worker sends nothing more
                                   until the pause ends) and the events wait, nothing is lost

`PayloadInvalid` is not a vendor error: the receiver answers it with 400.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from tiering.models import Decision, Ticket


class PayloadInvalid(ValueError):
    """A webhook body that cannot be understood; the message says what is wrong (answered 400)."""


class ConnectorError(Exception):
    """A vendor call failed."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class VendorUnavailable(ConnectorError):
    """Worth retrying with backoff: 5xx, timeout, connection failure.

    `ambiguous` is true when a write may have reached the vendor before the failure (read
    timeout, connection reset after sending): the next attempt must check before writing again.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        retry_after: float | None = None,
        ambiguous: bool = False,
    ) -> None:
        super().__init__(message, status=status)
        self.retry_after = retry_after
        self.ambiguous = ambiguous


class RateLimited(VendorUnavailable):
    """429: wait at least `retry_after` seconds before the next request to this vendor."""

    def __init__(self, message: str, *, retry_after: float, status: int | None = 429) -> None:
        super().__init__(message, status=status, retry_after=retry_after)


class VendorRejected(ConnectorError):
    """The vendor refused the request (4xx other than 429): retrying will not help.

    `errors` holds the vendor's per-field refusals when it gave any (Jira `errors`, Zendesk
    `details`, as field -> text), for the connector to name the configuration behind them."""

    def __init__(
        self, message: str, *, status: int | None = None, errors: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(message, status=status)
        self.errors: Mapping[str, str] = dict(errors or {})


#: ConfigurationRejected reasons (the `reason` label of tierdesk_configuration_refusals).
REASONS = ("credentials", "permission", "unknown-target", "field", "comment-visibility")


class ConfigurationRejected(VendorRejected):
    """A refusal that only a configuration change can cure. `fix` names the policy key or the
    setting (`targets.L2.zendesk.group_id: ...`, `TIERDESK_JIRA_API_TOKEN: ...`) and says what
    to change; the message is `fix` followed by the vendor's own words."""

    def __init__(
        self,
        vendor_text: str,
        *,
        reason: str,
        fix: str,
        status: int | None = None,
        errors: Mapping[str, str] | None = None,
    ) -> None:
        if reason not in REASONS:
            raise ValueError(f"unknown configuration refusal reason {reason!r}")
        super().__init__(f"{fix} [{vendor_text}]", status=status, errors=errors)
        self.reason = reason
        self.fix = fix
        self.vendor_text = vendor_text


class CredentialsRejected(ConfigurationRejected):
    """401: the credentials in the settings are not accepted. Nothing will work until they are
    fixed, so the worker pauses the vendor instead of spending events."""

    def __init__(
        self, vendor_text: str, *, fix: str, status: int | None = 401
    ) -> None:
        super().__init__(vendor_text, reason="credentials", fix=fix, status=status)


@dataclass(frozen=True, slots=True)
class Envelope:
    """What the receiver needs to know about one delivery before storing it."""

    vendor: str
    #: The vendor's event name (`jira:issue_updated`, `zen:event-type:ticket.created`, `trigger`).
    event_type: str
    #: False for a known event tierdesk does not act on: accepted, recorded as ignored.
    handled: bool
    #: Jira issue key or Zendesk ticket id; None only when `handled` is false.
    ticket: str | None
    #: Deduplication key: the same for every redelivery of one event.
    delivery_id: str
    #: Who caused the event (Jira accountId or name, Zendesk user id), when the payload says.
    actor: str | None = None
    #: When the vendor says the event happened, epoch milliseconds, for ordering.
    occurred_at: int | None = None


@dataclass(frozen=True, slots=True)
class Call:
    """One request made to a vendor, for the decision record and the metrics."""

    method: str
    path: str
    status: int | None
    purpose: str


@dataclass(frozen=True, slots=True)
class Applied:
    """What `apply` did."""

    calls: tuple[Call, ...] = ()
    #: The decision that was finally applied (differs from the input after a 409 re-decision).
    decision: Decision | None = None
    #: The checklist note key that is now on the ticket, when a note was posted (or found posted).
    note_key: str | None = None
    wrote: bool = False
    details: Mapping[str, Any] = field(default_factory=dict)


Decide = Callable[[Ticket], Decision]


class Connector(Protocol):
    """One vendor: connectors.jira.JiraConnector, connectors.zendesk.ZendeskConnector."""

    vendor: str

    def is_own_event(self, envelope: Envelope) -> bool:
        """True when the event was caused by tierdesk's own bot account (dropped, no request)."""
        ...

    def current_ticket(
        self,
        payloads: Sequence[Mapping[str, Any]],
        *,
        fresh: bool = False,
        last_note_key: str | None = None,
    ) -> Ticket:
        """The ticket's current state from the newest of `payloads` (arrival order).

        Zero requests when that payload is complete; one read when it lacks data or when
        `fresh` is true (a retry after an ambiguous failure, or an out-of-order delivery). On a
        fresh read the connector also looks for tierdesk's own note marker so that a note that
        did land is not posted again; the returned ticket's `last_note_key` says what it found
        (else `last_note_key` as given)."""
        ...

    def apply(self, ticket: Ticket, decision: Decision, *, decide: Decide) -> Applied:
        """Apply `decision` to the vendor in at most one write; none when `decision.changed` is
        false. `decide` re-decides on fresh state after a collision (Zendesk 409)."""
        ...

    def payload_ticket(
        self, payload: Mapping[str, Any], *, last_note_key: str | None = None
    ) -> Ticket | None:
        """The ticket one stored payload shows with no request, or None when the payload alone
        does not show it (`tierdesk plan` over the inbox)."""
        ...

    def writes_for(self, ticket: Ticket, decision: Decision) -> int:
        """How many writes `apply` would send for `decision` on `ticket`, computed from the
        connector's own write planning without a request (`tierdesk plan`)."""
        ...


@dataclass(frozen=True, slots=True)
class WebhookAuth:
    """How one vendor's deliveries are authenticated at the receiver (from the settings)."""

    #: The webhook secret; None means every delivery is refused (fail closed).
    secret: str | None
    #: During a rotation, the secret being retired (accepted beside the current one).
    previous: str | None = None
    #: Opt-in HTTP Basic (user, password) for deliveries that cannot be signed.
    basic: tuple[str, str] | None = None
    #: How far (s) a signature timestamp may be from now, for vendors that sign one.
    signature_max_age: float = 300.0
    #: How far (s) a signed body's own time may be from now (None: not checked), for vendors
    #: that sign the body's time but not the delivery's identifiers.
    replay_horizon: float | None = 7200.0


class Verify(Protocol):
    """A vendor's signature check on the raw bytes: raise SignatureInvalid, else return."""

    def __call__(
        self, body: bytes, headers: Mapping[str, str], auth: WebhookAuth, *, now: datetime
    ) -> None: ...


class Replayed(Protocol):
    """Why a signed delivery is refused as a replay (answered 401), or None."""

    def __call__(self, envelope: Envelope, auth: WebhookAuth, *, now: datetime) -> str | None: ...


@dataclass(frozen=True, slots=True)
class Vendor:
    """One vendor's parts, as the service needs them: plain functions, no I/O at the receiver."""

    name: str
    #: `verify(body, headers, auth, *, now)`: raise SignatureInvalid unless signed (raw bytes).
    verify: Verify
    #: `parse(body)`: the JSON value of the raw bytes (PayloadInvalid or ValueError when not).
    parse: Callable[[bytes], Any]
    #: `classify(payload, headers)`: the Envelope (PayloadInvalid when it cannot be understood).
    classify: Callable[[Mapping[str, Any], Mapping[str, str]], Envelope]
    #: `replayed(envelope, auth, *, now)`: why a signed delivery is refused as a replay, or None.
    replayed: Replayed
    #: The header carrying the vendor's delivery id (logged with a refused delivery).
    delivery_header: str
    #: `connector(config, policy, *, session)`: the vendor's Connector from its settings config.
    connector: Callable[..., Connector]
    #: Seconds this process (and, through the inbox, every replica) leaves the vendor alone
    #: after a 429 with no usable Retry-After: the connector's own floor (its config module).
    default_pause: float
    #: `requeue_body(ticket, run, *, now_ms)`: a body naming one ticket that the worker reads
    #: fresh before deciding (what `tierdesk plan --apply` queues; `run` keeps runs apart).
    requeue_body: Callable[..., dict[str, Any]]
    #: SLA clocks tierdesk cannot measure on this vendor yet (tiering.sla.sla_for leaves them
    #: out, and `tierdesk explain` says so), rather than letting them breach on every ticket.
    #: No vendor lists one today; a new vendor whose events cannot show what stops a clock
    #: starts here (tests/webhooks/test_cli_sla.py and test_sla_worker.py pin the behaviour).
    unmeasured_clocks: frozenset[str] = frozenset()


def _jira_connector(config: Any, policy: Any, *, session: Any = None) -> Connector:
    # Imported when called: connectors.jira.connector imports this module (an import cycle).
    from connectors.jira.connector import JiraConnector

    return JiraConnector(config, policy, session=session)


def _zendesk_connector(config: Any, policy: Any, *, session: Any = None) -> Connector:
    from connectors.zendesk.connector import ZendeskConnector

    return ZendeskConnector(config, policy, session=session)


# The vendor modules import the types above, so they are imported after them.
from connectors.jira import config as jira_config  # noqa: E402
from connectors.jira import webhook as jira_webhook  # noqa: E402
from connectors.zendesk import config as zendesk_config  # noqa: E402
from connectors.zendesk import webhook as zendesk_webhook  # noqa: E402

#: Every vendor tierdesk serves, by name (`/webhooks/<name>`, the inbox's `vendor` column).
VENDORS: Mapping[str, Vendor] = {
    "jira": Vendor(
        name="jira",
        verify=jira_webhook.verify,
        parse=jira_webhook.parse,
        classify=jira_webhook.classify,
        replayed=jira_webhook.replayed,
        delivery_header=jira_webhook.DELIVERY_HEADER,
        connector=_jira_connector,
        default_pause=jira_config.DEFAULT_RETRY_AFTER,
        requeue_body=jira_webhook.requeue_body,
    ),
    "zendesk": Vendor(
        name="zendesk",
        verify=zendesk_webhook.verify,
        parse=zendesk_webhook.parse,
        classify=zendesk_webhook.classify,
        replayed=zendesk_webhook.replayed,
        delivery_header=zendesk_webhook.INVOCATION_HEADER,
        connector=_zendesk_connector,
        default_pause=zendesk_config.DEFAULT_RETRY_AFTER,
        requeue_body=zendesk_webhook.requeue_body,
        # No unmeasured clock: first_response stops at the first public agent reply, which the
        # public reply trigger's body marks (connectors/zendesk/reply_trigger.py).
    ),
}
