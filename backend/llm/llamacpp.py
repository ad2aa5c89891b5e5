"""Embedded provider: a langchain chat model over one in-process llama-cpp-python `Llama` per model file.

Why our own adapter: langchain-community's ChatLlamaCpp loads a private `Llama` per instance, has no lock and
does not parse Qwen's Hermes `<tool_call>` replies. Here every instance for the same GGUF shares one loaded
model and one lock, so llama.cpp's KV cache keeps the last prompt and the next call that starts the same way
(a stable system prompt) only evaluates the new suffix. Generation runs in a worker thread for async callers.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path
from typing import Any

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.messages.tool import tool_call_chunk
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable
from pydantic import ConfigDict, Field, PrivateAttr

from backend.llm.errors import ModelFileError
from backend.llm.tool_calls import ToolCallStreamSplitter, parse_tool_calls, to_chat_dicts, to_openai_tools


class SharedLlama:
    """A loaded model and the lock that serializes every call to it (llama.cpp contexts are not thread-safe)."""

    def __init__(self, llama: Any) -> None:
        self.llama = llama
        self.lock = threading.Lock()


_SHARED: dict[tuple[str, int, int], SharedLlama] = {}
_SHARED_GUARD = threading.Lock()


def shared_llama(*, model_path: Path, n_ctx: int, n_threads: int) -> SharedLlama:
    """The process-wide `Llama` for this file and shape, loaded on first use."""
    key = (str(model_path.resolve()), n_ctx, n_threads)
    with _SHARED_GUARD:
        if key not in _SHARED:
            if not model_path.is_file():
                raise ModelFileError(
                    f"embedded model file {model_path} is missing; "
                    "fix: python -m backend.llm.model_files assemble --model <name> (make run/test do this)"
                )
            from llama_cpp import Llama

            llama = Llama(
                model_path=str(model_path), n_ctx=n_ctx, n_threads=n_threads, n_threads_batch=n_threads, verbose=False
            )
            _SHARED[key] = SharedLlama(llama=llama)
        return _SHARED[key]


class _Done:
    """End-of-stream marker passed from the worker thread."""


class ChatLlamaCpp(BaseChatModel):
    """Chat model over a shared `Llama` using the GGUF's own chat template (tools rendered by it)."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    model_path: str = ""
    n_ctx: int = 8192
    n_threads: int = 2
    max_tokens: int = 1024
    temperature: float = 0.1
    top_p: float = 0.95
    shared: SharedLlama | None = Field(default=None, exclude=True)
    """Inject a ready `SharedLlama` (tests, benchmarks); otherwise loaded lazily from `model_path`."""
    _resolved: SharedLlama | None = PrivateAttr(default=None)

    @property
    def _llm_type(self) -> str:
        return "llamacpp-embedded"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model_path": self.model_path, "n_ctx": self.n_ctx, "temperature": self.temperature}

    def _shared(self) -> SharedLlama:
        if self.shared is not None:
            return self.shared
        if self._resolved is None:
            self._resolved = shared_llama(model_path=Path(self.model_path), n_ctx=self.n_ctx, n_threads=self.n_threads)
        return self._resolved

    def bind_tools(
        self, tools: Sequence[Any], *, tool_choice: str | None = None, **kwargs: Any
    ) -> Runnable[LanguageModelInput, AIMessage]:
        """Render `tools` through the chat template; replies' `<tool_call>` blocks become `tool_calls`.

        `tool_choice="none"` hides the tools; other choices are advisory (the model decides).
        """
        if tool_choice == "none":
            return self.bind(**kwargs)
        return self.bind(tools=to_openai_tools(tools), **kwargs)

    def _iter_text(self, messages: list[BaseMessage], stop: list[str] | None, cancel: threading.Event | None,
                   **kwargs: Any) -> Iterator[str]:
        """Raw generated text pieces; holds the model lock for the whole generation."""
        tools = kwargs.get("tools") or None
        params = {
            "max_tokens": kwargs.get("max_tokens", self.max_tokens),
            "temperature": kwargs.get("temperature", self.temperature),
            "top_p": kwargs.get("top_p", self.top_p),
        }
        shared = self._shared()
        with shared.lock:
            stream = shared.llama.create_chat_completion(
                messages=to_chat_dicts(messages), tools=tools, stop=stop or None, stream=True, **params
            )
            with contextlib.closing(stream) if hasattr(stream, "close") else contextlib.nullcontext():
                for part in stream:
                    if cancel is not None and cancel.is_set():
                        return
                    piece = part["choices"][0].get("delta", {}).get("content")
                    if piece:
                        yield piece

    def _iter_chunks(self, messages: list[BaseMessage], stop: list[str] | None, cancel: threading.Event | None,
                     **kwargs: Any) -> Iterator[ChatGenerationChunk]:
        tools = kwargs.get("tools") or []
        splitter = ToolCallStreamSplitter(t["function"]["name"] for t in tools) if tools else None
        for piece in self._iter_text(messages, stop, cancel, **kwargs):
            text = splitter.feed(piece) if splitter else piece
            if text:
                yield ChatGenerationChunk(message=AIMessageChunk(content=text))
        if splitter is not None:
            rest, calls = splitter.finish()
            if rest or calls:
                chunks = [
                    tool_call_chunk(name=c["name"], args=json.dumps(c["args"]), id=c["id"], index=i)
                    for i, c in enumerate(calls)
                ]
                yield ChatGenerationChunk(message=AIMessageChunk(content=rest, tool_call_chunks=chunks))

    def _stream(self, messages: list[BaseMessage], stop: list[str] | None = None,
                run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any) -> Iterator[ChatGenerationChunk]:
        yield from self._iter_chunks(messages, stop, None, **kwargs)

    def _generate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                  run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any) -> ChatResult:
        text = "".join(self._iter_text(messages, stop, None, **kwargs))
        return ChatResult(generations=[ChatGeneration(message=self._to_message(text, **kwargs))])

    @staticmethod
    def _to_message(text: str, **kwargs: Any) -> AIMessage:
        tools = kwargs.get("tools") or []
        if not tools:
            return AIMessage(content=text)
        rest, calls = parse_tool_calls(text, tool_names=[t["function"]["name"] for t in tools])
        return AIMessage(content=rest, tool_calls=calls)

    async def _astream(self, messages: list[BaseMessage], stop: list[str] | None = None,
                       run_manager: AsyncCallbackManagerForLLMRun | None = None,
                       **kwargs: Any) -> AsyncIterator[ChatGenerationChunk]:
        """Generate in a worker thread and hand chunks to the event loop; abandoning the stream stops generation."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[Any] = asyncio.Queue()
        cancel = threading.Event()

        def put(item: Any) -> None:
            with contextlib.suppress(RuntimeError):  # loop already closed: nobody is listening
                loop.call_soon_threadsafe(queue.put_nowait, item)

        def work() -> None:
            try:
                for chunk in self._iter_chunks(messages, stop, cancel, **kwargs):
                    put(chunk)
            except BaseException as exc:  # handed to the awaiting side, re-raised there
                put(exc)
            finally:
                put(_Done())

        worker = loop.run_in_executor(None, work)
        try:
            while not isinstance(item := await queue.get(), _Done):
                if isinstance(item, BaseException):
                    raise item
                yield item
            await worker
        finally:
            cancel.set()

    async def _agenerate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                         run_manager: AsyncCallbackManagerForLLMRun | None = None, **kwargs: Any) -> ChatResult:
        cancel = threading.Event()  # a cancelled caller stops generation at the next token
        try:
            text = await asyncio.to_thread(lambda: "".join(self._iter_text(messages, stop, cancel, **kwargs)))
        finally:
            cancel.set()
        return ChatResult(generations=[ChatGeneration(message=self._to_message(text, **kwargs))])

