"""The coder loop end to end: the real sandbox and the embedded 0.5B model answer a simple question over a CSV."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from backend.core.settings import Settings
from backend.llm.factory import get_chat_model
from backend.sandbox.manager import SandboxManager
from backend.tools.python_coder import run_coder

pytestmark = pytest.mark.model

async def test_mean_of_a_column_is_computed_right(model_settings: Settings, model_sandbox: SandboxManager,
                                                  tmp_path: Path) -> None:
    table = tmp_path / "sales.csv"
    table.write_text("Region,Units\nNorth,10\nSouth,30\nEast,20\nWest,40\n")
    result = await run_coder(
        question="What is the mean of the Units column? Print just the number.",
        session_id="coder-it-1",
        llm=get_chat_model(settings=model_settings),
        sandbox=model_sandbox,
        settings=model_settings,
        files={"sales.csv": table},
        context=None,
        on_event=None,
    )
    assert result.success, result.error
    assert re.search(r"\b25(\.0+)?\b", result.output), result.output
    assert "Units" in result.code
