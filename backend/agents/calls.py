"""LLM calls of the graphs, always streamed: cancelling the turn then stops generation, and answers show tokens."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, Sequence
from typing import Any, cast

from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.runnables import Runnable

from backend.agents.events import TokenEvent
from backend.agents.runtime import emit

ChatRunnable = BaseChatModel | Runnable[LanguageModelInput, Any]
REPEAT_LINES = 3
"""A reply whose last this-many lines are identical is degenerate (small models loop on one line): stop it."""


async def complete(
    model: ChatRunnable,
    messages: Sequence[BaseMessage],
    *,
    run_id: str = "",
    tokens: bool = False,
    stop: list[str] | None = None,
) -> AIMessage:
    """The whole reply as one `AIMessage` (tool calls merged); with `tokens`, text pieces go out as TokenEvents."""
    merged: AIMessageChunk | None = None
    stream = cast(AsyncGenerator[Any, None], model.astream(list(messages), stop=stop))
    async with contextlib.aclosing(stream):  # closing the stream early stops the provider's generation
        async for chunk in stream:
            if not isinstance(chunk, AIMessageChunk):
                chunk = AIMessageChunk(content=getattr(chunk, "content", str(chunk)))
            if tokens and isinstance(chunk.content, str) and chunk.content:
                emit(TokenEvent(run_id=run_id, text=chunk.content))
            merged = chunk if merged is None else merged + chunk
            if "\n" in chunk.text and repeated_line(merged.text) is not None:
                break
    if merged is None:
        return AIMessage(content="")
    content = merged.content
    if isinstance(content, str) and (cut := repeated_line(content)) is not None:
        content = cut
    return AIMessage(
        content=content,
        tool_calls=merged.tool_calls,
        invalid_tool_calls=merged.invalid_tool_calls,
        usage_metadata=merged.usage_metadata,
        response_metadata=merged.response_metadata,
        id=merged.id,
    )


def repeated_line(text: str) -> str | None:
    """`text` up to the end of the first copy of a line repeated `REPEAT_LINES` times in a row, else None."""
    lines = text.split("\n")[:-1]  # the last piece may be an unfinished line
    if len(lines) < REPEAT_LINES:
        return None
    tail = lines[-REPEAT_LINES:]
    if not tail[0].strip() or any(line != tail[0] for line in tail):
        return None
    return "\n".join(lines[: len(lines) - REPEAT_LINES + 1])


def text_of(message: BaseMessage) -> str:
    """Plain text of a message (text blocks joined)."""
    content = message.content
    if isinstance(content, str):
        return content
    return "".join(b if isinstance(b, str) else str(b.get("text", "")) for b in content if isinstance(b, str | dict))


def bind_tools(llm: BaseChatModel, tools: Sequence[Any]) -> tuple[ChatRunnable, bool]:
    """The model with `tools` bound and True, or the bare model and False when it has no native tool calling."""
    if not tools:
        return llm, False
    try:
        return llm.bind_tools(list(tools)), True
    except NotImplementedError:
        return llm, False
