"""Webhook delivery of the sandbox: signing, a background queue, and the vendors' retry habits.

Signatures (see ../shared/vendor/README.md):

- Jira: `X-Hub-Signature: sha256=<hex HMAC-SHA256(secret, raw body)>`, sent only when the
  webhook has a secret. `X-Atlassian-Webhook-Identifier` stays the same across retries (the
  receiver's dedupe key) and `X-Atlassian-Webhook-Retry` counts them.
- Zendesk: `X-Zendesk-Webhook-Signature` = base64(HMAC-SHA256(key = signing secret as UTF-8
  text, message = `X-Zendesk-Webhook-Signature-Timestamp` + raw body)), signed afresh for each
  attempt; `X-Zendesk-Webhook-Invocation-Id` stays the same across retries.

Retries: Jira Cloud retries 408, 409, 425, 429, 5xx and connection failures (up to 5 times,
with backoff); Zendesk retries a few times (409, 429, 503 and connection failures; its exact
codes are not confirmed). The sandbox keeps the same rules with shorter, configurable delays so
a test sees them in seconds. Several workers send at once, so deliveries can overtake each other,
as with the real vendors.
"""

from __future__ import annotations

import base64
import hashlib
import heapq
import hmac
import itertools
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import requests

JIRA_RETRY_STATUSES = frozenset({408, 409, 425, 429})
ZENDESK_RETRY_STATUSES = frozenset({409, 429, 503})
JIRA_MAX_RETRIES = 5
ZENDESK_MAX_RETRIES = 3
#: Zendesk is reported to give up on an endpoint after 10 s; the sandbox uses it for both.
DELIVERY_TIMEOUT = 10.0


