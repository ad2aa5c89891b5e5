"""Load: 50 users chatting at once for a bounded time against a real uvicorn, counted back from the database.

Each user signs in and streams turns on one conversation until the time is up: the first turn runs a program
in the sandbox (50 sessions against a pool of 8 live interpreters: workers are evicted and restored), later ones
are small talk. Meanwhile /api/health is polled from another process (benchmarks/api_load.py's poller). Every
turn must end `done`; afterwards every user message and every answer is found in the database, one run per turn,
none left running. The health p99 is reported (the benchmark's goal is < 100 ms on an idle machine).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import httpx
import pytest

from benchmarks.api_load import HealthPoller, percentile, stream_turn
from tests.hardening.hostile_model import smuggle
from tests.hardening.live import PASSWORD, LiveServer, live_server
from tests.hardening.tally import Tally

pytestmark = pytest.mark.slow

USERS = 50
LOAD_SECONDS = 20.0
TURN_TIMEOUT_SECONDS = 120.0
HEALTH_P99_CEILING_MS = 2000.0
"""A sanity bound on a shared 2-core machine (the event loop must never block for seconds); the figure is reported."""
CATEGORY = "load"


@dataclass
class UserLog:
    name: str
    conversation_id: str = ""
    sent: int = 0
    done: int = 0
    errors: list[str] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    yield from live_server(tmp_path_factory.mktemp("load") / "data")


async def _register(url: str, names: list[str]) -> None:
    async with httpx.AsyncClient(base_url=url, timeout=TURN_TIMEOUT_SECONDS) as client:
        replies = await asyncio.gather(*(client.post("/api/auth/register", json={"username": n, "password": PASSWORD})
                                         for n in names))
    assert [r.status_code for r in replies] == [201] * len(names)


async def _user(url: str, log: UserLog, deadline: float) -> None:
    async with httpx.AsyncClient(base_url=url, timeout=TURN_TIMEOUT_SECONDS) as client:
        token = await client.post("/api/auth/login", json={"username": log.name, "password": PASSWORD})
        if token.status_code != 200:
            log.errors.append(f"login {token.status_code}")
            return
        client.headers["Authorization"] = f"Bearer {token.json()['access_token']}"
        while time.monotonic() < deadline:
            message = smuggle(f"print('user {log.name} total', {log.sent} * 7)") if log.sent == 0 else "hello"
            body: dict[str, object] = {"message": message, "strategy": "react" if log.sent == 0 else "auto"}
            if log.conversation_id:
                body["conversation_id"] = log.conversation_id
            started = time.perf_counter()
            log.sent += 1
            try:
                done = await stream_turn(client, body)
            except (RuntimeError, httpx.HTTPError) as exc:
                log.errors.append(f"turn {log.sent}: {type(exc).__name__}: {exc}"[:300])
                return
            log.latencies.append((time.perf_counter() - started) * 1000)
            log.conversation_id = done["conversation_id"]
            log.done += 1


def test_fifty_users_chat_at_once_without_errors_or_lost_messages(server: LiveServer, tally: Tally) -> None:
    tally.case(CATEGORY)
    logs = [UserLog(name=f"load{n:02d}") for n in range(USERS)]
    asyncio.run(_register(server.url, [log.name for log in logs]))
    with HealthPoller(server.url) as poller:
        started = time.monotonic()
        asyncio.run(_drive(server.url, logs, started + LOAD_SECONDS))
        wall = time.monotonic() - started
        health = poller.stop()
    sent, done = sum(log.sent for log in logs), sum(log.done for log in logs)
    errors = [f"{log.name}: {e}" for log in logs for e in log.errors]
    expected = {log.conversation_id: (log.sent, log.done) for log in logs if log.conversation_id}
    found: dict[str, tuple[int, int]] = {}
    for conversation_id, role, count in server.query(
            "SELECT conversation_id, role, COUNT(*) FROM messages GROUP BY conversation_id, role"):
        user, assistant = found.get(conversation_id, (0, 0))
        found[conversation_id] = (user + count, assistant) if role == "user" else (user, assistant + count)
    lost = sum(max(0, s - found.get(c, (0, 0))[0]) + max(0, d - found.get(c, (0, 0))[1])
               for c, (s, d) in expected.items())
    runs = dict(server.query("SELECT status, COUNT(*) FROM runs GROUP BY status"))
    latencies = [v for log in logs for v in log.latencies]
    figures = {"users": USERS, "seconds": wall, "turns": done, "errors": len(errors), "lost_messages": lost,
               "turns_per_s": done / wall, "turn_p50_ms": percentile(latencies, 50),
               "turn_p99_ms": percentile(latencies, 99), "health_p50_ms": percentile(health, 50),
               "health_p99_ms": percentile(health, 99), "health_samples": len(health)}
    for name, value in figures.items():
        tally.figure(CATEGORY, name, value)
    assert errors == [], errors[:5]
    assert done == sent and all(log.done >= 1 for log in logs), [(log.name, log.done) for log in logs]
    assert lost == 0 and found.keys() >= expected.keys(), (expected, found)
    assert all(found[c] == (s, d) for c, (s, d) in expected.items()), "messages beyond the turns sent"
    assert runs == {"done": done}, runs  # one run per turn, none failed or left running
    assert health and percentile(health, 99) < HEALTH_P99_CEILING_MS, figures
    assert server.healthy()


async def _drive(url: str, logs: list[UserLog], deadline: float) -> None:
    await asyncio.gather(*(_user(url, log, deadline) for log in logs))
