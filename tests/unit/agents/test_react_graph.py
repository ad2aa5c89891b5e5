"""ReAct graph: every edge (reason->act->reason, reason->answer, act->answer at the cap) and every kind of reply."""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_core.runnables import RunnableConfig

from backend.agents.events import CodeEvent
from backend.agents.react.graph import NO_ANSWER, build_react_graph
from backend.agents.react.prompts import ANSWER_NOW
from backend.llm.fake import ScriptedChatModel
from backend.tools.registry import ToolRegistry, tool_context

GRAPH = build_react_graph()


def inputs(task: str = "what is 6*7?", *, cap: int = 4, **extra: Any) -> dict[str, Any]:
    return {"task": task, "messages": [], "iterations": 0, "max_iterations": cap, **extra}


class TextOnlyModel(ScriptedChatModel):
    """A model without native tool calling (like a plain completion endpoint)."""

    def bind_tools(self, tools: Any, **kwargs: Any) -> Any:
        raise NotImplementedError


async def test_native_tool_call_runs_the_tool_and_feeds_the_result_back(make_ctx, run_graph, call, of_type):
    ctx = make_ctx(call("calculator", expression="6*7"), "It is 42.")
    state, events = await run_graph(GRAPH, inputs(), ctx)
    assert state["answer"] == "It is 42."
    assert state["capped"] is False
    observation = ctx.llm.calls[1][-1]
    assert isinstance(observation, ToolMessage) and observation.content.startswith("42\n\n(calculator finished.")
    assert [e.tool for e in of_type(events, "tool_call")] == ["calculator"]


async def test_plain_text_reply_goes_straight_to_the_answer(make_ctx, run_graph):
    state, _ = await run_graph(GRAPH, inputs(), make_ctx("Forty-two."))
    assert state["answer"] == "Forty-two."
    assert state["iterations"] == 1


async def test_hermes_tool_call_in_text_is_parsed_and_run(make_ctx, run_graph, of_type):
    reply = '<tool_call>\n{"name": "calculator", "arguments": {"expression": "2**10"}}\n</tool_call>'
    ctx = make_ctx(reply, "1024")
    state, events = await run_graph(GRAPH, inputs(), ctx)
    finished = [e for e in of_type(events, "step_finished") if e.tool == "calculator"]
    assert finished[0].output == "1024"
    assert state["answer"] == "1024"


async def test_bare_json_tool_call_from_a_small_model_is_accepted(make_ctx, run_graph, of_type):
    ctx = make_ctx('{"name": "calculator", "arguments": {"expression": "1+1"}}', "2")
    _, events = await run_graph(GRAPH, inputs(), ctx)
    assert [e.args for e in of_type(events, "tool_call")] == [{"expression": "1+1"}]


async def test_malformed_tool_call_becomes_an_observation_and_the_model_recovers(make_ctx, run_graph, call):
    ctx = make_ctx('<tool_call>{"name": calculator, oops}</tool_call>', call("calculator", expression="3*3"), "9")
    state, _ = await run_graph(GRAPH, inputs(), ctx)
    feedback = ctx.llm.calls[1][-1]
    assert isinstance(feedback, HumanMessage) and "could not be used" in feedback.content
    assert state["answer"] == "9"


async def test_call_to_an_unknown_tool_name_in_json_is_reported(make_ctx, run_graph):
    ctx = make_ctx('{"name": "teleport", "arguments": {"to": "mars"}}', "Sorry.")
    await run_graph(GRAPH, inputs(), ctx)
    assert "no tool named 'teleport'" in ctx.llm.calls[1][-1].content


async def test_empty_reply_is_answered_with_an_observation(make_ctx, run_graph):
    ctx = make_ctx("", "Done.")
    state, _ = await run_graph(GRAPH, inputs(), ctx)
    assert "the reply was empty" in ctx.llm.calls[1][-1].content
    assert state["answer"] == "Done."


async def test_tool_error_is_an_observation_and_the_model_can_retry(make_ctx, run_graph, call, of_type):
    ctx = make_ctx(call("explode", text="x"), call("calculator", expression="5-2"), "3")
    state, events = await run_graph(GRAPH, inputs(), ctx)
    error = ctx.llm.calls[1][-1]
    assert isinstance(error, ToolMessage) and error.status == "error"
    assert "RuntimeError: boom on x" in error.content
    failed = [e for e in of_type(events, "step_finished") if e.tool == "explode"]
    assert failed[0].error == "RuntimeError: boom on x"
    assert state["answer"] == "3"


