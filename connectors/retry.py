"""Retry timing as a value: exponential backoff with jitter, never sooner than Retry-After;
and `retry_reads`, which repeats an admin read (a search page, a count) the same way.

In the style of procrastinate's `RetryStrategy.get_schedule_in`: `delay` is a pure function of
the attempt, the vendor's Retry-After and a jitter fraction, so it is tested as a table.

    delay(n) = min(maximum, initial * exp_base ** (n - 1) + jitter * fraction)
    then at least `retry_after` when the vendor gave one

`fraction` is uniform in [0, 1) (random.random) unless given; `jitter` defaults to `initial`
(the formula tenacity's wait_exponential_jitter uses).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
)

from connectors.base import VendorUnavailable

T = TypeVar("T")

#: Admin reads (search pages, counts, listings) are tried this many times in all on
#: 429/5xx/timeouts.
READ_ATTEMPTS = 5
#: Longest wait between read attempts when the vendor gives no Retry-After, seconds.
READ_BACKOFF_MAX = 30.0


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


def retry_reads(fn: Callable[..., T], *args: Any, sleep: Callable[[float], None] = time.sleep,
                strategy: RetryStrategy | None = None, **kwargs: Any) -> T:
    """Run a read (safe to repeat: a GET, a search page, a count) with up to READ_ATTEMPTS
    tries on RateLimited / VendorUnavailable. A long backfill or plan must not stop at the
    first 429 on page 40; writes are never sent through this.

    tenacity runs the loop (stop after READ_ATTEMPTS, re-raise the last refusal, the injectable
    sleep); `strategy` (READ_RETRY by default) computes each wait, so Retry-After is honoured
    as in the worker."""
    chosen = strategy if strategy is not None else READ_RETRY

    def wait(state: RetryCallState) -> float:
        failed = state.outcome.exception() if state.outcome is not None else None
        after = failed.retry_after if isinstance(failed, VendorUnavailable) else None
        return chosen.delay(state.attempt_number, after)

    retrying = Retrying(
        retry=retry_if_exception_type(VendorUnavailable),
        stop=stop_after_attempt(READ_ATTEMPTS),
        wait=wait,
        sleep=sleep,
        reraise=True,
    )
    return retrying(fn, *args, **kwargs)


#: How long reads wait between attempts: exponential from 1 s, at most READ_BACKOFF_MAX, and
#: never less than the vendor's Retry-After (as the worker's retries).
READ_RETRY = RetryStrategy(initial=1.0, maximum=READ_BACKOFF_MAX)
