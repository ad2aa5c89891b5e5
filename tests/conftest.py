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


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    """Browser tests run last: Playwright's sync API keeps an event loop running in the main thread for the rest of
    the session, and every asyncio test collected after it would fail with 'cannot be called from a running loop'."""
    items.sort(key=lambda item: "/tests/e2e/" in str(item.path))
