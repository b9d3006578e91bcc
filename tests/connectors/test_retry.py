"""Retry timing: exponential backoff with jitter, capped, never sooner than Retry-After."""

from __future__ import annotations

import pytest

from connectors.retry import RetryStrategy

DEFAULT = RetryStrategy(initial=1, maximum=300)


@pytest.mark.parametrize("strategy, attempt, retry_after, fraction, expected", [
    (DEFAULT, 1, None, 0.0, 1.0),              # the first wait is `initial`
    (DEFAULT, 1, None, 0.5, 1.5),              # plus jitter: up to `initial` more
    (DEFAULT, 2, None, 0.0, 2.0),              # doubled per attempt
    (DEFAULT, 5, None, 0.0, 16.0),
    (DEFAULT, 9, None, 0.99, 256.99),          # just below the cap
    (DEFAULT, 10, None, 0.0, 300.0),           # 512 capped at `maximum`
    (DEFAULT, 10_000, None, 0.5, 300.0),       # an overflowing power is the cap too
    (DEFAULT, 0, None, 0.0, 1.0),              # attempt 0 counts as the first
    (DEFAULT, 1, 30.0, 0.5, 30.0),             # Retry-After longer than the backoff wins
    (DEFAULT, 5, 3.0, 0.0, 16.0),              # a shorter Retry-After leaves the backoff
    (DEFAULT, 10, 900.0, 0.0, 900.0),          # Retry-After beats even the cap
    (RetryStrategy(initial=0.5, maximum=5), 1, None, 1.0, 1.0),   # jitter defaults to initial
    (RetryStrategy(initial=2, maximum=60, jitter=0), 3, None, 0.9, 8.0),  # no jitter
    (RetryStrategy(initial=1, maximum=60, exp_base=3), 3, None, 0.0, 9.0),  # another base
])
def test_delay_table(strategy: RetryStrategy, attempt: int, retry_after: float | None,
                     fraction: float, expected: float) -> None:
    """`delay(attempt, retry_after)` for a given jitter fraction, row by row."""
    got = strategy.delay(attempt, retry_after, fraction=lambda: fraction)
    assert got == pytest.approx(expected)


@pytest.mark.parametrize("attempt", [1, 2, 3, 5, 8, 20])
def test_random_jitter_stays_in_its_band(attempt: int) -> None:
    """With random jitter a wait is between the backoff and the backoff plus `initial`, capped."""
    base = min(300.0, 2.0 ** (attempt - 1))
    delays = [DEFAULT.delay(attempt) for _ in range(50)]
    assert all(base <= d <= min(300.0, base + 1) for d in delays)
