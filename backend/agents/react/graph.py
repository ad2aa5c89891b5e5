"""ReAct as a LangGraph StateGraph: reason (LLM with tools) -> act (run the calls) -> reason ... -> answer.

`act` also answers malformed or empty replies with an observation, so a small model that breaks the tool
protocol gets another chance; identical repeated calls are not run again. `max_iterations` bounds the loop,
then `answer` forces a final reply. When the router already chose the first call (`first_call`), the first
step skips the LLM.
"""

from __future__ import annotations

from typing import Any, Literal

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage, ToolCall, ToolMessage
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.runtime import Runtime

from backend.agents.calls import bind_tools, complete, text_of
from backend.agents.context import prompt_messages
from backend.agents.react.prompts import (
    ANSWER_NOW,
    ANSWER_SYSTEM,
    FORCE_FINAL,
    MALFORMED,
    OBSERVATION_HINT,
    REPEATED_CALL,
    system_prompt,
)
from backend.agents.react.protocol import as_text_transcript, is_tool_call_text, new_call_id, read_reply
from backend.agents.runtime import RunContext, token_count
from backend.agents.state import ReactState
from backend.tools.registry import ToolRegistry

NO_ANSWER = "I could not reach an answer within the allowed number of steps."
RESULT_IS_ANSWER = "the router's tool call produced the answer"
"""`answer_now` value: the first (router-chosen) call succeeded and its result is returned as the answer."""
REASON_STOP = ["</tool_call>"]
"""A reasoning reply ends at its first complete tool call (one call per step); small models otherwise ramble on
after it for hundreds of tokens. The parser accepts the block without its closing tag."""


def build_react_graph() -> CompiledStateGraph[Any, Any, Any, Any]:
    """Compiled without a checkpointer: as a subgraph it is checkpointed under its parent's thread."""
    graph = StateGraph(ReactState, context_schema=RunContext)
    graph.add_node("reason", reason)
    graph.add_node("act", act)
    graph.add_node("answer", answer)
    graph.add_edge(START, "reason")
    # Edge functions are async: LangGraph runs sync ones in a worker thread, a needless hop per step.
    graph.add_conditional_edges("reason", after_reason, ["act", "answer"])
    graph.add_conditional_edges("act", after_act, ["reason", "answer"])
    graph.add_edge("answer", END)
    return graph.compile(name="react")


async def after_reason(state: ReactState) -> Literal["act", "answer"]:
    last = state["messages"][-1]
    needs_act = bool(state.get("problem")) or (isinstance(last, AIMessage) and bool(last.tool_calls))
    return "act" if needs_act else "answer"


async def after_act(state: ReactState) -> Literal["reason", "answer"]:
    """At the cap, or when the model only repeated calls it already made, the answer is forced."""
    at_cap = state.get("iterations", 0) >= state.get("max_iterations", 1)
    return "answer" if at_cap or state.get("answer_now") else "reason"


