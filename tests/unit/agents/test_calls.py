"""LLM call helper: streamed replies merged into one message, degenerate repetition cut off early."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from langchain_core.messages import AIMessage, AIMessageChunk
from langchain_core.outputs import ChatGenerationChunk

from backend.agents.calls import complete, repeated_line
from backend.llm.fake import ScriptedChatModel


class EndlessModel(ScriptedChatModel):
    """Streams the same line forever and counts how many chunks were pulled."""

    pulled: int = 0

    async def _astream(self, messages: Any, stop: Any = None, run_manager: Any = None,
                       **kwargs: Any) -> AsyncIterator[ChatGenerationChunk]:
        while True:
            self.pulled += 1
            yield ChatGenerationChunk(message=AIMessageChunk(content="same line\n"))


def test_repeated_lines_are_detected_and_cut():
    assert repeated_line("a\nb\nb\nb\nb") == "a\nb"
    assert repeated_line("a\nb\nc\n") is None
    assert repeated_line("\n\n\n\n") is None


async def test_a_reply_that_never_stops_is_abandoned_after_a_few_repeats():
    model = EndlessModel()
    reply = await complete(model, [])
    assert reply.content == "same line"
    assert model.pulled == 3


async def test_tool_call_chunks_are_merged_into_one_message():
    model = ScriptedChatModel(replies=[AIMessage(content="thinking", tool_calls=[
        {"name": "calculator", "args": {"expression": "1+1"}, "id": "c1"}])])
    reply = await complete(model, [])
    assert reply.content == "thinking"
    assert reply.tool_calls == [{"name": "calculator", "args": {"expression": "1+1"}, "id": "c1", "type": "tool_call"}]
