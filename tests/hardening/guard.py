"""Hardening tests reach no network beyond the loopback servers they start (the sandboxed payloads try; that is
the point, and their own processes are isolated by the sandbox)."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterator
from typing import Any

import pytest


class NetworkAccessInHardeningTest(RuntimeError):
    """A hardening test tried to reach a non-loopback address."""


def _loopback(address: Any) -> bool:
    host = address[0] if isinstance(address, tuple) and address else address
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(str(host)).is_loopback
    except ValueError:
        return False


@pytest.fixture(autouse=True)
def _loopback_only(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    real_connect = socket.socket.connect

    def guarded_connect(self: socket.socket, address: Any) -> Any:
        if self.family == socket.AF_UNIX or _loopback(address):
            return real_connect(self, address)
        raise NetworkAccessInHardeningTest(f"hardening tests may not connect to {address!r}")

    monkeypatch.setattr(socket.socket, "connect", guarded_connect)
    yield


@pytest.fixture(autouse=True)
def _no_model_requests(monkeypatch: pytest.MonkeyPatch) -> None:
    """In-process tests never build a real LLM provider (the live servers run the scripted `fake` one)."""
    monkeypatch.setattr("backend.llm.guard.ALLOW_MODEL_REQUESTS", False)
