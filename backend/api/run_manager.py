"""Runs agent turns as background tasks: persists every event, feeds live subscribers, cancels on request."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from anyio import CapacityLimiter, to_thread

from backend.agents.events import ErrorEvent, RunEvent, TokenEvent
from backend.storage.run_log import ArtifactLocator, RunLog

log = logging.getLogger(__name__)

SHUTDOWN_GRACE_SECONDS = 5.0
"""How long shutdown waits for cancelled runs to record their final state."""


class Agent(Protocol):
    """What the API needs from `backend.agents.service.AgentService`."""

    def run(
        self,
        *,
        run_id: str,
        conversation_id: str,
        user_id: str,
        message: str,
        strategy: str | None = None,
        files: Mapping[str, Path] = ...,
    ) -> AsyncIterator[RunEvent]: ...


class EventWriter:
    """Stores a run's events in order, in batches, one worker thread at a time: streaming never waits on the
    database, and under load a run costs one short transaction per batch instead of one per event."""

    def __init__(self, run_log: RunLog, *, limiter: CapacityLimiter | None) -> None:
        self._log = run_log
        self._limiter = limiter
        self._pending: list[RunEvent] = []
        self._task: asyncio.Task[None] | None = None

    def add(self, event: RunEvent) -> None:
        self._pending.append(event)
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._drain())

    async def _drain(self) -> None:
        while self._pending:
            batch, self._pending = self._pending, []
            try:
                await to_thread.run_sync(self._log.record_many, batch, limiter=self._limiter)
            except Exception:
                log.exception("could not store %d events of run %s", len(batch), self._log.run_id)

    async def flush(self) -> None:
        """Wait until everything added so far is stored."""
        while self._task is not None and not self._task.done():
            await asyncio.shield(self._task)
        if self._pending:
            await self._drain()


class TooManyRunsError(RuntimeError):
    """The user already has the configured number of runs in flight."""


@dataclass
class ActiveRun:
    run_id: str
    user_id: str
    log: RunLog
    queue: asyncio.Queue[RunEvent | None] = field(default_factory=asyncio.Queue)
    task: asyncio.Task[str] | None = None
    status: str = "running"

    async def events(self) -> AsyncIterator[RunEvent]:
        """Events as clients see them, until the run ends."""
        while (event := await self.queue.get()) is not None:
            yield event


class RunManager:
    """Owns the in-flight runs of this process."""

    def __init__(self, *, max_runs_per_user: int, db_writes: CapacityLimiter | None = None) -> None:
        self._max_runs = max_runs_per_user
        self._db_writes = db_writes
        self._active: dict[str, ActiveRun] = {}

    def check_capacity(self, user_id: str) -> None:
        in_flight = sum(1 for run in self._active.values() if run.user_id == user_id)
        if in_flight >= self._max_runs:
            raise TooManyRunsError(f"{in_flight} runs already in flight (limit {self._max_runs}); wait or stop one")

    async def start(
        self,
        *,
        agent: Agent,
        run_log: RunLog,
        conversation_id: str,
        message: str,
        strategy: str | None,
        files: Mapping[str, Path],
    ) -> ActiveRun:
        self.check_capacity(run_log.user_id)
        active = ActiveRun(run_id=run_log.run_id, user_id=run_log.user_id, log=run_log)
        events = agent.run(
            run_id=run_log.run_id,
            conversation_id=conversation_id,
            user_id=run_log.user_id,
            message=message,
            strategy=strategy,
            files=files,
        )
        self._active[active.run_id] = active
        active.task = asyncio.create_task(self._drive(active, events), name=f"run-{active.run_id}")
        await asyncio.sleep(0)  # let the task enter _drive, so even an immediate cancel records the final state
        return active

    async def _drive(self, active: ActiveRun, events: AsyncIterator[RunEvent]) -> str:
        status, error, announce = "done", None, False
        writer = EventWriter(active.log, limiter=self._db_writes)
        try:
            async for event in events:
                shown = active.log.present(event)
                if not isinstance(shown, TokenEvent):
                    writer.add(shown)
                active.queue.put_nowait(shown)
            if active.log.answer is None:
                status, error = "failed", active.log.error or "the agent finished without an answer"
                announce = active.log.error is None
        except asyncio.CancelledError:
            status, error, announce = "cancelled", "run cancelled", True
            raise
        except Exception as exc:  # an agent failure becomes a failed run, never a crashed server
            log.exception("run %s failed", active.run_id)
            status, error, announce = "failed", f"{type(exc).__name__}: {exc}", True
        finally:
            active.status = status
            with contextlib.suppress(Exception):
                await _close(events)
            try:
                await writer.flush()  # the final answer is stored before clients hear the run is over
                await asyncio.to_thread(active.log.finish, status=status, error=error)
            except Exception:
                log.exception("could not record the end of run %s", active.run_id)
            if announce:
                active.queue.put_nowait(ErrorEvent(run_id=active.run_id, message=error or status, kind=status))
            active.queue.put_nowait(None)
            self._active.pop(active.run_id, None)
        return status

    def get(self, run_id: str) -> ActiveRun | None:
        return self._active.get(run_id)

    def cancel_nowait(self, run_id: str) -> None:
        """Request cancellation without waiting (safe inside an already-cancelled scope, e.g. a client disconnect)."""
        active = self._active.get(run_id)
        if active is not None and active.task is not None:
            active.task.cancel()

    async def cancel(self, run_id: str) -> bool:
        """Cancel a run in flight and wait until its final state is recorded; False if it was not running."""
        active = self._active.get(run_id)
        if active is None or active.task is None or active.task.done():
            return False
        active.task.cancel()
        with contextlib.suppress(asyncio.CancelledError, TimeoutError):
            await asyncio.wait_for(asyncio.shield(active.task), SHUTDOWN_GRACE_SECONDS)
        return True

    async def shutdown(self) -> None:
        tasks = [run.task for run in self._active.values() if run.task is not None]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=SHUTDOWN_GRACE_SECONDS)


async def _close(events: AsyncIterator[RunEvent]) -> None:
    closer = getattr(events, "aclose", None)
    if closer is not None:
        await closer()


def artifact_locator(root: Path) -> ArtifactLocator:
    """Find a file the agent reported (`name` relative to the session workdir), refusing anything outside it."""
    base = root.resolve()

    def locate(event: Any) -> Path | None:
        candidate = (base / str(event.name)).resolve()
        if not candidate.is_relative_to(base) or not candidate.is_file():
            return None
        return candidate

    return locate
