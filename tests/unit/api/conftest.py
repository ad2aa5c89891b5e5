"""API test rig: the real app on a tmp SQLite database, with a scripted fake agent and a fake RAG index."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from backend.agents.events import (
    ErrorEvent,
    FigureEvent,
    FinalAnswer,
    RunEvent,
    RunStarted,
    StepFinished,
    StepStarted,
    TokenEvent,
    ToolCall,
)
from backend.api.app import create_app
from backend.api.deps import get_agent, get_documents, get_optional_agent
from backend.core.settings import Settings
from backend.storage.file_index import DocumentIndex
from tests.unit.conftest import register_and_login, without_sandbox_or_agent


@dataclass
class FakeAgent:
    """Stands in for AgentService: emits a plausible event sequence, optionally a figure, a hold or a failure."""

    answer: str = "The mean is 2.5."
    figure: bytes | None = None
    workdir: Path | None = None
    hold: asyncio.Event | None = None
    """When set, the run waits on it after its first step (to test stop/cancel)."""
    fail_with: Exception | None = None
    error_event: str | None = None
    calls: list[dict[str, Any]] = field(default_factory=list)
    holding: list[str] = field(default_factory=list)
    at_hold: asyncio.Event = field(default_factory=asyncio.Event)
    cancelled: list[str] = field(default_factory=list)
    llm: Any = None
    """The provider chain `/v1` pass-through models use (AgentService.llm); None lists no `llm-*` models."""

    async def run(self, *, run_id: str, conversation_id: str, user_id: str, message: str,
                  strategy: str | None = None, files: Mapping[str, Path] = {}) -> AsyncIterator[RunEvent]:
        self.calls.append({"run_id": run_id, "conversation_id": conversation_id, "user_id": user_id,
                           "message": message, "strategy": strategy, "files": dict(files)})
        yield RunStarted(run_id=run_id, conversation_id=conversation_id, strategy=strategy or "react")
        yield StepStarted(run_id=run_id, step=1, node="act", tool="python_coder", input=message)
        yield ToolCall(run_id=run_id, tool="python_coder", args={"task": message})
        if self.hold is not None:
            self.holding.append(run_id)
            self.at_hold.set()
            try:
                await self.hold.wait()
            except asyncio.CancelledError:
                self.cancelled.append(run_id)
                raise
        if self.fail_with is not None:
            raise self.fail_with
        if self.figure is not None and self.workdir is not None:
            target = self.workdir / conversation_id / "plot.png"
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(self.figure)
            yield FigureEvent(run_id=run_id, artifact_id=f"{conversation_id}/plot.png", name="plot.png")
        yield StepFinished(run_id=run_id, step=1, node="act", tool="python_coder", output="2.5", duration_ms=5.0)
        if self.error_event is not None:
            yield ErrorEvent(run_id=run_id, message=self.error_event)
            return
        for word in self.answer.split(" "):
            yield TokenEvent(run_id=run_id, text=word + " ")
        yield FinalAnswer(run_id=run_id, text=self.answer, strategy="react")


class FakeDocuments(DocumentIndex):
    """Real metadata parsing, fake RAG: records what would be indexed or forgotten."""

    def __init__(self, *, settings: Settings) -> None:
        super().__init__(settings=settings)
        self.indexed: list[str] = []
        self.forgotten: list[str] = []

    def index(self, *, user_id: str, file_id: str, path: Path, name: str) -> dict[str, Any]:
        self.indexed.append(file_id)
        return {"indexed": True, "chunks": 1}

    def forget(self, *, user_id: str, file_id: str) -> None:
        self.forgotten.append(file_id)


@pytest.fixture
def agent(settings: Settings) -> FakeAgent:
    return FakeAgent(workdir=settings.sessions_dir)


@pytest.fixture
def documents(settings: Settings) -> FakeDocuments:
    return FakeDocuments(settings=settings)


@pytest.fixture
def build_app(
    agent: FakeAgent, documents: FakeDocuments, monkeypatch: pytest.MonkeyPatch
) -> Callable[[Settings], FastAPI]:
    """The real app with the fake agent and documents injected (see `without_sandbox_or_agent`)."""
    without_sandbox_or_agent(monkeypatch)

    def build(settings: Settings) -> FastAPI:
        application = create_app(settings)
        application.dependency_overrides[get_agent] = lambda: agent
        application.dependency_overrides[get_optional_agent] = lambda: agent
        application.dependency_overrides[get_documents] = lambda: documents
        return application

    return build


@pytest.fixture
def app(settings: Settings, build_app: Callable[[Settings], FastAPI]) -> FastAPI:
    return build_app(settings)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    """A client whose teardown proves no request reached the catch-all 500 handler."""
    with TestClient(app) as test_client:
        yield test_client
        assert app.state.unexpected_errors == 0, "a request hit the unexpected-error handler"


@pytest.fixture
def signup(client: TestClient) -> Callable[[str], dict[str, str]]:
    """Register a user and return bearer headers for them."""
    return lambda username: register_and_login(client, username)


@pytest.fixture
def alice(signup: Callable[[str], dict[str, str]]) -> dict[str, str]:
    return signup("alice")


@pytest.fixture
def bob(signup: Callable[[str], dict[str, str]]) -> dict[str, str]:
    return signup("bob")
