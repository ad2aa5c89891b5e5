"""Helpers for agent graph tests: a scripted run context, tiny tools, and event collection."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from langchain_core.messages import AIMessage

from backend.agents.events import RunEvent
from backend.agents.runtime import RunContext
from backend.core.settings import Settings
from backend.llm.fake import ScriptedChatModel
from backend.tools.registry import ToolRegistry
from backend.tools.safe_math import evaluate, format_number


def calculator(expression: str) -> str:
    """Evaluate arithmetic.

    Args:
        expression: The expression to evaluate.
    """
    return format_number(evaluate(expression))


def explode(text: str) -> str:
    """A tool that always fails.

    Args:
        text: Anything.
    """
    raise RuntimeError(f"boom on {text}")


def tool_call(name: str, **args: Any) -> AIMessage:
    """A scripted native tool call."""
    return AIMessage(content="", tool_calls=[{"name": name, "args": args, "id": f"id-{name}"}])


@pytest.fixture
def call() -> Callable[..., AIMessage]:
    return tool_call


@pytest.fixture
def tools() -> ToolRegistry:
    return ToolRegistry([calculator, explode])


@pytest.fixture
def make_ctx(settings: Settings, tools: ToolRegistry) -> Callable[..., RunContext]:
    def make(*replies: Any, registry: ToolRegistry | None = None, llm: Any = None, **kw: Any) -> RunContext:
        model = llm if llm is not None else ScriptedChatModel(replies=list(replies))
        return RunContext(run_id="run-1", conversation_id="conv-1", user_id="user-1", settings=settings,
                          llm=model, tools=registry if registry is not None else tools, **kw)

    return make


async def _run_graph(graph: Any, inputs: dict[str, Any], ctx: RunContext) -> tuple[dict[str, Any], list[RunEvent]]:
    """Final state of a graph run and every typed event it emitted (sub-graphs included)."""
    events: list[RunEvent] = []
    final: dict[str, Any] = {}
    async for part in graph.astream(inputs, context=ctx, stream_mode=["custom", "values"], subgraphs=True,
                                    version="v2"):
        if part["type"] == "custom":
            events.append(part["data"])
        elif not part["ns"]:
            final = part["data"]
    return final, events


@pytest.fixture
def run_graph() -> Callable[..., Any]:
    return _run_graph


async def _collect(stream: AsyncIterator[RunEvent]) -> list[RunEvent]:
    return [event async for event in stream]


@pytest.fixture
def collect() -> Callable[..., Any]:
    return _collect


def _of_type(events: list[RunEvent], kind: str) -> list[Any]:
    return [e for e in events if e.type == kind]


@pytest.fixture
def of_type() -> Callable[..., list[Any]]:
    return _of_type
