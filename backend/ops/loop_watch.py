"""Watch the event loop: how late its timers fire (a Prometheus histogram) and, when it is blocked, where.

Every request waits behind whatever holds the loop, so a blocking call shows up here first. A heartbeat task
measures the lag of each tick; a watchdog thread notices a heartbeat that stopped and logs the loop thread's
stack once per block, naming the code that should have been awaited or moved to a thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import threading
import time
import traceback

from backend.core.metrics import record_loop_blocked, record_loop_lag

log = logging.getLogger(__name__)

TICK_SECONDS = 0.05
"""Heartbeat interval: lag is measured 20 times a second (cost: one timer per tick)."""
WATCH_SECONDS = 0.05
"""How often the watchdog thread looks at the heartbeat."""
STACK_FRAMES = 12
"""Innermost frames of the loop thread logged for a block."""


class LoopWatch:
    """Heartbeat on the loop plus an optional watchdog thread; `stop()` ends both."""

    def __init__(self, *, block_warn_seconds: float, tick: float = TICK_SECONDS) -> None:
        self.block_warn_seconds = block_warn_seconds
        self.tick = tick
        self.beat = time.monotonic()
        self.blocks = 0
        self._loop_thread = threading.get_ident()
        self._stopped = threading.Event()
        self._task: asyncio.Task[None] | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Call from the loop thread."""
        self._loop_thread = threading.get_ident()
        self.beat = time.monotonic()
        self._task = asyncio.create_task(self._heartbeat(), name="loop-watch")
        if self.block_warn_seconds > 0:
            self._thread = threading.Thread(target=self._watchdog, name="loop-watchdog", daemon=True)
            self._thread.start()

    async def stop(self) -> None:
        self._stopped.set()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join, 1.0)

    async def _heartbeat(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            expected = loop.time() + self.tick
            await asyncio.sleep(self.tick)
            record_loop_lag(seconds=max(loop.time() - expected, 0.0))
            self.beat = time.monotonic()

    def _watchdog(self) -> None:
        reported = 0.0  # heartbeat already reported as blocked
        while not self._stopped.wait(WATCH_SECONDS):
            beat = self.beat
            blocked = time.monotonic() - beat - self.tick
            if blocked < self.block_warn_seconds or beat == reported:
                continue
            reported = beat
            self.blocks += 1
            record_loop_blocked()
            log.warning("event loop blocked for %.0f ms so far; the loop thread is at:\n%s",
                        blocked * 1000, self._loop_stack())

    def _loop_stack(self) -> str:
        frame = sys._current_frames().get(self._loop_thread)
        if frame is None:
            return "  (loop thread not found)"
        return "".join(traceback.format_stack(frame)[-STACK_FRAMES:]).rstrip()
