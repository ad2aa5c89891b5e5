"""Run an `@llm_func` contract (router choice, plan, replan decision) with the run's LLM, as one traced step."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from pydantic import BaseModel

from backend.agents.runtime import CHARS_PER_TOKEN, RunContext
from backend.llm.contracts import record_llm_calls, use_llm
from backend.llm.errors import LLMError

T = TypeVar("T", bound=BaseModel)


async def structured_call(
    ctx: RunContext, node: str, func: Callable[..., Awaitable[T]], **inputs: Any
) -> tuple[T | None, str | None]:
    """`(value, None)` when the contract was met, `(None, reason)` when the LLM could not meet it.

    Callers fall back to a safe default on None: a structured decision is never worth failing the turn for.
    Errors outside the LLM layer (bugs) propagate.
    """
    shown = {k: v for k, v in inputs.items() if isinstance(v, str | int)}
    async with ctx.tracer.step(node, input=json.dumps(shown, ensure_ascii=False)) as record:
        with use_llm(ctx.llm), record_llm_calls() as calls:
            try:
                value: T | None = await func(**inputs)
                error = None
            except LLMError as exc:
                value, error = None, f"{type(exc).__name__}: {exc}"
        attempts = [a for call in calls for a in call.get_attempts_history()]
        record.tokens = sum(len(a.prompt) + len(a.raw_response) for a in attempts) // CHARS_PER_TOKEN
        record.output = value.model_dump_json() if value is not None else ""
        record.error = error
    return value, error
