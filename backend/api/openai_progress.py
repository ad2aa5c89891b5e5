"""A run's events as the text a chat client shows: progress while the agent works, then the answer, then links to
the figures and files it made.

Chat clients only render `content`, so progress is markdown in the content stream (a list, code in fences),
at the detail `openai_compat_progress` asks for. Answer tokens are streamed live; the final answer is the truth,
so whatever the tokens left out (or a different, fallback answer) is sent at the end.
"""

from __future__ import annotations

import json
from typing import Literal

from backend.agents.events import (
    CodeEvent,
    ErrorEvent,
    FigureEvent,
    FileEvent,
    FinalAnswer,
    OutputEvent,
    PlanEvent,
    RunEvent,
    StepFinished,
    StepStarted,
    TokenEvent,
    ToolCall,
)

ProgressMode = Literal["full", "summary", "none"]
LINE_CHARS = 240
"""Longest step input/output shown on one progress line."""
OUTPUT_CHARS = 2000
"""Longest program output shown in `full` progress."""


def _line(text: str, limit: int = LINE_CHARS) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _fence(text: str, language: str = "") -> str:
    ticks = "```"
    while ticks in text:
        ticks += "`"
    return f"\n{ticks}{language}\n{text.rstrip()}\n{ticks}\n"


def _clip(text: str, limit: int = OUTPUT_CHARS) -> str:
    return text if len(text) <= limit else text[:limit] + "\n…[truncated]"


def _step_name(node: str, tool: str | None) -> str:
    return f"{node} · `{tool}`" if tool else node


class Transcript:
    """Feed it a run's events in order; it says what to send now and keeps what the final message needs."""

    def __init__(self, *, mode: ProgressMode, base_url: str) -> None:
        self.mode = mode
        self.base_url = base_url.rstrip("/")
        self.answer: str | None = None
        self.error: str | None = None
        self.links: list[str] = []
        self.agent_tokens = 0
        self.streamed = ""
        """Answer tokens sent so far."""
        self._progress_open = False

    # --- streaming ------------------------------------------------------------------------
    def feed(self, event: RunEvent) -> list[str]:
        """Content to stream for this event (possibly nothing)."""
        if isinstance(event, TokenEvent):
            return self._token(event.text)
        if isinstance(event, FinalAnswer):
            self.answer = event.text.strip()
        elif isinstance(event, ErrorEvent):
            self.error = event.message
        elif isinstance(event, FigureEvent | FileEvent):
            url = f"{self.base_url}{event.url}"
            self.links.append(f"![{event.name}]({url})" if isinstance(event, FigureEvent) else f"[{event.name}]({url})")
        elif isinstance(event, StepFinished):
            self.agent_tokens += event.tokens
        if self.mode == "none" or self.streamed:  # once the answer is streaming, progress would cut into it
            return []
        text = self._progress(event)
        if text:
            self._progress_open = True
            return [text]
        return []

    def closing(self) -> list[str]:
        """What is left after the last event: the answer's unsent part, then the links."""
        answer = self.answer or ""
        if not self.streamed:
            rest = self._after_progress(answer)
        elif answer.startswith(self.streamed):
            rest = answer[len(self.streamed):]
        elif self.streamed.strip() == answer or self.streamed.startswith(answer):
            rest = ""
        else:  # the streamed text was not the answer after all (e.g. the agent fell back to another one)
            rest = "\n\n" + answer
        pieces = [rest] if rest else []
        if self.links:
            pieces.append(("\n\n" if answer or self._progress_open else "") + "\n\n".join(self.links))
        return pieces

    def content(self) -> str:
        """The whole assistant message of a non-streamed answer: the answer and the links, no progress."""
        return "\n\n".join(part for part in (self.answer or "", *self.links) if part)

    def _token(self, text: str) -> list[str]:
        if not self.streamed:
            text = text.lstrip()
            if not text:
                return []
            self.streamed = text
            return [self._after_progress(text)]
        self.streamed += text
        return [text]

    def _after_progress(self, text: str) -> str:
        """A blank line ends the progress list before the answer starts."""
        if self._progress_open and text:
            self._progress_open = False
            return "\n" + text
        return text

    # --- progress -------------------------------------------------------------------------
    def _progress(self, event: RunEvent) -> str:
        if isinstance(event, PlanEvent):
            title = "**Revised plan**" if event.revision else "**Plan**"
            steps = "".join(f"{n}. {_line(str(step.get('goal', '')))}\n" for n, step in enumerate(event.steps, 1))
            return f"{title}\n\n{steps}\n"
        if isinstance(event, StepFinished):
            return self._finished(event)
        if self.mode != "full":
            return ""
        if isinstance(event, StepStarted):
            detail = f": {_line(event.input)}" if event.input else ""
            return f"- ▶ step {event.step} · {_step_name(event.node, event.tool)}{detail}\n"
        if isinstance(event, ToolCall):
            return f"- calling `{event.tool}` {_line(json.dumps(event.args, ensure_ascii=False))}\n"
        if isinstance(event, CodeEvent):
            return _fence(event.code, "python")
        if isinstance(event, OutputEvent):
            parts = [_fence(_clip(event.stdout), "text")] if event.stdout.strip() else []
            if event.error:
                parts.append(f"- ✗ {_line(event.error)}\n")
            return "".join(parts)
        return ""

    def _finished(self, event: StepFinished) -> str:
        seconds = f" ({event.duration_ms / 1000:.1f} s)"
        if event.error:
            return f"- ✗ {_step_name(event.node, event.tool)}{seconds}: {_line(event.error)}\n"
        if self.mode == "summary":
            return f"- ✓ `{event.tool}`{seconds}\n" if event.tool else ""
        output = f": {_line(event.output)}" if event.output else ""
        return f"- ✓ step {event.step} · {_step_name(event.node, event.tool)}{seconds}{output}\n"
