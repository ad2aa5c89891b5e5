"""Fixtures shared by every suite: an isolated data dir and settings per test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from backend.core.settings import Settings


@pytest.fixture
def settings(tmp_path: Path) -> Iterator[Settings]:
    """Settings on a throwaway data dir with the scripted fake provider."""
    yield Settings(
        _env_file=None,  # type: ignore[call-arg]
        data_dir=tmp_path / "data",
        llm_providers=["fake"],
        jwt_secret="x" * 48,  # type: ignore[arg-type]
    )
