"""Load test of the HTTP API on a real uvicorn: 20 users each log in, upload a CSV and stream 3 chat turns.

The model is the `fake` provider (instant), so the figures measure the server itself: auth (argon2), upload
parsing, the agent graph, SQLite writes and SSE. Meanwhile /api/health is polled; its p99 must stay under 100 ms
(the event loop never blocks on the model or the database). The baseline is /api/health on the idle server,
measured in the same run. Each round uses fresh users; figures are medians over the rounds.

    .venv/bin/python benchmarks/api_load.py [--users 20] [--turns 3] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
PASSWORD = "load-test-password"
CSV = b"region,revenue,units\n" + b"".join(f"R{i % 4},{100 + i},{i % 7}\n".encode() for i in range(200))
QUESTIONS = ("How many rows are there?", "hello again", "ok, thanks!")
"""Turn 1 is a data question on the upload (router -> ReAct -> python_coder -> sandbox, driven by the echoing fake
model, so the coder retries until its limit); later turns are small talk (router -> direct answer)."""
HEALTH_INTERVAL_SECONDS = 0.05
HEALTH_GOAL_MS = 100.0
STARTUP_SECONDS = 180


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(data_dir: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {**os.environ, "APP_PORT": str(port), "APP_DATA_DIR": str(data_dir), "APP_LLM_PROVIDERS": "fake",
           "APP_JWT_SECRET": secrets.token_urlsafe(48), "APP_SANDBOX_POOL_SIZE": "0", "APP_LOG_LEVEL": "WARNING",
           # the provider rate limit protects real model servers; the fake model is free, and 20 users' coder
           # retries exceed the default 600 calls/min
           "APP_PROVIDER_RATE_PER_MINUTE": "100000"}
    log = (data_dir / "server.log").open("wb")
    process = subprocess.Popen([sys.executable, str(ROOT / "run_backend.py")], cwd=ROOT, env=env,
                               stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + STARTUP_SECONDS
    while True:
        try:
            if httpx.get(f"{url}/api/health", timeout=2).status_code == 200:
                return process, url
        except httpx.HTTPError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise SystemExit(f"server did not start; see {data_dir / 'server.log'}")
        time.sleep(0.5)


class Recorder:
    def __init__(self) -> None:
        self.latency: dict[str, list[float]] = defaultdict(list)
        self.errors: list[str] = []
        self.requests = 0

    def ok(self, kind: str, started: float) -> None:
        self.latency[kind].append((time.perf_counter() - started) * 1000)
        self.requests += 1

    def fail(self, kind: str, detail: str) -> None:
        self.errors.append(f"{kind}: {detail}"[:200])
        self.requests += 1


async def stream_turn(client: httpx.AsyncClient, body: dict[str, object]) -> dict[str, str]:
    done: dict[str, str] = {}
    async with client.stream("POST", "/api/chat", json=body, params={"stream": "true"}) as reply:
        if reply.status_code != 200:
            raise RuntimeError(f"HTTP {reply.status_code}")
        event = ""
        async for line in reply.aiter_lines():
            if line.startswith("event:"):
                event = line.removeprefix("event:").strip()
            elif line.startswith("data:") and event == "done":
                done = json.loads(line.removeprefix("data:").strip())
    if done.get("status") != "done":
        error = ""
        if done.get("run_id"):
            error = (await client.get(f"/api/runs/{done['run_id']}")).json().get("error") or ""
        raise RuntimeError(f"run ended {done.get('status', 'without a done event')}: {error}")
    return done


async def user_session(url: str, username: str, turns: int, rec: Recorder) -> None:
    async with httpx.AsyncClient(base_url=url, timeout=120) as client:
        started = time.perf_counter()
        reply = await client.post("/api/auth/login", json={"username": username, "password": PASSWORD})
        if reply.status_code != 200:
            rec.fail("login", str(reply.status_code))
            return
        rec.ok("login", started)
        client.headers["Authorization"] = f"Bearer {reply.json()['access_token']}"
        started = time.perf_counter()
        reply = await client.post("/api/upload", files=[("files", ("sales.csv", CSV, "text/csv"))])
        if reply.status_code != 201:
            rec.fail("upload", str(reply.status_code))
            return
        rec.ok("upload", started)
        body: dict[str, object] = {"message": QUESTIONS[0], "files": [reply.json()["files"][0]["id"]]}
        for turn in range(turns):
            started = time.perf_counter()
            try:
                done = await stream_turn(client, body)
            except (RuntimeError, httpx.HTTPError) as exc:
                rec.fail("chat", str(exc))
                return
            rec.ok("chat", started)
            body = {"message": QUESTIONS[(turn + 1) % len(QUESTIONS)], "conversation_id": done["conversation_id"]}


def poll_health(url: str, stop: Any, out: Any) -> None:
    """Runs in its own process, so the load generator's own CPU use does not inflate the health timings."""
    samples: list[float] = []
    with httpx.Client(base_url=url, timeout=10) as client:
        while not stop.is_set():
            started = time.perf_counter()
            if client.get("/api/health").status_code == 200:
                samples.append((time.perf_counter() - started) * 1000)
            time.sleep(HEALTH_INTERVAL_SECONDS)
    out.put(samples)


