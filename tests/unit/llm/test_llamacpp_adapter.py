"""The embedded-model adapter over a fake `Llama`: streaming, tool calls, locking, threads, sharing."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import AIMessageChunk, HumanMessage, SystemMessage
from langchain_core.tools import tool

from backend.llm import llamacpp
from backend.llm.errors import ModelFileError
from backend.llm.llamacpp import ChatLlamaCpp, SharedLlama


class FakeLlama:
    """Mimics `Llama.create_chat_completion(stream=True)`: yields scripted pieces, tracks concurrency."""

    def __init__(self, pieces: list[str], delay: float = 0.0) -> None:
        self.pieces = pieces
        self.delay = delay
        self.calls: list[dict[str, Any]] = []
        self.active = 0
        self.max_active = 0
        self.generated = 0
        self._guard = threading.Lock()

    def create_chat_completion(self, **kwargs: Any) -> Iterator[dict[str, Any]]:
        self.calls.append(kwargs)
        return self._gen()

    def _gen(self) -> Iterator[dict[str, Any]]:
        with self._guard:
            self.active += 1
            self.max_active = max(self.max_active, self.active)
        try:
            yield {"choices": [{"delta": {"role": "assistant"}}]}
            for piece in self.pieces:
                time.sleep(self.delay)
                self.generated += 1
                yield {"choices": [{"delta": {"content": piece}}]}
        finally:
            with self._guard:
                self.active -= 1


def model_over(fake: FakeLlama, **options: Any) -> ChatLlamaCpp:
    return ChatLlamaCpp(shared=SharedLlama(fake), **options)


@tool
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


def test_stream_yields_each_generated_piece() -> None:
    chunks = [c.text for c in model_over(FakeLlama(["Hel", "lo", "!"])).stream("hi")]
    assert [c for c in chunks if c] == ["Hel", "lo", "!"]


def test_invoke_returns_the_whole_reply() -> None:
    assert model_over(FakeLlama(["Hel", "lo"])).invoke("hi").content == "Hello"


def test_messages_and_sampling_settings_reach_llama() -> None:
    fake = FakeLlama(["x"])
    model_over(fake, max_tokens=7, temperature=0.3).invoke([SystemMessage("be brief"), HumanMessage("q")])
    call = fake.calls[0]
    assert call["messages"] == [{"role": "system", "content": "be brief"}, {"role": "user", "content": "q"}]
    assert (call["max_tokens"], call["temperature"], call["stream"], call["tools"]) == (7, 0.3, True, None)


def test_bound_tools_are_rendered_and_tool_call_blocks_parsed() -> None:
    fake = FakeLlama(['<tool_call>\n{"name": "add", ', '"arguments": {"a": 17, "b": 25}}\n</tool_call>'])
    reply = model_over(fake).bind_tools([add]).invoke("17+25?")
    assert fake.calls[0]["tools"][0]["function"]["name"] == "add"
    assert [(c["name"], c["args"]) for c in reply.tool_calls] == [("add", {"a": 17, "b": 25})]  # type: ignore[attr-defined]
    assert reply.content == ""


def test_streamed_tool_call_arrives_as_tool_call_chunks() -> None:
    fake = FakeLlama(["Calling. ", "<tool_call>", '{"name": "add", "arguments": {"a": 1, "b": 2}}', "</tool_call>"])
    total: AIMessageChunk | None = None
    for chunk in model_over(fake).bind_tools([add]).stream("1+2?"):
        total = chunk if total is None else total + chunk  # type: ignore[assignment]
    assert total is not None
    assert total.content == "Calling. "
    assert [(c["name"], c["args"]) for c in total.tool_calls] == [("add", {"a": 1, "b": 2})]


def test_malformed_tool_call_comes_back_as_plain_text() -> None:
    fake = FakeLlama(["<tool_call>{not json</tool_call>"])
    reply = model_over(fake).bind_tools([add]).invoke("?")
    assert reply.content == "<tool_call>{not json</tool_call>"
    assert reply.tool_calls == []  # type: ignore[attr-defined]


def test_tool_choice_none_hides_the_tools() -> None:
    fake = FakeLlama(["plain"])
    model_over(fake).bind_tools([add], tool_choice="none").invoke("?")
    assert fake.calls[0]["tools"] is None


def test_concurrent_calls_are_serialized_on_the_shared_model() -> None:
    fake = FakeLlama(["a", "b", "c"], delay=0.01)
    model = model_over(fake)
    threads = [threading.Thread(target=model.invoke, args=("hi",)) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(fake.calls) == 4
    assert fake.max_active == 1


async def test_async_stream_generates_in_a_worker_thread_without_blocking_the_loop() -> None:
    fake = FakeLlama(["t"] * 10, delay=0.02)
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.005)
            ticks += 1

    task = asyncio.create_task(ticker())
    pieces = [c.text async for c in model_over(fake).astream("hi") if c.text]
    task.cancel()
    assert pieces == ["t"] * 10
    assert ticks >= 10  # the loop kept running during ~0.2 s of generation


async def test_abandoned_async_stream_stops_generation_and_frees_the_model() -> None:
    fake = FakeLlama(["t"] * 50, delay=0.01)
    model = model_over(fake)
    stream = model.astream("hi")
    async for _ in stream:
        break
    await stream.aclose()
    await asyncio.sleep(0.1)
    assert fake.generated < 50
    assert (await model.ainvoke("again")).content == "t" * 50


async def test_async_invoke_returns_the_whole_reply() -> None:
    assert (await model_over(FakeLlama(["a", "b"])).ainvoke("hi")).content == "ab"


def test_missing_model_file_names_the_file_and_the_fix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(llamacpp, "_SHARED", {})
    missing = tmp_path / "nope.gguf"
    with pytest.raises(ModelFileError, match=r"nope\.gguf is missing; fix: python -m backend.llm.model_files assemble"):
        ChatLlamaCpp(model_path=str(missing)).invoke("hi")


def test_instances_for_the_same_file_share_one_loaded_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    loads: list[str] = []

    class CountingLlama(FakeLlama):
        def __init__(self, model_path: str, **kwargs: Any) -> None:
            loads.append(model_path)
            super().__init__(["ok"])

    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"GGUF")
    monkeypatch.setattr(llamacpp, "_SHARED", {})
    monkeypatch.setattr("llama_cpp.Llama", CountingLlama)
    first, second = ChatLlamaCpp(model_path=str(gguf)), ChatLlamaCpp(model_path=str(gguf))
    assert first.invoke("a").content == second.invoke("b").content == "ok"
    assert loads == [str(gguf)]
    assert first._shared() is second._shared()
