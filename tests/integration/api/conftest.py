"""The real server for the API integration tests: uvicorn in a subprocess, real SQLite and sandbox, and the
scripted demo model (tests/e2e/demo_model.py, it writes real pandas code) as the `fake` provider."""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[3]
SERVER_COMMAND = [sys.executable, str(ROOT / "tests" / "e2e" / "demo_model.py")]
"""run_backend.py with the scripted demo model installed as the `fake` provider (it writes real pandas code)."""
STARTUP_SECONDS = 180
CSV = b"region,revenue\nNorth,120\nSouth,95.5\nEast,143.2\nNorth,131.5\nSouth,101\nEast,150.8\n"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """One server per test module, signed in as the first-run admin from settings."""
    port = _free_port()
    admin_password = secrets.token_urlsafe(16)
    data_dir = tmp_path_factory.mktemp("live-api")
    env = {**os.environ, "APP_PORT": str(port), "APP_DATA_DIR": str(data_dir), "APP_LLM_PROVIDERS": "fake",
           "APP_JWT_SECRET": secrets.token_urlsafe(48), "APP_SANDBOX_POOL_SIZE": "0",
           "APP_ADMIN_USERNAME": "admin", "APP_ADMIN_PASSWORD": admin_password, "APP_LOG_LEVEL": "WARNING"}
    log_path = data_dir / "server.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(SERVER_COMMAND, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + STARTUP_SECONDS
        while True:
            try:
                if httpx.get(f"{url}/api/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                raise RuntimeError(f"server did not start:\n{log_path.read_text()[-3000:]}")
            time.sleep(0.5)
        try:
            yield {"url": url, "password": admin_password}
        finally:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()


@pytest.fixture
def client(server: dict[str, str]) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server["url"], timeout=httpx.Timeout(300, connect=10)) as http:
        form = {"username": "admin", "password": server["password"], "grant_type": "password"}
        token = http.post("/api/auth/login", data=form)
        assert token.status_code == 200, token.text
        http.headers["Authorization"] = f"Bearer {token.json()['access_token']}"
        yield http


def upload_csv(client: httpx.Client) -> str:
    reply = client.post("/api/upload", files=[("files", ("sales.csv", CSV, "text/csv"))])
    assert reply.status_code == 201, reply.text
    return str(reply.json()["files"][0]["id"])
