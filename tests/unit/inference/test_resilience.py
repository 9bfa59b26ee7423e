import random

from inference.resilience import BreakerState, CircuitBreaker, backoff_s


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_breaker_opens_after_consecutive_failures_and_recovers_through_one_trial() -> None:
    clock, changes = Clock(), []
    breaker = CircuitBreaker(3, 10.0, clock=clock, on_change=changes.append)
    for _ in range(2):
        assert breaker.allow()
        breaker.record_failure()
    breaker.record_success()  # a success resets the count
    for _ in range(3):
        assert breaker.allow()
        breaker.record_failure()
    assert breaker.state == BreakerState.OPEN and not breaker.allow()
    clock.now = 10.0
    assert breaker.allow() and breaker.state == BreakerState.HALF_OPEN
    assert not breaker.allow()  # only one trial call at a time
    breaker.record_failure()
    assert breaker.state == BreakerState.OPEN and not breaker.allow()
    clock.now = 20.0
    assert breaker.allow()
    breaker.record_success()
    assert breaker.state == BreakerState.CLOSED and breaker.allow()
    assert changes == [BreakerState.OPEN, BreakerState.HALF_OPEN, BreakerState.OPEN, BreakerState.HALF_OPEN, BreakerState.CLOSED]


def test_backoff_is_jittered_and_capped() -> None:
    rng = random.Random(1)
    delays = [backoff_s(3, base_s=0.1, cap_s=0.5, rng=rng) for _ in range(200)]
    assert all(0.0 <= d <= 0.5 for d in delays) and len(set(delays)) == 200 and max(delays) > 0.4
    assert all(backoff_s(0, base_s=0.1, rng=rng) <= 0.1 for _ in range(50))
