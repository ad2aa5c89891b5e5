"""Per-run collaborators the graphs reach through LangGraph's `Runtime.context`, and the step tracer."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langgraph.config import get_config, get_stream_writer

from backend.agents.events import RunEvent, StepFinished, StepStarted, ToolCall
from backend.core.settings import Settings
from backend.tools.registry import ToolContext, ToolOutcome, ToolRegistry, truncate

TRACE_MAX_CHARS = 2000
"""Longest input/output kept per trace step (events and the persisted trace)."""
CHARS_PER_TOKEN = 4
"""Token estimate used when a provider reports no usage (a common rule of thumb for English and code)."""


def emit(event: RunEvent) -> None:
    """Send a typed event to the run's stream (LangGraph `custom` mode); a no-op outside a graph run."""
    try:
        writer = get_stream_writer()
    except RuntimeError:
        return
    writer(event)


@dataclass
class StepRecord:
    """What a traced step fills in before it ends; read by `Tracer.step` to build `StepFinished`."""

    output: str = ""
    error: str | None = None
    tokens: int = 0


class Tracer:
    """Numbers the steps of one run and brackets each with StepStarted/StepFinished events."""

    def __init__(self, run_id: str, *, first_step: int = 1) -> None:
        self.run_id = run_id
        self._next = first_step

    @asynccontextmanager
    async def step(self, node: str, *, tool: str | None = None, input: Any = "") -> AsyncIterator[StepRecord]:
        number, self._next = self._next, self._next + 1
        text = input if isinstance(input, str) else json.dumps(input, default=str, ensure_ascii=False)
        emit(StepStarted(run_id=self.run_id, step=number, node=node, tool=tool, input=truncate(text, TRACE_MAX_CHARS)))
        record = StepRecord()
        started = time.perf_counter()
        try:
            yield record
        except Exception as exc:
            record.error = record.error or f"{type(exc).__name__}: {exc}"
            raise
        finally:
            emit(
                StepFinished(
                    run_id=self.run_id,
                    step=number,
                    node=node,
                    tool=tool,
                    output=truncate(record.output, TRACE_MAX_CHARS),
                    error=record.error,
                    duration_ms=round((time.perf_counter() - started) * 1000, 3),
                    tokens=record.tokens,
                )
            )


def token_count(prompt: Sequence[BaseMessage], reply: AIMessage) -> int:
    """Tokens of one LLM call: as the provider reports them, else estimated from characters."""
    usage = reply.usage_metadata
    if usage and usage.get("total_tokens"):
        return int(usage["total_tokens"])
    chars = sum(len(str(m.content)) for m in prompt) + len(str(reply.content))
    return chars // CHARS_PER_TOKEN


@dataclass(kw_only=True)
class RunContext:
    """Everything a node needs that is not graph state: collaborators and per-run facts (never checkpointed)."""

    run_id: str
    conversation_id: str
    user_id: str
    settings: Settings
    llm: BaseChatModel
    tools: ToolRegistry
    files: Mapping[str, Path] = field(default_factory=dict)
    tracer: Tracer = field(init=False)

    def __post_init__(self) -> None:
        self.tracer = Tracer(self.run_id)

    def tool_context(
        self, *, brief: Mapping[str, Any], plan: str = "", sink: Callable[[RunEvent], None] = emit
    ) -> ToolContext:
        """What tools of this run may see: ids, files, the LLM and the turn's rendered context."""
        return ToolContext(
            run_id=self.run_id,
            user_id=self.user_id,
            session_id=self.conversation_id,
            files=self.files,
            llm=self.llm,
            settings=self.settings,
            history=str(brief.get("history_text", "")),
            notepad=str(brief.get("notepad", "")),
            variables=str(brief.get("variables", "")),
            plan=plan,
            emit=sink,
        )

    async def call_tool(
        self, name: str, args: Any, *, tools: ToolRegistry, context: ToolContext, node: str = "act"
    ) -> ToolOutcome:
        """Run one tool call as a traced step; the outcome (success or error) is what the LLM will read.

        The tool runs under the calling node's config: LangGraph's stream writer and callbacks need it there.
        """
        config = get_config()
        emit(ToolCall(run_id=self.run_id, tool=name, args=args if isinstance(args, dict) else {"value": args}))
        async with self.tracer.step(node, tool=name, input=args) as record:
            outcome = await tools.invoke(name, args, context=context, config=config)
            record.output, record.error = outcome.output, outcome.error
        return outcome