class HealthPoller:
    def __init__(self, url: str) -> None:
        self._stop, self._out = mp.Event(), mp.Queue()
        self._process = mp.Process(target=poll_health, args=(url, self._stop, self._out), daemon=True)

    def __enter__(self) -> HealthPoller:
        self._process.start()
        return self

    def stop(self) -> list[float]:
        self._stop.set()
        samples: list[float] = self._out.get(timeout=60)
        self._process.join(timeout=10)
        return samples

    def __exit__(self, *exc: object) -> None:
        if self._process.is_alive():
            self._process.kill()


async def register(url: str, names: list[str]) -> None:
    async with httpx.AsyncClient(base_url=url, timeout=120) as client:
        for name in names:
            reply = await client.post("/api/auth/register", json={"username": name, "password": PASSWORD})
            reply.raise_for_status()


def idle_health(url: str, seconds: float = 5.0) -> list[float]:
    with HealthPoller(url) as poller:
        time.sleep(seconds)
        return poller.stop()


async def one_round(url: str, round_no: int, users: int, turns: int) -> dict[str, float]:
    names = [f"load{round_no}u{i}" for i in range(users)]
    await register(url, names)
    rec = Recorder()
    with HealthPoller(url) as poller:
        started = time.perf_counter()
        await asyncio.gather(*(user_session(url, name, turns, rec) for name in names))
        wall = time.perf_counter() - started
        health = poller.stop()
    every = [v for values in rec.latency.values() for v in values]
    figures = {"wall_s": wall, "requests": rec.requests, "errors": len(rec.errors),
               "throughput_rps": rec.requests / wall, "sessions_per_s": users / wall,
               "p50_ms": percentile(every, 50), "p99_ms": percentile(every, 99),
               "health_p50_ms": percentile(health, 50), "health_p99_ms": percentile(health, 99),
               "health_max_ms": max(health, default=float("nan")), "health_samples": len(health)}
    for kind in ("login", "upload", "chat"):
        figures[f"{kind}_p50_ms"] = percentile(rec.latency[kind], 50)
        figures[f"{kind}_p99_ms"] = percentile(rec.latency[kind], 99)
    for error in rec.errors[:5]:
        print(f"  error: {error}")
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--turns", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="api-load-") as tmp:
        process, url = start_server(Path(tmp))
        try:
            baseline = idle_health(url)
            rounds = []
            for n in range(args.rounds):
                figures = asyncio.run(one_round(url, n, args.users, args.turns))
                rounds.append(figures)
                print(f"round {n + 1}: {figures['requests']:.0f} requests in {figures['wall_s']:.1f} s, "
                      f"{figures['errors']:.0f} errors, health p99 {figures['health_p99_ms']:.1f} ms")
        finally:
            process.terminate()
            process.wait(timeout=30)
    median = {key: statistics.median(r[key] for r in rounds) for key in rounds[0]}
    idle_p99 = percentile(baseline, 99)
    load = os.getloadavg()
    print(f"\nAPI load: {args.users} users x (login + upload + {args.turns} streamed chat turns), fake model, "
          f"medians of {args.rounds} rounds; {os.cpu_count()} CPUs, load average {load[0]:.1f} / {load[1]:.1f}")
    print(f"  throughput        {median['throughput_rps']:.1f} req/s   "
          f"({median['sessions_per_s']:.2f} user sessions/s, {median['wall_s']:.1f} s per round)")
    print(f"  latency all       p50 {median['p50_ms']:.0f} ms   p99 {median['p99_ms']:.0f} ms")
    for kind in ("login", "upload", "chat"):
        print(f"  latency {kind:<9} p50 {median[f'{kind}_p50_ms']:.0f} ms   p99 {median[f'{kind}_p99_ms']:.0f} ms")
    worst = max(r["errors"] for r in rounds)
    print(f"  errors            {median['errors']:.0f} (goal 0; max over rounds {worst:.0f})")
    print(f"  /api/health idle  p50 {percentile(baseline, 50):.1f} ms   p99 {idle_p99:.1f} ms")
    print(f"  /api/health load  p50 {median['health_p50_ms']:.1f} ms   p99 {median['health_p99_ms']:.1f} ms   "
          f"max {median['health_max_ms']:.1f} ms   ({median['health_samples']:.0f} samples/round; "
          f"p99 {median['health_p99_ms'] / idle_p99:.1f}x idle; goal < {HEALTH_GOAL_MS:.0f} ms: "
          f"{'met' if median['health_p99_ms'] < HEALTH_GOAL_MS else 'MISSED'})")
    return 0 if max(r["errors"] for r in rounds) == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
