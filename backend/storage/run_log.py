"""Persists one agent run as its events arrive: steps, plan, tool/code detail, artifacts and the final answer."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from backend.agents.events import (
    CodeEvent,
    ErrorEvent,
    FigureEvent,
    FileEvent,
    FinalAnswer,
    OutputEvent,
    PlanEvent,
    RunEvent,
    RunStarted,
    StepFinished,
    StepStarted,
    TokenEvent,
    ToolCall,
)
from backend.storage.models import Artifact, Conversation, Run, RunStep, new_id, utcnow
from backend.storage.repositories import append_message

MAX_TEXT_CHARS = 20_000
"""Longest step input/output/code text kept in the trace."""
MAX_ARTIFACT_BYTES = 200 * 1024 * 1024
"""Largest generated file snapshotted as an artifact."""
MAX_SUFFIX_CHARS = 12
MAX_DETAIL_EVENTS = 50
"""Tool/code/output events kept per step (and per run outside steps)."""

ARTIFACT_URL = "/api/artifacts/{id}"
"""Where clients download an artifact; events carry this URL."""

ArtifactLocator = Callable[[FigureEvent | FileEvent], Path | None]
RunStatus = str


def _clip(text: str) -> str:
    return text if len(text) <= MAX_TEXT_CHARS else text[:MAX_TEXT_CHARS] + "…[truncated]"


def _detail(event: ToolCall | CodeEvent | OutputEvent) -> dict[str, Any]:
    data = event.model_dump(mode="json", exclude={"run_id"})
    return {key: _clip(value) if isinstance(value, str) else value for key, value in data.items()}


class RunLog:
    """Writes a run's events to the database; each call is one short transaction (call it from a worker thread)."""

    def __init__(
        self,
        *,
        sessions: sessionmaker[Session],
        user_id: str,
        run_id: str,
        conversation_id: str | None,
        artifacts_dir: Path,
        locate_artifact: ArtifactLocator,
    ) -> None:
        self._sessions = sessions
        self.user_id = user_id
        self.run_id = run_id
        self.conversation_id = conversation_id
        self._artifacts_dir = artifacts_dir
        self._locate = locate_artifact
        self.answer: str | None = None
        self.error: str | None = None

    def present(self, event: RunEvent) -> RunEvent:
        """The event as clients see it (an artifact gets a fresh server id and its URL); notes the answer/error.

        Cheap and free of I/O, so the event can be streamed before it is stored.
        """
        if isinstance(event, FinalAnswer):
            self.answer = event.text
        elif isinstance(event, ErrorEvent):
            self.error = event.message
        elif isinstance(event, FigureEvent | FileEvent):
            artifact_id = new_id()
            return event.model_copy(update={"artifact_id": artifact_id, "url": ARTIFACT_URL.format(id=artifact_id)})
        return event

    def record_many(self, events: Sequence[RunEvent]) -> None:
        """Store presented events in one transaction; token events are streamed only, never stored."""
        with self._sessions() as session, session.begin():
            run = session.get(Run, self.run_id)
            if run is None:  # deleted (e.g. its conversation was removed) while running
                return
            for event in events:
                if isinstance(event, FigureEvent | FileEvent):
                    self._add_artifact(session, event)
                elif not isinstance(event, TokenEvent):
                    self._apply(session, run, event)

    def record(self, event: RunEvent) -> RunEvent:
        """Present and store one event; returns it as clients see it."""
        shown = self.present(event)
        self.record_many([shown])
        return shown

    def _apply(self, session: Session, run: Run, event: RunEvent) -> None:
        if isinstance(event, RunStarted):
            run.strategy = event.strategy or run.strategy
        elif isinstance(event, PlanEvent):
            run.detail = {**run.detail, "plan": {"steps": event.steps, "revision": event.revision}}
        elif isinstance(event, StepStarted):
            session.add(RunStep(run_id=run.id, step=event.step, node=event.node, tool=event.tool,
                                input=_clip(event.input)))
        elif isinstance(event, StepFinished):
            self._finish_step(session, run, event)
        elif isinstance(event, ToolCall | CodeEvent | OutputEvent):
            self._add_detail(session, run, _detail(event))
        elif isinstance(event, FinalAnswer):
            run.output = event.text
            if self.conversation_id is not None:
                self._add_assistant_message(session, event.text)
        elif isinstance(event, ErrorEvent):
            run.error = _clip(event.message)

    def _open_step(self, session: Session, step: int | None = None) -> RunStep | None:
        query = select(RunStep).where(RunStep.run_id == self.run_id, RunStep.status == "running")
        if step is not None:
            query = query.where(RunStep.step == step)
        return session.scalars(query.order_by(RunStep.id.desc()).limit(1)).first()

    def _finish_step(self, session: Session, run: Run, event: StepFinished) -> None:
        row = self._open_step(session, event.step)
        if row is None:
            row = RunStep(run_id=run.id, step=event.step, node=event.node, tool=event.tool)
            session.add(row)
        row.output = _clip(event.output)
        row.error = _clip(event.error) if event.error else None
        row.duration_ms = event.duration_ms
        row.tokens = event.tokens
        row.status = "failed" if event.error else "done"
        row.finished_at = utcnow()

    def _add_detail(self, session: Session, run: Run, item: dict[str, Any]) -> None:
        row = self._open_step(session)
        holder: dict[str, Any] = dict(row.detail if row is not None else run.detail)
        events = list(holder.get("events", []))
        if len(events) >= MAX_DETAIL_EVENTS:
            return
        events.append(item)
        holder["events"] = events
        if row is not None:
            row.detail = holder
        else:
            run.detail = holder

    def _add_artifact(self, session: Session, event: FigureEvent | FileEvent) -> None:
        """Snapshot the file under the presented id: later runs may overwrite the original in the workdir."""
        path = self._snapshot(self._locate(event), event.artifact_id)
        session.add(Artifact(
            id=event.artifact_id,
            user_id=self.user_id,
            run_id=self.run_id,
            conversation_id=self.conversation_id,
            kind="figure" if isinstance(event, FigureEvent) else "file",
            name=event.name[:255],
            path=str(path) if path is not None else None,
        ))

    def _snapshot(self, source: Path | None, artifact_id: str) -> Path | None:
        if source is None or not source.is_file() or source.stat().st_size > MAX_ARTIFACT_BYTES:
            return None
        self._artifacts_dir.mkdir(parents=True, exist_ok=True)
        target = self._artifacts_dir / f"{artifact_id}{source.suffix.lower()[:MAX_SUFFIX_CHARS]}"
        shutil.copyfile(source, target)
        return target

    def _add_assistant_message(self, session: Session, text: str) -> None:
        conversation = session.get(Conversation, self.conversation_id)
        if conversation is not None and conversation.user_id == self.user_id:
            append_message(session, conversation, role="assistant", content=text, run_id=self.run_id)

    def finish(self, *, status: RunStatus, error: str | None = None) -> None:
        """Close the run (done/failed/cancelled) and any step left open."""
        with self._sessions() as session, session.begin():
            run = session.get(Run, self.run_id)
            if run is None:
                return
            run.status = status
            if error and not run.error:
                run.error = _clip(error)
            run.finished_at = utcnow()
            for step in session.scalars(select(RunStep).where(RunStep.run_id == run.id, RunStep.status == "running")):
                step.status = "cancelled" if status == "cancelled" else "failed"
                step.finished_at = run.finished_at


