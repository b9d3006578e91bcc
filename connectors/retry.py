"""Retry timing as a value: exponential backoff with jitter, never sooner than Retry-After.

In the style of procrastinate's `RetryStrategy.get_schedule_in`: `delay` is a pure function of
the attempt, the vendor's Retry-After and a jitter fraction, so it is tested as a table.

    delay(n) = min(maximum, initial * exp_base ** (n - 1) + jitter * fraction)
    then at least `retry_after` when the vendor gave one

`fraction` is uniform in [0, 1) (random.random) unless given; `jitter` defaults to `initial`
(the formula tenacity's wait_exponential_jitter uses).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RetryStrategy:
    """How long to wait before the next attempt of a failed piece of work."""

    #: The first wait (s), doubled (exp_base) per attempt.
    initial: float = 1.0
    #: No wait is longer than this (s), except one the vendor asked for (Retry-After).
    maximum: float = 600.0
    exp_base: float = 2.0
    #: At most this much (s) is added at random; None: `initial`.
    jitter: float | None = None

    def delay(
        self,
        attempt: int,
        retry_after: float | None = None,
        *,
        fraction: Callable[[], float] = random.random,
    ) -> float:
        """Seconds to wait after failed attempt `attempt` (1 for the first), never less than
        `retry_after`."""
        jitter = self.initial if self.jitter is None else self.jitter
        try:
            wait = self.initial * self.exp_base ** (max(1, attempt) - 1) + jitter * fraction()
        except OverflowError:
            wait = self.maximum
        wait = max(0.0, min(wait, self.maximum))
        return wait if retry_after is None else max(wait, retry_after)
