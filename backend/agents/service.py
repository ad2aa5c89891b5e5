"""AgentService: one conversation turn as an async stream of typed events, bounded in time, durable per thread.

A turn is checkpointed under `thread_id = conversation_id`. When the process dies mid-turn, the thread keeps
a pending checkpoint: `pending_run` / `interrupted_runs` report it and `resume` continues it; a new `run`
on that thread closes it first. A timeout, an error or the consumer going away ends the turn cleanly.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import HumanMessage
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.memory import InMemorySaver

from backend.agents.errors import (
    EmptyMessageError,
    InvalidRequestError,
    MessageTooLongError,
    NothingToResumeError,
)
from backend.agents.events import ErrorEvent, RunEvent, RunStarted
from backend.agents.graph import build_turn_graph
from backend.agents.plan_execute.graph import MAX_REVISIONS
from backend.agents.router import check_strategy
from backend.agents.runtime import RunContext
from backend.core.metrics import instrument_agent_run
from backend.core.settings import Settings
from backend.storage.notepad import SESSION_ID_PATTERN
from backend.tools.registry import ToolRegistry

logger = logging.getLogger(__name__)

FileArg = Mapping[str, Path] | Iterable[Path]
_DONE = object()
"""Queue marker: the graph finished."""
THREADS_SQL = "SELECT DISTINCT thread_id FROM checkpoints WHERE checkpoint_ns = ''"
"""Threads of the top-level graph in langgraph-checkpoint-sqlite's schema."""
RECURSION_MARGIN = 10
"""Extra graph steps allowed beyond what the iteration and plan caps imply (LangGraph's own backstop)."""


@dataclass(frozen=True)
class PendingRun:
    """A turn whose process died before it finished: it can be resumed or reported as interrupted."""

    conversation_id: str
    run_id: str
    question: str
    next_nodes: tuple[str, ...]


