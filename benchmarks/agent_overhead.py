"""Agent overhead: time a full ReAct turn spends outside the model and the tool (goal: p50 and p95 < 50 ms).

A turn = route -> reason (tool call) -> act (trivial tool) -> reason (answer) -> finish (notepad), through
`AgentService.run`, with an instant scripted model. Model time is measured inside the model's stream and tool
time inside the tool, so the rest is what the agent costs: LangGraph, checkpoints, events, context, notepad.
Baseline in the same run: the same two model calls and the tool call made by hand (no graph, no checkpoint).
Both wall time and CPU time (all threads of the process) are reported: on a shared, loaded machine wall time
mostly measures waiting for a core, CPU time what the agent itself spends.

Run: .venv/bin/python benchmarks/agent_overhead.py [--turns 200] [--per-conversation 10]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langchain_core.outputs import ChatGenerationChunk
from pydantic import PrivateAttr

from backend.agents.calls import complete
from backend.agents.checkpoint import open_checkpointer
from backend.agents.service import AgentService
from backend.core.settings import Settings
from backend.llm.fake import ScriptedChatModel
from backend.tools.registry import ToolRegistry

GOAL_MS = 50.0
TOOL_SECONDS = [0.0, 0.0]
"""Wall and CPU seconds spent inside the tool."""


class TimedModel(ScriptedChatModel):
    """Scripted model with a native async stream (no thread hop) that adds up the time spent generating."""

    _spent: list[float] = PrivateAttr(default_factory=lambda: [0.0, 0.0])

    async def _astream(self, messages: Any, stop: Any = None, run_manager: Any = None,
                       **kwargs: Any) -> AsyncIterator[ChatGenerationChunk]:
        chunks = self._stream(messages, stop, None, **kwargs)
        while True:
            wall, cpu = time.perf_counter(), time.process_time()
            chunk = next(chunks, None)
            self._spent[0] += time.perf_counter() - wall
            self._spent[1] += time.process_time() - cpu
            if chunk is None:
                return
            yield chunk


async def echo(text: str) -> str:
    """Return the text.

    Args:
        text: Anything.
    """
    wall, cpu = time.perf_counter(), time.process_time()
    result = text.upper()
    TOOL_SECONDS[0] += time.perf_counter() - wall
    TOOL_SECONDS[1] += time.process_time() - cpu
    return result


def script() -> list[Any]:
    call = AIMessage(content="", tool_calls=[{"name": "echo", "args": {"text": "hi"}, "id": "c1"}])
    return [call, "The tool said HI."]


class Meter:
    """Wall and CPU milliseconds of one turn minus what the model and the tool spent inside."""

    def __init__(self, model: TimedModel) -> None:
        self.model = model
        self.wall: list[float] = []
        self.cpu: list[float] = []

    def start(self) -> None:
        self._inside = (self.model._spent[0] + TOOL_SECONDS[0], self.model._spent[1] + TOOL_SECONDS[1])
        self._clock = (time.perf_counter(), time.process_time())

    def stop(self) -> None:
        wall, cpu = time.perf_counter() - self._clock[0], time.process_time() - self._clock[1]
        inside_wall = self.model._spent[0] + TOOL_SECONDS[0] - self._inside[0]
        inside_cpu = self.model._spent[1] + TOOL_SECONDS[1] - self._inside[1]
        self.wall.append((wall - inside_wall) * 1000)
        self.cpu.append((cpu - inside_cpu) * 1000)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def agent_turns(settings: Settings, *, turns: int, per_conversation: int, sqlite: bool) -> Meter:
    model = TimedModel(replies=script(), cycle=True)
    tools = ToolRegistry([echo])
    meter = Meter(model)

    async def run(agent: AgentService) -> None:
        for i in range(turns):
            conversation = f"bench-{'s' if sqlite else 'm'}-{i // per_conversation}"
            meter.start()
            events = [e async for e in agent.run(run_id=f"r{i}", conversation_id=conversation, user_id="u",
                                                  message="compute the echo of hi")]
            meter.stop()
            assert events[-1].type == "final_answer", events[-1]

    if sqlite:
        async with open_checkpointer(settings=settings) as saver:
            await run(AgentService(settings=settings, llm=model, tools=tools, checkpointer=saver))
    else:
        await run(AgentService(settings=settings, llm=model, tools=tools))
    return meter


async def baseline_turns(*, turns: int) -> Meter:
    """The same calls by hand: bound model, tool, model again — the floor any agent framework starts from."""
    model = TimedModel(replies=script(), cycle=True)
    tools = ToolRegistry([echo])
    bound = model.bind_tools(tools.tools)
    meter = Meter(model)
    for _ in range(turns):
        meter.start()
        question = [HumanMessage(content="compute the echo of hi")]
        reply = await complete(bound, question)
        call = reply.tool_calls[0]
        outcome = await tools.invoke(call["name"], call["args"])
        await complete(bound, [*question, reply, ToolMessage(content=outcome.output, tool_call_id=call["id"] or "")])
        meter.stop()
    return meter


def row(name: str, meter: Meter) -> str:
    figures = [statistics.median(meter.wall), percentile(meter.wall, 0.95),
               statistics.median(meter.cpu), percentile(meter.cpu, 0.95)]
    return f"{name:<32}" + "".join(f"{value:10.2f}" for value in figures)


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--turns", type=int, default=200)
    parser.add_argument("--per-conversation", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=10)
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(_env_file=None, data_dir=Path(tmp), llm_providers=["fake"])  # type: ignore[call-arg]
        await agent_turns(settings, turns=args.warmup, per_conversation=args.per_conversation, sqlite=False)
        await baseline_turns(turns=args.warmup)
        sqlite = await agent_turns(settings, turns=args.turns, per_conversation=args.per_conversation, sqlite=True)
        memory = await agent_turns(settings, turns=args.turns, per_conversation=args.per_conversation, sqlite=False)
        base = await baseline_turns(turns=args.turns)
    print(f"Agent overhead per ReAct turn (2 model calls + 1 tool call), {args.turns} turns, "
          f"{args.per_conversation} turns per conversation; ms outside model and tool")
    print(f"machine: {os.cpu_count()} cores, 1-min load average {load_before:.1f} before, "
          f"{os.getloadavg()[0]:.1f} after")
    print(f"{'configuration':<32}{'wall p50':>10}{'wall p95':>10}{'cpu p50':>10}{'cpu p95':>10}")
    print(row("agent, SQLite checkpointer", sqlite))
    print(row("agent, in-memory checkpointer", memory))
    print(row("baseline: same calls by hand", base))
    ratio = statistics.median(sqlite.cpu) / max(statistics.median(base.cpu), 1e-3)
    print(f"agent (SQLite) / baseline CPU p50 ratio: {ratio:.0f}x")
    for clock in ("wall", "cpu"):
        p95 = percentile(getattr(sqlite, clock), 0.95)
        print(f"goal p95 < {GOAL_MS:.0f} ms ({clock}, SQLite): {'met' if p95 < GOAL_MS else 'NOT met'} ({p95:.1f} ms)")
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
