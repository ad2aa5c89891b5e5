"""What one `@llm_func` call did, attempt by attempt, and the errors that carry it to the caller."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from backend.llm.errors import LLMError

AnswerPath = Literal["json", "literal", "sandbox"]
"""How a reply became a value: pure JSON or a literal assignment (parsed in-process), or code run in the sandbox."""
ErrorKind = Literal["parse", "sandbox", "validation", "hook"]
"""Which stage rejected an attempt."""


@dataclass
class AttemptRecord:
    """One round trip: the prompt sent, what came back, how it was evaluated and why it failed (if it did)."""

    attempt_number: int
    prompt: str
    raw_response: str = ""
    code: str | None = None
    path: AnswerPath | None = None
    result: Any = None
    error: str | None = None
    error_kind: ErrorKind | None = None
    llm_ms: float = 0.0
    duration_ms: float = 0.0

    @property
    def ok(self) -> bool:
        return self.error is None

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly view for traces (`result` as its repr)."""
        data = asdict(self)
        data["result"] = None if self.result is None else repr(self.result)
        return data


@dataclass
class LLMCallContext:
    """State of one call of an `@llm_func`; errors carry it so callers can see every attempt."""

    func_name: str
    max_retries: int
    current_attempt_number: int = 0
    succeeded: bool = False
    _attempts: list[AttemptRecord] = field(default_factory=list, repr=False)

    @property
    def max_attempts(self) -> int:
        """The first attempt plus `max_retries` retries."""
        return self.max_retries + 1

    def get_attempts_history(self) -> list[AttemptRecord]:
        """Every attempt so far, oldest first (a copy: the context keeps its own list)."""
        return list(self._attempts)

    def add_attempt(self, record: AttemptRecord) -> None:
        self._attempts.append(record)

    @property
    def last_error(self) -> str | None:
        return self._attempts[-1].error if self._attempts else None


class ValidationFailedError(LLMError):
    """The LLM's answer broke the contract (unparseable, snippet error, schema or post-hook) and no retry is left.

    Raised as is when `max_retries=0`; `MaxRetriesExceededError` (a subclass) when retries were spent.
    `context` holds every attempt, `feedback` the last message that was (or would have been) sent back.
    """

    def __init__(self, message: str, *, context: LLMCallContext, feedback: str) -> None:
        self.context = context
        self.feedback = feedback
        super().__init__(message)


class MaxRetriesExceededError(ValidationFailedError):
    """Every attempt (1 + `max_retries`) failed its contract; `context` holds them all."""


_recorders: ContextVar[tuple[list[LLMCallContext], ...]] = ContextVar("llm_func_recorders", default=())


@contextmanager
def record_llm_calls() -> Iterator[list[LLMCallContext]]:
    """Collect the context of every `@llm_func` call made inside the block (for traces, tests and benchmarks).

    Successful calls are recorded too, so callers can see how many attempts an answer needed.
    """
    calls: list[LLMCallContext] = []
    token = _recorders.set((*_recorders.get(), calls))
    try:
        yield calls
    finally:
        _recorders.reset(token)


def announce(context: LLMCallContext) -> None:
    """Register a new call with every active `record_llm_calls()` block."""
    for calls in _recorders.get():
        calls.append(context)
