"""Circuit breaker transitions, token-bucket rate limit and health figures, on an injectable clock."""

from __future__ import annotations

import pytest

from backend.llm.health import BreakerState, CircuitBreaker, HealthRegistry, ProviderHealth, TokenBucket


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def _breaker(clock: FakeClock, threshold: int = 3, cooldown: float = 30.0) -> CircuitBreaker:
    return CircuitBreaker(failure_threshold=threshold, cooldown_seconds=cooldown, clock=clock)


def test_breaker_stays_closed_below_the_threshold(clock: FakeClock) -> None:
    breaker = _breaker(clock)
    breaker.record_failure()
    breaker.record_failure()
    assert breaker.state is BreakerState.CLOSED
    assert breaker.allow()


def test_breaker_opens_at_the_threshold_and_refuses_calls(clock: FakeClock) -> None:
    breaker = _breaker(clock)
    for _ in range(3):
        breaker.record_failure()
    assert breaker.state is BreakerState.OPEN
    assert not breaker.allow()


def test_a_success_resets_the_consecutive_failure_count(clock: FakeClock) -> None:
    breaker = _breaker(clock)
    breaker.record_failure()
    breaker.record_failure()
    breaker.record_success()
    breaker.record_failure()
    breaker.record_failure()
    assert breaker.state is BreakerState.CLOSED


def test_breaker_goes_half_open_after_the_cooldown(clock: FakeClock) -> None:
    breaker = _breaker(clock)
    for _ in range(3):
        breaker.record_failure()
    clock.now += 29.9
    assert breaker.state is BreakerState.OPEN
    clock.now += 0.1
    assert breaker.state is BreakerState.HALF_OPEN


def test_half_open_allows_exactly_one_trial_call(clock: FakeClock) -> None:
    breaker = _breaker(clock)
    for _ in range(3):
        breaker.record_failure()
    clock.now += 30
    assert breaker.allow()
    assert not breaker.allow()


def test_successful_trial_closes_the_breaker(clock: FakeClock) -> None:
    breaker = _breaker(clock)
    for _ in range(3):
        breaker.record_failure()
    clock.now += 30
    assert breaker.allow()
    breaker.record_success()
    assert breaker.state is BreakerState.CLOSED
    assert breaker.allow()


def test_failed_trial_reopens_for_a_new_cooldown(clock: FakeClock) -> None:
    breaker = _breaker(clock)
    for _ in range(3):
        breaker.record_failure()
    clock.now += 30
    assert breaker.allow()
    breaker.record_failure()
    assert breaker.state is BreakerState.OPEN
    clock.now += 29
    assert not breaker.allow()
    clock.now += 1
    assert breaker.allow()


def test_bucket_allows_a_burst_up_to_capacity_then_refuses(clock: FakeClock) -> None:
    bucket = TokenBucket(rate_per_minute=60, capacity=3, clock=clock)
    assert [bucket.try_acquire() for _ in range(4)] == [True, True, True, False]


def test_bucket_refills_at_the_configured_rate(clock: FakeClock) -> None:
    bucket = TokenBucket(rate_per_minute=60, capacity=1, clock=clock)
    assert bucket.try_acquire()
    assert not bucket.try_acquire()
    assert bucket.seconds_until_available() == pytest.approx(1.0)
    clock.now += 0.5
    assert not bucket.try_acquire()
    clock.now += 0.5
    assert bucket.try_acquire()


def test_bucket_never_stores_more_than_capacity(clock: FakeClock) -> None:
    bucket = TokenBucket(rate_per_minute=600, capacity=2, clock=clock)
    clock.now += 3600
    assert [bucket.try_acquire() for _ in range(3)] == [True, True, False]


def test_default_capacity_is_ten_seconds_of_rate_and_at_least_one(clock: FakeClock) -> None:
    assert TokenBucket(rate_per_minute=600, clock=clock).capacity == 100
    assert TokenBucket(rate_per_minute=1, clock=clock).capacity == 1


def test_health_snapshot_reports_rate_latency_and_last_error(clock: FakeClock) -> None:
    health = ProviderHealth(
        "ollama", breaker=_breaker(clock), bucket=TokenBucket(rate_per_minute=60, clock=clock), clock=clock
    )
    for latency in (0.1, 0.3, 0.2):
        health.record_success(latency)
    health.record_failure(ConnectionError("refused"))
    snap = health.snapshot()
    assert snap["calls"] == 4
    assert snap["success_rate"] == 0.75
    assert snap["p50_latency_ms"] == 200.0
    assert snap["consecutive_failures"] == 1
    assert snap["last_error"] == "ConnectionError: refused"
    assert snap["state"] == "closed"


def test_repeated_failures_show_as_open_and_unhealthy(clock: FakeClock) -> None:
    health = ProviderHealth(
        "x", breaker=_breaker(clock, threshold=2), bucket=TokenBucket(rate_per_minute=60, clock=clock), clock=clock
    )
    health.record_failure(TimeoutError("t"))
    health.record_failure(TimeoutError("t"))
    snap = health.snapshot()
    assert (snap["state"], snap["healthy"], snap["success_rate"]) == ("open", False, 0.0)


def test_registry_reports_the_chain_in_order(clock: FakeClock) -> None:
    registry = HealthRegistry(clock=clock)
    for name in ("llamacpp", "ollama"):
        registry.get(name, failure_threshold=3, cooldown_seconds=30, rate_per_minute=60)
    registry.set_chain(["ollama", "llamacpp"])
    report = registry.report()
    assert [(r["name"], r["position"]) for r in report] == [("ollama", 0), ("llamacpp", 1)]


def test_registry_returns_the_same_record_for_a_name(clock: FakeClock) -> None:
    registry = HealthRegistry(clock=clock)
    first = registry.get("a", failure_threshold=3, cooldown_seconds=30, rate_per_minute=60)
    assert registry.get("a", failure_threshold=9, cooldown_seconds=1, rate_per_minute=1) is first
