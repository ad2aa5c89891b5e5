"""Inputs and outputs of the coder loop: the context it is given, each attempt it makes, the result it returns."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from backend.sandbox.result import SandboxResult

AttemptKind = Literal["generate", "fix", "revise"]
VerdictSource = Literal["rules", "llm", "skipped"]
FIGURE_SUFFIXES = (".png", ".jpg", ".jpeg", ".svg", ".gif", ".webp")


class CoderContext(BaseModel):
    """Pre-rendered context the agent hands to code generation; each part is optional and already size-bounded."""

    history: str = ""
    """Recent conversation turns."""
    notepad: str = ""
    """What earlier turns found (notepad entries)."""
    variables: str = ""
    """Catalog of saved variables with their load snippets."""
    plan: str = ""
    """The plan step this code serves, and what earlier steps produced."""


class Verdict(BaseModel):
    """Whether a program's output answers the question; `reason` says what is missing or wrong."""

    answers_question: bool
    reason: str = ""


class CoderAttempt(BaseModel):
    """One generated program and what happened to it, kept for the run trace."""

    number: int
    kind: AttemptKind
    code: str
    static_error: str | None = None
    result: SandboxResult | None = None
    verdict: Verdict | None = None
    verdict_source: VerdictSource | None = None
    llm_seconds: float = 0.0


class CoderResult(BaseModel):
    """What the coder produced: the last good program and its output, or a clear failure with every attempt."""

    success: bool
    code: str = ""
    output: str = ""
    error: str | None = None
    figures: list[str] = Field(default_factory=list)
    files: list[str] = Field(default_factory=list)
    attempts: list[CoderAttempt] = Field(default_factory=list)
    executions: int = 0
    llm_calls: int = 0
    seconds: float = 0.0

    @property
    def verified(self) -> bool:
        """True when the final attempt's output was accepted (by rules or by the LLM)."""
        last = self.attempts[-1] if self.attempts else None
        return bool(last and last.verdict and last.verdict.answers_question)
