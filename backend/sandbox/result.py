"""What one sandboxed code run produced, in a shape both the LLM (via `observation()`) and the API can read."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

KillReason = Literal["timeout", "memory", "output", "crash", "blocked"]


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
    variables: list[VariableInfo] = Field(default_factory=list)
    killed_reason: KillReason | None = None

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
        return "\n".join(parts)
