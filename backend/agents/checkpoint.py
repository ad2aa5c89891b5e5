"""The LangGraph checkpoint store: SQLite under `data/` by default, Postgres when `checkpoint_url` says so.

Postgres needs the optional `langgraph-checkpoint-postgres` package (`pip install langgraph-checkpoint-postgres`);
it is not pinned because the default install is single-node SQLite.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from langgraph.checkpoint.base import BaseCheckpointSaver

from backend.agents.errors import AgentError
from backend.core.settings import Settings

POSTGRES_SCHEMES = ("postgres://", "postgresql://")
SQLITE_PREFIX = "sqlite:///"


class CheckpointConfigError(AgentError):
    """`checkpoint_url` cannot be used (unknown scheme, missing driver package)."""

    kind = "checkpoint_config"


@asynccontextmanager
async def open_checkpointer(*, settings: Settings, url: str | None = None) -> AsyncIterator[BaseCheckpointSaver[Any]]:
    """A ready (tables created) async checkpointer for the configured store, closed on exit."""
    target = settings.checkpoint_url if url is None else url
    if target.startswith(POSTGRES_SCHEMES):
        try:
            from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
        except ImportError as exc:
            raise CheckpointConfigError(
                "checkpoint_url is a Postgres URL but langgraph-checkpoint-postgres is not installed "
                "(pip install langgraph-checkpoint-postgres)"
            ) from exc
        async with AsyncPostgresSaver.from_conn_string(target) as saver:
            await saver.setup()
            yield saver
        return
    if target and not target.startswith(SQLITE_PREFIX):
        raise CheckpointConfigError(f"checkpoint_url must start with {SQLITE_PREFIX} or postgresql://, got {target!r}")
    from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

    path = Path(target.removeprefix(SQLITE_PREFIX)) if target else settings.checkpoint_db
    path.parent.mkdir(parents=True, exist_ok=True)
    async with AsyncSqliteSaver.from_conn_string(str(path)) as saver:
        await saver.setup()
        yield saver
