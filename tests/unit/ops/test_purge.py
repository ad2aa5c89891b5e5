"""Purging a conversation or a user removes its rows, files, variables, vectors and checkpoints — and nothing else."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from langgraph.checkpoint.base import empty_checkpoint
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from backend.core.settings import Settings
from backend.ops.checkpoints import list_threads
from backend.ops.purge import purge_conversation, purge_user
from backend.storage.models import Artifact, Conversation, Run, StoredFile, User
from backend.storage.repositories import NotFoundError


async def add_checkpoints(settings: Settings, *threads: str) -> None:
    async with AsyncSqliteSaver.from_conn_string(str(settings.checkpoint_db)) as saver:
        await saver.setup()
        for thread in threads:
            config = {"configurable": {"thread_id": thread, "checkpoint_ns": ""}}
            await saver.aput(config, empty_checkpoint(), {}, {})  # type: ignore[arg-type]


class Owner:
    """A user with conversations that have scratch, artifacts and uploads on disk."""

    def __init__(self, db: sessionmaker[Session], settings: Settings, name: str) -> None:
        self.db, self.settings = db, settings
        with db() as session, session.begin():
            user = User(username=name, password_hash="x")
            session.add(user)
            session.flush()
            self.id = user.id
        self.uploads = settings.uploads_dir / self.id
        self.uploads.mkdir(parents=True)

    def conversation(self) -> str:
        with self.db() as session, session.begin():
            conversation = Conversation(user_id=self.id, title="t")
            session.add(conversation)
            session.flush()
            run = Run(user_id=self.id, conversation_id=conversation.id, status="done")
            session.add(run)
            session.flush()
            artifact = self.settings.data_dir / "artifacts" / self.id / f"{run.id}.png"
            artifact.parent.mkdir(parents=True, exist_ok=True)
            artifact.write_bytes(b"png")
            session.add(Artifact(user_id=self.id, run_id=run.id, conversation_id=conversation.id, kind="figure",
                                 name="plot.png", path=str(artifact)))
            conversation_id = conversation.id
        root = self.settings.sessions_dir / conversation_id
        for part in ("work/data.csv", "vars/total.json", "vars/catalog.json", "notepad.jsonl"):
            (root / part).parent.mkdir(parents=True, exist_ok=True)
            (root / part).write_text("x")
        return conversation_id

    def upload(self, file_id: str) -> None:
        (self.uploads / f"{file_id}.csv").write_text("a,b\n1,2\n")
        with self.db() as session, session.begin():
            session.add(StoredFile(id=file_id, user_id=self.id, name="a.csv", stored_name=f"{file_id}.csv",
                                   kind="csv", media_type="text/csv", size_bytes=8, sha256="0" * 64))


class Runs:
    def __init__(self) -> None:
        self.cancelled: list[str] = []

    async def cancel(self, run_id: str) -> bool:
        self.cancelled.append(run_id)
        return True


class Sandbox:
    def __init__(self) -> None:
        self.reset_sessions: list[str] = []

    async def reset(self, session_id: str) -> None:
        self.reset_sessions.append(session_id)


async def test_purging_a_conversation_removes_everything_it_owns(settings: Settings, db) -> None:
    alice = Owner(db, settings, "alice")
    doomed, kept = alice.conversation(), alice.conversation()
    await add_checkpoints(settings, doomed, kept)
    runs, sandbox = Runs(), Sandbox()
    report = await purge_conversation(settings=settings, sessions=db, user_id=alice.id, conversation_id=doomed,
                                      runs=runs, sandbox=sandbox)
    assert not (settings.sessions_dir / doomed).exists()
    assert (settings.sessions_dir / kept / "vars" / "total.json").is_file()
    assert await list_threads(settings=settings) == {kept}
    assert sandbox.reset_sessions == [doomed] and len(runs.cancelled) == 1
    with db() as session:
        assert [c.id for c in session.scalars(select(Conversation))] == [kept]
        artifacts = [Path(a.path) for a in session.scalars(select(Artifact))]
    assert len(artifacts) == 1 and artifacts[0].is_file()
    assert len(list((settings.data_dir / "artifacts" / alice.id).iterdir())) == 1
    assert report.checkpoint_threads == 1 and report.paths_removed == 2


async def test_another_users_conversation_cannot_be_purged(settings: Settings, db) -> None:
    alice, bob = Owner(db, settings, "alice"), Owner(db, settings, "bob")
    theirs = alice.conversation()
    with pytest.raises(NotFoundError):
        await purge_conversation(settings=settings, sessions=db, user_id=bob.id, conversation_id=theirs)
    assert (settings.sessions_dir / theirs / "notepad.jsonl").is_file()


async def test_purging_a_user_removes_their_data_and_only_theirs(settings: Settings, db) -> None:
    alice, bob = Owner(db, settings, "alice"), Owner(db, settings, "bob")
    hers, his = alice.conversation(), bob.conversation()
    alice.upload("fa"), bob.upload("fb")
    await add_checkpoints(settings, hers, his)
    forgotten: list[str] = []

    async def forget(file_id: str) -> bool:
        forgotten.append(file_id)
        return True

    report = await purge_user(settings=settings, sessions=db, user_id=alice.id, forget_document=forget)
    assert forgotten == ["fa"] and report.documents == 1
    assert not alice.uploads.exists() and not (settings.data_dir / "artifacts" / alice.id).exists()
    assert not (settings.sessions_dir / hers).exists()
    assert await list_threads(settings=settings) == {his}
    with db() as session:
        assert [u.username for u in session.scalars(select(User))] == ["bob"]
        assert {f.id for f in session.scalars(select(StoredFile))} == {"fb"}
        assert {r.user_id for r in session.scalars(select(Run))} == {bob.id}
    assert (bob.uploads / "fb.csv").is_file() and (settings.sessions_dir / his / "work" / "data.csv").is_file()


async def test_purging_an_unknown_user_is_a_clear_error(settings: Settings, db) -> None:
    with pytest.raises(NotFoundError, match="user nobody not found"):
        await purge_user(settings=settings, sessions=db, user_id="nobody")


def test_deleting_a_conversation_over_http_also_drops_its_checkpoints(
    settings: Settings, app_factory: Callable[[Settings], TestClient], login: Callable[..., dict[str, str]],
) -> None:
    import asyncio

    client = app_factory(settings)
    alice = login(client, "alice")
    conversation_id = client.post("/api/chat", json={"message": "hi"}, headers=alice).json()["conversation_id"]
    asyncio.run(add_checkpoints(settings, conversation_id, "other-thread"))
    assert client.delete(f"/api/conversations/{conversation_id}", headers=alice).status_code == 204
    assert asyncio.run(list_threads(settings=settings)) == {"other-thread"}
    assert client.get(f"/api/conversations/{conversation_id}", headers=alice).status_code == 404
