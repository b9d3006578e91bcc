"""Fault switches of the vendor sandbox: what goes wrong, per vendor, and the Retry-After referee.

A `FaultSpec` is validated from JSON (control API `POST /_sandbox/faults`, `tierdesk sandbox
--faults`) and held by a `FaultState`, which the HTTP layer asks once per vendor request:

    gate = faults.admit(identity, now)        # 429 / 503 answered before the handler runs
    ...handler runs and applies the request...
    faults.take("conflict")                   # a write handler asks for a 409 collision
    faults.take("reset_after_write")          # applied, then the connection is reset
    faults.take("slow")                       # applied, then answered after `seconds`

Every 429 and every 503 that carries `Retry-After` blocks that client until the time has passed.
A request that comes back sooner is a violation: it is counted, listed in `/_sandbox/state` and
answered 429 again, as a vendor's rate limiter would.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

Vendor = Literal["jira", "zendesk"]
VENDORS: tuple[Vendor, ...] = ("jira", "zendesk")


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RateLimitSpec(_Spec):
    """Answer 429 with `Retry-After` to the next `requests` requests, or for `seconds`."""

    requests: int | None = Field(default=None, ge=1)
    seconds: float | None = Field(default=None, gt=0)
    retry_after: int = Field(default=1, ge=1)


class UnavailableSpec(_Spec):
    """Answer 503 for `seconds` (an outage); with `retry_after` the 503 carries that header."""

    seconds: float = Field(gt=0)
    retry_after: int | None = Field(default=None, ge=1)


class CountSpec(_Spec):
    """Affect the next `requests` requests of the kind the fault applies to."""

    requests: int = Field(default=1, ge=1)


class SlowSpec(_Spec):
    """Apply the next `requests` requests, then wait `seconds` before answering."""

    requests: int = Field(default=1, ge=1)
    seconds: float = Field(gt=0)


class WebhookFaultSpec(_Spec):
    """Delivery faults: each delivery sent `duplicate` times, each copy after a random delay."""

    duplicate: int = Field(default=1, ge=1, le=10)
    delay_seconds: float = Field(default=0.0, ge=0)


class FaultSpec(_Spec):
    """Everything that can be switched on for one vendor. Omitted keys mean: no such fault."""

    rate_limit: RateLimitSpec | None = None
    unavailable: UnavailableSpec | None = None
    slow: SlowSpec | None = None
    reset_after_write: CountSpec | None = None
    conflict: CountSpec | None = None
    webhooks: WebhookFaultSpec | None = None
    #: Requests per rolling minute; beyond it 429 with Retry-After until the window frees.
    budget_per_minute: int | None = Field(default=None, ge=1)


class FaultsInvalid(ValueError):
    """A fault description that cannot be used; the message names the key and the problem."""


def parse_faults(data: Any, *, source: str = "faults") -> dict[Vendor, FaultSpec]:
    """Validate `{"jira": {...}, "zendesk": {...}}` into specs, or raise FaultsInvalid."""
    if not isinstance(data, dict):
        raise FaultsInvalid(
            f'{source}: expected an object like {{"jira": {{...}}, "zendesk": {{...}}}},'
            f" got {type(data).__name__}"
        )
    unknown = sorted(set(data) - set(VENDORS))
    if unknown:
        raise FaultsInvalid(
            f"{source}: unknown vendor {', '.join(map(repr, unknown))}; use 'jira' or 'zendesk'"
        )
    specs: dict[Vendor, FaultSpec] = {}
    for vendor in VENDORS:
        if vendor not in data:
            continue
        try:
            specs[vendor] = FaultSpec.model_validate(data[vendor])
        except ValidationError as exc:
            problems = "; ".join(
                f"{vendor}.{'.'.join(str(p) for p in err['loc'])}: {err['msg']}"
                for err in exc.errors()
            )
            raise FaultsInvalid(f"{source}: {problems}") from exc
    return specs


@dataclass
class Gate:
    """The answer the fault layer gives before a request reaches its handler."""

    status: int
    retry_after: int | None
    reason: str


@dataclass
class Violation:
    """A client came back before the Retry-After it was given had elapsed."""

    vendor: str
    identity: str
    method: str
    path: str
    #: How much sooner than Retry-After allowed the request arrived, seconds.
    early_by: float
    #: How long after the refusal it arrived: a few milliseconds suggests a request that was
    #: already under way when the client got the 429 (another thread), seconds more one that
    #: was sent after it and ignored the header.
    since_refusal: float
    at: float


@dataclass
class FaultState:
    """The live faults of one vendor, with counters that run down as requests arrive."""

    vendor: str
    spec: FaultSpec = field(default_factory=FaultSpec)
    started: float = 0.0
    remaining: dict[str, int] = field(default_factory=dict)
    blocked_until: dict[str, float] = field(default_factory=dict)
    refused_at: dict[str, float] = field(default_factory=dict)
    violations: list[Violation] = field(default_factory=list)
    window: deque[float] = field(default_factory=deque)
    answered: dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def configure(self, spec: FaultSpec, *, now: float) -> None:
        """Replace this vendor's faults; counters restart, Retry-After blocks stay."""
        with self.lock:
            self.spec = spec
            self.started = now
            self.remaining = {}
            for name in ("rate_limit", "slow", "reset_after_write", "conflict"):
                part = getattr(spec, name)
                count = getattr(part, "requests", None) if part is not None else None
                if count is not None:
                    self.remaining[name] = count
            self.window.clear()

    def admit(self, identity: str, method: str, path: str, *, now: float) -> Gate | None:
        """Decide whether a vendor request is refused before its handler runs (None: go on)."""
        with self.lock:
            until = self.blocked_until.get(identity)
            if until is not None and now < until:
                since = now - self.refused_at.get(identity, now)
                self.violations.append(
                    Violation(
                        self.vendor,
                        identity,
                        method,
                        path,
                        round(until - now, 3),
                        round(since, 3),
                        now,
                    )
                )
                return self._refuse(429, max(1, int(until - now + 0.999)), "retry-after violated")
            spec = self.spec
            if spec.unavailable is not None and now < self.started + spec.unavailable.seconds:
                return self._refuse(503, spec.unavailable.retry_after, "unavailable", identity, now)
            limit = spec.rate_limit
            if limit is not None:
                if limit.requests is not None and self.remaining.get("rate_limit", 0) > 0:
                    self.remaining["rate_limit"] -= 1
                    return self._refuse(429, limit.retry_after, "rate limited", identity, now)
                storm = limit.requests is None and limit.seconds is not None
                if storm and now < self.started + (limit.seconds or 0.0):
                    return self._refuse(429, limit.retry_after, "rate limited", identity, now)
            if spec.budget_per_minute is not None:
                while self.window and self.window[0] <= now - 60.0:
                    self.window.popleft()
                if len(self.window) >= spec.budget_per_minute:
                    wait = max(1, int(self.window[0] + 60.0 - now + 0.999))
                    return self._refuse(429, wait, "budget exhausted", identity, now)
                self.window.append(now)
            return None

    def _refuse(
        self,
        status: int,
        retry_after: int | None,
        reason: str,
        identity: str | None = None,
        now: float | None = None,
    ) -> Gate:
        if identity is not None and now is not None and retry_after is not None:
            self.blocked_until[identity] = now + retry_after
            self.refused_at[identity] = now
        self.answered[reason] = self.answered.get(reason, 0) + 1
        return Gate(status, retry_after, reason)

    def take(self, name: Literal["slow", "reset_after_write", "conflict"]) -> bool:
        """Consume one occurrence of a counted fault; True when this request gets it."""
        with self.lock:
            left = self.remaining.get(name, 0)
            if left <= 0:
                return False
            self.remaining[name] = left - 1
            self.answered[name] = self.answered.get(name, 0) + 1
            return True

    def slow_seconds(self) -> float:
        """How long a slowed response waits."""
        return self.spec.slow.seconds if self.spec.slow is not None else 0.0

    def webhook_faults(self) -> WebhookFaultSpec:
        """The delivery faults in force (none: one copy, no delay)."""
        return self.spec.webhooks or WebhookFaultSpec()

    def snapshot(self) -> dict[str, Any]:
        """A JSON view for `/_sandbox/state`."""
        with self.lock:
            return {
                "spec": self.spec.model_dump(exclude_none=True),
                "remaining": dict(self.remaining),
                "answered": dict(self.answered),
                "retry_after_violations": len(self.violations),
                "violations": [v.__dict__ for v in self.violations[-50:]],
            }
