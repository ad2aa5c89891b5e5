"""Health report, request ids and the catch-all handler (a JSON 500 with a request id, never an HTML trace)."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from backend import __version__
from backend.api.deps import get_agent


def test_health_needs_no_token_and_reports_each_part(client: TestClient) -> None:
    response = client.get("/api/health")
    assert response.status_code == 200
    body = response.json()
    assert body["version"] == __version__
    assert set(body) == {"status", "version", "providers", "model", "sandbox", "agent"}
    assert body["sandbox"] == "unavailable"  # unit tests start no sandbox
    assert body["agent"] == "agent disabled in unit tests"
    assert body["status"] == "degraded"


def test_every_response_carries_a_request_id(client: TestClient) -> None:
    generated = client.get("/api/health").headers["X-Request-ID"]
    assert len(generated) == 32
    assert client.get("/api/health", headers={"X-Request-ID": "abc-123"}).headers["X-Request-ID"] == "abc-123"


def test_unexpected_errors_become_json_500_with_the_request_id(
    app: FastAPI, client: TestClient, alice: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken() -> Any:
        raise RuntimeError("secret internals")

    app.dependency_overrides[get_agent] = broken
    monkeypatch.setattr(client._transport, "raise_server_exceptions", False)
    response = client.post("/api/chat", headers={**alice, "X-Request-ID": "req-1"}, json={"message": "hi"})
    assert response.status_code == 500
    assert response.json() == {"detail": "internal server error", "request_id": "req-1"}
    assert "secret internals" not in response.text
    assert app.state.unexpected_errors == 1
    app.state.unexpected_errors = 0  # expected here; the client fixture's teardown checks the rest stayed at zero