async def reason(state: ReactState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    """One LLM call with the task, the transcript so far and the tools; the reply is normalised by `read_reply`."""
    ctx = runtime.context
    if not state.get("messages") and state.get("first_call"):
        return await _first_call(state, ctx)
    tools = _tools(state, ctx)
    model, native = bind_tools(ctx.llm, tools.tools)
    prompt = _prompt(state, system_prompt(tools.describe() if not native else "", native=native), native=native)
    async with ctx.tracer.step("reason", input=text_of(prompt[-1])) as record:
        raw = await complete(model, prompt, stop=REASON_STOP)
        reply = read_reply(raw, tools.names())
        calls = ", ".join(c["name"] for c in reply.message.tool_calls)
        record.output = f"tool calls: {calls}" if calls else text_of(reply.message)
        record.error = reply.problem or None
        record.tokens = token_count(prompt, raw)
    return {"messages": [reply.message], "iterations": state.get("iterations", 0) + 1, "problem": reply.problem}


async def act(state: ReactState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    """Run the requested tools in order (each a traced step), or explain why the reply could not be used."""
    ctx = runtime.context
    if state.get("problem"):
        note = MALFORMED.format(problem=state["problem"])
        async with ctx.tracer.step("act", input="unusable reply") as record:
            record.output, record.error = note, state["problem"]
        return {"messages": [HumanMessage(content=note)], "problem": ""}
    last = state["messages"][-1]
    assert isinstance(last, AIMessage)
    tools = _tools(state, ctx)
    tool_ctx = ctx.tool_context(brief=state.get("brief", {}), plan=state.get("plan", ""), sink=runtime.stream_writer)
    observations: list[BaseMessage] = []
    repeats = 0
    for call in last.tool_calls:
        earlier = _earlier_result(state["messages"][:-1], call)
        if earlier is not None:  # small models repeat a call instead of answering: hand back its result again
            async with ctx.tracer.step("act", tool=call["name"], input="repeated call, not run again") as record:
                record.output = REPEATED_CALL.format(result=earlier)
            content, ok = record.output, True
            repeats += 1
        else:
            outcome = await ctx.call_tool(call["name"], call["args"], tools=tools, context=tool_ctx)
            ok = outcome.ok
            content = outcome.output + OBSERVATION_HINT.format(tool=call["name"]) if ok else outcome.observation
        observations.append(ToolMessage(content=content, tool_call_id=call["id"] or "", name=call["name"],
                                        status="success" if ok else "error"))
    return {"messages": observations, "answer_now": _answer_now(state, observations, repeats)}


async def answer(state: ReactState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    """The model's plain reply is the answer. Otherwise (cap reached, repeated calls, or the router's call already
    answered) one more call without tools turns the transcript into the answer, streamed as tokens."""
    ctx = runtime.context
    last = state["messages"][-1] if state.get("messages") else None
    if isinstance(last, AIMessage) and not last.tool_calls and not state.get("problem") and text_of(last).strip():
        return {"answer": text_of(last).strip(), "capped": False}
    if state.get("answer_now") == RESULT_IS_ANSWER:
        return {"answer": _result_answer(state), "capped": False}
    why = state.get("answer_now") or "iteration cap reached"
    if state.get("answer_now"):  # the results are in: a short prompt (no files, no history) is much cheaper
        prompt = _answer_prompt(state)
    else:
        prompt = [*_prompt(state, system_prompt("", native=True), native=False), HumanMessage(content=FORCE_FINAL)]
    async with ctx.tracer.step("answer", input=why) as record:
        reply = await complete(ctx.llm, prompt, run_id=ctx.run_id, tokens=True)
        text = text_of(reply).strip()
        if not text or is_tool_call_text(text):  # a last stray tool call is not an answer
            text = _fallback_answer(state)
        record.output, record.tokens = text, token_count(prompt, reply)
    return {"answer": text, "capped": not state.get("answer_now")}


async def _first_call(state: ReactState, ctx: RunContext) -> dict[str, Any]:
    """The router already knows the tool (a data question: python_coder), so the first step needs no LLM call."""
    seed = state["first_call"]
    message = AIMessage(content="", tool_calls=[ToolCall(name=seed["name"], args=seed["args"], id=new_call_id())])
    async with ctx.tracer.step("reason", input=state["task"]) as record:
        record.output = f"tool calls: {seed['name']} (chosen by the router)"
    return {"messages": [message], "iterations": 1, "problem": ""}


def _answer_prompt(state: ReactState) -> list[BaseMessage]:
    notice = REPEATED_CALL.split("{")[0]  # repeat notices only restate an earlier result
    results = [f"{m.name}: {_result(m)}" for m in state.get("messages", [])
               if isinstance(m, ToolMessage) and not text_of(m).startswith(notice)]
    ask = ANSWER_NOW.format(question=state["task"], results="\n\n".join(results))
    return [SystemMessage(content=ANSWER_SYSTEM), HumanMessage(content=ask)]


def _fallback_answer(state: ReactState) -> str:
    results = [m for m in state.get("messages", []) if isinstance(m, ToolMessage) and m.status != "error"]
    return f"{NO_ANSWER} The last result was:\n{_result(results[-1])}" if results else NO_ANSWER


def _answer_now(state: ReactState, observations: list[BaseMessage], repeats: int) -> str:
    """Answer without another tool-enabled step when that step can only go round in circles."""
    if repeats and repeats == len(observations):
        return "the model repeated a call it had already made"
    ok = all(isinstance(m, ToolMessage) and m.status != "error" for m in observations)
    if state.get("first_call") and state.get("iterations") == 1 and ok:
        return "the router's tool call produced the result" if state.get("phrase_result") else RESULT_IS_ANSWER
    return ""


def _result_answer(state: ReactState) -> str:
    """The router's tool result itself, as the answer (no LLM call): the coder prints labelled results."""
    last = state["messages"][-1]
    return _result(last).strip() if isinstance(last, ToolMessage) else NO_ANSWER


def _earlier_result(history: list[Any], call: ToolCall) -> str | None:
    """What an identical earlier call in this task (same tool, same arguments) returned or failed with, if any.

    Not run again: the coder alone can take a minute, and an identical request rarely ends differently.
    """
    ids = {c["id"] for m in history if isinstance(m, AIMessage) for c in m.tool_calls
           if c["name"] == call["name"] and c["args"] == call["args"]}
    results = [m for m in history if isinstance(m, ToolMessage) and m.tool_call_id in ids]
    return _result(results[-1]) if results else None


def _result(message: ToolMessage) -> str:
    """A tool's result as it returned it, without the hint added for the model."""
    return text_of(message).removesuffix(OBSERVATION_HINT.format(tool=message.name))


def _tools(state: ReactState, ctx: RunContext) -> ToolRegistry:
    allowed = state.get("allowed_tools") or []
    return ctx.tools.subset(allowed) if allowed else ctx.tools


def _prompt(state: ReactState, system: str, *, native: bool) -> list[BaseMessage]:
    transcript = list(state.get("messages", []))
    head = prompt_messages(system, state.get("brief", {}), state["task"], plan=state.get("plan", ""))
    return [*head, *(transcript if native else as_text_transcript(transcript))]
