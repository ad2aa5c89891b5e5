"""The start-up heap is frozen out of full collections while the app runs, and handed back at shutdown."""

from __future__ import annotations

import gc
from collections.abc import Callable

from fastapi import FastAPI
from fastapi.testclient import TestClient

from backend.core.settings import Settings
from backend.ops.heap import freeze_startup_heap, thaw_heap


class Survivor:
    """A long-lived object of the kind start-up creates."""


def test_freeze_hides_survivors_from_the_collector_and_thaw_returns_them() -> None:
    keep = [Survivor() for _ in range(100)]
    try:
        frozen = freeze_startup_heap()
        assert frozen == gc.get_freeze_count() >= 100
        assert not any(type(obj) is Survivor for obj in gc.get_objects())  # frozen objects are not tracked
    finally:
        thaw_heap()
    assert gc.get_freeze_count() == 0
    assert sum(type(obj) is Survivor for obj in gc.get_objects()) == len(keep)


def test_the_app_freezes_after_start_up_and_thaws_at_shutdown(
    settings: Settings, build_app: Callable[[Settings], FastAPI]
) -> None:
    with TestClient(build_app(settings)) as client:
        assert client.get("/api/health").status_code == 200
        assert gc.get_freeze_count() > 1000  # modules, models and services built at start-up
    assert gc.get_freeze_count() == 0
