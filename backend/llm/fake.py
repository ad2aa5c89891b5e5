"""Scripted chat model: deterministic replies (text or tool calls) for unit tests and offline demos."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.messages.tool import tool_call_chunk
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable
from pydantic import ConfigDict, Field, PrivateAttr

Reply = str | AIMessage | Callable[[list[BaseMessage]], "str | AIMessage"]


class ScriptExhaustedError(RuntimeError):
    """The test asked the fake model for more replies than it scripted."""


class ScriptedChatModel(BaseChatModel):
    """Returns `replies` in order; a callable reply sees the prompt messages and builds the answer.

    `cycle=True` repeats the script forever (for load tests and demos); every prompt is kept in `calls`.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    replies: list[Any] = Field(default_factory=list)
    cycle: bool = False
    chunk_size: int = 8
    calls: list[list[BaseMessage]] = Field(default_factory=list)
    _index: int = PrivateAttr(default=0)
    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    @property
    def _llm_type(self) -> str:
        return "scripted-fake"

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> Runnable[LanguageModelInput, AIMessage]:
        """Tools are accepted and ignored: the script decides which tool calls appear."""
        return self

    def _next(self, messages: list[BaseMessage]) -> AIMessage:
        with self._lock:
            self.calls.append(list(messages))
            if self._index >= len(self.replies):
                if not self.cycle or not self.replies:
                    raise ScriptExhaustedError(f"scripted model has no reply #{self._index + 1}")
                self._index = 0
            reply = self.replies[self._index]
            self._index += 1
        if callable(reply):
            reply = reply(messages)
        if isinstance(reply, str):
            return AIMessage(content=reply)
        return reply.model_copy()

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        return ChatResult(generations=[ChatGeneration(message=self._next(messages))])

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        message = self._next(messages)
        text = message.content if isinstance(message.content, str) else ""
        pieces = [text[i : i + self.chunk_size] for i in range(0, len(text), self.chunk_size)] or [""]
        for i, piece in enumerate(pieces):
            last = i == len(pieces) - 1
            chunk = AIMessageChunk(
                content=piece,
                tool_call_chunks=[
                    tool_call_chunk(name=tc["name"], args=json.dumps(tc["args"]), id=tc["id"], index=n)
                    for n, tc in enumerate(message.tool_calls)
                ]
                if last
                else [],
            )
            if run_manager:
                run_manager.on_llm_new_token(piece, chunk=ChatGenerationChunk(message=chunk))
            yield ChatGenerationChunk(message=chunk)
