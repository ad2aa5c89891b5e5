"""The in-process app of tests/unit/api (real routes, middleware and SQLite; fake agent and RAG), built once per
module so a matrix of hundreds of requests does not pay for an app and three argon2 sign-ups per request."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from backend.api import services as services_module
from backend.api.app import create_app
from backend.api.deps import get_agent, get_documents, get_optional_agent
from backend.core.settings import Settings
from tests.unit.api.conftest import FakeAgent, FakeDocuments
from tests.unit.conftest import PASSWORD

PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c4890000000d4944415478da63f8cfc0f01f0005"
    "0001ff5a0e8a9c0000000049454e44ae426082"
)
"""A valid 1x1 PNG (figures in runs)."""


def hardened_settings(data_dir: Path, **overrides: Any) -> Settings:
    """Unit-rig settings without the per-user request limit (a matrix sends hundreds of requests a minute)."""
    values: dict[str, Any] = {"data_dir": data_dir, "llm_providers": ["fake"], "jwt_secret": "h" * 48,
                              "rate_limit_per_minute": 1_000_000, **overrides}
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@contextmanager
def inprocess_app(settings: Settings, agent: Any = None, *,
                  strict: bool = True) -> Iterator[tuple[FastAPI, TestClient]]:
    """The started app and its client; on exit, proves no request reached the catch-all 500 handler.

    `strict=False` (for known open findings) answers server errors as 500 responses instead of raising them in
    the test, and skips that proof."""
    agent = agent or FakeAgent(workdir=settings.sessions_dir)
    documents = FakeDocuments(settings=settings)

    async def no_agent(*args: Any) -> tuple[None, str]:
        return None, "agent disabled in in-process tests"

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(services_module, "_build_sandbox", lambda settings: None)
        patch.setattr(services_module, "_build_agent", no_agent)
        app = create_app(settings)
        app.dependency_overrides[get_agent] = lambda: agent
        app.dependency_overrides[get_optional_agent] = lambda: agent
        app.dependency_overrides[get_documents] = lambda: documents
        with TestClient(app, raise_server_exceptions=strict) as client:
            yield app, client
        assert not strict or app.state.unexpected_errors == 0, "a request hit the unexpected-error handler"


def sign_up(client: TestClient, username: str) -> tuple[dict[str, str], dict[str, Any]]:
    """Register and log in: (bearer headers, the token response)."""
    made = client.post("/api/auth/register", json={"username": username, "password": PASSWORD})
    assert made.status_code == 201, made.text
    tokens = client.post("/api/auth/login", json={"username": username, "password": PASSWORD}).json()
    return {"Authorization": f"Bearer {tokens['access_token']}"}, {**tokens, "user_id": made.json()["id"]}
