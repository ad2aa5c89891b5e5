"""Browser tests: a real backend (scripted fake model) and the static UI server on free ports, driven by
Playwright through Debian's Chromium. Screenshots of every flow land in tests/e2e/artifacts/."""

from __future__ import annotations

import os
import re
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
STARTUP_SECONDS = 180.0
"""Backend start-up (imports, schema, sandbox pool) on a busy 2-core machine."""
MAX_UPLOAD_MB = 1
"""Small upload limit so the 'too large' message can be shown with a small file."""
DEMO_BACKEND = Path(__file__).resolve().parent / "demo_model.py"
"""Starts run_backend.py with the scripted demo model as the `fake` provider."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Servers:
    backend: str
    frontend: str
    data_dir: Path


def _wait_for(url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}:\n{log.read_text()[-4000:]}")
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"{url} did not answer within {STARTUP_SECONDS} s:\n{log.read_text()[-4000:]}")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="session")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    """Backend (fake model playing the demo script) and frontend, started once for the whole e2e session."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: run `make setup` (installs Debian's chromium)")
    if not (ROOT / "frontend" / "node_modules" / "marked").is_dir():
        pytest.fail("frontend libraries are missing: run `make setup` (npm ci in frontend/)")
    data_dir = tmp_path_factory.mktemp("e2e-data")
    backend_port, frontend_port = free_port(), free_port()
    env = {
        **os.environ,
        "APP_DATA_DIR": str(data_dir),
        "APP_PORT": str(backend_port),
        "APP_FRONTEND_PORT": str(frontend_port),
        "APP_LLM_PROVIDERS": "fake",
        "APP_JWT_SECRET": "e2e-" + "k" * 44,
        "APP_LOG_LEVEL": "WARNING",
        "APP_SANDBOX_POOL_SIZE": "0",
        "APP_MAX_UPLOAD_MB": str(MAX_UPLOAD_MB),
    }
    logs = ARTIFACTS / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    procs: list[subprocess.Popen[bytes]] = []
    try:
        for script, name in ((DEMO_BACKEND, "backend"), (ROOT / "run_frontend.py", "frontend")):
            log = logs / f"{name}.log"
            with log.open("wb") as out:
                procs.append(subprocess.Popen([sys.executable, str(script)], cwd=ROOT, env=env,
                                              stdout=out, stderr=subprocess.STDOUT))
        backend = f"http://127.0.0.1:{backend_port}"
        frontend = f"http://127.0.0.1:{frontend_port}"
        _wait_for(f"{backend}/api/health", procs[0], logs / "backend.log")
        _wait_for(f"{frontend}/config.js", procs[1], logs / "frontend.log")
        yield Servers(backend=backend, frontend=frontend, data_dir=data_dir)
    finally:
        for proc in procs:
            _stop(proc)


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Any, servers: Servers, request: pytest.FixtureRequest) -> Iterator[Any]:
    """A fresh browser context per test (own localStorage); console errors are collected on `page.errors`."""
    size = getattr(request, "param", None) or {"width": 1280, "height": 860}
    context = browser.new_context(viewport=size, accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(30_000)
    page.errors = []
    page.on("pageerror", lambda exc: page.errors.append(str(exc)))
    yield page
    context.close()


@pytest.fixture
def shot(page: Any) -> Callable[[str], Path]:
    """`shot(name)` saves a screenshot of the page as it is now to tests/e2e/artifacts/NAME.png."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)

    def take(name: str) -> Path:
        path = ARTIFACTS / f"{name}.png"
        page.screenshot(path=str(path))
        return path

    return take


@dataclass
class User:
    username: str
    password: str


@pytest.fixture
def user(servers: Servers, request: pytest.FixtureRequest) -> User:
    """A fresh account per test (registered through the API), so tests never see each other's conversations."""
    name = "u" + re.sub(r"\W", "", request.node.name)[-40:] + secrets.token_hex(3)
    created = User(username=name, password="e2e-password-1")
    reply = httpx.post(f"{servers.backend}/api/auth/register", json={"username": name, "password": created.password})
    reply.raise_for_status()
    return created


@pytest.fixture
def signed_in(page: Any, servers: Servers, user: User) -> Any:
    """The page, signed in through the form and showing the chat."""
    page.goto(servers.frontend)
    page.fill("#auth-username", user.username)
    page.fill("#auth-password", user.password)
    page.click("#auth-submit")
    page.wait_for_selector("#app-view:not([hidden])")
    page.wait_for_selector("#health[data-state=ok]")
    return page


@pytest.fixture(scope="session")
def sales_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("files") / "sales.csv"
    path.write_text(
        "region,month,revenue,units\n"
        "North,Jan,120.0,12\nSouth,Jan,95.5,10\nEast,Jan,143.2,15\nWest,Jan,88.0,9\n"
        "North,Feb,131.5,13\nSouth,Feb,101.0,11\nEast,Feb,150.8,16\nWest,Feb,92.3,9\n"
    )
    return path


@pytest.fixture(scope="session")
def policy_pdf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A one-page PDF with real (extractable) text, made with matplotlib."""
    import matplotlib

    matplotlib.use("Agg")
    matplotlib.rcParams["pdf.fonttype"] = 42
    import matplotlib.pyplot as plt

    path = tmp_path_factory.mktemp("files") / "travel-policy.pdf"
    page = plt.figure(figsize=(8.27, 11.69))
    page.text(0.08, 0.92, "Travel policy 2026", fontsize=20)
    page.text(0.08, 0.85, "Hotel costs: employees may claim up to 120 EUR per night.", fontsize=11)
    page.savefig(path, format="pdf")
    plt.close(page)
    return path
