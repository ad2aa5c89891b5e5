"""Post-hooks of an `@llm_func`: `hook(output, **inputs)` rejects an answer by assert, ValueError or `False`."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from backend.llm.contracts.context import ErrorKind
from backend.llm.contracts.prompt import echo

PostHook = Callable[..., Any]
"""`hook(output, **inputs)`: raise AssertionError/ValueError (or return False) to reject the output."""


class Rejected(Exception):
    """One attempt's answer broke the contract; `message` is what the model reads next."""

    def __init__(self, kind: ErrorKind, message: str) -> None:
        self.kind = kind
        self.message = message
        super().__init__(message)


@dataclass(frozen=True)
class Hook:
    """A post-hook and the inputs it accepts (only those it names, unless it takes **kwargs)."""

    func: PostHook
    name: str
    accepted: frozenset[str] | None  # None: takes **kwargs, gets every input

    @classmethod
    def of(cls, func: PostHook) -> Hook:
        params = inspect.signature(func).parameters.values()
        if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
            accepted = None
        else:
            accepted = frozenset(p.name for p in list(params)[1:])
        return cls(func, getattr(func, "__name__", repr(func)), accepted)

    async def check(self, output: Any, inputs: dict[str, Any]) -> None:
        kwargs = {k: v for k, v in inputs.items() if self.accepted is None or k in self.accepted}
        try:
            verdict = self.func(output, **kwargs)
            if inspect.isawaitable(verdict):
                verdict = await verdict
        except (AssertionError, ValueError) as exc:  # pydantic's ValidationError is a ValueError
            detail = describe_failure(exc)
            message = f"check `{self.name}` failed: {detail}; the value was {echo(output)}"
            raise Rejected("hook", message) from exc
        if verdict is False:
            raise Rejected("hook", f"check `{self.name}` failed for the value {echo(output)}")


def describe_failure(exc: BaseException) -> str:
    """The message, and for an assert the failing line too (a bare `assert x in y` has no message)."""
    message = str(exc).strip()
    if not isinstance(exc, AssertionError):
        return message or type(exc).__name__
    if message and not message.startswith("assert "):  # "assert ..." is pytest's rewrite of a bare assert
        return message
    frames = inspect.getinnerframes(exc.__traceback__, context=1) if exc.__traceback__ else []
    code = frames[-1].code_context if frames else None
    return f"`{code[0].strip()}`" if code else "assertion failed"
