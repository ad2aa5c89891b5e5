"""Cleanup next to a live sandbox: an idle session's worker is discarded before its scratch goes, while code
running in an active conversation keeps every file and finishes normally."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from backend.core.settings import Settings
from backend.ops.cleanup import run_cleanup
from backend.sandbox.manager import SandboxManager
from backend.storage.db import create_db_engine, init_schema, session_factory
from backend.storage.models import Conversation, Run, User, utcnow

OLD_DAYS = 40


def age(path: Path, days: float) -> None:
    stamp = time.time() - days * 86400
    for root, dirs, files in os.walk(path):
        for name in [*dirs, *files]:
            os.utime(Path(root) / name, (stamp, stamp), follow_symlinks=False)
    os.utime(path, (stamp, stamp))


@pytest.fixture
def db(settings: Settings) -> Iterator[sessionmaker[Session]]:
    engine = create_db_engine(settings.resolved_database_url)
    init_schema(engine)
    yield session_factory(engine)
    engine.dispose()


@pytest.fixture
async def sandbox(settings: Settings) -> AsyncIterator[SandboxManager]:
    settings.sandbox_pool_size = 0
    manager = SandboxManager(settings=settings)
    yield manager
    await manager.shutdown()


def conversations(db: sessionmaker[Session]) -> tuple[str, str]:
    """(busy: an old conversation with a turn in flight, idle: an old conversation with none)."""
    old = utcnow() - timedelta(days=OLD_DAYS)
    with db() as session, session.begin():
        user = User(username="alice", password_hash="x")
        session.add(user)
        session.flush()
        busy = Conversation(user_id=user.id, title="busy", created_at=old, updated_at=old)
        idle = Conversation(user_id=user.id, title="idle", created_at=old, updated_at=old)
        session.add_all([busy, idle])
        session.flush()
        session.add(Run(user_id=user.id, conversation_id=busy.id, status="running"))
        return busy.id, idle.id


async def test_cleanup_racing_a_live_run_never_touches_its_files(settings: Settings, db, sandbox) -> None:
    busy, idle = conversations(db)
    assert (await sandbox.run(session_id=idle, code="kept = 1")).ok
    assert (await sandbox.run(session_id=busy, code="before = 1")).ok
    age(settings.sessions_dir / idle, OLD_DAYS)
    age(settings.sessions_dir / busy, OLD_DAYS)  # by age alone both would go; a turn is in flight in `busy`
    code = "import time\ntime.sleep(3)\nopen('result.txt', 'w').write('ok')\nprint(before + 1)"
    running = asyncio.create_task(sandbox.run(session_id=busy, code=code))
    await asyncio.sleep(0.5)

    report = await run_cleanup(settings=settings, sessions=db, dry_run=False, sandbox=sandbox)

    assert [Path(item.target).name for item in report.removed] == [idle]
    result = await running
    assert result.ok and result.stdout.strip() == "2"
    assert (settings.sessions_dir / busy / "work" / "result.txt").read_text() == "ok"
    assert not (settings.sessions_dir / idle).exists()
    fresh = await sandbox.run(session_id=idle, code="print('kept' in dir())")
    assert fresh.ok and fresh.stdout.strip() == "False"  # a clean session, not a broken worker
