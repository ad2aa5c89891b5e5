"""Server housekeeping: the periodic pass cleans up and warns about a nearly full disk; interval 0 turns it off."""

from __future__ import annotations

import logging
from types import SimpleNamespace

import pytest

from backend.core.settings import Settings
from backend.ops.scheduler import check_disk, housekeeping_loop, housekeeping_pass


def test_a_nearly_full_disk_is_logged_as_a_warning(settings: Settings, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="backend.ops.scheduler")
    assert check_disk(settings.model_copy(update={"min_free_disk_mb": 10**9})) is False
    assert "disk nearly full" in caplog.text and "cleanup --dry-run" in caplog.text


def test_enough_disk_is_quiet(settings: Settings, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="backend.ops.scheduler")
    assert check_disk(settings.model_copy(update={"min_free_disk_mb": 0})) is True
    assert caplog.text == ""


async def test_interval_zero_disables_the_loop(settings: Settings) -> None:
    services = SimpleNamespace(settings=settings.model_copy(update={"cleanup_interval_minutes": 0}))
    await housekeeping_loop(services)  # returns at once instead of looping forever


async def test_a_pass_that_fails_is_logged_not_raised(settings: Settings, caplog: pytest.LogCaptureFixture) -> None:
    class Broken:
        def __call__(self) -> None:
            raise RuntimeError("database is gone")

    services = SimpleNamespace(settings=settings, sessions=Broken(), sandbox=None, agent=None)
    caplog.set_level(logging.ERROR, logger="backend.ops.scheduler")
    await housekeeping_pass(services)
    assert "periodic cleanup failed" in caplog.text
