"""Unit tests never reach a real model or the network: sockets other than AF_UNIX are refused.

Also the pieces the in-process app rigs of tests/unit/api and tests/unit/ops share: started clients (each suite's
conftest provides its own `build_app`), a lifespan without the real sandbox or agent, and signing in.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from backend.core.settings import Settings

PASSWORD = "correct horse battery"


class NetworkAccessInUnitTest(RuntimeError):
    """Raised when a unit test tries to open a network connection."""


@pytest.fixture(autouse=True)
def _no_network(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    real_connect = socket.socket.connect

    def guarded_connect(self: socket.socket, address: Any) -> Any:
        if self.family == socket.AF_UNIX:
            return real_connect(self, address)
        raise NetworkAccessInUnitTest(f"unit tests may not connect to {address!r}")

    monkeypatch.setattr(socket.socket, "connect", guarded_connect)
    yield


@pytest.fixture(autouse=True)
def _no_model_requests(monkeypatch: pytest.MonkeyPatch) -> None:
    """Building a real LLM provider raises; a test that fakes the HTTP layer (respx) opts back in."""
    monkeypatch.setattr("backend.llm.guard.ALLOW_MODEL_REQUESTS", False)


def without_sandbox_or_agent(monkeypatch: pytest.MonkeyPatch) -> None:
    """No real sandbox or agent graph in unit tests: the lifespan builds neither, a fake agent is injected."""
    from backend.api import services as services_module  # here: suites without the app need not import it

    monkeypatch.setattr(services_module, "_build_sandbox", lambda settings: None)

    async def no_agent(*args: Any) -> tuple[None, str]:
        return None, "agent disabled in unit tests"

    monkeypatch.setattr(services_module, "_build_agent", no_agent)


def register_and_login(client: TestClient, username: str = "alice", *, register: bool = True) -> dict[str, str]:
    """Bearer headers for `username` (registered first unless it exists already, like a first-run admin)."""
    if register:
        made = client.post("/api/auth/register", json={"username": username, "password": PASSWORD})
        assert made.status_code == 201, made.text
    response = client.post("/api/auth/login", json={"username": username, "password": PASSWORD})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


@pytest.fixture
def login() -> Callable[..., dict[str, str]]:
    """`login(client, username, register=True)` → bearer headers."""
    return register_and_login


@pytest.fixture
def app_factory(build_app: Callable[[Settings], FastAPI]) -> Iterator[Callable[[Settings], TestClient]]:
    """Started clients for apps with the given settings; stopped at teardown, which proves no request reached
    the catch-all 500 handler."""
    started: list[TestClient] = []

    def start(settings: Settings) -> TestClient:
        test_client = TestClient(build_app(settings))
        test_client.__enter__()
        started.append(test_client)
        return test_client

    yield start
    for test_client in started:
        test_client.__exit__(None, None, None)
        assert test_client.app.state.unexpected_errors == 0  # type: ignore[attr-defined]
