"""Unit tests never reach a real model or the network: sockets other than AF_UNIX are refused."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest


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
