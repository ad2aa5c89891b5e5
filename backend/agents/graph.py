"""The turn graph, checkpointed per conversation thread: route -> direct | react | plan_execute -> finish.

Its `messages` channel is the conversation (a question and an answer per turn): history is the graph's own
state. ReAct and Plan-Execute run as sub-graphs inside their nodes, checkpointed under the same thread.
"""

from __future__ import annotations

import asyncio
import functools
from typing import Any, cast

from langchain_core.messages import AIMessage
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.runtime import Runtime

from backend.agents import prompts
from backend.agents.calls import complete, text_of
from backend.agents.context import assemble_brief, prompt_messages, record_turn
from backend.agents.events import FinalAnswer
from backend.agents.plan_execute.graph import build_plan_execute_graph
from backend.agents.react.graph import build_react_graph
from backend.agents.router import AUTO, Route, choose_strategy, route_by_rules
from backend.agents.runtime import RunContext, emit, token_count
from backend.agents.state import STRATEGIES, Strategy, TurnState
from backend.agents.structured import structured_call
from backend.tools.registry import task_argument

_react = build_react_graph()
_plan_execute = build_plan_execute_graph()


def build_turn_graph(checkpointer: BaseCheckpointSaver[Any] | None) -> CompiledStateGraph[Any, Any, Any, Any]:
    graph = StateGraph(TurnState, context_schema=RunContext)
    graph.add_node("route", route)
    graph.add_node("direct", direct)
    graph.add_node("react", react)
    graph.add_node("plan_execute", plan_execute)
    graph.add_node("finish", finish)
    graph.add_edge(START, "route")
    graph.add_conditional_edges("route", chosen_strategy, list(STRATEGIES))
    for strategy in STRATEGIES:
        graph.add_edge(strategy, "finish")
    graph.add_edge("finish", END)
    return graph.compile(checkpointer=checkpointer, name="agent_turn")


async def chosen_strategy(state: TurnState) -> Strategy:
    return state["strategy"]


async def route(state: TurnState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    """Assemble the turn's context, then pick the strategy: as requested, by rules, or by the LLM."""
    ctx = runtime.context
    question = _question(state)
    assemble = functools.partial(assemble_brief, messages=state["messages"], settings=ctx.settings,
                                 conversation_id=ctx.conversation_id, files=ctx.files)
    # Describing attached files parses them: worth a thread. Without files it is a few small reads.
    brief = await asyncio.to_thread(assemble) if ctx.files else assemble()
    requested = state.get("requested", AUTO)
    rule = route_by_rules(question, has_files=bool(ctx.files), has_variables=bool(brief.get("variable_names")))
    if requested != AUTO:  # the request decides the strategy; the rules' tool choice still helps if it agrees
        same = rule is not None and rule.strategy == requested
        rule = Route(cast(Strategy, requested), "requested", *((rule.tools, rule.first_tool) if same and rule else ()))
    tools: list[str] = []
    first_tool = ""
    if rule is not None:
        strategy, reason = rule.strategy, rule.reason
        tools = [name for name in rule.tools if name in ctx.tools]
        first_tool = rule.first_tool if rule.first_tool in tools else ""
        async with ctx.tracer.step("route", input=question) as record:
            record.output = f"{strategy}: {reason}" + (f" (tools: {', '.join(tools)})" if tools else "")
    else:
        value, error = await structured_call(
            ctx, "route", choose_strategy, message=question, files=", ".join(ctx.files) or "none",
            tools=", ".join(ctx.tools.names()) or "none",
        )
        strategy = value.strategy if value else ("react" if len(ctx.tools) else "direct")
        reason = value.reason if value else f"router fallback ({error})"
    return {"brief": brief, "strategy": strategy, "route_reason": reason, "tools": tools, "first_tool": first_tool,
            "answer": "", "status": "running"}


async def direct(state: TurnState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    """Answer without tools, streaming tokens."""
    ctx = runtime.context
    prompt = prompt_messages(prompts.DIRECT, state.get("brief", {}), _question(state))
    async with ctx.tracer.step("direct", input=_question(state)) as record:
        reply = await complete(ctx.llm, prompt, run_id=ctx.run_id, tokens=True)
        record.output, record.tokens = text_of(reply), token_count(prompt, reply)
    return {"answer": text_of(reply).strip()}


async def react(state: TurnState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    tool = runtime.context.tools.get(state.get("first_tool", ""))
    argument = task_argument(tool) if tool is not None else None
    first_call = {"name": tool.name, "args": {argument: _question(state)}} if tool and argument else {}
    result = await _react.ainvoke({
        "task": _question(state), "brief": state.get("brief", {}), "messages": [], "iterations": 0,
        "max_iterations": runtime.context.settings.agent_max_iterations, "allowed_tools": state.get("tools", []),
        "first_call": first_call, "phrase_result": runtime.context.settings.agent_phrase_results,
    })
    return {"answer": result["answer"]}


async def plan_execute(state: TurnState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    result = await _plan_execute.ainvoke({"task": _question(state), "brief": state.get("brief", {})})
    return {"answer": result["answer"]}


async def finish(state: TurnState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    """Append the answer to the conversation, note it in the session notepad, announce it."""
    ctx = runtime.context
    answer = state.get("answer", "")
    record_turn(  # one small append: cheaper inline than a thread hop
        settings=ctx.settings, conversation_id=ctx.conversation_id, question=_question(state), answer=answer,
        known_variables=state.get("brief", {}).get("variable_names", []),
    )
    emit(FinalAnswer(run_id=ctx.run_id, text=answer, strategy=state.get("strategy", "")))
    return {"messages": [AIMessage(content=answer)], "status": "done"}


def _question(state: TurnState) -> str:
    return text_of(state["messages"][-1]) if state.get("messages") else ""
