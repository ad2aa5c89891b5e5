"""Cost of the operations middleware (request id, rate limit, metrics, access log) per API request.

Times GET /api/auth/me (token check + one DB read) on the real app with and without `OperationsMiddleware`,
alternating the two in short rounds (so load from other processes hits both alike); prints medians over the
rounds and the median of the per-round ratios.

    .venv/bin/python benchmarks/ops_overhead.py [--requests 100] [--rounds 15]
"""

from __future__ import annotations

import argparse
import logging
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path

from fastapi.testclient import TestClient

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import backend.api.services as services_module
from backend.api.app import create_app
from backend.api.middleware import OperationsMiddleware
from backend.core.settings import Settings

PASSWORD = "correct horse battery"


async def _no_agent(*args: object) -> tuple[None, str]:
    return None, "agent not needed"


def build(data_dir: Path, *, with_ops: bool) -> TestClient:
    settings = Settings(_env_file=None, data_dir=data_dir, llm_providers=["fake"],  # type: ignore[call-arg]
                        jwt_secret=secrets.token_urlsafe(48), rate_limit_per_minute=10**9, log_level="INFO",
                        cleanup_interval_minutes=0)
    app = create_app(settings)
    if not with_ops:
        app.user_middleware = [m for m in app.user_middleware if m.cls is not OperationsMiddleware]
    client = TestClient(app)
    client.__enter__()
    return client


def per_request_us(client: TestClient, headers: dict[str, str], count: int) -> float:
    started = time.perf_counter()
    for _ in range(count):
        response = client.get("/api/auth/me", headers=headers)
        assert response.status_code == 200
    return (time.perf_counter() - started) / count * 1e6


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    services_module._build_sandbox = lambda settings: None  # type: ignore[assignment]
    services_module._build_agent = _no_agent  # type: ignore[assignment]
    figures: dict[bool, list[float]] = {True: [], False: []}
    with tempfile.TemporaryDirectory() as tmp:
        clients = {flag: build(Path(tmp) / f"data-{flag}", with_ops=flag) for flag in (True, False)}
        for handler in logging.getLogger().handlers:
            if getattr(handler, "_ops_handler", False) and not hasattr(handler, "baseFilename"):
                logging.getLogger().removeHandler(handler)  # keep the JSON file log, drop the console
        headers = {}
        for flag, client in clients.items():
            client.post("/api/auth/register", json={"username": "bench", "password": PASSWORD})
            token = client.post("/api/auth/login", json={"username": "bench", "password": PASSWORD}).json()
            headers[flag] = {"Authorization": f"Bearer {token['access_token']}"}
            per_request_us(client, headers[flag], 50)  # warm-up
        for _ in range(args.rounds):
            for flag in (False, True):
                figures[flag].append(per_request_us(clients[flag], headers[flag], args.requests))
        for client in clients.values():
            client.__exit__(None, None, None)
    base, ops = statistics.median(figures[False]), statistics.median(figures[True])
    ratio = statistics.median(o / b for o, b in zip(figures[True], figures[False], strict=True))
    print(f"GET /api/auth/me, {args.requests} requests x {args.rounds} rounds (medians; file log on, console off)")
    print(f"  without ops middleware: {base:8.1f} us/request")
    print(f"  with ops middleware:    {ops:8.1f} us/request  (JSON access log line, metrics, rate limit, ids)")
    print(f"  overhead: {ops - base:+.1f} us/request; median per-round ratio {ratio:.3f}x")


if __name__ == "__main__":
    main()