async def test_iteration_cap_forces_a_final_answer_without_tools(make_ctx, run_graph, call):
    looping = [call("calculator", expression="1+1"), call("calculator", expression="1+2")]
    ctx = make_ctx(*looping, "Best answer: 2.")
    state, _ = await run_graph(GRAPH, inputs(cap=2), ctx)
    assert state["capped"] is True
    assert state["answer"] == "Best answer: 2."
    assert len(ctx.llm.calls) == 3
    assert "used all the tool steps" in ctx.llm.calls[-1][-1].content


async def test_forced_answer_that_is_only_a_tool_call_gives_the_fallback_text(make_ctx, run_graph, call):
    stray = '<tool_call>{"name": "calculator", "arguments": {"expression": "1"}}</tool_call>'
    ctx = make_ctx(call("calculator", expression="1"), stray)
    state, _ = await run_graph(GRAPH, inputs(cap=1), ctx)
    assert state["answer"] == f"{NO_ANSWER} The last result was:\n1"


async def test_a_misnamed_call_is_read_as_the_only_tool_on_offer(make_ctx, run_graph, of_type):
    ctx = make_ctx('```json\n{"name": "compute_sum", "arguments": {"expression": "2+2"}}\n```', "4")
    state, events = await run_graph(GRAPH, inputs(allowed_tools=["calculator"]), ctx)
    assert [e.tool for e in of_type(events, "tool_call")] == ["calculator"]
    assert state["answer"] == "4"


async def test_a_first_call_chosen_by_the_router_needs_no_llm_call_at_all(make_ctx, run_graph, of_type):
    ctx = make_ctx()
    first = {"name": "calculator", "args": {"expression": "2*4"}}
    state, events = await run_graph(GRAPH, inputs(first_call=first), ctx)
    assert of_type(events, "step_finished")[0].output == "tool calls: calculator (chosen by the router)"
    assert ctx.llm.calls == []
    assert (state["answer"], state["capped"]) == ("8", False)


async def test_a_router_chosen_result_can_be_rephrased_in_one_short_call(make_ctx, run_graph):
    ctx = make_ctx("It is 8.")
    first = {"name": "calculator", "args": {"expression": "2*4"}}
    state, _ = await run_graph(GRAPH, inputs(first_call=first, phrase_result=True), ctx)
    [only_call] = ctx.llm.calls
    assert [m.type for m in only_call] == ["system", "human"]
    assert only_call[-1].content == ANSWER_NOW.format(question="what is 6*7?", results="calculator: 8")
    assert (state["answer"], state["capped"]) == ("It is 8.", False)


async def test_a_failed_first_call_goes_back_to_the_model_with_tools(make_ctx, run_graph, call):
    ctx = make_ctx(call("calculator", expression="2*4"), "It is 8.")
    first = {"name": "explode", "args": {"text": "x"}}
    state, _ = await run_graph(GRAPH, inputs(first_call=first), ctx)
    assert ctx.llm.calls[0][-1].content == "Error: RuntimeError: boom on x"
    assert state["answer"] == "It is 8."


async def test_forced_answer_streams_tokens(make_ctx, run_graph, call, of_type):
    ctx = make_ctx(call("calculator", expression="1"), "A long enough final answer")
    _, events = await run_graph(GRAPH, inputs(cap=1), ctx)
    assert "".join(e.text for e in of_type(events, "token")) == "A long enough final answer"


async def test_allowed_tools_restrict_what_can_be_called(make_ctx, run_graph, call):
    ctx = make_ctx(call("explode", text="x"), "ok")
    await run_graph(GRAPH, inputs(allowed_tools=["calculator"]), ctx)
    observation = ctx.llm.calls[1][-1]
    assert "unknown tool 'explode'" in observation.content


async def test_text_only_model_gets_the_tool_list_and_a_text_transcript(make_ctx, run_graph):
    model = TextOnlyModel(replies=['<tool_call>{"name": "calculator", "arguments": {"expression": "4*4"}}</tool_call>',
                                   "16"])
    state, _ = await run_graph(GRAPH, inputs(), make_ctx(llm=model))
    system = model.calls[0][0]
    assert isinstance(system, SystemMessage) and "- calculator(expression: string)" in system.content
    second = model.calls[1]
    assert not any(isinstance(m, ToolMessage) for m in second)
    assert second[-1].content.startswith("Observation from calculator:\n16\n")
    assert isinstance(second[-2], AIMessage) and "<tool_call>" in second[-2].content
    assert state["answer"] == "16"


