"""Ops test rig: the real app on a tmp data dir with a scripted stand-in agent, plus database helpers."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from fastapi import FastAPI
from pydantic import SecretStr
from sqlalchemy.orm import Session, sessionmaker

from backend.agents.events import FinalAnswer, RunEvent, RunStarted, StepFinished, StepStarted
from backend.api.app import create_app
from backend.api.deps import get_agent
from backend.core.settings import Settings
from backend.storage.db import create_db_engine, init_schema, session_factory
from tests.unit.conftest import PASSWORD, without_sandbox_or_agent

ADMIN = "root"


@dataclass
class StandInAgent:
    """Emits a short turn; with `hold` set it waits mid-turn (a run in flight)."""

    hold: asyncio.Event | None = None
    started: list[str] = field(default_factory=list)

    async def run(self, *, run_id: str, conversation_id: str, user_id: str, message: str,
                  strategy: str | None = None, files: Mapping[str, Path] = {}) -> AsyncIterator[RunEvent]:
        self.started.append(run_id)
        logging.getLogger("tests.agent").info("turn %s started", run_id)
        yield RunStarted(run_id=run_id, conversation_id=conversation_id, strategy=strategy or "react")
        yield StepStarted(run_id=run_id, step=1, node="act", input=message)
        if self.hold is not None:
            await self.hold.wait()
        yield StepFinished(run_id=run_id, step=1, node="act", output="done")
        yield FinalAnswer(run_id=run_id, text="done", strategy="react")


@pytest.fixture
def ops_settings(settings: Settings) -> Settings:
    """Settings with a first-run admin (who may read /metrics)."""
    return settings.model_copy(update={"admin_username": ADMIN, "admin_password": SecretStr(PASSWORD)})


@pytest.fixture
def stand_in() -> StandInAgent:
    return StandInAgent()


@pytest.fixture
def build_app(stand_in: StandInAgent, monkeypatch: pytest.MonkeyPatch) -> Callable[[Settings], FastAPI]:
    """The real app with the stand-in agent injected (see `without_sandbox_or_agent`)."""
    without_sandbox_or_agent(monkeypatch)

    def build(settings: Settings) -> FastAPI:
        application = create_app(settings)
        application.dependency_overrides[get_agent] = lambda: stand_in
        return application

    return build


@pytest.fixture
def db(settings: Settings) -> Iterator[sessionmaker[Session]]:
    """The schema on the test data dir, as a session factory."""
    engine = create_db_engine(settings.resolved_database_url)
    init_schema(engine)
    yield session_factory(engine)
    engine.dispose()
