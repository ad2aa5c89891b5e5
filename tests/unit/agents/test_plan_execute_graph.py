"""Plan-Execute graph: plan, execute (directly or via ReAct), replan (continue / revise / finish), synthesise."""

from __future__ import annotations

import json
from typing import Any

import pytest
from langchain_core.runnables import RunnableConfig
from langchain_core.tools import StructuredTool

from backend.agents.plan_execute.graph import MAX_REVISIONS, build_plan_execute_graph
from backend.tools.registry import TASK_TOOL_METADATA, ToolRegistry, tool_context

GRAPH = build_plan_execute_graph()


class Analyst:
    """A task tool (like python_coder) that records what it was asked and with which plan context."""

    def __init__(self) -> None:
        self.seen: list[dict[str, str]] = []

    async def analyst(self, question: str, config: RunnableConfig) -> str:
        """Answer a question about data.

        Args:
            question: The task in words.
        """
        self.seen.append({"question": question, "plan": tool_context(config).plan})
        if "broken" in question:
            raise ValueError("no such column")
        return f"result of <{question.split(' (')[0]}>"


@pytest.fixture
def analyst() -> Analyst:
    return Analyst()


@pytest.fixture
def plan_tools(tools: ToolRegistry, analyst: Analyst) -> ToolRegistry:
    task_tool = StructuredTool.from_function(
        coroutine=analyst.analyst, name="analyst", parse_docstring=True, metadata={TASK_TOOL_METADATA: True}
    )
    return ToolRegistry([task_tool, *tools.tools])


def plan(*steps: tuple[str, str]) -> str:
    return json.dumps({"steps": [{"goal": goal, "tool": tool, "success": "a number"} for goal, tool in steps]})


def replan(action: str, *steps: tuple[str, str]) -> str:
    planned = [{"goal": goal, "tool": tool} for goal, tool in steps]
    return json.dumps({"action": action, "reason": "because", "steps": planned})


INPUTS: dict[str, Any] = {"task": "compare A and B"}


async def test_task_tool_steps_run_directly_then_the_synthesiser_answers(make_ctx, run_graph, plan_tools, analyst):
    ctx = make_ctx(plan(("mean of A", "analyst"), ("mean of B", "analyst")), "A is larger.", registry=plan_tools)
    state, _ = await run_graph(GRAPH, INPUTS, ctx)
    assert [s["question"] for s in analyst.seen] == ["mean of A (success: a number)", "mean of B (success: a number)"]
    assert [r["ok"] for r in state["results"]] == [True, True]
    assert state["answer"] == "A is larger."
    synthesis_prompt = ctx.llm.calls[-1][-1].content
    assert "result of <mean of A>" in synthesis_prompt and "result of <mean of B>" in synthesis_prompt


async def test_plan_context_with_earlier_results_reaches_the_tool(make_ctx, run_graph, plan_tools, analyst):
    ctx = make_ctx(plan(("mean of A", "analyst"), ("mean of B", "analyst")), "done", registry=plan_tools)
    await run_graph(GRAPH, INPUTS, ctx)
    second = analyst.seen[1]["plan"]
    assert "Overall request: compare A and B" in second
    assert "1. [done] mean of A" in second and "2. [now] mean of B" in second
    assert "result of <mean of A>" in second


async def test_plan_event_lists_the_steps(make_ctx, run_graph, plan_tools, of_type):
    ctx = make_ctx(plan(("mean of A", "analyst")), "done", registry=plan_tools)
    _, events = await run_graph(GRAPH, INPUTS, ctx)
    [event] = of_type(events, "plan")
    assert event.revision == 0
    assert event.steps == [{"goal": "mean of A", "tool": "analyst", "success": "a number"}]


async def test_non_task_tool_step_runs_through_react_limited_to_that_tool(make_ctx, run_graph, plan_tools, call):
    ctx = make_ctx(plan(("add 2 and 3", "calculator")), call("calculator", expression="2+3"), "5", "Sum is 5.",
                   registry=plan_tools)
    state, _ = await run_graph(GRAPH, INPUTS, ctx)
    assert state["results"] == [{"goal": "add 2 and 3", "tool": "calculator", "ok": True, "output": "5"}]
    assert state["answer"] == "Sum is 5."


