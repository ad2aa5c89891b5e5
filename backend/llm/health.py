"""Per-provider health: success rate, p50 latency, circuit breaker and token-bucket rate limit.

One process-wide `HealthRegistry` backs `provider_report()` for GET /api/health; tests build their own
registry with a fake clock.
"""

from __future__ import annotations

import math
import statistics
import threading
import time
from collections import deque
from collections.abc import Callable
from enum import StrEnum
from typing import Any

from backend.llm.errors import short_error

Clock = Callable[[], float]

LATENCY_WINDOW = 200
"""Recent successful call latencies kept per provider for the p50."""
RATE_BURST_SECONDS = 10.0
"""Token-bucket capacity, in seconds' worth of the configured rate (at least one call)."""


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitBreaker:
    """closed → open after `failure_threshold` consecutive failures → half-open after `cooldown_seconds`.

    Half-open lets exactly one trial call through: success closes the breaker, failure re-opens it.
    """

    def __init__(self, *, failure_threshold: int, cooldown_seconds: float, clock: Clock = time.monotonic) -> None:
        self.failure_threshold = failure_threshold
        self.cooldown_seconds = cooldown_seconds
        self._clock = clock
        self._failures = 0
        self._opened_at: float | None = None
        self._trial_in_flight = False
        self._lock = threading.Lock()

    @property
    def state(self) -> BreakerState:
        with self._lock:
            return self._state()

    def _state(self) -> BreakerState:
        if self._opened_at is None:
            return BreakerState.CLOSED
        if self._clock() - self._opened_at >= self.cooldown_seconds:
            return BreakerState.HALF_OPEN
        return BreakerState.OPEN

    def allow(self) -> bool:
        """Whether a call may start now; in half-open this claims the single trial slot."""
        with self._lock:
            state = self._state()
            if state is BreakerState.CLOSED:
                return True
            if state is BreakerState.HALF_OPEN and not self._trial_in_flight:
                self._trial_in_flight = True
                return True
            return False

    def record_success(self) -> None:
        with self._lock:
            self._failures = 0
            self._opened_at = None
            self._trial_in_flight = False

    def record_failure(self) -> None:
        with self._lock:
            self._failures += 1
            if self._trial_in_flight or self._failures >= self.failure_threshold:
                self._opened_at = self._clock()
            self._trial_in_flight = False


class TokenBucket:
    """Allows `rate_per_minute` calls on average with bursts up to `capacity`."""

    def __init__(self, *, rate_per_minute: float, capacity: float | None = None, clock: Clock = time.monotonic) -> None:
        self.rate_per_second = rate_per_minute / 60.0
        default_capacity = max(1.0, math.floor(self.rate_per_second * RATE_BURST_SECONDS))
        self.capacity = capacity if capacity is not None else default_capacity
        self._clock = clock
        self._tokens = self.capacity
        self._updated = clock()
        self._lock = threading.Lock()

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(self.capacity, self._tokens + (now - self._updated) * self.rate_per_second)
        self._updated = now

    def try_acquire(self) -> bool:
        with self._lock:
            self._refill()
            if self._tokens >= 1.0:
                self._tokens -= 1.0
                return True
            return False

    def seconds_until_available(self) -> float:
        with self._lock:
            self._refill()
            return max(0.0, (1.0 - self._tokens) / self.rate_per_second)


class ProviderHealth:
    """Counters and guards of one provider; a "call" is one turn including its retries."""

    def __init__(
        self, name: str, *, breaker: CircuitBreaker, bucket: TokenBucket, clock: Clock = time.monotonic
    ) -> None:
        self.name = name
        self.breaker = breaker
        self.bucket = bucket
        self._clock = clock
        self.successes = 0
        self.failures = 0
        self.retries = 0
        self.rate_limited = 0
        self.consecutive_failures = 0
        self.last_error: str | None = None
        self.last_error_at: float | None = None
        self._latencies: deque[float] = deque(maxlen=LATENCY_WINDOW)
        self._lock = threading.Lock()

    def record_success(self, latency_seconds: float) -> None:
        with self._lock:
            self.successes += 1
            self.consecutive_failures = 0
            self._latencies.append(latency_seconds)
        self.breaker.record_success()

    def record_failure(self, error: BaseException) -> None:
        with self._lock:
            self.failures += 1
            self.consecutive_failures += 1
            self.last_error = short_error(error)
            self.last_error_at = time.time()
        self.breaker.record_failure()

    def record_retry(self) -> None:
        with self._lock:
            self.retries += 1

    def record_rate_limited(self) -> None:
        with self._lock:
            self.rate_limited += 1

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            calls = self.successes + self.failures
            latencies = list(self._latencies)
            return {
                "name": self.name,
                "state": self.breaker.state.value,
                "healthy": self.breaker.state is not BreakerState.OPEN,
                "calls": calls,
                "success_rate": round(self.successes / calls, 4) if calls else None,
                "p50_latency_ms": round(statistics.median(latencies) * 1000, 1) if latencies else None,
                "consecutive_failures": self.consecutive_failures,
                "retries": self.retries,
                "rate_limited": self.rate_limited,
                "last_error": self.last_error,
                "last_error_at": self.last_error_at,
            }


class HealthRegistry:
    """Health of every provider by name, shared by all chains built in this process."""

    def __init__(self, *, clock: Clock = time.monotonic) -> None:
        self._clock = clock
        self._providers: dict[str, ProviderHealth] = {}
        self._chain: list[str] = []
        self._lock = threading.Lock()

    def get(
        self, name: str, *, failure_threshold: int, cooldown_seconds: float, rate_per_minute: float
    ) -> ProviderHealth:
        """The provider's health record, created with these limits on first use."""
        with self._lock:
            if name not in self._providers:
                self._providers[name] = ProviderHealth(
                    name,
                    breaker=CircuitBreaker(
                        failure_threshold=failure_threshold, cooldown_seconds=cooldown_seconds, clock=self._clock
                    ),
                    bucket=TokenBucket(rate_per_minute=rate_per_minute, clock=self._clock),
                    clock=self._clock,
                )
            return self._providers[name]

    def set_chain(self, names: list[str]) -> None:
        """Remember the order of the most recently built chain, for the report."""
        with self._lock:
            self._chain = list(names)

    def report(self) -> list[dict[str, Any]]:
        with self._lock:
            chain = list(self._chain)
            providers = dict(self._providers)
        order = chain + [name for name in providers if name not in chain]
        rows = []
        for position, name in enumerate(order):
            row = providers[name].snapshot() if name in providers else {"name": name, "state": "closed", "calls": 0}
            row["position"] = position if name in chain else None
            rows.append(row)
        return rows


_DEFAULT_REGISTRY = HealthRegistry()


def default_registry() -> HealthRegistry:
    """The process-wide registry used by `get_chat_model` unless another is passed."""
    return _DEFAULT_REGISTRY


def provider_report() -> list[dict[str, Any]]:
    """Provider chain with health figures for GET /api/health (first = tried first)."""
    return _DEFAULT_REGISTRY.report()
