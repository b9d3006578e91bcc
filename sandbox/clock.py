"""The sandbox's clock: the system time, or an instant a test stopped it at (control API).

Everything the two vendor sites date follows it: records' created and updated times, comments,
webhook registrations, and the deliveries' own times (the `timestamp` inside Jira's signed body,
Zendesk's `X-Zendesk-Webhook-Signature-Timestamp`). A test that runs tierdesk under a controlled
clock (tests/policies/test_story_clocks.py: office hours pass in an instant) sets the sandbox to
the same instant as tierdesk's clock before each step, so both sides agree on "now" as a real
vendor and a real service do.

    GET  /_sandbox/clock                   {"now": ISO 8601 UTC, "fixed": true|false}
    POST /_sandbox/clock {"now": "2026-11-23T08:00:00Z"}   stop the clock at that instant
    POST /_sandbox/clock {"now": null}     back to the system time

A stopped clock only moves forward (a later POST with an earlier instant is refused: records
would be dated before the ones already made); set it before the test's first change. Two Jira
changes at one stopped instant are still 1 ms apart (sandbox/jira/records.py `now`). Retry delays
and faults keep measuring real (monotonic) time.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from typing import Any


class ClockInvalid(ValueError):
    """A clock setting that cannot be used; the message says what was wrong."""


def parse_instant(value: object) -> datetime | None:
    """The instant of a `POST /_sandbox/clock` body's `now`: an ISO 8601 time with an offset
    (or Z), or None for the system time."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise ClockInvalid(f'now: expected an ISO 8601 time such as "2026-11-23T08:00:00Z" or'
                           f" null, got {value!r}")
    try:
        when = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ClockInvalid(f'now: {value!r} is not an ISO 8601 time (e.g.'
                           ' "2026-11-23T08:00:00Z")') from None
    if when.tzinfo is None:
        raise ClockInvalid(f"now: {value!r} has no UTC offset; add Z or +HH:MM")
    return when.astimezone(UTC)


class SandboxClock:
    """The system time until `set`, then the instant set (module docstring). Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._fixed: datetime | None = None

    def now(self) -> datetime:
        with self._lock:
            return self._fixed if self._fixed is not None else datetime.now(UTC)

    def set(self, when: datetime | None) -> None:
        """Stop the clock at `when` (aware), or (None) let it follow the system time again."""
        with self._lock:
            if when is not None and self._fixed is not None and when < self._fixed:
                raise ClockInvalid(
                    f"now: {when.isoformat()} is before the sandbox's current time"
                    f" {self._fixed.isoformat()}; the clock only moves forward (records"
                    " would be dated before earlier ones): start a new sandbox instead")
            self._fixed = when.astimezone(UTC) if when is not None else None

    def snapshot(self) -> dict[str, Any]:
        """The JSON of `GET /_sandbox/clock`."""
        with self._lock:
            fixed = self._fixed
        now = fixed if fixed is not None else datetime.now(UTC)
        return {"now": now.isoformat().replace("+00:00", "Z"), "fixed": fixed is not None}
