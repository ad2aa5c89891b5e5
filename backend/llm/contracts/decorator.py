"""`@llm_func`: a typed stub becomes an LLM call whose answer is validated, post-checked and retried with feedback."""

from __future__ import annotations

import asyncio
import contextvars
import functools
import inspect
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, ParamSpec, TypeVar, overload

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from pydantic import TypeAdapter, ValidationError

from backend.llm.contracts import prompt
from backend.llm.contracts.chat import resolve_llm
from backend.llm.contracts.context import (
    AttemptRecord,
    LLMCallContext,
    MaxRetriesExceededError,
    ValidationFailedError,
    announce,
)
from backend.llm.contracts.hooks import Hook, PostHook, Rejected
from backend.llm.contracts.reply import parse_reply
from backend.llm.contracts.runner import SNIPPET_TIMEOUT_SECONDS, SnippetRunner, resolve_runner

P = ParamSpec("P")
R = TypeVar("R")
DEFAULT_MAX_RETRIES = 3
logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Contract:
    """Everything fixed at decoration time; `system_prompt` is identical for every call of the function."""

    name: str
    signature: inspect.Signature
    adapter: TypeAdapter[Any]
    docstring: str
    namespace: dict[str, Any]
    hooks: tuple[Hook, ...]
    max_retries: int
    provider: str | None
    runner: SnippetRunner | None
    system_prompt: str

    def bind(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
        bound = self.signature.bind(*args, **kwargs)
        bound.apply_defaults()
        return dict(bound.arguments)

    def first_messages(self, inputs: dict[str, Any]) -> list[BaseMessage]:
        task = prompt.task_prompt(docstring=self.docstring, inputs=inputs, namespace=self.namespace)
        return [SystemMessage(self.system_prompt), HumanMessage(task)]


def build_contract(
    func: Callable[..., Any],
    *,
    output_model: type[Any] | None,
    post_hooks: Sequence[PostHook],
    max_retries: int,
    provider: str | None,
    runner: SnippetRunner | None,
) -> Contract:
    if max_retries < 0:
        raise ValueError(f"max_retries must be >= 0, got {max_retries}")
    output_type = output_model
    if output_type is None:
        output_type = _return_annotation(func)
    name = func.__qualname__
    adapter: TypeAdapter[Any] = TypeAdapter(output_type)
    docstring = inspect.getdoc(func) or f"Implement `{func.__name__}`."
    return Contract(
        name=name,
        signature=inspect.signature(func),
        adapter=adapter,
        docstring=docstring,
        namespace=getattr(func, "__globals__", {}),
        hooks=tuple(Hook.of(hook) for hook in post_hooks),
        max_retries=max_retries,
        provider=provider,
        runner=runner,
        system_prompt=prompt.system_prompt(
            name=name,
            signature=prompt.render_signature(func, func.__name__, output_type),
            output_schema=prompt.output_schema(adapter),
        ),
    )


def _return_annotation(func: Callable[..., Any]) -> Any:
    try:
        hints = inspect.get_annotations(func, eval_str=True)
    except Exception as exc:
        raise TypeError(f"@llm_func {func.__qualname__}: cannot resolve the return annotation ({exc})") from exc
    if "return" not in hints or hints["return"] is None:
        raise TypeError(f"@llm_func {func.__qualname__}: give output_model= or a return annotation")
    return hints["return"]


async def run_contract(contract: Contract, inputs: dict[str, Any]) -> Any:
    """The attempt loop: ask, evaluate, validate, post-check; feed the rejection back until retries run out."""
    context = LLMCallContext(func_name=contract.name, max_retries=contract.max_retries)
    announce(context)
    llm = resolve_llm(contract.provider)
    messages = contract.first_messages(inputs)
    feedback = ""
    for attempt in range(1, context.max_attempts + 1):
        context.current_attempt_number = attempt
        record = AttemptRecord(attempt_number=attempt, prompt=prompt.render_messages(messages))
        started = time.perf_counter()
        reply = await llm.ainvoke(messages)
        record.llm_ms = (time.perf_counter() - started) * 1000
        record.raw_response = reply.text if isinstance(reply, AIMessage) else str(reply.content)
        try:
            record.result = await _evaluate(contract, record, inputs)
        except Rejected as rejected:
            record.error, record.error_kind = rejected.message, rejected.kind
        record.duration_ms = (time.perf_counter() - started) * 1000
        context.add_attempt(record)
        logger.debug("%s attempt %d: %r -> %s", contract.name, attempt, record.raw_response, record.error or "ok")
        if record.error is None:
            context.succeeded = True
            return record.result
        earlier = [a.raw_response.strip() for a in context.get_attempts_history()[:-1]]
        repeated = record.raw_response.strip() in earlier
        feedback = prompt.feedback_prompt(attempt=attempt, error=record.error, repeated=repeated)
        messages = [*messages, AIMessage(record.raw_response), HumanMessage(feedback)]
    error_type = MaxRetriesExceededError if contract.max_retries else ValidationFailedError
    raise error_type(
        f"{contract.name}: no valid answer after {context.max_attempts} attempt(s); last error: {context.last_error}",
        context=context,
        feedback=feedback,
    )


async def _evaluate(contract: Contract, record: AttemptRecord, inputs: dict[str, Any]) -> Any:
    parsed = parse_reply(record.raw_response)
    record.code, record.path = parsed.code, parsed.path
    if parsed.path is None:
        raise Rejected("parse", parsed.error or "the reply could not be read")
    value_json = parsed.value_json
    arguments = {k: v for k, v in inputs.items() if k not in prompt.SKIPPED_INPUTS}
    if parsed.path == "sandbox":
        assert parsed.code is not None
        runner = resolve_runner(contract.runner)
        outcome = await runner.run_snippet(parsed.code, limit_seconds=SNIPPET_TIMEOUT_SECONDS, inputs=arguments)
        if outcome.error is not None:
            raise Rejected("sandbox", outcome.error)
        value_json = outcome.value_json
    try:
        value = contract.adapter.validate_json(value_json or "")
    except ValidationError as exc:
        raise Rejected("validation", prompt.validation_feedback(exc)) from exc
    for hook in contract.hooks:
        await hook.check(value, arguments)
    return value


def _run_blocking(coro: Awaitable[R]) -> R:
    """Run the attempt loop for a sync caller; inside a running loop, in a helper thread (never nested)."""

    async def main() -> R:
        return await coro

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(main())
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="llm-func") as pool:
        return pool.submit(contextvars.copy_context().run, asyncio.run, main()).result()


