"""The SLA notify sender: posts the outbox's Slack-compatible notices, signed, retried, sent once.

    sender = NotifySender(inbox, NotifySecrets.from_settings(policy, settings))
    sender.send_due()           # one pass: every unsent notice whose attempt is due
    sender.run(stop_event)      # a loop of passes, `interval` apart

The worker records a notice in the inbox's outbox (`tierdesk_sla_notices`, one row per
`notice_key`, unique) in the same transaction as the decision that crossed the threshold. This
module sends each row as `POST <url>` with the stored body (`{"text": ...}`: Slack incoming
webhooks take that shape) and these headers:

    Content-Type: application/json
    X-Tierdesk-Timestamp: <unix seconds when signed>
    X-Tierdesk-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>." + body bytes)>
    X-Tierdesk-Notice-Key / Idempotency-Key: <notice_key>

(admin guide, "SLA notify webhooks", says how a receiver verifies it.)

Sending a row:

1. claim it: `next_attempt_at` moves `lease` seconds ahead, only if no one else moved it
   (compare-and-set), so two senders (threads, processes, replicas) never send one row at once;
2. send; 2xx marks it sent (`sent_at`), and a sent row is never sent again;
3. a 408, 429, 5xx or a network error is retried after `RetryStrategy.delay` (exponential with
   jitter, never sooner than the answer's Retry-After), as vendor writes are; any other 4xx is
   recorded (`last_error` "refused: ...") and not retried; after `max_attempts` failed
   attempts the row is given up (`last_error` "gave up ..."). A given-up or refused row keeps
   `sent_at` null and its `next_attempt_at` is +infinity.

At least once, not exactly once: a crash after the receiver took a notice and before `sent_at`
is written sends it again when the claim's lease has passed. Receivers dedupe on the
`Idempotency-Key` (the notice key: one per ticket and threshold).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import math
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import requests
import sqlalchemy as sa

from connectors.http import header, retry_after_seconds
from connectors.retry import RetryStrategy
from tiering.policy import Policy
from webhooks.inbox.records import OutgoingNotice
from webhooks.inbox.schema import sla_notices

if TYPE_CHECKING:
    from webhooks.inbox.store import Inbox
    from webhooks.settings import Settings

LOG = logging.getLogger("tierdesk.notify")

SIGNATURE_HEADER = "X-Tierdesk-Signature"
TIMESTAMP_HEADER = "X-Tierdesk-Timestamp"
NOTICE_KEY_HEADER = "X-Tierdesk-Notice-Key"
IDEMPOTENCY_HEADER = "Idempotency-Key"
#: Statuses retried like an outage (RFC 9110: 408 Request Timeout, 429 Too Many Requests; 5xx).
RETRIED_4XX = frozenset({408, 429})
NEVER = math.inf


class NotifyConfigError(ValueError):
    """A notify webhook that cannot be signed; the message names the policy key and setting."""


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """`sha256=<hex>` of HMAC-SHA256 over `<timestamp>.` followed by the body bytes."""
    mac = hmac.new(secret.encode("utf-8"), f"{timestamp}.".encode("ascii") + body,
                   hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify(secret: str, timestamp: str, body: bytes, signed: str) -> bool:
    """What a receiver checks (used by the tests; receivers also bound the timestamp's age)."""
    try:
        stamp = int(timestamp)
    except ValueError:
        return False
    return hmac.compare_digest(signature(secret, stamp, body), signed)


@dataclass(frozen=True)
class NotifySecrets:
    """The secret of each notify URL of the policy, and the global one for the rest."""

    by_url: Mapping[str, str] = field(default_factory=dict)
    default: str | None = None

    def for_url(self, url: str) -> str | None:
        return self.by_url.get(url, self.default)

    @classmethod
    def from_settings(cls, policy: Policy, settings: Settings) -> NotifySecrets:
        """Every notify URL's secret; raises NotifyConfigError naming each URL without one, so
        the service refuses to start rather than send unsigned or never send."""
        spec = policy.sla.spec
        by_url: dict[str, str] = {}
        problems: list[str] = []
        if spec is not None:
            for key, action in (("on_warning", spec.on_warning), ("on_breach", spec.on_breach)):
                notify = action.notify
                if notify is None:
                    continue
                secret = settings.notify_secret(notify.secret)
                if secret is None:
                    where = (
                        f'TIERDESK_SLA_NOTIFY_SECRETS has no "{notify.secret}"'
                        if notify.secret is not None
                        else "TIERDESK_SLA_NOTIFY_SECRET is not set"
                    )
                    fix = (
                        f'add "{notify.secret}" to TIERDESK_SLA_NOTIFY_SECRETS (a JSON object)'
                        if notify.secret is not None
                        else "set TIERDESK_SLA_NOTIFY_SECRET, or give the notify a `secret`"
                        " name from TIERDESK_SLA_NOTIFY_SECRETS"
                    )
                    problems.append(
                        f"sla.{key}.notify ({notify.url}) has no HMAC secret: {where}; {fix}"
                    )
                    continue
                if by_url.get(notify.url, secret) != secret:
                    problems.append(
                        f"sla.{key}.notify ({notify.url}): the same URL is signed with two"
                        " different secrets; give both notifies the same `secret`"
                    )
                by_url[notify.url] = secret
        if problems:
            raise NotifyConfigError("\n".join(problems))
        return cls(by_url=by_url, default=settings.notify_secret(None))


@dataclass(frozen=True)
class SendResult:
    """What one pass did, by notice key."""

    sent: tuple[str, ...] = ()
    retried: tuple[str, ...] = ()
    refused: tuple[str, ...] = ()
    skipped: tuple[str, ...] = ()  # claimed by another sender meanwhile


class NotifySender:
    """Sends the inbox outbox's due notices (module docstring)."""

    def __init__(
        self,
        inbox: Inbox,
        secrets: NotifySecrets,
        *,
        session: requests.Session | None = None,
        strategy: RetryStrategy | None = None,
        timeout: float = 10.0,
        lease: float = 60.0,
        max_attempts: int = 8,
        batch: int = 100,
        fraction: Callable[[], float] | None = None,
    ) -> None:
        self.inbox = inbox
        self.secrets = secrets
        self.session = session or requests.Session()
        self.strategy = strategy or RetryStrategy()
        self.timeout = timeout
        self.lease = lease
        self.max_attempts = max_attempts
        self.batch = batch
        self._fraction = fraction

    def send_due(self) -> SendResult:
        """Claim and send every due notice (at most `batch`); each is sent or rescheduled."""
        sent: list[str] = []
        retried: list[str] = []
        refused: list[str] = []
        skipped: list[str] = []
        for row in self.inbox.due_notices(limit=self.batch):
            if not self._claim(row):
                skipped.append(row.notice_key)
                continue
            outcome = self._send(row)
            {"sent": sent, "retried": retried, "refused": refused}[outcome].append(row.notice_key)
        return SendResult(tuple(sent), tuple(retried), tuple(refused), tuple(skipped))

    def run(self, stop: threading.Event, *, interval: float = 1.0) -> None:
        """Passes until `stop` is set; a failing pass (database down) is logged and retried."""
        while not stop.is_set():
            try:
                self.send_due()
            except Exception:  # a bug or an outage must not end the loop
                LOG.exception("sla notify pass failed; retrying in %.1f s", interval)
            stop.wait(interval)

    # ------------------------------------------------------------------ one row

    def _claim(self, row: OutgoingNotice) -> bool:
        now = self.inbox.clock()
        with self.inbox._tx() as conn:
            result = conn.execute(
                sa.update(sla_notices)
                .where(sla_notices.c.id == row.id, sla_notices.c.sent_at.is_(None),
                       sla_notices.c.next_attempt_at == row.next_attempt_at)
                .values(next_attempt_at=now + self.lease)
            )
        return result.rowcount == 1

    def _send(self, row: OutgoingNotice) -> str:
        secret = self.secrets.for_url(row.url)
        if secret is None:
            # A policy reload removed the notify that made this row, and no global secret is
            # set: keep it, and try again later (a secret set then sends it, signed).
            return self._failed(row, "no HMAC secret for this URL in the current settings",
                                retry_after=None)
        body = row.body.encode("utf-8")
        stamp = int(self.inbox.clock())
        headers = {
            "Content-Type": "application/json",
            TIMESTAMP_HEADER: str(stamp),
            SIGNATURE_HEADER: signature(secret, stamp, body),
            NOTICE_KEY_HEADER: row.notice_key,
            IDEMPOTENCY_HEADER: row.notice_key,
        }
        try:
            response = self.session.post(row.url, data=body, headers=headers,
                                         timeout=self.timeout, allow_redirects=False)
        except requests.RequestException as exc:
            return self._failed(row, f"{type(exc).__name__}: {exc}"[:500], retry_after=None)
        status = response.status_code
        if 200 <= status < 300:
            self._mark_sent(row)
            LOG.info("sla notice sent", extra={"vendor": row.vendor, "ticket": row.ticket,
                                               "notice": row.notice_key, "status": status})
            return "sent"
        text = f"HTTP {status}: {response.text[:300]}"
        if status in RETRIED_4XX or status >= 500:
            wait = retry_after_seconds(header(response.headers, "Retry-After"),
                                       now=self.inbox.clock())
            return self._failed(row, text, retry_after=wait)
        return self._refused(row, f"refused: {text} (not retried)")

    def _mark_sent(self, row: OutgoingNotice) -> None:
        now = self.inbox.clock()
        with self.inbox._tx() as conn:
            conn.execute(
                sa.update(sla_notices)
                .where(sla_notices.c.id == row.id, sla_notices.c.sent_at.is_(None))
                .values(sent_at=now, attempts=sla_notices.c.attempts + 1, last_error=None)
            )

    def _failed(self, row: OutgoingNotice, error: str, *, retry_after: float | None) -> str:
        attempts = row.attempts + 1
        if attempts >= self.max_attempts:
            self._record(row, f"gave up after {attempts} attempts: {error}", NEVER)
            LOG.warning("sla notice given up", extra={"ticket": row.ticket, "error": error,
                                                      "notice": row.notice_key})
            return "refused"
        args: dict[str, Any] = {} if self._fraction is None else {"fraction": self._fraction}
        wait = self.strategy.delay(attempts, retry_after, **args)
        self._record(row, error, self.inbox.clock() + wait)
        LOG.info("sla notice retried", extra={"ticket": row.ticket, "notice": row.notice_key,
                                              "error": error, "retry_in": round(wait, 3)})
        return "retried"

    def _refused(self, row: OutgoingNotice, error: str) -> str:
        self._record(row, error, NEVER)
        LOG.warning("sla notice refused", extra={"ticket": row.ticket, "error": error,
                                                 "notice": row.notice_key})
        return "refused"

    def _record(self, row: OutgoingNotice, error: str, next_at: float) -> None:
        with self.inbox._tx() as conn:
            conn.execute(
                sa.update(sla_notices)
                .where(sla_notices.c.id == row.id, sla_notices.c.sent_at.is_(None))
                .values(attempts=sla_notices.c.attempts + 1, last_error=error[:1000],
                        next_attempt_at=next_at)
            )