async def test_unknown_tool_in_the_plan_becomes_a_react_step(make_ctx, run_graph, plan_tools):
    ctx = make_ctx(plan(("look around", "telescope")), "nothing to see", "Nothing.", registry=plan_tools)
    state, _ = await run_graph(GRAPH, INPUTS, ctx)
    assert state["plan"][0]["tool"] == "react"
    assert state["results"][0]["output"] == "nothing to see"


async def test_failed_step_lets_the_replanner_revise_the_plan(make_ctx, run_graph, plan_tools, analyst, of_type):
    ctx = make_ctx(
        plan(("broken step", "analyst"), ("never run", "analyst")),
        replan("revise", ("fixed step", "analyst")),
        "Recovered.",
        registry=plan_tools,
    )
    state, events = await run_graph(GRAPH, INPUTS, ctx)
    assert [s["question"].split(" (")[0] for s in analyst.seen] == ["broken step", "fixed step"]
    assert [r["ok"] for r in state["results"]] == [False, True]
    assert [e.revision for e in of_type(events, "plan")] == [0, 1]
    assert state["answer"] == "Recovered."


async def test_replanner_finish_skips_the_remaining_steps(make_ctx, run_graph, plan_tools, analyst):
    ctx = make_ctx(plan(("broken step", "analyst"), ("later", "analyst")), replan("finish"), "Partial answer.",
                   registry=plan_tools)
    state, _ = await run_graph(GRAPH, INPUTS, ctx)
    assert len(analyst.seen) == 1
    assert state["answer"] == "Partial answer."


async def test_replanner_continue_moves_on_to_the_next_step(make_ctx, run_graph, plan_tools, analyst):
    ctx = make_ctx(plan(("broken step", "analyst"), ("later", "analyst")), replan("continue"), "Answer.",
                   registry=plan_tools)
    await run_graph(GRAPH, INPUTS, ctx)
    assert [s["question"].split(" (")[0] for s in analyst.seen] == ["broken step", "later"]


async def test_revise_without_steps_is_rejected_and_retried(make_ctx, run_graph, plan_tools, analyst):
    ctx = make_ctx(plan(("broken step", "analyst")), replan("revise"), replan("revise", ("again", "analyst")),
                   "Answer.", registry=plan_tools)
    await run_graph(GRAPH, INPUTS, ctx)
    assert [s["question"].split(" (")[0] for s in analyst.seen] == ["broken step", "again"]


async def test_revisions_are_bounded(make_ctx, run_graph, plan_tools, analyst):
    revisions = [replan("revise", ("broken again", "analyst"))] * MAX_REVISIONS
    ctx = make_ctx(plan(("broken step", "analyst")), *revisions, "Gave up.", registry=plan_tools)
    state, _ = await run_graph(GRAPH, INPUTS, ctx)
    assert state["revisions"] == MAX_REVISIONS
    assert len(analyst.seen) == MAX_REVISIONS + 1
    assert state["answer"] == "Gave up."


async def test_unusable_plan_falls_back_to_one_react_step_for_the_whole_task(make_ctx, run_graph, plan_tools):
    garbage = ["I think we should just do it."] * 3
    ctx = make_ctx(*garbage, "direct result", "Final.", registry=plan_tools)
    state, events = await run_graph(GRAPH, INPUTS, ctx)
    assert state["plan"] == [{"goal": "compare A and B", "tool": "react", "success": "the request is answered"}]
    planner = [e for e in events if e.type == "step_finished" and e.node == "plan"]
    assert planner[0].error and "attempt" in planner[0].error
    assert state["answer"] == "Final."


async def test_plan_is_cut_to_the_step_limit(make_ctx, run_graph, plan_tools, settings):
    settings.agent_max_plan_steps = 2
    ctx = make_ctx(plan(("step one", "analyst"), ("step two", "analyst"), ("step three", "analyst")), "Done.",
                   registry=plan_tools)
    state, _ = await run_graph(GRAPH, INPUTS, ctx)
    assert [s["goal"] for s in state["plan"]] == ["step one", "step two"]
