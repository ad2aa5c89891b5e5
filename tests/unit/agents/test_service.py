"""AgentService: typed events, bad input, history across turns, time budget, cancellation, interruption and resume."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import HumanMessage, SystemMessage
from langchain_core.tools import StructuredTool

from backend.agents.errors import (
    EmptyMessageError,
    InvalidRequestError,
    MessageTooLongError,
    NothingToResumeError,
    UnknownStrategyError,
)
from backend.agents.runtime import RunContext
from backend.agents.service import AgentService
from backend.llm.fake import ScriptedChatModel
from backend.storage.notepad import Notepad
from backend.tools.registry import ToolRegistry


class Gate:
    """A tool that blocks until released, to hold a turn in the middle of a tool call."""

    def __init__(self) -> None:
        self.started = asyncio.Event()
        self.release = asyncio.Event()
        self.cancelled = False

    async def wait_here(self, note: str) -> str:
        """Block until released.

        Args:
            note: Anything.
        """
        self.started.set()
        try:
            await self.release.wait()
        except asyncio.CancelledError:
            self.cancelled = True
            raise
        return f"released {note}"

    def registry(self) -> ToolRegistry:
        return ToolRegistry([StructuredTool.from_function(coroutine=self.wait_here, name="wait_here",
                                                          parse_docstring=True)])


async def eventually(predicate: Any, *, seconds: float = 10.0) -> bool:
    """Cancellation is delivered to graph tasks on the next loop iterations, not synchronously."""
    for _ in range(int(seconds / 0.01)):
        if predicate():
            return True
        await asyncio.sleep(0.01)
    return bool(predicate())


def make(settings: Any, tools: ToolRegistry, *replies: Any, **kw: Any) -> tuple[AgentService, ScriptedChatModel]:
    llm = ScriptedChatModel(replies=list(replies), **kw)
    return AgentService(settings=settings, llm=llm, tools=tools), llm


def turn(svc: AgentService, message: str, *, conv: str = "conv", run: str = "run", **kw: Any) -> Any:
    return svc.run(run_id=run, conversation_id=conv, user_id="user", message=message, **kw)


async def test_a_turn_streams_typed_events_from_start_to_final_answer(settings, tools, call, collect):
    svc, _ = make(settings, tools, call("calculator", expression="6*7"), "It is 42.")
    events = await collect(turn(svc, "compute 6*7"))
    kinds = [e.type for e in events]
    assert kinds[0] == "run_started" and kinds[-1] == "final_answer"
    assert kinds[kinds.index("tool_call") :][:3] == ["tool_call", "step_started", "step_finished"]
    assert events[-1].text == "It is 42."
    assert {e.run_id for e in events} == {"run"}


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"message": ""}, EmptyMessageError),
        ({"message": "   \n"}, EmptyMessageError),
        ({"message": "x" * 20_001}, MessageTooLongError),
        ({"message": "hi", "strategy": "telepathy"}, UnknownStrategyError),
        ({"message": "hi", "conversation_id": "../../etc"}, InvalidRequestError),
        ({"message": "hi", "files": [Path("/nonexistent/data.csv")]}, InvalidRequestError),
    ],
)
async def test_bad_requests_raise_typed_errors_before_any_event(settings, tools, kwargs, error):
    svc, llm = make(settings, tools)
    params = {"run_id": "r", "conversation_id": "conv", "user_id": "u", **kwargs}
    with pytest.raises(error):
        await anext(svc.run(**params))
    assert llm.calls == []


async def test_second_turn_sees_the_first_turn_as_history(settings, tools, collect):
    svc, llm = make(settings, tools, "Hello!", "You said hi.")
    await collect(turn(svc, "hi"))
    await collect(turn(svc, "what did I say first? answer in words", strategy="direct"))
    prompt = llm.calls[-1]
    assert [m.content for m in prompt[1:3]] == ["hi", "Hello!"]
    assert [m.type for m in await svc.history("conv")] == ["human", "ai", "human", "ai"]


async def test_old_turns_are_summarised_beyond_the_history_window(settings, tools, collect):
    settings.agent_history_turns = 1
    svc, llm = make(settings, tools, "First answer.", "Second answer.", "Third answer.")
    for text in ("first question", "second question", "third question"):
        await collect(turn(svc, text, strategy="direct"))
    prompt = llm.calls[-1]
    assert [m.content for m in prompt[1:3]] == ["second question", "Second answer."]
    assert "- Q: first question → A: First answer." in prompt[-1].content


async def test_system_prompt_prefix_is_identical_across_turns(settings, tools, collect):
    svc, llm = make(settings, tools, "one", "two")
    await collect(turn(svc, "compute the mean please"))
    await collect(turn(svc, "compute the median please"))
    first, second = llm.calls[0][0], llm.calls[1][0]
    assert isinstance(first, SystemMessage) and first.content == second.content


async def test_each_turn_writes_a_notepad_entry(settings, tools, collect):
    svc, _ = make(settings, tools, "Mean is 3.")
    await collect(turn(svc, "compute the mean"))
    [entry] = Notepad(path=settings.sessions_dir / "conv" / "notepad.jsonl").entries()
    assert (entry.question, entry.finding) == ("compute the mean", "Mean is 3.")


async def test_closing_the_stream_cancels_the_tool_and_closes_the_turn(settings, call):
    gate = Gate()
    svc, _ = make(settings, gate.registry(), call("wait_here", note="a"), "next turn answer")
    stream = turn(svc, "compute it")
    async for event in stream:
        if event.type == "step_started" and event.tool == "wait_here":
            break
    await asyncio.wait_for(gate.started.wait(), timeout=5)
    await asyncio.wait_for(stream.aclose(), timeout=5)
    assert await eventually(lambda: gate.cancelled)
    assert await svc.pending_run("conv") is None


async def test_cancelling_the_consumer_task_stops_the_run(settings, call, collect):
    gate = Gate()
    svc, _ = make(settings, gate.registry(), call("wait_here", note="a"))
    task = asyncio.create_task(collect(turn(svc, "compute it")))
    await asyncio.wait_for(gate.started.wait(), timeout=5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await eventually(lambda: gate.cancelled)
    assert await svc.pending_run("conv") is None


async def test_turn_budget_ends_the_run_with_a_timeout_event(settings, call, collect):
    settings.agent_turn_seconds = 0.3
    gate = Gate()
    svc, _ = make(settings, gate.registry(), call("wait_here", note="a"))
    events = await asyncio.wait_for(collect(turn(svc, "compute it")), timeout=10)
    assert events[-1].type == "error" and events[-1].kind == "timeout"
    assert await eventually(lambda: gate.cancelled)


async def test_model_failure_becomes_an_error_event(settings, tools, collect):
    svc, _ = make(settings, tools)  # no scripted replies: the model raises
    events = await collect(turn(svc, "compute it"))
    assert events[-1].type == "error"
    assert "ScriptExhaustedError" in events[-1].message
    assert await svc.pending_run("conv") is None


async def crash_mid_turn(svc: AgentService, gate: Gate, message: str = "compute it") -> None:
    """Run a turn up to the blocking tool and drop it without any clean-up, as a killed process would."""
    ctx = RunContext(run_id="dead-run", conversation_id="conv", user_id="user", settings=svc.settings, llm=svc.llm,
                     tools=svc.tools)
    inputs = {"messages": [HumanMessage(content=message)], "run_id": "dead-run", "requested": "react"}
    stream = svc.graph.astream(inputs, {"configurable": {"thread_id": "conv"}}, context=ctx, stream_mode="custom",
                               subgraphs=True)
    async for _, event in stream:
        if event.type == "step_started" and event.tool == "wait_here":
            break
    await stream.aclose()


async def test_interrupted_turn_is_reported_and_can_be_resumed(settings, call, collect):
    gate = Gate()
    svc, llm = make(settings, gate.registry(), call("wait_here", note="a"), "Resumed answer.")
    await crash_mid_turn(svc, gate)
    pending = await svc.pending_run("conv")
    assert pending is not None and (pending.run_id, pending.question) == ("dead-run", "compute it")
    assert [run.conversation_id for run in await svc.interrupted_runs()] == ["conv"]
    gate.release.set()
    events = await collect(svc.resume(run_id="resume-run", conversation_id="conv", user_id="user"))
    assert events[-1].type == "final_answer" and events[-1].text == "Resumed answer."
    assert len(llm.calls) == 2  # the reasoning step done before the crash is not repeated
    assert await svc.pending_run("conv") is None


async def test_next_turn_closes_an_interrupted_one_and_keeps_its_question(settings, call, collect):
    gate = Gate()
    svc, _ = make(settings, gate.registry(), call("wait_here", note="a"), "Fresh answer.")
    await crash_mid_turn(svc, gate, "the lost question")
    events = await collect(turn(svc, "hello there, new question?", strategy="direct"))
    assert events[-1].text == "Fresh answer."
    assert [m.content for m in await svc.history("conv")] == ["the lost question", "hello there, new question?",
                                                                "Fresh answer."]


async def test_resume_without_an_interrupted_turn_is_a_typed_error(settings, tools):
    svc, _ = make(settings, tools)
    with pytest.raises(NothingToResumeError):
        await anext(svc.resume(run_id="r", conversation_id="conv", user_id="u"))
