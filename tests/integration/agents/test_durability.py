"""A turn survives a killed process: the SQLite checkpoint shows it interrupted and `resume` finishes it."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import textwrap
import time
from pathlib import Path

from langchain_core.messages import AIMessage
from langchain_core.tools import StructuredTool

from backend.agents.checkpoint import open_checkpointer
from backend.agents.service import AgentService
from backend.core.settings import PROJECT_ROOT, Settings
from backend.llm.fake import ScriptedChatModel
from backend.tools.registry import ToolRegistry

KILL_AFTER_SECONDS = 60

CHILD = textwrap.dedent('''
    import asyncio, sys
    from pathlib import Path
    from langchain_core.messages import AIMessage
    from langchain_core.tools import StructuredTool
    from backend.agents.checkpoint import open_checkpointer
    from backend.agents.service import AgentService
    from backend.core.settings import Settings
    from backend.llm.fake import ScriptedChatModel
    from backend.tools.registry import ToolRegistry

    marker = Path(sys.argv[2])

    async def slow_count(table: str) -> str:
        """Count rows slowly.

        Args:
            table: The table.
        """
        marker.write_text("tool started")
        await asyncio.sleep(3600)
        return "never"

    async def main() -> None:
        config = Settings(_env_file=None, data_dir=Path(sys.argv[1]), llm_providers=["fake"])
        call = AIMessage(content="", tool_calls=[{"name": "slow_count", "args": {"table": "t"}, "id": "c1"}])
        tools = ToolRegistry([StructuredTool.from_function(coroutine=slow_count, parse_docstring=True)])
        async with open_checkpointer(settings=config) as saver:
            agent = AgentService(settings=config, llm=ScriptedChatModel(replies=[call]), tools=tools,
                                 checkpointer=saver)
            async for _ in agent.run(run_id="doomed", conversation_id="durable", user_id="u",
                                     message="count the rows of t", strategy="react"):
                pass

    asyncio.run(main())
''')


async def quick_count(table: str) -> str:
    """Count rows quickly.

    Args:
        table: The table.
    """
    return "42 rows"


async def kill_mid_tool(data: Path, marker: Path) -> None:
    """Start a turn in a child process and SIGKILL it while its tool runs (no clean-up code gets to run)."""
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
    child = await asyncio.create_subprocess_exec(sys.executable, "-c", CHILD, str(data), str(marker), env=env,
                                                 cwd=PROJECT_ROOT)
    try:
        deadline = time.monotonic() + KILL_AFTER_SECONDS
        while not os.path.exists(marker):  # noqa: ASYNC240 - a stat per 50 ms poll
            assert child.returncode is None, "the child exited before its tool started"
            assert time.monotonic() < deadline, "the child never reached its tool"
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.3)  # let the asynchronous checkpoint write of the reasoning step land
        child.send_signal(signal.SIGKILL)
    finally:
        await asyncio.wait_for(child.wait(), timeout=30)


async def test_a_killed_turn_is_reported_and_resumed(tmp_path: Path) -> None:
    data = tmp_path / "data"
    await kill_mid_tool(data, tmp_path / "started")

    settings = Settings(_env_file=None, data_dir=data, llm_providers=["fake"])  # type: ignore[call-arg]
    tools = ToolRegistry([StructuredTool.from_function(coroutine=quick_count, name="slow_count",
                                                       parse_docstring=True)])
    model = ScriptedChatModel(replies=["The table has 42 rows."])
    async with open_checkpointer(settings=settings) as saver:
        agent = AgentService(settings=settings, llm=model, tools=tools, checkpointer=saver)
        [pending] = await agent.interrupted_runs()
        assert (pending.conversation_id, pending.run_id, pending.question) == ("durable", "doomed",
                                                                               "count the rows of t")
        events = [e async for e in agent.resume(run_id="revived", conversation_id="durable", user_id="u")]
        assert [e.tool for e in events if e.type == "tool_call"] == ["slow_count"]
        assert events[-1].type == "final_answer" and events[-1].text == "The table has 42 rows."
        assert len(model.calls) == 1  # the reasoning step done before the kill was not repeated
        assert await agent.interrupted_runs() == []
        history = await agent.history("durable")
        assert [m.content for m in history] == ["count the rows of t", "The table has 42 rows."]
        assert isinstance(history[-1], AIMessage)
