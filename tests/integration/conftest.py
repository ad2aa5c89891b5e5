"""Fixtures shared by the integration suites: the embedded 0.5B model on a test's own data dir."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from backend.core.settings import PROJECT_ROOT, Settings
from backend.llm.model_files import file_status
from backend.sandbox.manager import SandboxManager

EMBEDDED_MODEL = "qwen2.5-coder-0.5b"
"""The smallest embedded model: the one the `model`-marked tests run against."""


@pytest.fixture
def model_settings(settings: Settings) -> Settings:
    """`settings` answered by the embedded 0.5B model (skips when its files are not assembled)."""
    models_dir = PROJECT_ROOT / "data" / "models"
    if not file_status(EMBEDDED_MODEL, models_dir=models_dir)["present"]:
        pytest.skip(f"{EMBEDDED_MODEL} not assembled "
                    f"(python -m backend.llm.model_files assemble --model {EMBEDDED_MODEL})")
    settings.llm_providers = ["llamacpp"]
    settings.embedded_model = EMBEDDED_MODEL
    settings.sandbox_pool_size = 0
    (settings.data_dir / "models").mkdir(parents=True, exist_ok=True)
    for name in models_dir.iterdir():  # the model is read from {data_dir}/models: link, don't copy
        (settings.data_dir / "models" / name.name).symlink_to(name)
    return settings


@pytest.fixture
async def model_sandbox(model_settings: Settings) -> AsyncIterator[SandboxManager]:
    """A real sandbox on the model test's data dir, shut down after the test."""
    manager = SandboxManager(settings=model_settings)
    yield manager
    await manager.shutdown()