@overload
def llm_func(func: Callable[P, R], /) -> Callable[P, R]: ...


@overload
def llm_func(
    *,
    output_model: type[Any] | None = None,
    post_hooks: Sequence[PostHook] = (),
    max_retries: int = DEFAULT_MAX_RETRIES,
    provider: str | None = None,
    runner: SnippetRunner | None = None,
) -> Callable[[Callable[P, R]], Callable[P, R]]: ...


def llm_func(
    func: Callable[P, R] | None = None,
    /,
    *,
    output_model: type[Any] | None = None,
    post_hooks: Sequence[PostHook] = (),
    max_retries: int = DEFAULT_MAX_RETRIES,
    provider: str | None = None,
    runner: SnippetRunner | None = None,
) -> Callable[P, R] | Callable[[Callable[P, R]], Callable[P, R]]:
    """Make a typed stub (its body is never run) an LLM-backed function, sync or async like the stub.

    The answer must validate against `output_model` (else the return annotation); each post-hook
    `hook(output, **inputs)` may reject it. Rejections are fed back for up to `max_retries` more attempts,
    then `MaxRetriesExceededError` (or `ValidationFailedError` when `max_retries=0`) is raised.
    """

    def decorate(stub: Callable[P, R]) -> Callable[P, R]:
        contract = build_contract(
            stub,
            output_model=output_model,
            post_hooks=post_hooks,
            max_retries=max_retries,
            provider=provider,
            runner=runner,
        )
        if inspect.iscoroutinefunction(stub):

            @functools.wraps(stub)
            async def async_wrapper(*args: P.args, **kwargs: P.kwargs) -> Any:
                return await run_contract(contract, contract.bind(args, kwargs))

            async_wrapper.__llm_contract__ = contract  # type: ignore[attr-defined]
            return async_wrapper  # type: ignore[return-value]

        @functools.wraps(stub)
        def sync_wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            result: R = _run_blocking(run_contract(contract, contract.bind(args, kwargs)))
            return result

        sync_wrapper.__llm_contract__ = contract  # type: ignore[attr-defined]
        return sync_wrapper

    return decorate(func) if func is not None else decorate


def contract_of(func: Callable[..., Any]) -> Contract:
    """The contract behind an `@llm_func` (its system prompt, schema adapter, hooks)."""
    contract = getattr(func, "__llm_contract__", None)
    if not isinstance(contract, Contract):
        raise TypeError(f"{func!r} is not an @llm_func")
    return contract
