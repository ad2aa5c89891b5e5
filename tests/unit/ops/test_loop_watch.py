"""The event-loop watch: lag histogram, and a warning naming the code that blocked the loop."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest

from backend.core import metrics
from backend.ops.loop_watch import LoopWatch


def hold_the_loop(seconds: float) -> None:
    time.sleep(seconds)  # the mistake the watch exists to catch: a blocking call on the loop thread


def lag_count() -> float:
    return metrics.value("event_loop_lag_seconds_count")


def lag_at_least(seconds: float) -> float:
    """Ticks that were late by more than `seconds` (a bucket bound)."""
    return lag_count() - metrics.value("event_loop_lag_seconds_bucket", le=str(seconds))


async def test_a_blocked_loop_is_logged_with_the_blocking_frame(caplog: pytest.LogCaptureFixture) -> None:
    blocked_before, late_before = metrics.value("event_loop_blocked_total"), lag_at_least(0.25)
    watch = LoopWatch(block_warn_seconds=0.2, tick=0.01)
    watch.start()
    await asyncio.sleep(0.05)
    with caplog.at_level(logging.WARNING, logger="backend.ops.loop_watch"):
        hold_the_loop(0.6)
        await asyncio.sleep(0.05)
    await watch.stop()
    assert watch.blocks == 1  # one block, one report, however long it lasts
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "event loop blocked" in warnings[0] and "hold_the_loop" in warnings[0]
    assert metrics.value("event_loop_blocked_total") == blocked_before + 1
    assert lag_at_least(0.25) == late_before + 1  # the tick after the block was ~0.6 s late


async def test_awaiting_does_not_count_as_blocking(caplog: pytest.LogCaptureFixture) -> None:
    ticks_before = lag_count()
    watch = LoopWatch(block_warn_seconds=0.2, tick=0.01)
    watch.start()
    with caplog.at_level(logging.WARNING, logger="backend.ops.loop_watch"):
        await asyncio.sleep(0.3)
    await watch.stop()
    assert watch.blocks == 0
    assert not [r for r in caplog.records if r.levelno == logging.WARNING]
    assert lag_count() - ticks_before >= 10  # the heartbeat kept ticking (0.3 s / 0.01 s, with slack for a busy CI)


async def test_zero_threshold_runs_no_watchdog_thread() -> None:
    watch = LoopWatch(block_warn_seconds=0, tick=0.01)
    watch.start()
    hold_the_loop(0.1)
    await asyncio.sleep(0.03)
    await watch.stop()
    assert watch.blocks == 0
    assert watch._thread is None


async def test_stop_ends_the_heartbeat_and_the_thread() -> None:
    watch = LoopWatch(block_warn_seconds=0.2, tick=0.01)
    watch.start()
    await asyncio.sleep(0.02)
    await watch.stop()
    assert watch._task is not None and watch._task.done()
    assert watch._thread is not None and not watch._thread.is_alive()
    ticks = lag_count()
    await asyncio.sleep(0.05)
    assert lag_count() == ticks
