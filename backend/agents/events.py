"""Typed events an agent run emits; the API turns them into SSE, the CLI prints them, tests assert on them."""

from __future__ import annotations

import time
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, TypeAdapter


class _Event(BaseModel):
    run_id: str
    ts: float = Field(default_factory=time.time)


class RunStarted(_Event):
    type: Literal["run_started"] = "run_started"
    conversation_id: str
    strategy: str


class PlanEvent(_Event):
    type: Literal["plan"] = "plan"
    steps: list[dict[str, Any]]
    revision: int = 0


class StepStarted(_Event):
    type: Literal["step_started"] = "step_started"
    step: int
    node: str
    tool: str | None = None
    input: str = ""


class StepFinished(_Event):
    type: Literal["step_finished"] = "step_finished"
    step: int
    node: str
    tool: str | None = None
    output: str = ""
    error: str | None = None
    duration_ms: float = 0.0
    tokens: int = 0


class ToolCall(_Event):
    type: Literal["tool_call"] = "tool_call"
    tool: str
    args: dict[str, Any]


class CodeEvent(_Event):
    type: Literal["code"] = "code"
    code: str
    attempt: int = 1


class OutputEvent(_Event):
    type: Literal["output"] = "output"
    stdout: str = ""
    stderr: str = ""
    error: str | None = None


class TokenEvent(_Event):
    type: Literal["token"] = "token"
    text: str


class FigureEvent(_Event):
    type: Literal["figure"] = "figure"
    artifact_id: str
    name: str
    url: str = ""


class FileEvent(_Event):
    type: Literal["file"] = "file"
    artifact_id: str
    name: str
    url: str = ""


class FinalAnswer(_Event):
    type: Literal["final_answer"] = "final_answer"
    text: str
    strategy: str = ""


class ErrorEvent(_Event):
    type: Literal["error"] = "error"
    message: str
    kind: str = "error"


RunEvent = Annotated[
    RunStarted
    | PlanEvent
    | StepStarted
    | StepFinished
    | ToolCall
    | CodeEvent
    | OutputEvent
    | TokenEvent
    | FigureEvent
    | FileEvent
    | FinalAnswer
    | ErrorEvent,
    Field(discriminator="type"),
]
RUN_EVENT_ADAPTER: TypeAdapter[RunEvent] = TypeAdapter(RunEvent)
