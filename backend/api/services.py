"""Objects created once per app (database, run manager, sandbox, agent) and shut down with it.

Sandbox and agent are imported lazily: while a room is missing or broken the API still serves, and
`/api/health` and chat say what is unavailable instead of the server failing to start.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import os
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from anyio import CapacityLimiter, to_thread
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from backend.api.run_manager import Agent, RunManager
from backend.core.settings import Settings
from backend.storage.db import create_db_engine, init_schema, session_factory
from backend.storage.file_index import DocumentIndex
from backend.storage.repositories import ensure_admin, fail_interrupted_runs

log = logging.getLogger(__name__)

ARTIFACTS_DIRNAME = "artifacts"
HASH_WORKERS = max(1, (os.cpu_count() or 2) - 1)
RUN_WRITERS = 4


@dataclass
class HealthCache:
    report: Any = None
    at: float = 0.0
    refresh: asyncio.Task[None] | None = None


@dataclass
class AppServices:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    runs: RunManager
    documents: DocumentIndex
    sandbox: Any | None = None
    agent: Agent | None = None
    agent_error: str = ""
    stack: AsyncExitStack = field(default_factory=AsyncExitStack)
    """Closes what the agent holds open (the checkpointer) at shutdown."""
    background: set[asyncio.Task[Any]] = field(default_factory=set)
    health: HealthCache = field(default_factory=HealthCache)
    hashing: CapacityLimiter = field(default_factory=lambda: CapacityLimiter(HASH_WORKERS))
    """Password hashes computed at once; more would take every core from the event loop during a login burst."""
    db_writes: CapacityLimiter = field(default_factory=lambda: CapacityLimiter(RUN_WRITERS))
    """Worker threads recording run events at once (SQLite serialises writers anyway)."""

    def workdir(self, conversation_id: str) -> Path:
        """Where the sandbox keeps a conversation's files (artifacts are looked up here)."""
        if self.sandbox is not None and hasattr(self.sandbox, "workdir"):
            return Path(self.sandbox.workdir(conversation_id))
        return self.settings.sessions_dir / conversation_id

    def artifacts_dir(self, user_id: str) -> Path:
        return self.settings.data_dir / ARTIFACTS_DIRNAME / user_id


async def start_services(settings: Settings) -> AppServices:
    engine = create_db_engine(settings.resolved_database_url)
    await to_thread.run_sync(init_schema, engine)
    sessions = session_factory(engine)
    if await to_thread.run_sync(lambda: ensure_admin(sessions=sessions, settings=settings)):
        log.info("created first-run admin %r from settings", settings.admin_username)
    if interrupted := await to_thread.run_sync(lambda: fail_interrupted_runs(sessions=sessions)):
        log.warning("%d runs were cut off by the last shutdown; marked failed", interrupted)
    db_writes = CapacityLimiter(RUN_WRITERS)
    services = AppServices(
        settings=settings,
        engine=engine,
        sessions=sessions,
        runs=RunManager(max_runs_per_user=settings.max_concurrent_runs, db_writes=db_writes),
        documents=DocumentIndex(settings=settings),
        db_writes=db_writes,
    )
    services.sandbox = _build_sandbox(settings)
    if services.sandbox is not None and hasattr(services.sandbox, "prewarm"):
        services.background.add(asyncio.create_task(services.sandbox.prewarm(), name="sandbox-prewarm"))
    services.agent, services.agent_error = await _build_agent(settings, services.sandbox, services.stack)
    return services


async def stop_services(services: AppServices) -> None:
    await services.runs.shutdown()
    for task in services.background:
        task.cancel()
    for closer_owner, name in ((services.agent, "aclose"), (services.sandbox, "shutdown")):
        closer = getattr(closer_owner, name, None)
        if closer is None:
            continue
        try:
            outcome = closer()
            if inspect.isawaitable(outcome):
                await outcome
        except Exception:
            log.exception("error while shutting down %s", type(closer_owner).__name__)
    try:
        await services.stack.aclose()
    except Exception:
        log.exception("error while closing the agent's checkpointer")
    services.engine.dispose()


def _build_sandbox(settings: Settings) -> Any | None:
    try:
        from backend.sandbox.manager import SandboxManager
    except ImportError as exc:
        log.warning("sandbox unavailable: %s", exc)
        return None
    try:
        return SandboxManager(settings=settings)
    except Exception:
        log.exception("sandbox manager failed to start")
        return None


async def _build_agent(settings: Settings, sandbox: Any | None, stack: AsyncExitStack) -> tuple[Agent | None, str]:
    """AgentService with the provider chain, the built-in tools (sharing our sandbox) and a durable checkpointer."""
    try:
        from backend.agents.checkpoint import open_checkpointer
        from backend.agents.service import AgentService
        from backend.llm.factory import get_chat_model
        from backend.tools.builtin import build_registry
    except ImportError as exc:
        return None, f"agent service unavailable: {exc}"
    try:
        checkpointer = await stack.enter_async_context(open_checkpointer(settings=settings))
        agent = AgentService(
            settings=settings,
            llm=get_chat_model(settings=settings),
            tools=build_registry(settings=settings, sandbox=sandbox),
            checkpointer=checkpointer,
        )
    except Exception as exc:
        log.exception("agent service failed to start")
        return None, f"agent service failed to start: {type(exc).__name__}: {exc}"
    return agent, ""
