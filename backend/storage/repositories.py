"""Data access. `OwnedRepository` scopes every query to one user, so per-user isolation lives in one place."""

from __future__ import annotations

import hmac
from collections.abc import Sequence
from datetime import timedelta
from typing import TypeVar

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from backend.core.security import hash_password
from backend.core.settings import Settings
from backend.storage.models import ApiKey, Artifact, Conversation, Message, Run, StoredFile, User, utcnow

_Owned = TypeVar("_Owned", Conversation, StoredFile, Run, Artifact, ApiKey)

TITLE_CHARS = 80
"""Length of a conversation title derived from its first message."""
MAX_ACTIVE_API_KEYS = 50
"""Unrevoked keys a user may hold at once."""
API_KEY_TOUCH_INTERVAL = timedelta(minutes=1)
"""`last_used_at` is rewritten at most this often per key: a busy client should not cost a write per request."""


class NotFoundError(LookupError):
    """The object does not exist, or belongs to another user (the two are indistinguishable on purpose)."""


class ConflictError(ValueError):
    """The object would clash with an existing one (e.g. a taken username)."""


class UserRepository:
    """Accounts; the only repository not scoped to a user."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def get(self, user_id: str) -> User | None:
        return self.session.get(User, user_id)

    def by_username(self, username: str) -> User | None:
        return self.session.scalar(select(User).where(User.username == username))

    def create(self, *, username: str, password: str, is_admin: bool = False) -> User:
        return self.add(username=username, password_hash=hash_password(password), is_admin=is_admin)

    def add(self, *, username: str, password_hash: str, is_admin: bool = False) -> User:
        """Create a user from an already computed hash (the API hashes on its own bounded worker pool)."""
        user = User(username=username, password_hash=password_hash, is_admin=is_admin)
        self.session.add(user)
        try:
            self.session.commit()
        except IntegrityError as exc:
            self.session.rollback()
            raise ConflictError(f"username {username!r} is taken") from exc
        return user


def ensure_admin(*, sessions: sessionmaker[Session], settings: Settings) -> bool:
    """Create the first-run admin from settings when both name and password are set; True if one was created."""
    if not settings.admin_username or settings.admin_password is None:
        return False
    with sessions() as session:
        users = UserRepository(session)
        if users.by_username(settings.admin_username) is not None:
            return False
        try:
            users.create(
                username=settings.admin_username,
                password=settings.admin_password.get_secret_value(),
                is_admin=True,
            )
        except ConflictError:  # another worker created it first
            return False
    return True


INTERRUPTED = "interrupted: the server stopped before this run finished"


def fail_interrupted_runs(*, sessions: sessionmaker[Session]) -> int:
    """At start-up no run of this process is in flight: runs still marked running were cut off by a stop or crash.

    (With several server processes on one database a starting process would mislabel its peers' live runs
    until they finish and record their real status.)
    """
    with sessions() as session, session.begin():
        stale = list(session.scalars(select(Run).where(Run.status == "running")))
        for run in stale:
            run.status, run.error, run.finished_at = "failed", run.error or INTERRUPTED, utcnow()
    return len(stale)


class OwnedRepository:
    """Everything a user owns. Each lookup filters by `user_id`; another user's id raises NotFoundError."""

    def __init__(self, session: Session, *, user_id: str) -> None:
        self.session = session
        self.user_id = user_id

    def _owned(self, model: type[_Owned], object_id: str) -> _Owned:
        row = self.session.get(model, object_id)
        if row is None or row.user_id != self.user_id:
            raise NotFoundError(f"{model.__tablename__.rstrip('s')} {object_id} not found")
        return row

    # --- conversations -------------------------------------------------------------------
    def list_conversations(self, *, limit: int, offset: int) -> Sequence[Conversation]:
        query = (
            select(Conversation)
            .where(Conversation.user_id == self.user_id)
            .order_by(Conversation.updated_at.desc(), Conversation.id)
            .limit(limit)
            .offset(offset)
        )
        return self.session.scalars(query).all()

    def get_conversation(self, conversation_id: str) -> Conversation:
        return self._owned(Conversation, conversation_id)

    def create_conversation(self, *, title: str) -> Conversation:
        conversation = Conversation(user_id=self.user_id, title=_title(title))
        self.session.add(conversation)
        self.session.commit()
        return conversation

    def ensure_conversation(self, conversation_id: str, *, title: str) -> Conversation:
        """The user's conversation with this caller-chosen id (e.g. derived from a client's thread), created when
        missing; another user's id is NotFoundError."""
        row = self.session.get(Conversation, conversation_id)
        if row is not None:
            if row.user_id != self.user_id:
                raise NotFoundError(f"conversation {conversation_id} not found")
            return row
        self.session.add(Conversation(id=conversation_id, user_id=self.user_id, title=_title(title)))
        try:
            self.session.commit()
        except IntegrityError:  # a concurrent request created it first
            self.session.rollback()
        return self.get_conversation(conversation_id)

    def rename_conversation(self, conversation_id: str, *, title: str) -> Conversation:
        conversation = self.get_conversation(conversation_id)
        conversation.title = title
        conversation.updated_at = utcnow()
        self.session.commit()
        return conversation

    def delete_conversation(self, conversation_id: str) -> list[str]:
        """Delete it with its messages, runs and artifacts; return the artifact file paths for the caller to remove."""
        conversation = self.get_conversation(conversation_id)
        paths = [a.path for a in self.conversation_artifacts(conversation_id) if a.path]
        self.session.delete(conversation)
        self.session.commit()
        return paths

    def add_message(self, conversation_id: str, *, role: str, content: str, run_id: str | None = None) -> Message:
        message = append_message(self.session, self.get_conversation(conversation_id), role=role, content=content,
                                 run_id=run_id)
        self.session.commit()
        return message

    def attach_files(self, conversation_id: str, file_ids: Sequence[str]) -> list[StoredFile]:
        """Attach files (404 for ids that are not the user's) and return all files the conversation still has."""
        conversation = self.get_conversation(conversation_id)
        new = self.get_files(file_ids)
        earlier = [f for f in (self.session.get(StoredFile, i) for i in conversation.file_ids) if f is not None]
        attached = list({f.id: f for f in [*earlier, *new] if f.user_id == self.user_id}.values())
        conversation.file_ids = [f.id for f in attached]
        self.session.commit()
        return attached

    def conversation_artifacts(self, conversation_id: str) -> Sequence[Artifact]:
        self.get_conversation(conversation_id)
        query = select(Artifact).where(Artifact.conversation_id == conversation_id).order_by(Artifact.created_at)
        return self.session.scalars(query).all()

    # --- files ---------------------------------------------------------------------------
    def list_files(self, *, limit: int, offset: int) -> Sequence[StoredFile]:
        query = (
            select(StoredFile)
            .where(StoredFile.user_id == self.user_id)
            .order_by(StoredFile.created_at.desc(), StoredFile.id)
            .limit(limit)
            .offset(offset)
        )
        return self.session.scalars(query).all()

    def get_file(self, file_id: str) -> StoredFile:
        return self._owned(StoredFile, file_id)

    def get_files(self, file_ids: Sequence[str]) -> list[StoredFile]:
        return [self.get_file(file_id) for file_id in dict.fromkeys(file_ids)]

    def add_files(self, files: Sequence[StoredFile]) -> None:
        for stored in files:
            stored.user_id = self.user_id
            self.session.add(stored)
        self.session.commit()

    def update_file_meta(self, file_id: str, **meta: object) -> StoredFile:
        stored = self.get_file(file_id)
        stored.meta = {**stored.meta, **meta}
        self.session.commit()
        return stored

    def delete_file(self, file_id: str) -> StoredFile:
        stored = self.get_file(file_id)
        self.session.delete(stored)
        self.session.commit()
        return stored

    # --- runs and artifacts --------------------------------------------------------------
    def create_run(self, *, conversation_id: str | None, kind: str, input: str, strategy: str | None) -> Run:
        if conversation_id is not None:
            self.get_conversation(conversation_id)
        run = Run(user_id=self.user_id, conversation_id=conversation_id, kind=kind, input=input, strategy=strategy)
        self.session.add(run)
        self.session.commit()
        return run

    def get_run(self, run_id: str) -> Run:
        return self._owned(Run, run_id)

    def get_fresh_run(self, run_id: str) -> Run:
        """The run as other sessions (the run's recorder) left it."""
        self.session.expire_all()
        return self.get_run(run_id)

    def run_artifacts(self, run_id: str) -> Sequence[Artifact]:
        self.get_run(run_id)
        query = select(Artifact).where(Artifact.run_id == run_id).order_by(Artifact.created_at)
        return self.session.scalars(query).all()

    def get_artifact(self, artifact_id: str) -> Artifact:
        return self._owned(Artifact, artifact_id)

    # --- api keys --------------------------------------------------------------------------
    def list_api_keys(self) -> Sequence[ApiKey]:
        query = select(ApiKey).where(ApiKey.user_id == self.user_id).order_by(ApiKey.created_at.desc(), ApiKey.id)
        return self.session.scalars(query).all()

    def add_api_key(self, *, name: str, prefix: str, key_hash: str) -> ApiKey:
        active = select(func.count()).select_from(ApiKey).where(
            ApiKey.user_id == self.user_id, ApiKey.revoked_at.is_(None))
        if int(self.session.scalar(active) or 0) >= MAX_ACTIVE_API_KEYS:
            raise ConflictError(f"at most {MAX_ACTIVE_API_KEYS} active API keys; revoke one first")
        key = ApiKey(user_id=self.user_id, name=name, prefix=prefix, key_hash=key_hash)
        self.session.add(key)
        self.session.commit()
        return key

    def revoke_api_key(self, key_id: str) -> ApiKey:
        """Idempotent: revoking a revoked key keeps its first revocation time."""
        key = self._owned(ApiKey, key_id)
        if key.revoked_at is None:
            key.revoked_at = utcnow()
            self.session.commit()
        return key

    def running_runs(self) -> int:
        query = select(func.count()).select_from(Run).where(Run.user_id == self.user_id, Run.status == "running")
        return int(self.session.scalar(query) or 0)


def use_api_key(session: Session, key_hash: str) -> ApiKey | None:
    """The unrevoked key with this hash, its use noted; looked up before its owner is known, hence not owned."""
    key = session.scalar(select(ApiKey).where(ApiKey.key_hash == key_hash))
    if key is None or key.revoked_at is not None or not hmac.compare_digest(key.key_hash, key_hash):
        return None
    now = utcnow()
    if key.last_used_at is None or now - key.last_used_at >= API_KEY_TOUCH_INTERVAL:
        key.last_used_at = now
        session.commit()
    return key


def append_message(
    session: Session, conversation: Conversation, *, role: str, content: str, run_id: str | None
) -> Message:
    """Add a message after the conversation's last one (caller commits)."""
    last = session.scalar(select(func.max(Message.seq)).where(Message.conversation_id == conversation.id))
    message = Message(conversation_id=conversation.id, seq=(last or 0) + 1, role=role, content=content, run_id=run_id)
    session.add(message)
    conversation.updated_at = utcnow()
    return message


def _title(text: str) -> str:
    first_line = " ".join(text.split())
    return first_line if len(first_line) <= TITLE_CHARS else first_line[: TITLE_CHARS - 1] + "…"

