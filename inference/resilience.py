"""Circuit breaker and retry backoff for calls to a remote service (Triton).

When Triton is down or slow, every message would otherwise wait for its own timeout. The breaker opens
after N consecutive failed calls, answers 'not allowed' at once while open (the caller uses its fallback),
and after a cool-down lets one trial call through (half-open): success closes it, failure opens it again.
"""

from __future__ import annotations

import random
import time
from enum import IntEnum
from typing import Callable


class BreakerState(IntEnum):
    CLOSED = 0
    HALF_OPEN = 1
    OPEN = 2


class CircuitBreaker:
    def __init__(self, failures_to_open: int, reset_after_s: float, clock: Callable[[], float] = time.monotonic,
                 on_change: Callable[[BreakerState], None] = lambda _: None) -> None:
        self.failures_to_open = failures_to_open
        self.reset_after_s = reset_after_s
        self._clock = clock
        self._on_change = on_change
        self._failures = 0
        self._opened_at = 0.0
        self._trial_running = False
        self.state = BreakerState.CLOSED

    def _set(self, state: BreakerState) -> None:
        if state != self.state:
            self.state = state
            self._on_change(state)

    def allow(self) -> bool:
        """May a call go out now? While open, only one trial call after the cool-down."""
        if self.state == BreakerState.CLOSED:
            return True
        if self.state == BreakerState.OPEN and self._clock() - self._opened_at >= self.reset_after_s:
            self._set(BreakerState.HALF_OPEN)
        if self.state == BreakerState.HALF_OPEN and not self._trial_running:
            self._trial_running = True
            return True
        return False

    def record_success(self) -> None:
        self._failures = 0
        self._trial_running = False
        self._set(BreakerState.CLOSED)

    def record_failure(self) -> None:
        self._failures += 1
        self._trial_running = False
        if self.state == BreakerState.HALF_OPEN or self._failures >= self.failures_to_open:
            self._opened_at = self._clock()
            self._set(BreakerState.OPEN)


def backoff_s(attempt: int, base_s: float = 0.02, cap_s: float = 0.5, rng: random.Random | None = None) -> float:
    """Full-jitter exponential backoff: uniform in [0, min(cap, base * 2^attempt)], so retries of many
    callers spread out instead of arriving together."""
    return (rng or random).uniform(0.0, min(cap_s, base_s * 2**attempt))
