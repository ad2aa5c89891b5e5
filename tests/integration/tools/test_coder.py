"""The coder loop end to end: the real sandbox and the embedded 0.5B model answer a simple question over a CSV."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from backend.core.settings import Settings
from backend.llm.factory import get_chat_model
from backend.llm.model_files import file_status
from backend.sandbox.manager import SandboxManager
from backend.tools.python_coder import run_coder

pytestmark = pytest.mark.model

MODEL = "qwen2.5-coder-0.5b"


@pytest.fixture
def model_settings(settings: Settings) -> Settings:
    from backend.core.settings import PROJECT_ROOT

    models_dir = PROJECT_ROOT / "data" / "models"
    if not file_status(MODEL, models_dir=models_dir)["present"]:
        pytest.skip(f"{MODEL} not assembled (python -m backend.llm.model_files assemble --model {MODEL})")
    settings.llm_providers = ["llamacpp"]
    settings.embedded_model = MODEL
    settings.sandbox_pool_size = 0
    (settings.data_dir / "models").mkdir(parents=True, exist_ok=True)
    for name in (models_dir).iterdir():  # the model is read from {data_dir}/models: link, don't copy
        (settings.data_dir / "models" / name.name).symlink_to(name)
    return settings


@pytest.fixture
async def sandbox(model_settings: Settings) -> AsyncIterator[SandboxManager]:
    manager = SandboxManager(settings=model_settings)
    yield manager
    await manager.shutdown()


async def test_mean_of_a_column_is_computed_right(model_settings: Settings, sandbox: SandboxManager,
                                                  tmp_path: Path) -> None:
    table = tmp_path / "sales.csv"
    table.write_text("Region,Units\nNorth,10\nSouth,30\nEast,20\nWest,40\n")
    result = await run_coder(
        question="What is the mean of the Units column? Print just the number.",
        session_id="coder-it-1",
        llm=get_chat_model(settings=model_settings),
        sandbox=sandbox,
        settings=model_settings,
        files={"sales.csv": table},
        context=None,
        on_event=None,
    )
    assert result.success, result.error
    assert re.search(r"\b25(\.0+)?\b", result.output), result.output
    assert "Units" in result.code
