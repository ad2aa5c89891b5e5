"""Repositories: per-user isolation in one place, users and first-run admin, cascading deletes."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pydantic import SecretStr
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from backend.core.security import verify_password
from backend.core.settings import Settings
from backend.storage.db import create_db_engine, init_schema, session_factory
from backend.storage.models import Artifact, Message, Run, RunStep, StoredFile
from backend.storage.repositories import (
    INTERRUPTED,
    ConflictError,
    NotFoundError,
    OwnedRepository,
    UserRepository,
    ensure_admin,
    fail_interrupted_runs,
    use_api_key,
)

PASSWORD = "correct horse battery"


@pytest.fixture
def sessions(settings: Settings) -> sessionmaker[Session]:
    engine = create_db_engine(settings.resolved_database_url)
    init_schema(engine)
    return session_factory(engine)


@pytest.fixture
def session(sessions: sessionmaker[Session]) -> Iterator[Session]:
    with sessions() as s:
        yield s


def _repos(session: Session) -> tuple[OwnedRepository, OwnedRepository]:
    users = UserRepository(session)
    alice, bob = users.create(username="alice", password=PASSWORD), users.create(username="bob", password=PASSWORD)
    return OwnedRepository(session, user_id=alice.id), OwnedRepository(session, user_id=bob.id)


def _file(file_id: str = "f1") -> StoredFile:
    return StoredFile(id=file_id, name="a.csv", stored_name=f"{file_id}.csv", kind="csv", media_type="text/csv",
                      size_bytes=4, sha256="0" * 64, meta={})


def test_passwords_are_stored_as_argon2_hashes(session: Session) -> None:
    user = UserRepository(session).create(username="alice", password=PASSWORD)
    assert user.password_hash.startswith("$argon2")
    assert verify_password(PASSWORD, user.password_hash)


def test_duplicate_username_is_a_conflict(session: Session) -> None:
    UserRepository(session).create(username="alice", password=PASSWORD)
    with pytest.raises(ConflictError):
        UserRepository(session).create(username="alice", password=PASSWORD)


def test_every_kind_of_object_is_invisible_to_other_users(session: Session) -> None:
    alice, bob = _repos(session)
    conversation = alice.create_conversation(title="mine")
    alice.add_files([_file()])
    run = alice.create_run(conversation_id=conversation.id, kind="chat", input="q", strategy=None)
    session.add(Artifact(id="a1", user_id=alice.user_id, run_id=run.id, conversation_id=conversation.id,
                         kind="figure", name="p.png"))
    session.commit()
    for lookup in (lambda: bob.get_conversation(conversation.id), lambda: bob.get_file("f1"),
                   lambda: bob.get_run(run.id), lambda: bob.get_artifact("a1"),
                   lambda: bob.rename_conversation(conversation.id, title="x"),
                   lambda: bob.delete_conversation(conversation.id), lambda: bob.delete_file("f1"),
                   lambda: bob.add_message(conversation.id, role="user", content="hi"),
                   lambda: bob.create_run(conversation_id=conversation.id, kind="chat", input="", strategy=None),
                   lambda: bob.run_artifacts(run.id)):
        with pytest.raises(NotFoundError):
            lookup()
    assert bob.list_conversations(limit=10, offset=0) == []
    assert bob.list_files(limit=10, offset=0) == []


def test_attaching_another_users_file_is_not_found(session: Session) -> None:
    alice, bob = _repos(session)
    alice.add_files([_file()])
    conversation = bob.create_conversation(title="b")
    with pytest.raises(NotFoundError):
        bob.attach_files(conversation.id, ["f1"])


def test_attached_files_accumulate_and_skip_deleted_ones(session: Session) -> None:
    alice, _ = _repos(session)
    alice.add_files([_file("f1"), _file("f2")])
    conversation = alice.create_conversation(title="t")
    assert [f.id for f in alice.attach_files(conversation.id, ["f1"])] == ["f1"]
    assert [f.id for f in alice.attach_files(conversation.id, ["f2", "f1"])] == ["f1", "f2"]
    alice.delete_file("f1")
    assert [f.id for f in alice.attach_files(conversation.id, [])] == ["f2"]


def test_messages_are_numbered_in_order(session: Session) -> None:
    alice, _ = _repos(session)
    conversation = alice.create_conversation(title="t")
    for text in ("one", "two", "three"):
        alice.add_message(conversation.id, role="user", content=text)
    assert [(m.seq, m.content) for m in alice.get_conversation(conversation.id).messages] == [
        (1, "one"), (2, "two"), (3, "three")]


def test_deleting_a_conversation_removes_messages_runs_steps_and_artifacts(session: Session) -> None:
    alice, _ = _repos(session)
    conversation = alice.create_conversation(title="t")
    alice.add_message(conversation.id, role="user", content="q")
    run = alice.create_run(conversation_id=conversation.id, kind="chat", input="q", strategy=None)
    session.add(RunStep(run_id=run.id, step=1, node="act"))
    session.add(Artifact(id="a1", user_id=alice.user_id, run_id=run.id, conversation_id=conversation.id,
                         kind="figure", name="p.png", path="/tmp/nowhere.png"))
    session.commit()
    assert alice.delete_conversation(conversation.id) == ["/tmp/nowhere.png"]
    for model in (Message, Run, RunStep, Artifact):
        assert session.scalar(select(func.count()).select_from(model)) == 0


def test_long_first_messages_make_short_titles(session: Session) -> None:
    alice, _ = _repos(session)
    title = alice.create_conversation(title="word " * 100).title
    assert len(title) <= 80 and title.endswith("…")


def test_admin_is_created_once_from_settings(sessions: sessionmaker[Session], settings: Settings) -> None:
    secret = SecretStr("s3cret passphrase")
    configured = settings.model_copy(update={"admin_username": "root", "admin_password": secret})
    assert ensure_admin(sessions=sessions, settings=configured) is True
    assert ensure_admin(sessions=sessions, settings=configured) is False
    with sessions() as session:
        root = UserRepository(session).by_username("root")
        assert root is not None and root.is_admin


def test_no_admin_without_a_password(sessions: sessionmaker[Session], settings: Settings) -> None:
    assert ensure_admin(sessions=sessions, settings=settings.model_copy(update={"admin_username": "root"})) is False


def test_runs_left_running_by_a_previous_process_are_marked_failed(
    sessions: sessionmaker[Session], session: Session
) -> None:
    alice, _ = _repos(session)
    conversation = alice.create_conversation(title="t")
    stale = alice.create_run(conversation_id=conversation.id, kind="chat", input="q", strategy=None)
    assert fail_interrupted_runs(sessions=sessions) == 1
    session.expire_all()
    run = alice.get_run(stale.id)
    assert (run.status, run.error) == ("failed", INTERRUPTED)
    assert fail_interrupted_runs(sessions=sessions) == 0


def test_ensure_conversation_creates_once_and_refuses_another_users_id(session: Session) -> None:
    alice, bob = _repos(session)
    made = alice.ensure_conversation("thread0001", title="first question")
    assert made.title == "first question"
    assert alice.ensure_conversation("thread0001", title="ignored").id == made.id
    assert len(alice.list_conversations(limit=10, offset=0)) == 1
    with pytest.raises(NotFoundError):
        bob.ensure_conversation("thread0001", title="x")


def test_api_keys_are_scoped_and_found_by_hash_until_revoked(session: Session) -> None:
    alice, bob = _repos(session)
    key = alice.add_api_key(name="k", prefix="ask-abc", key_hash="a" * 64)
    assert [k.id for k in alice.list_api_keys()] == [key.id] and bob.list_api_keys() == []
    with pytest.raises(NotFoundError):
        bob.revoke_api_key(key.id)
    used = use_api_key(session, "a" * 64)
    assert used is not None and used.id == key.id and used.last_used_at is not None
    assert use_api_key(session, "b" * 64) is None
    alice.revoke_api_key(key.id)
    assert use_api_key(session, "a" * 64) is None
