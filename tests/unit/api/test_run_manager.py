"""RunManager and the SSE relay: a client that goes away cancels the run, and the cancellation is recorded."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker

from backend.api.routes.chat import _sse
from backend.api.run_manager import RunManager, TooManyRunsError, artifact_locator
from backend.api.turns import Turn
from backend.core.settings import Settings
from backend.storage.db import create_db_engine, init_schema, session_factory
from backend.storage.models import Run
from backend.storage.repositories import OwnedRepository, UserRepository
from backend.storage.run_log import RunLog


@pytest.fixture
def sessions(settings: Settings) -> sessionmaker[Session]:
    engine = create_db_engine(settings.resolved_database_url)
    init_schema(engine)
    return session_factory(engine)


def _new_run(sessions: sessionmaker[Session], settings: Settings) -> RunLog:
    with sessions() as session:
        user = UserRepository(session).create(username="alice", password="correct horse battery")
        repo = OwnedRepository(session, user_id=user.id)
        conversation = repo.create_conversation(title="t")
        run = repo.create_run(conversation_id=conversation.id, kind="chat", input="x", strategy=None)
        return RunLog(sessions=sessions, user_id=user.id, run_id=run.id, conversation_id=conversation.id,
                      artifacts_dir=settings.data_dir / "artifacts", locate_artifact=lambda event: None)


def _status(sessions: sessionmaker[Session], run_id: str) -> str:
    with sessions() as session:
        run = session.get(Run, run_id)
        assert run is not None
        return run.status


async def test_closing_the_event_stream_cancels_the_run(
    sessions: sessionmaker[Session], settings: Settings, agent: Any
) -> None:
    agent.hold = asyncio.Event()
    manager = RunManager(max_runs_per_user=3)
    run_log = _new_run(sessions, settings)
    active = await manager.start(agent=agent, run_log=run_log, conversation_id=run_log.conversation_id or "",
                                 message="x", strategy=None, files={})
    stream = _sse(Turn(run=active, conversation_id=run_log.conversation_id or ""), manager)
    assert (await anext(stream)).event == "conversation"
    assert (await anext(stream)).event == "run_started"
    await asyncio.wait_for(agent.at_hold.wait(), 5)
    await stream.aclose()  # what sse-starlette does when the client disconnects
    assert active.task is not None
    with contextlib.suppress(asyncio.CancelledError):
        await asyncio.wait_for(active.task, 5)
    assert agent.cancelled == [run_log.run_id]
    assert _status(sessions, run_log.run_id) == "cancelled"
    assert manager.get(run_log.run_id) is None


async def test_a_user_cannot_exceed_the_runs_in_flight_limit(
    sessions: sessionmaker[Session], settings: Settings, agent: Any
) -> None:
    agent.hold = asyncio.Event()
    manager = RunManager(max_runs_per_user=1)
    run_log = _new_run(sessions, settings)
    await manager.start(agent=agent, run_log=run_log, conversation_id="c", message="x", strategy=None, files={})
    with pytest.raises(TooManyRunsError):
        manager.check_capacity(run_log.user_id)
    await manager.shutdown()
    assert _status(sessions, run_log.run_id) == "cancelled"


def test_artifact_locator_refuses_paths_outside_the_workdir(tmp_path: Any) -> None:
    work = tmp_path / "work"
    work.mkdir()
    (work / "plot.png").write_bytes(b"png")
    (tmp_path / "secret.txt").write_text("no")
    locate = artifact_locator(work)

    class Event:
        def __init__(self, name: str) -> None:
            self.name = name

    assert locate(Event("plot.png")) == (work / "plot.png").resolve()
    assert locate(Event("../secret.txt")) is None
    assert locate(Event("/etc/passwd")) is None
    assert locate(Event("missing.png")) is None
