"""Failover chain: order, retries, breaker and rate-limit skips, streaming failures, tool binding."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import httpx
import pytest
from langchain_core.callbacks import BaseCallbackHandler, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGenerationChunk, ChatResult
from langchain_core.tools import tool
from pydantic import Field

from backend.llm.errors import ProvidersExhaustedError, StreamInterruptedError
from backend.llm.failover import FailoverChatModel, ProviderEntry
from backend.llm.fake import ScriptedChatModel
from backend.llm.health import HealthRegistry


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def status_error(code: int) -> httpx.HTTPStatusError:
    request = httpx.Request("POST", "http://llm.test/api/chat")
    return httpx.HTTPStatusError(f"HTTP {code}", request=request, response=httpx.Response(code, request=request))


def failing(*errors: BaseException, then: str | None = None) -> ScriptedChatModel:
    """A provider that raises `errors` one call at a time, then (optionally) answers `then`."""

    def raiser(error: BaseException) -> Any:
        def reply(_: list[BaseMessage]) -> str:
            raise error

        return reply

    return ScriptedChatModel(replies=[raiser(e) for e in errors] + ([then] if then is not None else []))


class BreaksMidStream(BaseChatModel):
    """Streams `pieces`, then fails with a dropped connection."""

    pieces: list[str]

    @property
    def _llm_type(self) -> str:
        return "breaks-mid-stream"

    def _generate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                  run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any) -> ChatResult:
        raise httpx.RemoteProtocolError("peer closed connection")

    def _stream(self, messages: list[BaseMessage], stop: list[str] | None = None,
                run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any) -> Iterator[ChatGenerationChunk]:
        for piece in self.pieces:
            yield ChatGenerationChunk(message=AIMessageChunk(content=piece))
        raise httpx.RemoteProtocolError("peer closed connection")


class RecordsTools(ScriptedChatModel):
    bound: list[Any] = Field(default_factory=list)

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> Any:
        self.bound.append(([getattr(t, "name", t) for t in tools], kwargs))
        return self


def chain(*models: BaseChatModel, clock: FakeClock | None = None, **options: Any) -> FailoverChatModel:
    sleeps: list[float] = []
    model = FailoverChatModel(
        entries=[ProviderEntry(f"p{i}", m) for i, m in enumerate(models)],
        registry=HealthRegistry(clock=clock or FakeClock()),
        sleep=sleeps.append,
        asleep=_async_recorder(sleeps),
        **options,
    )
    model.__dict__["sleeps"] = sleeps
    return model


def _async_recorder(sleeps: list[float]) -> Any:
    async def asleep(seconds: float) -> None:
        sleeps.append(seconds)

    return asleep


def health(model: FailoverChatModel, name: str) -> dict[str, Any]:
    return next(row for row in model.registry.report() if row["name"] == name)


def test_first_healthy_provider_answers_and_later_ones_are_not_called() -> None:
    second = ScriptedChatModel(replies=["second"])
    model = chain(ScriptedChatModel(replies=["first"]), second)
    reply = model.invoke("hi")
    assert reply.content == "first"
    assert reply.response_metadata["llm_provider"] == "p0"
    assert second.calls == []


def test_permanent_error_fails_over_without_retry() -> None:
    first = failing(ValueError("bad prompt"))
    model = chain(first, ScriptedChatModel(replies=["from p1"]))
    assert model.invoke("hi").content == "from p1"
    assert len(first.calls) == 1
    assert model.__dict__["sleeps"] == []


def test_transient_errors_are_retried_with_growing_backoff_then_fail_over() -> None:
    first = failing(*(httpx.ConnectError("down") for _ in range(3)))
    model = chain(first, ScriptedChatModel(replies=["from p1"]), max_retries=2)
    assert model.invoke("hi").content == "from p1"
    assert len(first.calls) == 3
    sleeps = model.__dict__["sleeps"]
    assert len(sleeps) == 2 and sleeps[1] > sleeps[0] > 0
    assert health(model, "p0")["retries"] == 2


def test_transient_error_then_success_stays_on_the_same_provider() -> None:
    model = chain(failing(status_error(503), then="recovered"), ScriptedChatModel(replies=["unused"]))
    assert model.invoke("hi").content == "recovered"
    assert health(model, "p0")["success_rate"] == 1.0


@pytest.mark.parametrize("code", [429, 500, 502, 503])
def test_rate_limit_and_server_errors_are_retried(code: int) -> None:
    first = failing(status_error(code), then="ok")
    assert chain(first, max_retries=1).invoke("hi").content == "ok"
    assert len(first.calls) == 2


@pytest.mark.parametrize("code", [400, 401, 404, 422])
def test_client_errors_are_not_retried(code: int) -> None:
    first = failing(status_error(code), then="never")
    with pytest.raises(ProvidersExhaustedError):
        chain(first, max_retries=3).invoke("hi")
    assert len(first.calls) == 1


def test_exhausted_chain_names_every_providers_last_error() -> None:
    model = chain(failing(ValueError("context too long")), failing(status_error(401)), max_retries=0)
    with pytest.raises(ProvidersExhaustedError) as info:
        model.invoke("hi")
    assert set(info.value.errors) == {"p0", "p1"}
    assert "context too long" in info.value.errors["p0"]
    assert "401" in info.value.errors["p1"]


def test_open_breaker_skips_the_provider_until_the_cooldown_ends() -> None:
    clock = FakeClock()
    first = failing(ValueError("a"), ValueError("b"), then="back")
    second = ScriptedChatModel(replies=["s1", "s2", "s3"])
    model = chain(first, second, clock=clock, failure_threshold=2, cooldown_seconds=10, max_retries=0)
    assert [model.invoke("x").content for _ in range(3)] == ["s1", "s2", "s3"]
    assert len(first.calls) == 2  # third call skipped: breaker open
    assert health(model, "p0")["state"] == "open"
    clock.now += 10
    assert model.invoke("x").content == "back"  # half-open trial succeeds
    assert health(model, "p0")["state"] == "closed"


def test_rate_limited_provider_is_skipped_for_the_next_one() -> None:
    model = chain(
        ScriptedChatModel(replies=["a"], cycle=True), ScriptedChatModel(replies=["b"], cycle=True), rate_per_minute=1
    )
    assert [model.invoke("x").content for _ in range(2)] == ["a", "b"]
    assert health(model, "p0")["rate_limited"] == 1


def test_all_providers_rate_limited_raises_naming_the_limit() -> None:
    model = chain(ScriptedChatModel(replies=["a"], cycle=True), rate_per_minute=1)
    model.invoke("x")
    with pytest.raises(ProvidersExhaustedError, match="rate limited"):
        model.invoke("x")


def test_stream_failing_before_the_first_chunk_fails_over_cleanly() -> None:
    model = chain(failing(httpx.ConnectError("down")), ScriptedChatModel(replies=["clean answer"]), max_retries=0)
    text = "".join(chunk.text for chunk in model.stream("hi"))
    assert text == "clean answer"


def test_stream_failing_mid_answer_raises_and_does_not_splice_providers() -> None:
    second = ScriptedChatModel(replies=["other model"])
    model = chain(BreaksMidStream(pieces=["The answer ", "is "]), second)
    seen: list[str] = []
    with pytest.raises(StreamInterruptedError) as info:
        for chunk in model.stream("hi"):
            seen.append(chunk.text)
    assert "".join(seen) == "The answer is "
    assert info.value.partial_text == "The answer is "
    assert info.value.provider == "p0"
    assert second.calls == []
    assert health(model, "p0")["consecutive_failures"] == 1


def test_stream_tokens_reach_callbacks_exactly_once() -> None:
    class Tokens(BaseCallbackHandler):
        def __init__(self) -> None:
            self.tokens: list[str] = []

        def on_llm_new_token(self, token: str, **kwargs: Any) -> None:
            self.tokens.append(token)

    handler = Tokens()
    model = chain(ScriptedChatModel(replies=["one two three four"], chunk_size=4))
    list(model.stream("hi", config={"callbacks": [handler]}))
    assert "".join(handler.tokens) == "one two three four"


async def test_async_invoke_fails_over() -> None:
    model = chain(failing(ValueError("x")), ScriptedChatModel(replies=["async ok"]))
    assert (await model.ainvoke("hi")).content == "async ok"


async def test_async_stream_fails_over_before_first_chunk() -> None:
    model = chain(failing(status_error(500)), ScriptedChatModel(replies=["streamed"]), max_retries=0)
    assert "".join([c.text async for c in model.astream("hi")]) == "streamed"


async def test_async_stream_mid_answer_failure_raises_typed_error() -> None:
    model = chain(BreaksMidStream(pieces=["half"]), ScriptedChatModel(replies=["x"]))
    with pytest.raises(StreamInterruptedError, match="mid-stream"):
        async for _ in model.astream("hi"):
            pass


def test_stream_completed_or_stopped_early_counts_as_one_success() -> None:
    model = chain(ScriptedChatModel(replies=["one two three", "four five six"], chunk_size=4))
    assert "".join(chunk.text for chunk in model.stream("hi")) == "one two three"
    stream = model.stream("hi")
    assert next(stream).text == "four"
    stream.close()
    row = health(model, "p0")
    assert (row["calls"], row["success_rate"], row["consecutive_failures"]) == (2, 1.0, 0)


async def test_async_stream_completed_or_stopped_early_counts_as_one_success() -> None:
    model = chain(ScriptedChatModel(replies=["one two three", "four five six"], chunk_size=4))
    assert "".join([c.text async for c in model.astream("hi")]) == "one two three"
    stream = model.astream("hi")
    assert (await anext(stream)).text == "four"
    await stream.aclose()
    row = health(model, "p0")
    assert (row["calls"], row["success_rate"], row["consecutive_failures"]) == (2, 1.0, 0)


async def test_async_stream_failing_mid_answer_counts_as_a_failure() -> None:
    model = chain(BreaksMidStream(pieces=["half"]))
    with pytest.raises(StreamInterruptedError):
        async for _ in model.astream("hi"):
            pass
    row = health(model, "p0")
    assert (row["calls"], row["success_rate"], row["consecutive_failures"]) == (1, 0.0, 1)
    assert "peer closed connection" in (row["last_error"] or "")


def test_bind_tools_binds_every_provider_and_keeps_the_chain() -> None:
    @tool
    def add(a: int, b: int) -> int:
        """Add."""
        return a + b

    first, second = RecordsTools(replies=["x"]), RecordsTools(replies=["y"])
    bound = chain(first, second).bind_tools([add], tool_choice="auto")
    assert isinstance(bound, FailoverChatModel)
    assert first.bound == [(["add"], {"tool_choice": "auto"})]
    assert second.bound == [(["add"], {"tool_choice": "auto"})]


def test_tool_calls_from_a_provider_survive_streaming_through_the_chain() -> None:
    reply = AIMessage(content="", tool_calls=[{"name": "add", "args": {"a": 1, "b": 2}, "id": "c1"}])
    model = chain(ScriptedChatModel(replies=[reply]))
    total = None
    for chunk in model.stream("hi"):
        total = chunk if total is None else total + chunk
    assert total is not None
    assert [(c["name"], c["args"]) for c in total.tool_calls] == [("add", {"a": 1, "b": 2})]
    assert total.response_metadata["llm_provider"] == "p0"
