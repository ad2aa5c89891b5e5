"""RunLog: agent events become steps, detail, plan, artifacts (snapshotted) and the assistant message."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from backend.agents.events import (
    CodeEvent,
    FigureEvent,
    FileEvent,
    FinalAnswer,
    OutputEvent,
    PlanEvent,
    StepFinished,
    StepStarted,
    TokenEvent,
)
from backend.core.settings import Settings
from backend.storage.db import create_db_engine, init_schema, session_factory
from backend.storage.models import Artifact, Conversation, Run
from backend.storage.repositories import OwnedRepository, UserRepository
from backend.storage.run_log import MAX_DETAIL_EVENTS, RunLog


@pytest.fixture
def sessions(settings: Settings) -> sessionmaker[Session]:
    engine = create_db_engine(settings.resolved_database_url)
    init_schema(engine)
    return session_factory(engine)


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    path = tmp_path / "work"
    path.mkdir()
    return path


@pytest.fixture
def log(sessions: sessionmaker[Session], settings: Settings, workdir: Path) -> RunLog:
    with sessions() as session:
        user = UserRepository(session).create(username="alice", password="correct horse battery")
        repo = OwnedRepository(session, user_id=user.id)
        conversation = repo.create_conversation(title="t")
        run = repo.create_run(conversation_id=conversation.id, kind="chat", input="q", strategy=None)
        return RunLog(sessions=sessions, user_id=user.id, run_id=run.id, conversation_id=conversation.id,
                      artifacts_dir=settings.data_dir / "artifacts",
                      locate_artifact=lambda event: workdir / event.name if (workdir / event.name).is_file() else None)


def _run(sessions: sessionmaker[Session], run_id: str) -> Run:
    session = sessions()
    run = session.get(Run, run_id)
    assert run is not None
    return run


def test_steps_are_opened_and_closed_with_their_detail(log: RunLog, sessions: sessionmaker[Session]) -> None:
    rid = log.run_id
    log.record(StepStarted(run_id=rid, step=1, node="act", tool="python_coder", input="task"))
    log.record(CodeEvent(run_id=rid, code="print(1)"))
    log.record(OutputEvent(run_id=rid, stdout="1\n"))
    log.record(StepFinished(run_id=rid, step=1, node="act", tool="python_coder", output="1", duration_ms=3.0, tokens=9))
    (step,) = _run(sessions, rid).steps
    assert (step.status, step.output, step.tokens, step.duration_ms) == ("done", "1", 9, 3.0)
    assert [e["type"] for e in step.detail["events"]] == ["code", "output"]


def test_a_failed_step_keeps_its_error(log: RunLog, sessions: sessionmaker[Session]) -> None:
    log.record(StepStarted(run_id=log.run_id, step=1, node="act"))
    log.record(StepFinished(run_id=log.run_id, step=1, node="act", error="KeyError: 'fare'"))
    (step,) = _run(sessions, log.run_id).steps
    assert (step.status, step.error) == ("failed", "KeyError: 'fare'")


def test_plan_and_final_answer_are_stored(log: RunLog, sessions: sessionmaker[Session]) -> None:
    log.record(PlanEvent(run_id=log.run_id, steps=[{"goal": "load"}, {"goal": "sum"}]))
    log.record(TokenEvent(run_id=log.run_id, text="ignored"))
    log.record(FinalAnswer(run_id=log.run_id, text="42"))
    run = _run(sessions, log.run_id)
    assert run.detail["plan"]["steps"] == [{"goal": "load"}, {"goal": "sum"}]
    assert run.output == "42" and log.answer == "42"
    with sessions() as session:
        conversation = session.get(Conversation, log.conversation_id)
        assert conversation is not None
        assert [(m.role, m.content) for m in conversation.messages] == [("assistant", "42")]


def test_detail_is_capped_per_step(log: RunLog, sessions: sessionmaker[Session]) -> None:
    log.record(StepStarted(run_id=log.run_id, step=1, node="act"))
    for n in range(MAX_DETAIL_EVENTS + 10):
        log.record(CodeEvent(run_id=log.run_id, code=f"x = {n}"))
    assert len(_run(sessions, log.run_id).steps[0].detail["events"]) == MAX_DETAIL_EVENTS


def test_figures_are_snapshotted_under_a_fresh_id(
    log: RunLog, sessions: sessionmaker[Session], workdir: Path
) -> None:
    (workdir / "plot.png").write_bytes(b"v1")
    shown = log.record(FigureEvent(run_id=log.run_id, artifact_id="conv/plot.png", name="plot.png"))
    (workdir / "plot.png").write_bytes(b"v2 overwritten by a later run")
    assert isinstance(shown, FigureEvent)
    assert shown.artifact_id != "conv/plot.png" and shown.url == f"/api/artifacts/{shown.artifact_id}"
    with sessions() as session:
        artifact = session.get(Artifact, shown.artifact_id)
        assert artifact is not None and artifact.path is not None
        assert Path(artifact.path).read_bytes() == b"v1"


def test_a_reported_file_that_cannot_be_found_is_recorded_as_unavailable(
    log: RunLog, sessions: sessionmaker[Session]
) -> None:
    shown = log.record(FileEvent(run_id=log.run_id, artifact_id="x", name="missing.csv"))
    with sessions() as session:
        artifact = session.get(Artifact, shown.artifact_id)  # type: ignore[union-attr]
        assert artifact is not None and artifact.path is None and artifact.kind == "file"


def test_finish_closes_open_steps(log: RunLog, sessions: sessionmaker[Session]) -> None:
    log.record(StepStarted(run_id=log.run_id, step=1, node="act"))
    log.finish(status="cancelled", error="run cancelled")
    run = _run(sessions, log.run_id)
    assert (run.status, run.error, run.steps[0].status) == ("cancelled", "run cancelled", "cancelled")
    assert run.finished_at is not None and run.finished_at.tzinfo is not None
