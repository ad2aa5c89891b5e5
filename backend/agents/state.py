"""Graph states: the conversation (checkpointed per thread), the ReAct loop and the Plan-Execute loop.

Only plain data lives in state (messages, dicts, strings) so every checkpoint serialises without custom types.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, TypedDict

from langchain_core.messages import AnyMessage
from langgraph.graph.message import add_messages

Strategy = Literal["direct", "react", "plan_execute"]
STRATEGIES: tuple[Strategy, ...] = ("direct", "react", "plan_execute")


class Brief(TypedDict, total=False):
    """Context assembled for one turn within the token budget (see `backend.agents.context`)."""

    history: list[AnyMessage]
    """Recent turns verbatim (human question, final answer)."""
    history_text: str
    """The same turns as text, for tools (the coder) that take context as text."""
    summary: str
    """Older turns, summarised."""
    notepad: str
    variables: str
    variable_names: list[str]
    """Variables that existed when the turn started (the notepad records which ones the turn created)."""
    files: str


class TurnState(TypedDict, total=False):
    """One conversation thread. `messages` is the conversation itself: a question and an answer per turn."""

    messages: Annotated[list[AnyMessage], add_messages]
    run_id: str
    requested: str
    """Strategy asked for by the request (`auto` = let the router pick)."""
    strategy: Strategy
    route_reason: str
    tools: list[str]
    """Tools the router narrowed ReAct to (empty: all)."""
    first_tool: str
    """Tool the router wants called first with the question itself (empty: let the model choose)."""
    brief: Brief
    answer: str
    status: Literal["running", "done"]


class ReactState(TypedDict, total=False):
    """One ReAct task: its own transcript of reasoning, tool calls and observations."""

    messages: Annotated[list[AnyMessage], add_messages]
    task: str
    brief: Brief
    plan: str
    """Plan context when the task is a plan step (also handed to the coder)."""
    allowed_tools: list[str]
    """Tools this task may call; empty means every registered tool."""
    first_call: dict[str, Any]
    """`{"name", "args"}` of a first tool call decided by the router: the first step then skips the LLM."""
    phrase_result: bool
    """Whether a successful `first_call` result is rephrased by the LLM (else it is the answer as is)."""
    iterations: int
    max_iterations: int
    problem: str
    """Why the last reply could not be used (malformed call, empty); handed back as an observation."""
    answer_now: str
    """Why the next step is the answer rather than more reasoning: the model only repeated calls it had made,
    or the router's first call already produced the result. Empty otherwise."""
    capped: bool
    """True when the iteration cap forced the answer."""
    answer: str


class PlanStep(TypedDict):
    goal: str
    tool: str
    """A registered tool name, or `react` to let a ReAct loop choose tools."""
    success: str
    """How to tell the step worked."""


class StepResult(TypedDict):
    goal: str
    tool: str
    ok: bool
    output: str


class PlanState(TypedDict, total=False):
    """One Plan-Execute task: the plan, a cursor into it, the results so far and the replanner's decision."""

    task: str
    brief: Brief
    plan: list[PlanStep]
    cursor: int
    results: list[StepResult]
    revisions: int
    decision: Literal["continue", "revise", "finish"]
    answer: str
