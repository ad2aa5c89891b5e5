"""Deleting a conversation or a user with everything that belongs to it: rows, files, variables, vectors, checkpoints.

Order: stop the runs, delete the database rows (the user-visible truth), then the derived state. If a later
step fails, what is left is an orphan that `cleanup` removes; it is never reachable through the API again.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from anyio import to_thread
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from backend.core.settings import Settings
from backend.ops.checkpoints import delete_threads
from backend.ops.files import TRASH_DIRNAME, remove_path, tree_stats
from backend.ops.policy import ARTIFACTS_DIRNAME
from backend.storage.models import Conversation, Run, StoredFile, User
from backend.storage.repositories import NotFoundError, OwnedRepository

log = logging.getLogger(__name__)


class RunCanceller(Protocol):
    async def cancel(self, run_id: str) -> bool: ...


@dataclass
class PurgeReport:
    conversations: int = 0
    runs_cancelled: int = 0
    paths_removed: int = 0
    freed_bytes: int = 0
    checkpoint_threads: int = 0
    documents: int = 0
    """RAG documents whose chunks and vectors were removed."""
    notes: list[str] = field(default_factory=list)
    """Steps that could not be completed now (left for `cleanup`), in words."""


async def purge_conversation(
    *,
    settings: Settings,
    sessions: sessionmaker[Session],
    user_id: str,
    conversation_id: str,
    runs: RunCanceller | None = None,
    sandbox: Any | None = None,
    checkpointer: Any | None = None,
) -> PurgeReport:
    """Delete one of `user_id`'s conversations: its runs are stopped, then rows, artifacts, scratch (work files,
    variables, notepad) and agent checkpoints are removed. NotFoundError if it is not that user's."""
    report = PurgeReport()

    def run_ids() -> list[str]:
        with sessions() as session:
            conversation = OwnedRepository(session, user_id=user_id).get_conversation(conversation_id)
            return [run.id for run in conversation.runs]

    for run_id in await to_thread.run_sync(run_ids):
        if runs is not None and await runs.cancel(run_id):
            report.runs_cancelled += 1

    def delete_rows() -> list[str]:
        with sessions() as session:
            return OwnedRepository(session, user_id=user_id).delete_conversation(conversation_id)

    artifact_paths = await to_thread.run_sync(delete_rows)
    report.conversations = 1
    await _forget_session(conversation_id, settings=settings, sandbox=sandbox, checkpointer=checkpointer,
                          report=report)
    paths = [Path(p) for p in artifact_paths] + [settings.sessions_dir / conversation_id]
    await to_thread.run_sync(lambda: _remove_all(paths, settings=settings, report=report))
    return report


async def purge_user(
    *,
    settings: Settings,
    sessions: sessionmaker[Session],
    user_id: str,
    runs: RunCanceller | None = None,
    sandbox: Any | None = None,
    checkpointer: Any | None = None,
    forget_document: Callable[[str], Awaitable[bool]] | None = None,
) -> PurgeReport:
    """Delete a user and everything theirs: conversations (as above), uploads, artifacts, RAG chunks and vectors.

    `forget_document(file_id)` removes one document from RAG and says whether there was one to remove.
    """
    report = PurgeReport()

    def inventory() -> tuple[list[str], list[str], list[str]]:
        with sessions() as session:
            if session.get(User, user_id) is None:
                raise NotFoundError(f"user {user_id} not found")
            conversations = list(session.scalars(select(Conversation.id).where(Conversation.user_id == user_id)))
            running = list(session.scalars(select(Run.id).where(Run.user_id == user_id, Run.status == "running")))
            files = list(session.scalars(select(StoredFile.id).where(StoredFile.user_id == user_id)))
            return conversations, running, files

    conversations, running, file_ids = await to_thread.run_sync(inventory)
    for run_id in running:
        if runs is not None and await runs.cancel(run_id):
            report.runs_cancelled += 1
    await to_thread.run_sync(_delete_user_row, sessions, user_id)  # cascades to every row the user owns
    report.conversations = len(conversations)
    for conversation_id in conversations:
        await _forget_session(conversation_id, settings=settings, sandbox=sandbox, checkpointer=checkpointer,
                              report=report)
    forget = forget_document or _rag_forgetter(settings, user_id)
    for file_id in file_ids:
        try:
            if await forget(file_id):
                report.documents += 1
        except Exception as exc:
            report.notes.append(f"RAG document {file_id}: {type(exc).__name__}: {exc}")
    paths = [settings.sessions_dir / c for c in conversations]
    paths += [settings.uploads_dir / user_id, settings.data_dir / ARTIFACTS_DIRNAME / user_id]
    await to_thread.run_sync(lambda: _remove_all(paths, settings=settings, report=report))
    for note in report.notes:
        log.warning("purge of user %s: %s", user_id, note)
    return report


def _delete_user_row(sessions: sessionmaker[Session], user_id: str) -> None:
    with sessions() as session, session.begin():
        user = session.get(User, user_id)
        if user is not None:
            session.delete(user)


async def _forget_session(conversation_id: str, *, settings: Settings, sandbox: Any | None,
                          checkpointer: Any | None, report: PurgeReport) -> None:
    if sandbox is not None:
        try:
            await sandbox.reset(conversation_id)  # drops the live interpreter and its saved variables
        except Exception as exc:  # a sandbox hiccup must not keep the rest of the data
            report.notes.append(f"sandbox reset of {conversation_id}: {exc}")
    try:
        report.checkpoint_threads += await delete_threads([conversation_id], settings=settings,
                                                          checkpointer=checkpointer)
    except Exception as exc:
        report.notes.append(f"checkpoints of {conversation_id}: {type(exc).__name__}: {exc}")


def _remove_all(paths: list[Path], *, settings: Settings, report: PurgeReport) -> None:
    trash = settings.data_dir / TRASH_DIRNAME
    for path in paths:
        size = tree_stats(path).size_bytes
        try:
            if remove_path(path, trash_root=trash):
                report.paths_removed += 1
                report.freed_bytes += size
        except OSError as exc:
            report.notes.append(f"{path}: {exc.strerror or exc}")


def _rag_forgetter(settings: Settings, user_id: str) -> Callable[[str], Awaitable[bool]]:
    """Chunks and vectors via the RAG room; if the index is held by another process, the chunk record only
    (search resolves every hit against it, so nothing surfaces; `reindex` later drops the stray vectors)."""

    def forget(file_id: str) -> bool:
        from backend.storage.documents import CHUNKS_DB_NAME, ChunkRecord

        path = settings.data_dir / CHUNKS_DB_NAME
        if not path.is_file():
            return False
        record = ChunkRecord(path)
        if record.get_document(user_id=user_id, file_id=file_id) is None:
            return False
        from backend.storage.ingest import delete_document

        try:
            delete_document(settings=settings, user_id=user_id, file_id=file_id)
        except Exception as exc:
            record.delete_document(user_id=user_id, file_id=file_id)
            raise RuntimeError(f"chunks removed, vectors left for `python -m backend reindex` ({exc})") from exc
        return True

    async def forget_async(file_id: str) -> bool:
        return await to_thread.run_sync(forget, file_id)

    return forget_async