def jira_signature(body: bytes, secret: str) -> str:
    """The `X-Hub-Signature` value for a Jira webhook body."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def zendesk_signature(body: bytes, secret: str, timestamp: str) -> str:
    """The `X-Zendesk-Webhook-Signature` value for a Zendesk webhook body."""
    digest = hmac.new(secret.encode(), timestamp.encode() + body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


@dataclass
class Delivery:
    """One webhook call to make, with what is needed to sign and retry it."""

    vendor: str
    webhook_id: str
    url: str
    body: bytes
    event: str
    ticket: str
    #: Same for every attempt and every duplicate: the receiver's dedupe key.
    delivery_id: str
    secret: str | None
    account_id: int | None = None
    attempt: int = 0
    copy: int = 1

    def headers(self, signed_at: datetime | None = None) -> dict[str, str]:
        """Headers for the current attempt, signed (Zendesk's signature timestamp is
        `signed_at`, the sandbox's clock; default the system time)."""
        headers = {"Content-Type": "application/json; charset=utf-8"}
        if self.vendor == "jira":
            headers["User-Agent"] = "Atlassian Webhook HTTP Client"
            headers["X-Atlassian-Webhook-Identifier"] = self.delivery_id
            headers["X-Atlassian-Webhook-Retry"] = str(self.attempt)
            headers["X-Atlassian-Webhook-Flow"] = "Primary"
            if self.secret:
                headers["X-Hub-Signature"] = jira_signature(self.body, self.secret)
        else:
            stamp = (signed_at or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")
            headers["User-Agent"] = "Zendesk Webhook"
            headers["X-Zendesk-Account-Id"] = str(self.account_id or 0)
            headers["X-Zendesk-Webhook-Id"] = self.webhook_id
            headers["X-Zendesk-Webhook-Invocation-Id"] = self.delivery_id
            headers["X-Zendesk-Webhook-Signature-Timestamp"] = stamp
            headers["X-Zendesk-Webhook-Signature"] = zendesk_signature(
                self.body, self.secret or "", stamp
            )
        return headers


@dataclass
class Attempt:
    """One sent request and its outcome, for `/_sandbox/log` and the tests."""

    vendor: str
    webhook_id: str
    delivery_id: str
    event: str
    ticket: str
    attempt: int
    copy: int
    status: int | None
    error: str | None
    at: float


@dataclass(order=True)
class _Queued:
    due: float
    seq: int
    delivery: Delivery = field(compare=False)


class Deliverer:
    """Sends deliveries from a time-ordered queue on `workers` background threads."""

    def __init__(
        self,
        *,
        workers: int = 4,
        retry_base: float = 0.25,
        retry_cap: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._queue: list[_Queued] = []
        self._held: list[Delivery] = []
        self._holding = False
        self._seq = itertools.count()
        self._cond = threading.Condition()
        self._in_flight = 0
        self._stopped = False
        self._clock = clock
        #: The time deliveries are signed with (the sandbox's clock: sandbox/clock.py).
        self._wall = wall
        self.retry_base = retry_base
        self.retry_cap = retry_cap
        self.attempts: list[Attempt] = []
        self.gave_up: list[Attempt] = []
        self._session = requests.Session()
        self._threads = [
            threading.Thread(target=self._run, name=f"sandbox-delivery-{i}", daemon=True)
            for i in range(workers)
        ]
        for t in self._threads:
            t.start()

    def submit(self, delivery: Delivery, *, delay: float = 0.0) -> None:
        """Queue a delivery to be sent after `delay` seconds (or hold it, see `hold`)."""
        with self._cond:
            if self._holding:
                self._held.append(delivery)
                return
            self._push(delivery, delay)

    def _push(self, delivery: Delivery, delay: float) -> None:
        heapq.heappush(self._queue, _Queued(self._clock() + delay, next(self._seq), delivery))
        self._cond.notify()

    def hold(self) -> None:
        """Keep new deliveries back until `release` (retries of earlier ones still go out)."""
        with self._cond:
            self._holding = True

    def release(self, *, order: str = "fifo", spacing: float = 0.0) -> int:
        """Send the held deliveries, oldest first (`fifo`) or newest first (`reverse`),
        `spacing` seconds apart; returns how many. New deliveries are no longer held."""
        if order not in ("fifo", "reverse"):
            raise ValueError(f"order is fifo or reverse, got {order!r}")
        with self._cond:
            held = self._held if order == "fifo" else list(reversed(self._held))
            self._held, self._holding = [], False
            for i, delivery in enumerate(held):
                self._push(delivery, i * spacing)
            return len(held)

    def pending(self) -> int:
        """Deliveries queued (including retries waiting) or being sent."""
        with self._cond:
            return len(self._queue) + self._in_flight

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Wait until nothing is queued or in flight; False on timeout."""
        end = self._clock() + timeout
        with self._cond:
            while self._queue or self._in_flight:
                left = end - self._clock()
                if left <= 0:
                    return False
                self._cond.wait(min(left, 0.05))
            return True

    def stop(self) -> None:
        """Stop the workers; queued deliveries are dropped."""
        with self._cond:
            self._stopped = True
            self._queue.clear()
            self._cond.notify_all()
        for t in self._threads:
            t.join(timeout=DELIVERY_TIMEOUT + 1)
        self._session.close()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._stopped:
                    now = self._clock()
                    if self._queue and self._queue[0].due <= now:
                        break
                    wait = (self._queue[0].due - now) if self._queue else None
                    self._cond.wait(wait)
                if self._stopped:
                    return
                item = heapq.heappop(self._queue)
                self._in_flight += 1
            try:
                self._send(item.delivery)
            finally:
                with self._cond:
                    self._in_flight -= 1
                    self._cond.notify_all()

    def _send(self, d: Delivery) -> None:
        status: int | None = None
        error: str | None = None
        retry_after: float | None = None
        try:
            resp = self._session.post(
                d.url, data=d.body, headers=d.headers(self._wall()), timeout=DELIVERY_TIMEOUT
            )
            status = resp.status_code
            retry_after = _seconds(resp.headers.get("Retry-After"))
            resp.close()
        except requests.RequestException as exc:
            error = f"{type(exc).__name__}: {exc}"
        record = Attempt(
            d.vendor,
            d.webhook_id,
            d.delivery_id,
            d.event,
            d.ticket,
            d.attempt,
            d.copy,
            status,
            error,
            time.time(),
        )
        with self._cond:
            self.attempts.append(record)
        if status is not None and 200 <= status < 300:
            return
        if not self._retryable(d.vendor, status):
            with self._cond:
                self.gave_up.append(record)
            return
        limit = JIRA_MAX_RETRIES if d.vendor == "jira" else ZENDESK_MAX_RETRIES
        if d.attempt >= limit:
            with self._cond:
                self.gave_up.append(record)
            return
        delay = min(self.retry_cap, self.retry_base * (2**d.attempt))
        delay *= 1 + random.random() * 0.25
        if retry_after is not None and d.vendor == "zendesk":
            # Zendesk honours a receiver's Retry-After below a minute; Jira uses its own backoff.
            if retry_after >= 60:
                with self._cond:
                    self.gave_up.append(record)
                return
            delay = max(delay, retry_after)
        again = Delivery(**{**d.__dict__, "attempt": d.attempt + 1})
        with self._cond:
            self._push(again, delay)

    @staticmethod
    def _retryable(vendor: str, status: int | None) -> bool:
        if status is None:
            return True
        if vendor == "jira":
            return status in JIRA_RETRY_STATUSES or status >= 500
        return status in ZENDESK_RETRY_STATUSES

    def snapshot(self) -> dict[str, Any]:
        """Counts for `/_sandbox/state`."""
        with self._cond:
            delivered = sum(1 for a in self.attempts if a.status and 200 <= a.status < 300)
            return {
                "pending": len(self._queue) + self._in_flight,
                "held": len(self._held),
                "attempts": len(self.attempts),
                "delivered": delivered,
                "failed_attempts": len(self.attempts) - delivered,
                "gave_up": len(self.gave_up),
            }


def _seconds(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None
