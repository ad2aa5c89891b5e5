"""The agent end to end with the embedded 0.5B model: turn 2 builds on a variable turn 1 computed and saved."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from backend.agents.checkpoint import open_checkpointer
from backend.agents.service import AgentService
from backend.core.settings import Settings
from backend.llm.factory import get_chat_model
from backend.sandbox.manager import SandboxManager
from backend.tools.builtin import build_registry

pytestmark = pytest.mark.model

async def final_answer(stream: AsyncIterator[Any]) -> tuple[str, list[Any]]:
    events = [event async for event in stream]
    assert events[-1].type == "final_answer", events[-1]
    return events[-1].text, events


async def test_second_turn_uses_the_variable_the_first_turn_saved(
    model_settings: Settings, model_sandbox: SandboxManager, tmp_path: Path
) -> None:
    table = tmp_path / "sales.csv"
    table.write_text("Region,Units\nNorth,10\nSouth,30\nEast,20\nWest,40\n")
    llm = get_chat_model(settings=model_settings)
    tools = build_registry(settings=model_settings, sandbox=model_sandbox)
    async with open_checkpointer(settings=model_settings) as checkpointer:
        agent = AgentService(settings=model_settings, llm=llm, tools=tools, checkpointer=checkpointer)

        first, events = await final_answer(agent.run(
            run_id="turn-1", conversation_id="two-turns", user_id="tester", files={"sales.csv": table},
            message="Calculate the total of the Units column in sales.csv and store it in a variable named "
                    "total_units.",
        ))
        assert [e.tool for e in events if e.type == "tool_call"][:1] == ["python_coder"]
        assert re.search(r"\b100\b", first), first
        saved = [meta.name for meta in model_sandbox.variables("two-turns").catalog()]
        assert "total_units" in saved

        second, events = await final_answer(agent.run(
            run_id="turn-2", conversation_id="two-turns", user_id="tester",
            message="Compute total_units divided by 4 using the saved variable total_units.",
        ))
        codes = [e.code for e in events if e.type == "code"]
        assert any(re.search(r"\btotal_units\s*/", code) for code in codes), codes  # used, not recomputed
        assert re.search(r"\b25(\.0+)?\b", second), second
        assert len(await agent.history("two-turns")) == 4