async def test_steps_are_numbered_in_order_with_durations(make_ctx, run_graph, call, of_type):
    _, events = await run_graph(GRAPH, inputs(), make_ctx(call("calculator", expression="1"), "1"))
    finished = of_type(events, "step_finished")
    assert [e.step for e in finished] == [1, 2, 3]
    assert [e.node for e in finished] == ["reason", "act", "reason"]
    assert all(e.duration_ms >= 0 for e in finished)
    assert finished[0].tokens > 0


@pytest.mark.parametrize("cap", [1, 3])
async def test_a_model_that_never_stops_is_bounded_by_the_cap(make_ctx, run_graph, call, cap):
    model = ScriptedChatModel(replies=[lambda m: call("calculator", expression=f"{len(m)}+1")], cycle=True)
    state, _ = await run_graph(GRAPH, inputs(cap=cap), make_ctx(llm=model))
    assert state["iterations"] == cap
    assert len(model.calls) == cap + 1


async def test_tool_context_reaches_the_tool_but_not_the_schema(make_ctx, run_graph, call):
    seen: dict[str, Any] = {}

    async def whoami(note: str, config: RunnableConfig) -> str:
        """Report the caller.

        Args:
            note: Anything.
        """
        context = tool_context(config)
        seen.update(user=context.user_id, session=context.session_id, plan=context.plan)
        return "ok"

    registry = ToolRegistry([whoami])
    assert list(registry.schemas()[0]["function"]["parameters"]["properties"]) == ["note"]
    ctx = make_ctx(call("whoami", note="hi"), "done", registry=registry)
    await run_graph(GRAPH, inputs(plan="step 1 of 2"), ctx)
    assert seen == {"user": "user-1", "session": "conv-1", "plan": "step 1 of 2"}


async def test_events_a_tool_emits_reach_the_run_stream(make_ctx, run_graph, call, of_type):
    async def coder(question: str, config: RunnableConfig) -> str:
        """Pretend to write code.

        Args:
            question: The task.
        """
        context = tool_context(config)
        context.emit(CodeEvent(run_id=context.run_id, code="print(1)"))
        return "1"

    ctx = make_ctx(call("coder", question="q"), "1", registry=ToolRegistry([coder]))
    _, events = await run_graph(GRAPH, inputs(), ctx)
    [code] = of_type(events, "code")
    assert (code.code, code.run_id) == ("print(1)", "run-1")


async def test_a_repeated_identical_call_is_not_run_again_and_forces_the_answer(make_ctx, run_graph, call, of_type):
    same = call("calculator", expression="6*7")
    ctx = make_ctx(same, same, "It is 42.")
    state, events = await run_graph(GRAPH, inputs(), ctx)
    assert len(of_type(events, "tool_call")) == 1
    final_prompt = ctx.llm.calls[2][-1].content
    assert final_prompt == ANSWER_NOW.format(question="what is 6*7?", results="calculator: 42")
    assert (state["answer"], state["capped"]) == ("It is 42.", False)


async def test_a_reply_looping_on_one_line_is_cut_and_read(make_ctx, run_graph, of_type):
    line = '{"name": "calculator", "arguments": {"expression": "1+2"}}'
    ctx = make_ctx("\n".join([line] * 40), "3")
    state, events = await run_graph(GRAPH, inputs(), ctx)
    assert [e.args for e in of_type(events, "tool_call")] == [{"expression": "1+2"}]
    assert state["answer"] == "3"


async def test_a_repeated_failing_call_is_not_run_again(make_ctx, run_graph, call, of_type):
    failing = call("explode", text="x")
    ctx = make_ctx(failing, failing, "It failed.")
    state, events = await run_graph(GRAPH, inputs(), ctx)
    assert len(of_type(events, "tool_call")) == 1
    assert "explode: Error: RuntimeError: boom on x" in ctx.llm.calls[2][-1].content
    assert state["answer"] == "It failed."


async def test_identical_calls_in_one_reply_run_once(make_ctx, run_graph, of_type):
    block = '<tool_call>{"name": "calculator", "arguments": {"expression": "5*5"}}</tool_call>'
    other = '<tool_call>{"name": "calculator", "arguments": {"expression": "1+1"}}</tool_call>'
    ctx = make_ctx("\n".join([block, other, block, block]), "25 and 2")
    _, events = await run_graph(GRAPH, inputs(), ctx)
    assert [e.args["expression"] for e in of_type(events, "tool_call")] == ["5*5", "1+1"]
