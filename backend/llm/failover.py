"""A chat model over an ordered list of providers: retries, circuit breakers, rate limits and failover.

Non-streamed calls fail over freely. Streamed calls fail over until the first chunk has been delivered; a
provider that breaks after that raises `StreamInterruptedError` (never a spliced answer from two models).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable, RunnableConfig
from pydantic import ConfigDict, Field
from tenacity import AsyncRetrying, RetryCallState, Retrying, retry_if_exception, stop_after_attempt, wait_exponential

from backend.core.metrics import record_llm_call, record_llm_failover, record_llm_tokens
from backend.llm.errors import ProvidersExhaustedError, StreamInterruptedError, is_transient, short_error
from backend.llm.health import BreakerState, HealthRegistry, ProviderHealth

BACKOFF_BASE_SECONDS = 0.5
BACKOFF_MAX_SECONDS = 8.0
_SILENT: RunnableConfig = {"callbacks": []}
"""Inner provider runs are not reported to callbacks: the chain is the one visible model run (no duplicate tokens)."""


@dataclass(frozen=True)
class ProviderEntry:
    """One link of the chain: a provider name and its (possibly tool-bound) model."""

    name: str
    model: Runnable[LanguageModelInput, BaseMessage]


class FailoverChatModel(BaseChatModel):
    """Tries `entries` in order; see the module docstring for the streaming rule."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    entries: list[ProviderEntry]
    registry: HealthRegistry
    max_retries: int = 2
    failure_threshold: int = 3
    cooldown_seconds: float = 30.0
    rate_per_minute: float = 600.0
    backoff_base_seconds: float = BACKOFF_BASE_SECONDS
    sleep: Callable[[float], None] = Field(default=time.sleep, exclude=True)
    asleep: Callable[[float], Any] = Field(default=asyncio.sleep, exclude=True)

    @property
    def _llm_type(self) -> str:
        return "failover-chain"

    @property
    def provider_names(self) -> list[str]:
        return [entry.name for entry in self.entries]

    def bind_tools(
        self, tools: Sequence[Any], *, tool_choice: str | None = None, **kwargs: Any
    ) -> Runnable[LanguageModelInput, AIMessage]:
        """A copy of the chain whose every provider has the tools bound in its own native way."""
        extra = {"tool_choice": tool_choice} if tool_choice is not None else {}
        bound = [
            ProviderEntry(e.name, e.model.bind_tools(tools, **extra, **kwargs))  # type: ignore[attr-defined]
            for e in self.entries
        ]
        return self.model_copy(update={"entries": bound})

    # --- bookkeeping -------------------------------------------------------------------
    def _health(self, name: str) -> ProviderHealth:
        return self.registry.get(
            name,
            failure_threshold=self.failure_threshold,
            cooldown_seconds=self.cooldown_seconds,
            rate_per_minute=self.rate_per_minute,
        )

    def _candidates(self, errors: dict[str, str]) -> Iterator[tuple[ProviderEntry, ProviderHealth]]:
        """Providers allowed to take a call now, in order; skipped ones get a reason in `errors`."""
        for entry in self.entries:
            health = self._health(entry.name)
            if health.breaker.state is BreakerState.OPEN:
                errors[entry.name] = f"circuit open after: {health.last_error}"
                record_llm_failover(provider=entry.name, reason="circuit_open")
                continue
            if not health.bucket.try_acquire():
                health.record_rate_limited()
                errors[entry.name] = f"rate limited ({self.rate_per_minute:g}/min)"
                record_llm_failover(provider=entry.name, reason="rate_limited")
                continue
            if not health.breaker.allow():
                errors[entry.name] = "circuit half-open, trial call already running"
                record_llm_failover(provider=entry.name, reason="half_open_busy")
                continue
            yield entry, health

    def _retry_kwargs(self, health: ProviderHealth) -> dict[str, Any]:
        def before_sleep(state: RetryCallState) -> None:
            health.record_retry()

        return {
            "stop": stop_after_attempt(self.max_retries + 1),
            "wait": wait_exponential(multiplier=self.backoff_base_seconds, max=BACKOFF_MAX_SECONDS),
            "retry": retry_if_exception(is_transient),
            "before_sleep": before_sleep,
            "reraise": True,
        }

    @staticmethod
    def _tag(message: BaseMessage, provider: str) -> BaseMessage:
        message.response_metadata = {**message.response_metadata, "llm_provider": provider}
        record_llm_tokens(provider=provider, message=message)
        return message

    @staticmethod
    def _end_stream(provider: str, health: ProviderHealth, *, started: float, delivered: list[str],
                    prompt: list[BaseMessage] | None = None, error: Exception | None = None) -> None:
        """End-of-stream bookkeeping shared by `_stream` and `_astream`, so the two cannot drift apart.

        `error` set: the stream failed. Otherwise it counts as a success: either the consumer stopped early
        (no `prompt`), or it completed (`prompt` given, logged with the delivered reply).
        """
        seconds = time.monotonic() - started
        if error is not None:
            health.record_failure(error)
            record_llm_call(provider=provider, seconds=seconds, ok=False)
            return
        health.record_success(seconds)
        if prompt is None:
            record_llm_call(provider=provider, seconds=seconds)
        else:
            record_llm_call(provider=provider, seconds=seconds, prompt=prompt, reply="".join(delivered))

    # --- invoke ------------------------------------------------------------------------
    def _generate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                  run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any) -> ChatResult:
        errors: dict[str, str] = {}
        for entry, health in self._candidates(errors):
            started = time.monotonic()
            try:
                message: BaseMessage = Retrying(sleep=self.sleep, **self._retry_kwargs(health))(
                    entry.model.invoke, messages, _SILENT, stop=stop, **kwargs
                )
            except Exception as exc:
                health.record_failure(exc)
                errors[entry.name] = short_error(exc)
                record_llm_failover(provider=entry.name, reason="error")
                continue
            health.record_success(time.monotonic() - started)
            record_llm_call(provider=entry.name, seconds=time.monotonic() - started, prompt=messages, reply=message)
            return ChatResult(generations=[ChatGeneration(message=self._tag(message, entry.name))])
        raise ProvidersExhaustedError(errors)

    async def _agenerate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                         run_manager: AsyncCallbackManagerForLLMRun | None = None, **kwargs: Any) -> ChatResult:
        errors: dict[str, str] = {}
        for entry, health in self._candidates(errors):
            started = time.monotonic()
            try:
                message: BaseMessage = await AsyncRetrying(sleep=self.asleep, **self._retry_kwargs(health))(
                    entry.model.ainvoke, messages, _SILENT, stop=stop, **kwargs
                )
            except Exception as exc:
                health.record_failure(exc)
                errors[entry.name] = short_error(exc)
                record_llm_failover(provider=entry.name, reason="error")
                continue
            health.record_success(time.monotonic() - started)
            record_llm_call(provider=entry.name, seconds=time.monotonic() - started, prompt=messages, reply=message)
            return ChatResult(generations=[ChatGeneration(message=self._tag(message, entry.name))])
        raise ProvidersExhaustedError(errors)

    # --- stream ------------------------------------------------------------------------
    def _stream(self, messages: list[BaseMessage], stop: list[str] | None = None,
                run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any) -> Iterator[ChatGenerationChunk]:
        errors: dict[str, str] = {}
        for entry, health in self._candidates(errors):
            started = time.monotonic()

            def open_stream(entry: ProviderEntry = entry) -> tuple[Iterator[BaseMessage], BaseMessage | None]:
                iterator = iter(entry.model.stream(messages, _SILENT, stop=stop, **kwargs))
                return iterator, next(iterator, None)

            try:
                iterator, first = Retrying(sleep=self.sleep, **self._retry_kwargs(health))(open_stream)
            except Exception as exc:
                health.record_failure(exc)
                errors[entry.name] = short_error(exc)
                record_llm_failover(provider=entry.name, reason="error")
                continue
            delivered: list[str] = []
            try:
                pending = [first] if first is not None else []
                for piece in _chain_first(pending, iterator):
                    chunk = _as_chunk(piece, entry.name, first=not delivered)
                    delivered.append(chunk.text)
                    yield chunk
            except GeneratorExit:
                self._end_stream(entry.name, health, started=started, delivered=delivered)
                raise
            except Exception as exc:
                self._end_stream(entry.name, health, started=started, delivered=delivered, error=exc)
                raise StreamInterruptedError(entry.name, exc, "".join(delivered)) from exc
            self._end_stream(entry.name, health, started=started, delivered=delivered, prompt=messages)
            return
        raise ProvidersExhaustedError(errors)

    async def _astream(self, messages: list[BaseMessage], stop: list[str] | None = None,
                       run_manager: AsyncCallbackManagerForLLMRun | None = None,
                       **kwargs: Any) -> AsyncIterator[ChatGenerationChunk]:
        errors: dict[str, str] = {}
        for entry, health in self._candidates(errors):
            started = time.monotonic()

            async def open_stream(
                entry: ProviderEntry = entry,
            ) -> tuple[AsyncIterator[BaseMessage], BaseMessage | None]:
                iterator = aiter(entry.model.astream(messages, _SILENT, stop=stop, **kwargs))
                return iterator, await anext(iterator, None)

            try:
                opened: tuple[AsyncIterator[BaseMessage], BaseMessage | None] = await AsyncRetrying(
                    sleep=self.asleep, **self._retry_kwargs(health)
                )(open_stream)
            except Exception as exc:
                health.record_failure(exc)
                errors[entry.name] = short_error(exc)
                record_llm_failover(provider=entry.name, reason="error")
                continue
            iterator, first = opened
            delivered: list[str] = []
            try:
                if first is not None:
                    delivered.append(first.text)
                    yield _as_chunk(first, entry.name, first=True)
                async for piece in iterator:
                    chunk = _as_chunk(piece, entry.name, first=not delivered)
                    delivered.append(chunk.text)
                    yield chunk
            except (GeneratorExit, asyncio.CancelledError):
                self._end_stream(entry.name, health, started=started, delivered=delivered)
                raise
            except Exception as exc:
                self._end_stream(entry.name, health, started=started, delivered=delivered, error=exc)
                raise StreamInterruptedError(entry.name, exc, "".join(delivered)) from exc
            self._end_stream(entry.name, health, started=started, delivered=delivered, prompt=messages)
            return
        raise ProvidersExhaustedError(errors)


def _chain_first(pending: list[BaseMessage], rest: Iterator[BaseMessage]) -> Iterator[BaseMessage]:
    yield from pending
    yield from rest


def _as_chunk(piece: BaseMessage, provider: str, *, first: bool) -> ChatGenerationChunk:
    """Provider output as a chunk of our own run (content, tool-call chunks and usage kept).

    Only the first chunk names the provider: string metadata is concatenated when chunks are added up.
    """
    if isinstance(piece, AIMessageChunk):
        message = piece.model_copy(update={"id": None})
    else:
        message = AIMessageChunk(content=piece.content)
    if first:
        message.response_metadata = {**message.response_metadata, "llm_provider": provider}
    record_llm_tokens(provider=provider, message=message)
    return ChatGenerationChunk(message=message)
