"""Plan-Execute as a LangGraph StateGraph: plan -> execute (a step) -> replan -> execute ... -> synthesise.

Each step runs its tool directly when the tool takes a task in words (python_coder, rag_search, web_search),
else through the ReAct sub-graph. The plan and earlier results go with every step, into code generation too.
Replanning is rule-based while steps succeed; the LLM decides (continue / revise / finish) after a failure.
"""

from __future__ import annotations

from typing import Any, Literal

from langchain_core.messages import HumanMessage
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.runtime import Runtime

from backend.agents.calls import complete, text_of
from backend.agents.context import context_block, prompt_messages
from backend.agents.events import PlanEvent
from backend.agents.plan_execute.prompts import (
    REACT_TOOL,
    SYNTHESISE,
    PlannedStep,
    decide_replan,
    make_plan,
)
from backend.agents.react.graph import build_react_graph
from backend.agents.runtime import RunContext, emit, token_count
from backend.agents.state import PlanState, PlanStep, StepResult
from backend.agents.structured import structured_call
from backend.tools.registry import ToolRegistry, task_argument, truncate

MAX_REVISIONS = 2
"""Times the replanner may rewrite the plan in one turn."""
RESULT_CHARS = 1500
"""Longest step output carried into later steps and the synthesiser."""

_react = build_react_graph()


def build_plan_execute_graph() -> CompiledStateGraph[Any, Any, Any, Any]:
    graph = StateGraph(PlanState, context_schema=RunContext)
    graph.add_node("plan", plan)
    graph.add_node("execute", execute)
    graph.add_node("replan", replan)
    graph.add_node("synthesise", synthesise)
    graph.add_edge(START, "plan")
    graph.add_edge("plan", "execute")
    graph.add_edge("execute", "replan")
    graph.add_conditional_edges("replan", after_replan, ["execute", "synthesise"])
    graph.add_edge("synthesise", END)
    return graph.compile(name="plan_execute")


async def after_replan(state: PlanState) -> Literal["execute", "synthesise"]:
    more = state.get("cursor", 0) < len(state.get("plan", []))
    return "execute" if state.get("decision") != "finish" and more else "synthesise"


async def plan(state: PlanState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    """Ask for a structured plan; when the LLM cannot give one, the whole task becomes a single ReAct step."""
    ctx = runtime.context
    value, _ = await structured_call(
        ctx, "plan", make_plan, task=state["task"], context=_clip(context_block(state.get("brief", {})), 1500),
        tools=_tool_list(ctx.tools), max_steps=ctx.settings.agent_max_plan_steps,
    )
    steps = _steps(value.steps if value else [], ctx.tools, ctx.settings.agent_max_plan_steps)
    steps = steps or [PlanStep(goal=state["task"], tool=REACT_TOOL, success="the request is answered")]
    emit(PlanEvent(run_id=ctx.run_id, steps=[dict(s) for s in steps], revision=0))
    return {"plan": steps, "cursor": 0, "results": [], "revisions": 0}


async def execute(state: PlanState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    """Run the step under the cursor, directly with its tool or through ReAct, and record its result."""
    ctx = runtime.context
    step = state["plan"][state["cursor"]]
    context = plan_context(state)
    tool = ctx.tools.get(step["tool"])
    task = f"{step['goal']}" + (f" (success: {step['success']})" if step["success"] else "")
    argument = task_argument(tool) if tool is not None else None
    if tool is not None and argument is not None:
        tool_ctx = ctx.tool_context(brief=state.get("brief", {}), plan=context, sink=runtime.stream_writer)
        outcome = await ctx.call_tool(tool.name, {argument: task}, tools=ctx.tools, context=tool_ctx, node="execute")
        result = StepResult(goal=step["goal"], tool=tool.name, ok=outcome.ok, output=outcome.observation)
    else:
        sub = await _react.ainvoke({
            "task": task, "brief": state.get("brief", {}), "plan": context, "messages": [], "iterations": 0,
            "max_iterations": ctx.settings.agent_max_iterations, "allowed_tools": [tool.name] if tool else [],
        })
        result = StepResult(goal=step["goal"], tool=step["tool"], ok=not sub.get("capped"), output=sub["answer"])
    result["output"] = truncate(result["output"], RESULT_CHARS)
    return {"results": [*state.get("results", []), result]}


async def replan(state: PlanState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    """Rules while steps succeed; after a failure the LLM chooses continue, revise (new steps) or finish."""
    ctx = runtime.context
    cursor = state["cursor"] + 1
    if state["results"][-1]["ok"] or state.get("revisions", 0) >= MAX_REVISIONS:
        return {"cursor": cursor, "decision": "continue" if cursor < len(state["plan"]) else "finish"}
    value, _ = await structured_call(
        ctx, "replan", decide_replan, task=state["task"], plan=_render_plan(state["plan"]),
        results=_render_results(state["results"]), tools=_tool_list(ctx.tools),
    )
    if value is None:
        return {"cursor": cursor, "decision": "finish"}
    if value.action != "revise":
        return {"cursor": cursor, "decision": value.action}
    room = max(1, ctx.settings.agent_max_plan_steps - cursor)
    steps = [*state["plan"][:cursor], *_steps(value.steps, ctx.tools, room)]
    revision = state.get("revisions", 0) + 1
    emit(PlanEvent(run_id=ctx.run_id, steps=[dict(s) for s in steps], revision=revision))
    return {"cursor": cursor, "decision": "revise", "plan": steps, "revisions": revision}


async def synthesise(state: PlanState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    """One streamed LLM call turning the step results into the answer."""
    ctx = runtime.context
    results = _render_results(state.get("results", []))
    prompt = [
        *prompt_messages(SYNTHESISE, state.get("brief", {}), state["task"]),
        HumanMessage(content=f"Results of the steps:\n{results}\n\nWrite the answer."),
    ]
    async with ctx.tracer.step("synthesise", input=state["task"]) as record:
        reply = await complete(ctx.llm, prompt, run_id=ctx.run_id, tokens=True)
        record.output, record.tokens = text_of(reply), token_count(prompt, reply)
    return {"answer": text_of(reply).strip()}


def plan_context(state: PlanState) -> str:
    """The plan with each step's status and the results so far: what code generation needs to build on."""
    lines = [f"Overall request: {state['task']}", _render_plan(state["plan"], cursor=state["cursor"])]
    if state.get("results"):
        lines.append("Results so far:\n" + _render_results(state["results"]))
    return "\n".join(lines)


def _render_plan(steps: list[PlanStep], *, cursor: int | None = None) -> str:
    def mark(i: int) -> str:
        if cursor is None:
            return ""
        return "[now] " if i == cursor else "[done] " if i < cursor else "[todo] "

    return "\n".join(f"{i + 1}. {mark(i)}{s['goal']} (tool: {s['tool']})" for i, s in enumerate(steps))


def _render_results(results: list[StepResult]) -> str:
    return "\n".join(
        f"{i + 1}. {r['goal']} -> {'ok' if r['ok'] else 'FAILED'}: {r['output']}" for i, r in enumerate(results)
    ) or "(none)"


def _steps(planned: list[PlannedStep], tools: ToolRegistry, limit: int) -> list[PlanStep]:
    """Plan steps with unknown tools mapped to ReAct, cut to `limit`."""
    return [
        PlanStep(goal=p.goal, tool=p.tool if p.tool in tools else REACT_TOOL, success=p.success)
        for p in planned[:limit]
    ]


def _tool_list(tools: ToolRegistry) -> str:
    return ", ".join(tools.names()) or "none"


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit] + "…"