class AgentService:
    """Runs turns of the turn graph; `checkpointer=None` keeps threads in memory (tests, one-off CLI runs)."""

    def __init__(
        self,
        *,
        settings: Settings,
        llm: BaseChatModel,
        tools: ToolRegistry,
        checkpointer: BaseCheckpointSaver[Any] | None = None,
    ) -> None:
        self.settings, self.llm, self.tools = settings, llm, tools
        self.checkpointer = checkpointer if checkpointer is not None else InMemorySaver()
        self.graph = build_turn_graph(self.checkpointer)
        caps = (2 * settings.agent_max_iterations, 2 * settings.agent_max_plan_steps * (MAX_REVISIONS + 1))
        self.recursion_limit = max(caps) + RECURSION_MARGIN

    # --- requests ---------------------------------------------------------------------
    def validate(
        self, *, message: str, strategy: str | None = None, files: FileArg = (), conversation_id: str = "c"
    ) -> tuple[str, dict[str, Path]]:
        """The checked strategy and file map, or an `InvalidRequestError` saying what is wrong."""
        if not SESSION_ID_PATTERN.match(conversation_id):
            raise InvalidRequestError(f"conversation id {conversation_id!r} must match {SESSION_ID_PATTERN.pattern}")
        if not message or not message.strip():
            raise EmptyMessageError("the message is empty")
        if len(message) > self.settings.max_message_chars:
            raise MessageTooLongError(
                f"the message has {len(message)} characters; the limit is {self.settings.max_message_chars}"
            )
        mapping = dict(files.items()) if isinstance(files, Mapping) else {Path(p).name: Path(p) for p in files}
        missing = [name for name, path in mapping.items() if not Path(path).is_file()]
        if missing:
            raise InvalidRequestError(f"attached file(s) not found: {', '.join(missing)}")
        return check_strategy(strategy), {name: Path(path) for name, path in mapping.items()}

    @instrument_agent_run
    async def run(
        self,
        *,
        run_id: str,
        conversation_id: str,
        user_id: str,
        message: str,
        strategy: str | None = None,
        files: FileArg = (),
    ) -> AsyncIterator[RunEvent]:
        """Events of one turn, ending with FinalAnswer or ErrorEvent; bad input raises before the first event."""
        requested, file_map = self.validate(
            message=message, strategy=strategy, files=files, conversation_id=conversation_id
        )
        config = self._config(conversation_id)
        stale = await self.pending_run(conversation_id)
        if stale is not None:
            logger.warning("run %s of %s was interrupted; closed before run %s", stale.run_id, conversation_id, run_id)
            await self._close_turn(config)
        ctx = RunContext(run_id=run_id, conversation_id=conversation_id, user_id=user_id, settings=self.settings,
                         llm=self.llm, tools=self.tools, files=file_map)
        yield RunStarted(run_id=run_id, conversation_id=conversation_id, strategy=requested)
        inputs = {"messages": [HumanMessage(content=message)], "run_id": run_id, "requested": requested}
        async for event in self._stream(inputs, config, ctx):
            yield event

    async def resume(
        self, *, run_id: str, conversation_id: str, user_id: str, files: FileArg = ()
    ) -> AsyncIterator[RunEvent]:
        """Continue an interrupted turn from its last checkpoint (`run_id` of the pending run is kept in state)."""
        pending = await self.pending_run(conversation_id)
        if pending is None:
            raise NothingToResumeError(f"conversation {conversation_id!r} has no interrupted turn")
        _, file_map = self.validate(message=pending.question or "resume", files=files, conversation_id=conversation_id)
        ctx = RunContext(run_id=run_id, conversation_id=conversation_id, user_id=user_id, settings=self.settings,
                         llm=self.llm, tools=self.tools, files=file_map)
        yield RunStarted(run_id=run_id, conversation_id=conversation_id, strategy="resume")
        async for event in self._stream(None, self._config(conversation_id), ctx):
            yield event

    # --- durability -------------------------------------------------------------------
    async def pending_run(self, conversation_id: str) -> PendingRun | None:
        """The conversation's unfinished turn, if its process died mid-turn."""
        snapshot = await self.graph.aget_state(self._config(conversation_id))
        values = snapshot.values or {}
        if not snapshot.next or values.get("status") == "done":
            return None
        messages = values.get("messages") or []
        question = str(messages[-1].content) if messages else ""
        return PendingRun(conversation_id, str(values.get("run_id", "")), question, tuple(snapshot.next))

    async def interrupted_runs(self) -> list[PendingRun]:
        """Every thread with an unfinished turn (call at start-up to mark those runs interrupted)."""
        found = [await self.pending_run(thread) for thread in await self._threads()]
        return [run for run in found if run is not None]

    async def history(self, conversation_id: str) -> list[Any]:
        """The conversation's messages as the graph holds them (question, answer, question, ...)."""
        snapshot = await self.graph.aget_state(self._config(conversation_id))
        return list((snapshot.values or {}).get("messages", []))

    # --- internals --------------------------------------------------------------------
    async def _threads(self) -> list[str]:
        """Every conversation with checkpoints; on SQLite one indexed query instead of reading every checkpoint."""
        from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

        saver = self.checkpointer
        if isinstance(saver, AsyncSqliteSaver):
            await saver.setup()
            async with saver.lock, saver.conn.execute(THREADS_SQL) as cursor:
                return [str(row[0]) async for row in cursor]
        threads: dict[str, None] = {}
        async for item in saver.alist(None):
            if not item.config["configurable"].get("checkpoint_ns"):
                threads.setdefault(str(item.config["configurable"]["thread_id"]), None)
        return list(threads)

    def _config(self, conversation_id: str) -> RunnableConfig:
        return {"configurable": {"thread_id": conversation_id}, "recursion_limit": self.recursion_limit}

    async def _stream(
        self, inputs: dict[str, Any] | None, config: RunnableConfig, ctx: RunContext
    ) -> AsyncIterator[RunEvent]:
        """Relay the graph's events. The graph runs in its own task so that closing this stream, cancelling
        its consumer or running out of time cancels the graph (and its LLM and tool calls) at once."""
        deadline = asyncio.get_running_loop().time() + self.settings.agent_turn_seconds
        queue: asyncio.Queue[Any] = asyncio.Queue()
        pump = asyncio.create_task(self._pump(inputs, config, ctx, queue))
        finished = False
        try:
            while True:
                try:
                    async with asyncio.timeout_at(deadline):
                        item = await queue.get()
                except TimeoutError:
                    yield ErrorEvent(run_id=ctx.run_id, kind="timeout",
                                     message=f"the turn exceeded its {self.settings.agent_turn_seconds:g} s budget")
                    break
                if item is _DONE:
                    finished = True
                    break
                if isinstance(item, Exception):
                    yield ErrorEvent(run_id=ctx.run_id, kind=getattr(item, "kind", "error"),
                                     message=f"{type(item).__name__}: {item}")
                    break
                yield item
        finally:
            if not pump.done():
                pump.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await pump
            if not finished:
                await self._close_turn(config)

    async def _pump(
        self, inputs: dict[str, Any] | None, config: RunnableConfig, ctx: RunContext, queue: asyncio.Queue[Any]
    ) -> None:
        try:
            async for part in self.graph.astream(
                inputs, config, context=ctx, stream_mode="custom", subgraphs=True, version="v2"
            ):
                if part["type"] == "custom":
                    queue.put_nowait(part["data"])
        except Exception as exc:
            logger.exception("run %s failed", ctx.run_id)
            queue.put_nowait(exc)
        else:
            queue.put_nowait(_DONE)

    async def _close_turn(self, config: RunnableConfig) -> None:
        """Mark the thread's current turn as over so its pending checkpoint is not taken for a crash."""
        try:
            await asyncio.shield(self.graph.aupdate_state(config, {"status": "done"}, as_node="finish"))
        except Exception:
            logger.exception("could not close the turn of %s", config["configurable"]["thread_id"])
