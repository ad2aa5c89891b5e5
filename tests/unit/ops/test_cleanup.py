"""Retention cleanup on a temp data dir: exactly what the policy says goes, nothing of an active run ever does."""

from __future__ import annotations

import os
import time
from datetime import timedelta
from pathlib import Path

import pytest
from langgraph.checkpoint.base import empty_checkpoint
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from backend.core.metrics import value
from backend.core.settings import Settings
from backend.ops.checkpoints import list_threads
from backend.ops.cleanup import run_cleanup
from backend.ops.policy import plan_cleanup
from backend.storage.models import Artifact, Conversation, Run, StoredFile, User, utcnow

DAY = 86400.0


def age(path: Path, days: float) -> Path:
    """Set the mtime of `path` and everything under it to `days` ago."""
    stamp = time.time() - days * DAY
    for root, dirs, files in os.walk(path):
        for name in [*dirs, *files]:
            os.utime(Path(root) / name, (stamp, stamp))
    os.utime(path, (stamp, stamp))
    return path


def scratch(settings: Settings, conversation_id: str, *, days: float, size: int = 1000) -> Path:
    root = settings.sessions_dir / conversation_id
    (root / "work").mkdir(parents=True)
    (root / "vars").mkdir()
    (root / "work" / "out.csv").write_bytes(b"x" * size)
    (root / "vars" / "catalog.json").write_text("[]")
    (root / "notepad.jsonl").write_text("{}\n")
    return age(root, days)


class World:
    """Rows on the test database: one user, conversations and runs with chosen ages."""

    def __init__(self, db: sessionmaker[Session]) -> None:
        self.db = db
        with db() as session, session.begin():
            user = User(username="alice", password_hash="x")
            session.add(user)
            session.flush()
            self.user_id = user.id

    def conversation(self, *, days: float, running: bool = False) -> str:
        when = utcnow() - timedelta(days=days)
        with self.db() as session, session.begin():
            conversation = Conversation(user_id=self.user_id, title="t", created_at=when, updated_at=when)
            session.add(conversation)
            session.flush()
            if running:
                session.add(Run(user_id=self.user_id, conversation_id=conversation.id, status="running"))
            return conversation.id

    def run(self, conversation_id: str, *, days: float, status: str = "done") -> str:
        when = utcnow() - timedelta(days=days)
        with self.db() as session, session.begin():
            run = Run(user_id=self.user_id, conversation_id=conversation_id, status=status, created_at=when,
                      finished_at=when if status != "running" else None)
            session.add(run)
            session.flush()
            return run.id

    def artifact(self, settings: Settings, conversation_id: str, run_id: str | None, *, days: float,
                 name: str) -> Path:
        path = settings.data_dir / "artifacts" / self.user_id / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"png" * 100)
        age(path, days)
        with self.db() as session, session.begin():
            session.add(Artifact(user_id=self.user_id, run_id=run_id, conversation_id=conversation_id, kind="figure",
                                 name=name, path=str(path), created_at=utcnow() - timedelta(days=days)))
        return path

    def start_run(self, conversation_id: str) -> None:
        with self.db() as session, session.begin():
            session.add(Run(user_id=self.user_id, conversation_id=conversation_id, status="running"))


@pytest.fixture
def world(db: sessionmaker[Session]) -> World:
    return World(db)


async def test_old_scratch_goes_and_recent_scratch_stays(settings: Settings, db, world: World) -> None:
    old = world.conversation(days=40)
    recent = world.conversation(days=2)
    scratch(settings, old, days=40)
    scratch(settings, recent, days=2)
    report = await run_cleanup(settings=settings, sessions=db, dry_run=False)
    assert [(i.kind, Path(i.target).name) for i in report.removed] == [("session", old)]
    assert not (settings.sessions_dir / old).exists()
    assert (settings.sessions_dir / recent / "vars" / "catalog.json").is_file()


