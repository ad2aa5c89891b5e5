"""A real server for the hardening suites: uvicorn in a subprocess on a temp data dir, real SQLite and sandbox,
with the scripted hostile model (tests/hardening/hostile_model.py) as the `fake` provider."""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[2]
HOSTILE_SERVER = ROOT / "tests" / "hardening" / "hostile_model.py"
STARTUP_SECONDS = 180.0
PASSWORD = "hardening-password-1"
BASE_ENV = {
    "APP_LLM_PROVIDERS": "fake",
    "APP_LOG_LEVEL": "WARNING",
    "APP_SANDBOX_POOL_SIZE": "0",
    "APP_RATE_LIMIT_PER_MINUTE": "100000",
    "APP_PROVIDER_RATE_PER_MINUTE": "1000000",
    "APP_CODER_MAX_EXECUTIONS": "2",
    "APP_CODER_VERIFY_MODE": "rules",
    "APP_CODE_TIMEOUT_SECONDS": "5",
    "APP_CLEANUP_INTERVAL_MINUTES": "0",
}
"""Fast, deterministic turns: the scripted model, cold sandbox workers, short code limits, no rate limits."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class LiveServer:
    data_dir: Path
    env: dict[str, str]
    url: str = ""
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0
    log_paths: list[Path] = field(default_factory=list)

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self) -> LiveServer:
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        self.starts += 1
        log_path = self.data_dir.parent / f"{self.data_dir.name}-server-{self.starts}.log"
        self.log_paths.append(log_path)
        env = {**os.environ, **self.env, "APP_PORT": str(port), "APP_DATA_DIR": str(self.data_dir)}
        with log_path.open("wb") as log:
            self.process = subprocess.Popen([sys.executable, str(HOSTILE_SERVER)], cwd=ROOT, env=env,
                                            stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + STARTUP_SECONDS
        while True:
            try:
                if httpx.get(f"{self.url}/api/health", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.process.kill()
                raise RuntimeError(f"server did not start:\n{self.log()[-3000:]}")
            time.sleep(0.25)

    def log(self) -> str:
        return "\n".join(p.read_text(errors="replace") for p in self.log_paths if p.exists())

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def healthy(self) -> bool:
        try:
            return self.alive() and httpx.get(f"{self.url}/api/health", timeout=10).status_code == 200
        except httpx.HTTPError:
            return False

    def sigkill(self) -> None:
        """No clean-up code runs: what a power cut or the OOM killer does."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def client(self, headers: Mapping[str, str] | None = None, timeout: float = 120.0) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers=dict(headers or {}), timeout=httpx.Timeout(timeout, connect=10))

    def sign_up(self, username: str) -> dict[str, str]:
        """Register `username` and return bearer headers for it."""
        with self.client() as http:
            made = http.post("/api/auth/register", json={"username": username, "password": PASSWORD})
            assert made.status_code == 201, made.text
            tokens = http.post("/api/auth/login", json={"username": username, "password": PASSWORD})
            assert tokens.status_code == 200, tokens.text
            return {"Authorization": f"Bearer {tokens.json()['access_token']}"}

    def query(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        """Read the server's own database (read-only), as an operator would after the fact."""
        uri = f"file:{self.data_dir / 'app.db'}?mode=ro"
        with closing(sqlite3.connect(uri, uri=True, timeout=30)) as db:
            return list(db.execute(sql, params))


def live_server(data_dir: Path, **env: str) -> Iterator[LiveServer]:
    """Start a server (stopped when the generator is closed); `env` adds or overrides APP_* settings."""
    server = LiveServer(data_dir=data_dir, env={**BASE_ENV, "APP_JWT_SECRET": secrets.token_urlsafe(48), **env})
    server.start()
    try:
        yield server
    finally:
        server.stop()


def sse_events(http: httpx.Client, body: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(event, data) pairs of a streamed chat turn, as they arrive."""
    with http.stream("POST", "/api/chat", json=body, params={"stream": "true"}) as reply:
        assert reply.status_code == 200, reply.read().decode(errors="replace")
        event = ""
        for line in reply.iter_lines():
            if line.startswith("event:"):
                event = line.removeprefix("event:").strip()
            elif line.startswith("data:"):
                yield event, json.loads(line.removeprefix("data:").strip())


def chat(server: LiveServer, headers: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
    """One non-streamed react turn (`body` adds the message and any other field); the reply must be 200."""
    with server.client(headers) as http:
        reply = http.post("/api/chat", json={"strategy": "react", **body})
        assert reply.status_code == 200, reply.text
        return dict(reply.json())


class StreamedTurn(threading.Thread):
    """A streamed chat turn in the background, so a test can act while it runs (kill a worker, start a hog).

    `coding` is set once its program is in the sandbox (or once the turn ended, so a waiter never hangs); any
    error lands in `error` for the test to report instead of dying unseen in the thread.
    """

    def __init__(self, server: LiveServer, headers: dict[str, str], body: dict[str, Any]) -> None:
        super().__init__(daemon=True)
        self.server, self.headers, self.body = server, headers, body
        self.coding = threading.Event()
        self.events: list[tuple[str, dict[str, Any]]] = []
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            with self.server.client(self.headers) as http:
                for event, data in sse_events(http, self.body):
                    self.events.append((event, data))
                    if event == "code":
                        self.coding.set()
        except BaseException as exc:  # reported by the test
            self.error = exc
        finally:
            self.coding.set()

    def ids(self) -> tuple[str, str]:
        """(conversation_id, run_id), from the turn's first event."""
        first = self.events[0][1]
        return first["conversation_id"], first["run_id"]

    def outcome(self) -> dict[str, Any]:
        """The `done` event's data; fails if the turn broke or never finished."""
        done = [d for e, d in self.events if e == "done"]
        assert self.error is None and done, f"turn broke: {self.error!r} {self.events[-3:]}"
        return done[-1]


def processes_mentioning(text: str) -> list[int]:
    """Pids whose command line contains `text` (e.g. a data dir: sandbox workers carry their paths)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                if text.encode() in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                continue
    return found
