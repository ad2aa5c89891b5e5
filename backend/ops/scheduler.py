"""The server's periodic housekeeping: apply the retention policy and warn when the disk is nearly full."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from backend.ops.cleanup import run_cleanup
from backend.ops.files import free_bytes

log = logging.getLogger(__name__)

FIRST_RUN_DELAY_SECONDS = 120.0
"""The first pass waits this long, so it never competes with start-up (model load, warm sandbox pool)."""
MB = 1024 * 1024


async def housekeeping_loop(services: Any) -> None:
    """Every `cleanup_interval_minutes` (off at 0): cleanup with the live sandbox and checkpointer, disk check.

    `services` is the API's AppServices (settings, sessions, sandbox, agent); errors are logged, never raised.
    """
    settings = services.settings
    interval = settings.cleanup_interval_minutes * 60
    if interval <= 0:
        return
    await asyncio.sleep(min(FIRST_RUN_DELAY_SECONDS, interval))
    while True:
        await housekeeping_pass(services)
        await asyncio.sleep(interval)


async def housekeeping_pass(services: Any) -> None:
    settings = services.settings
    try:
        await run_cleanup(
            settings=settings,
            sessions=services.sessions,
            dry_run=False,
            sandbox=services.sandbox,
            checkpointer=getattr(services.agent, "checkpointer", None),
        )
    except Exception:
        log.exception("periodic cleanup failed")
    check_disk(settings)


def check_disk(settings: Any) -> bool:
    """Log a warning when free space under data_dir is below `min_free_disk_mb`; True when space is fine."""
    try:
        free = free_bytes(settings.data_dir)
    except OSError as exc:
        log.warning("cannot read free disk space of %s: %s", settings.data_dir, exc)
        return False
    if free < settings.min_free_disk_mb * MB:
        log.warning("disk nearly full: %.0f MB free under %s (APP_MIN_FREE_DISK_MB=%d); run "
                    "`python -m backend cleanup --dry-run` or lower APP_RETENTION_DAYS",
                    free / MB, settings.data_dir, settings.min_free_disk_mb)
        return False
    return True


def start_housekeeping(services: Any) -> None:
    """Run `housekeeping_loop` as one of the app's background tasks (cancelled at shutdown)."""
    task = asyncio.create_task(housekeeping_loop(services), name="housekeeping")
    services.background.add(task)
    task.add_done_callback(services.background.discard)
