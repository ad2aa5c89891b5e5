"""Request middleware: per-user rate limit (429 + Retry-After), runs-in-flight 429, request ids through a turn."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient

from backend.api.middleware import RUN_RETRY_AFTER_SECONDS, SlidingWindowLimiter
from backend.core.metrics import value
from backend.core.settings import Settings

Login = Callable[..., dict[str, str]]
StandIn = Any


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_limiter_allows_the_limit_then_says_how_long_to_wait() -> None:
    clock = Clock()
    limiter = SlidingWindowLimiter(limit=3, window=60.0, clock=clock)
    assert [limiter.hit("u") for _ in range(3)] == [0.0, 0.0, 0.0]
    clock.now += 20
    assert limiter.hit("u") == 40.0
    assert limiter.hit("other") == 0.0


def test_limiter_window_slides_instead_of_resetting() -> None:
    clock = Clock()
    limiter = SlidingWindowLimiter(limit=2, window=60.0, clock=clock)
    limiter.hit("u")
    clock.now += 30
    limiter.hit("u")
    clock.now += 31  # the first hit left the window, the second has not
    assert limiter.hit("u") == 0.0
    assert limiter.hit("u") > 0


def test_limiter_forgets_idle_clients_when_full() -> None:
    clock = Clock()
    limiter = SlidingWindowLimiter(limit=1, window=60.0, clock=clock, max_keys=2)
    limiter.hit("a")
    limiter.hit("b")
    clock.now += 61
    assert limiter.hit("c") == 0.0
    assert limiter.hit("a") == 0.0  # "a" was forgotten (idle), so it starts afresh


def test_a_user_over_the_limit_gets_429_with_retry_after(
    settings: Settings, app_factory: Callable[[Settings], TestClient], login: Login
) -> None:
    client = app_factory(settings.model_copy(update={"rate_limit_per_minute": 3}))
    alice = login(client, "alice")  # register + login came from the client address, not from alice
    statuses = [client.get("/api/auth/me", headers=alice).status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    refused = client.get("/api/auth/me", headers=alice)
    assert refused.status_code == 429
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert "3 requests per minute" in refused.json()["detail"]


def test_the_limit_is_per_user(
    settings: Settings, app_factory: Callable[[Settings], TestClient], login: Login
) -> None:
    client = app_factory(settings.model_copy(update={"rate_limit_per_minute": 3}))
    alice = login(client, "alice")
    for _ in range(3):
        client.get("/api/auth/me", headers=alice)
    assert client.get("/api/auth/me", headers=alice).status_code == 429
    bob = {"Authorization": alice["Authorization"]}  # same user, other header object: still limited
    assert client.get("/api/auth/me", headers=bob).status_code == 429
    client2 = app_factory(settings.model_copy(update={"rate_limit_per_minute": 3}))
    carol = login(client2, "carol")
    assert client2.get("/api/auth/me", headers=carol).status_code == 200


def test_health_and_metrics_are_never_rate_limited(
    settings: Settings, app_factory: Callable[[Settings], TestClient]
) -> None:
    client = app_factory(settings.model_copy(update={"rate_limit_per_minute": 1}))
    assert all(client.get("/api/health").status_code == 200 for _ in range(5))


def test_rate_limited_requests_are_counted_under_their_route(
    settings: Settings, app_factory: Callable[[Settings], TestClient]
) -> None:
    client = app_factory(settings.model_copy(update={"rate_limit_per_minute": 1}))
    before = (value("rate_limited_total", limit="requests_per_minute"),
              value("http_requests_total", method="GET", route="/api/runs/{run_id}", status="429"))
    client.get("/api/runs/r1")
    assert client.get("/api/runs/r2").status_code == 429
    after = (value("rate_limited_total", limit="requests_per_minute"),
             value("http_requests_total", method="GET", route="/api/runs/{run_id}", status="429"))
    assert after[0] - before[0] == 1 and after[1] - before[1] == 1


def test_too_many_runs_in_flight_is_429_with_retry_after(
    settings: Settings, app_factory: Callable[[Settings], TestClient], login: Login, stand_in: StandIn
) -> None:
    client = app_factory(settings.model_copy(update={"max_concurrent_runs": 1}))
    alice = login(client, "alice")
    stand_in.hold = asyncio.Event()
    first = threading.Thread(target=client.post, args=("/api/chat",), kwargs={"json": {"message": "long"},
                                                                              "headers": alice})
    first.start()
    try:
        deadline = time.monotonic() + 10
        while not stand_in.started and time.monotonic() < deadline:
            time.sleep(0.01)
        refused = client.post("/api/chat", json={"message": "another"}, headers=alice)
    finally:
        client.portal.call(stand_in.hold.set)  # type: ignore[union-attr]
        first.join(10)
    assert refused.status_code == 429
    assert refused.headers["Retry-After"] == str(RUN_RETRY_AFTER_SECONDS)
    assert "in flight" in refused.json()["detail"]


def test_log_lines_of_one_turn_share_one_request_id(
    settings: Settings, app_factory: Callable[[Settings], TestClient], login: Login
) -> None:
    client = app_factory(settings)
    alice = login(client, "alice")
    response = client.post("/api/chat", json={"message": "hello"}, headers={**alice, "X-Request-ID": "turn-req-1"})
    assert response.status_code == 200, response.text
    for handler in logging.getLogger().handlers:
        handler.flush()
    lines = [json.loads(line) for line in (settings.logs_dir / "server.jsonl").read_text().splitlines()]
    turn = [line for line in lines if line.get("request_id") == "turn-req-1"]
    loggers = {line["logger"] for line in turn}
    assert {"tests.agent", "backend.access"} <= loggers  # the agent's line and the access line
    agent_line = next(line for line in turn if line["logger"] == "tests.agent")
    assert agent_line["msg"] == f"turn {response.json()['run_id']} started"
    access = next(line for line in turn if line["logger"] == "backend.access")
    assert access["route"] == "/api/chat" and access["status"] == 200
    others = [line for line in lines if line["logger"] == "tests.agent" and line.get("request_id") != "turn-req-1"]
    assert others == []
