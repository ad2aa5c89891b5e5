"""Agent checkpoint threads (one per conversation): list them and delete some, with the server's saver or our own."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from backend.core.settings import Settings

SQLITE_PREFIX = "sqlite:///"


def sqlite_path(settings: Settings) -> Path | None:
    """The SQLite checkpoint file, or None when checkpoints live in Postgres."""
    url = settings.checkpoint_url
    if not url:
        return settings.checkpoint_db
    return Path(url.removeprefix(SQLITE_PREFIX)) if url.startswith(SQLITE_PREFIX) else None


@asynccontextmanager
async def _saver(settings: Settings, checkpointer: Any | None) -> AsyncIterator[Any | None]:
    """The given saver, else one opened for the call; None when there is no store to open (no SQLite file yet)."""
    if checkpointer is not None:
        yield checkpointer
        return
    path = sqlite_path(settings)
    if path is not None and not path.is_file():
        yield None
        return
    from backend.agents.checkpoint import open_checkpointer

    async with open_checkpointer(settings=settings) as saver:
        yield saver


async def list_threads(*, settings: Settings, checkpointer: Any | None = None) -> set[str]:
    """Thread ids that have checkpoints (a cheap SQL query for SQLite; a full listing otherwise)."""
    path = sqlite_path(settings)
    if path is not None:
        if not path.is_file():
            return set()
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
            try:
                return {row[0] for row in conn.execute("SELECT DISTINCT thread_id FROM checkpoints")}
            except sqlite3.OperationalError:  # tables not created yet
                return set()
    threads: set[str] = set()
    async with _saver(settings, checkpointer) as saver:
        if saver is not None:
            async for item in saver.alist(None):
                threads.add(str(item.config["configurable"]["thread_id"]))
    return threads


async def delete_threads(thread_ids: Iterable[str], *, settings: Settings, checkpointer: Any | None = None) -> int:
    """Delete every checkpoint and pending write of these threads; returns how many threads were asked for."""
    ids = list(dict.fromkeys(thread_ids))
    if not ids:
        return 0
    async with _saver(settings, checkpointer) as saver:
        if saver is None:
            return 0
        for thread_id in ids:
            await saver.adelete_thread(thread_id)
    return len(ids)
