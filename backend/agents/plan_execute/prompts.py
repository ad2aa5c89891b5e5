"""Prompts of the Plan-Execute graph: the planner and replanner contracts, and the synthesiser's system text."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from backend.llm.contracts import llm_func

REACT_TOOL = "react"
"""Plan-step tool meaning "let a ReAct loop pick tools for this step"."""
MAX_GOAL_CHARS = 500


class PlannedStep(BaseModel):
    goal: str = Field(min_length=3, max_length=MAX_GOAL_CHARS)
    """What this step must find out or produce, in plain words."""
    tool: str = REACT_TOOL
    """One of the available tools, or "react" when several tools or reasoning are needed."""
    success: str = Field(default="", max_length=300)
    """How to tell the step worked (e.g. "prints the mean of column Age")."""


class Plan(BaseModel):
    steps: list[PlannedStep] = Field(min_length=1)


class Replan(BaseModel):
    action: Literal["continue", "revise", "finish"]
    reason: str = Field(default="", max_length=300)
    steps: list[PlannedStep] = Field(default_factory=list)
    """With "revise": the steps that replace the rest of the plan."""


def revise_has_steps(output: Replan) -> bool:
    """A revision must say what to do instead."""
    return output.action != "revise" or bool(output.steps)


@llm_func(output_model=Plan, max_retries=2)
async def make_plan(task: str, context: str, tools: str, max_steps: int) -> Plan:  # type: ignore[empty-body]
    """Plan how to answer the request {task!r} in at most {max_steps} steps.

    Each step has a goal (one concrete thing to compute or find), a tool from: {tools} (or "react" when the step
    needs several tools), and a success criterion. Steps run in order and later steps see earlier results.
    Use as few steps as possible; code steps must name the exact file and columns they use.
    Known context: {context}"""


@llm_func(output_model=Replan, post_hooks=[revise_has_steps], max_retries=1)
async def decide_replan(task: str, plan: str, results: str, tools: str) -> Replan:  # type: ignore[empty-body]
    """A step of the plan for {task!r} failed. Decide what to do next.

    - "continue": go on with the remaining steps (the failure does not matter for the answer).
    - "revise": replace the remaining steps with new ones (give them; tools: {tools} or "react").
    - "finish": stop and answer with what is known.
    Plan: {plan}
    Results so far: {results}"""


SYNTHESISE = """You write the final answer for the user from the results of the steps that were run.
- Use only values that appear in the results; never invent numbers.
- Answer every part of the request, briefly and clearly. Say plainly if a part could not be computed.
- Keep any output format the request asks for (for example @name[value])."""
