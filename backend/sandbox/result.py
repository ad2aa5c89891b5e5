"""What one sandboxed code run produced, in a shape both the LLM (via `observation()`) and the API can read."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

KillReason = Literal["timeout", "memory", "output", "crash", "blocked"]

TRUNCATION_MARKER = "\n... [output truncated: {omitted} characters omitted] ...\n"
"""Put where captured output was cut, so the LLM knows it is not seeing everything."""


def clip_output(*, head: str, tail: str, total: int) -> tuple[str, bool]:
    """Join the kept head and tail of a stream of `total` characters; True when something was cut."""
    omitted = total - len(head) - len(tail)
    if omitted <= 0:
        return head + tail, False
    return head + TRUNCATION_MARKER.format(omitted=omitted) + tail, True


def clip_text(text: str, *, limit: int) -> tuple[str, bool]:
    """Cut a complete text to about `limit` characters, keeping its start and end."""
    if len(text) <= limit:
        return text, False
    tail_len = limit // 4
    return clip_output(head=text[: limit - tail_len], tail=text[-tail_len:] if tail_len else "", total=len(text))


class VariableInfo(BaseModel):
    name: str
    type: str
    shape: str | None = None
    preview: str = ""


class SandboxResult(BaseModel):
    ok: bool
    stdout: str = ""
    stderr: str = ""
    truncated: bool = False
    error_type: str | None = None
    error_message: str | None = None
    error_line: int | None = None
    duration_ms: float = 0.0
    files_created: list[str] = Field(default_factory=list)
    """Workdir-relative paths of regular files created or modified by the run (figures included)."""
    figures: list[str] = Field(default_factory=list)
    """Workdir-relative PNGs of figures the code drew but did not save itself (also in files_created)."""
    variables: list[VariableInfo] = Field(default_factory=list)
    killed_reason: KillReason | None = None
    warnings: list[str] = Field(default_factory=list)
    """Problems that did not fail the run, e.g. a variable that could not be saved (disk full)."""

    def observation(self, *, max_chars: int = 4000) -> str:
        """Compact text the LLM reads: output first, then the error with its line."""
        parts: list[str] = []
        if self.stdout:
            parts.append(self.stdout[-max_chars:])
        if not self.ok:
            where = f" (line {self.error_line})" if self.error_line else ""
            parts.append(f"{self.error_type or 'Error'}: {self.error_message or ''}{where}")
        elif not self.stdout:
            parts.append("(no output)")
        parts.extend(f"Warning: {warning}" for warning in self.warnings)
        return "\n".join(parts)