async def test_dry_run_lists_exactly_what_would_go_and_deletes_nothing(settings: Settings, db, world: World) -> None:
    old = world.conversation(days=40)
    scratch(settings, old, days=40)
    report = await run_cleanup(settings=settings, sessions=db, dry_run=True)
    assert [(i.kind, i.target) for i in report.planned] == [("session", str(settings.sessions_dir / old))]
    assert report.removed == []
    assert (settings.sessions_dir / old / "work" / "out.csv").is_file()
    assert "would remove 1 item(s)" in report.summary()


async def test_scratch_of_an_active_run_is_never_removed(settings: Settings, db, world: World) -> None:
    busy = world.conversation(days=40, running=True)  # an old conversation that just started a new turn
    scratch(settings, busy, days=40, size=2 * 1024 * 1024)
    capped = settings.model_copy(update={"scratch_max_mb": 1})  # neither age nor size may take it
    report = await run_cleanup(settings=capped, sessions=db, dry_run=False)
    assert report.planned == []
    assert (settings.sessions_dir / busy / "work" / "out.csv").is_file()


async def test_a_run_starting_between_plan_and_delete_keeps_its_files(settings: Settings, db, world: World,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    old = world.conversation(days=40)
    scratch(settings, old, days=40)
    import backend.ops.cleanup as cleanup_module

    def plan_then_race(**kwargs: object) -> list:
        items = plan_cleanup(**kwargs)  # type: ignore[arg-type]
        world.start_run(old)  # the user sends a message right after planning
        return items

    monkeypatch.setattr(cleanup_module, "plan_cleanup", plan_then_race)
    report = await run_cleanup(settings=settings, sessions=db, dry_run=False)
    assert report.removed == []
    assert [(item.target, why) for item, why in report.kept] == [
        (str(settings.sessions_dir / old), "its conversation has a run in flight")]
    assert (settings.sessions_dir / old / "vars" / "catalog.json").is_file()


async def test_scratch_written_after_planning_is_kept(settings: Settings, db, world: World,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    old = world.conversation(days=40)
    root = scratch(settings, old, days=40)
    import backend.ops.cleanup as cleanup_module

    def plan_then_write(**kwargs: object) -> list:
        items = plan_cleanup(**kwargs)  # type: ignore[arg-type]
        (root / "work" / "new.csv").write_text("fresh")
        return items

    monkeypatch.setattr(cleanup_module, "plan_cleanup", plan_then_write)
    report = await run_cleanup(settings=settings, sessions=db, dry_run=False)
    assert [why for _, why in report.kept] == ["changed since planning"]
    assert (root / "work" / "new.csv").is_file()


async def test_orphan_scratch_goes_only_after_the_grace_period(settings: Settings, db, world: World) -> None:
    scratch(settings, "deadbeef-old", days=1)
    scratch(settings, "deadbeef-new", days=0.01)  # 15 minutes: maybe a conversation being created
    report = await run_cleanup(settings=settings, sessions=db, dry_run=False)
    assert [Path(i.target).name for i in report.removed] == ["deadbeef-old"]
    assert (settings.sessions_dir / "deadbeef-new").is_dir()


async def test_scratch_over_the_size_cap_goes_least_recently_used_first(settings: Settings, db,
                                                                        world: World) -> None:
    ids = [world.conversation(days=d) for d in (5, 3, 1)]
    for conversation_id, days in zip(ids, (5, 3, 1), strict=True):
        scratch(settings, conversation_id, days=days, size=600 * 1024)
    capped = settings.model_copy(update={"scratch_max_mb": 1})  # ~1.8 MB in use → two must go
    report = await run_cleanup(settings=capped, sessions=db, dry_run=False)
    assert [Path(i.target).name for i in report.removed] == ids[:2]
    assert (settings.sessions_dir / ids[2]).is_dir()


async def test_old_runs_go_with_their_artifact_files(settings: Settings, db, world: World) -> None:
    conversation = world.conversation(days=1)
    old_run = world.run(conversation, days=40)
    new_run = world.run(conversation, days=1)
    old_file = world.artifact(settings, conversation, old_run, days=40, name="old.png")
    new_file = world.artifact(settings, conversation, new_run, days=1, name="new.png")
    report = await run_cleanup(settings=settings, sessions=db, dry_run=False)
    assert {(i.kind, i.target) for i in report.removed} == {("run", old_run)}
    assert not old_file.exists() and new_file.is_file()
    with db() as session:
        assert {r.id for r in session.scalars(select(Run))} == {new_run}
        assert [a.name for a in session.scalars(select(Artifact))] == ["new.png"]


async def test_expired_and_orphaned_artifact_files_go(settings: Settings, db, world: World) -> None:
    conversation = world.conversation(days=1)
    expired = world.artifact(settings, conversation, None, days=40, name="expired.png")
    kept = world.artifact(settings, conversation, None, days=1, name="kept.png")
    orphan = settings.data_dir / "artifacts" / world.user_id / "orphan.png"
    orphan.write_bytes(b"?")
    age(orphan, 2)
    report = await run_cleanup(settings=settings, sessions=db, dry_run=False)
    assert sorted(Path(i.target).name for i in report.removed) == ["expired.png", "orphan.png"]
    assert kept.is_file() and not expired.exists() and not orphan.exists()


async def test_uploads_without_a_record_go_after_the_grace_period(settings: Settings, db, world: World) -> None:
    user_dir = settings.uploads_dir / world.user_id
    user_dir.mkdir(parents=True)
    with db() as session, session.begin():
        session.add(StoredFile(user_id=world.user_id, name="a.csv", stored_name="f1.csv", kind="csv",
                               media_type="text/csv", size_bytes=3, sha256="0" * 64))
    for name in ("f1.csv", "f2.csv"):
        (user_dir / name).write_text("a,b")
        age(user_dir / name, 3)
    report = await run_cleanup(settings=settings, sessions=db, dry_run=False)
    assert [Path(i.target).name for i in report.removed] == ["f2.csv"]
    assert (user_dir / "f1.csv").is_file()


async def test_pool_slots_of_dead_servers_go_and_live_ones_stay(settings: Settings, db, world: World) -> None:
    pool = settings.sessions_dir / ".pool"
    dead = pool / "999999999-abcd"
    live = pool / f"{os.getpid()}-beef"
    for slot in (dead, live):
        (slot / "work").mkdir(parents=True)
    report = await run_cleanup(settings=settings, sessions=db, dry_run=False)
    assert [i.target for i in report.removed] == [str(dead)]
    assert live.is_dir()


async def test_checkpoints_of_deleted_conversations_go(settings: Settings, db, world: World) -> None:
    alive = world.conversation(days=1)
    async with AsyncSqliteSaver.from_conn_string(str(settings.checkpoint_db)) as saver:
        await saver.setup()
        for thread in (alive, "gone-thread"):
            config = {"configurable": {"thread_id": thread, "checkpoint_ns": ""}}
            await saver.aput(config, empty_checkpoint(), {}, {})  # type: ignore[arg-type]
    assert await list_threads(settings=settings) == {alive, "gone-thread"}
    report = await run_cleanup(settings=settings, sessions=db, dry_run=False)
    assert [(i.kind, i.target) for i in report.removed] == [("checkpoint", "gone-thread")]
    assert await list_threads(settings=settings) == {alive}


async def test_removals_are_counted_in_metrics(settings: Settings, db, world: World) -> None:
    old = world.conversation(days=40)
    scratch(settings, old, days=40, size=5000)
    before = value("cleanup_removed_total", kind="session"), value("cleanup_freed_bytes_total")
    await run_cleanup(settings=settings, sessions=db, dry_run=False)
    assert value("cleanup_removed_total", kind="session") - before[0] == 1
    assert value("cleanup_freed_bytes_total") - before[1] >= 5000


async def test_an_empty_data_dir_is_fine(settings: Settings, db) -> None:
    report = await run_cleanup(settings=settings, sessions=db, dry_run=False)
    assert report.planned == [] and report.errors == []
