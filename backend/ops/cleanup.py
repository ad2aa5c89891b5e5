"""Retention cleanup: plan with `policy`, then re-check each item just before removing it, and report.

The re-check is what makes cleanup safe next to a live server: an item whose conversation became active,
whose tree changed, or whose orphan got a record since planning is kept. Inside the server the sandbox
worker of a session is discarded (under the session's lock) before its scratch goes; the CLI cannot reach
the server's workers, but those are recycled after `sandbox_idle_seconds`, long before any retention age.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from anyio import to_thread
from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker

from backend.core.metrics import record_cleanup
from backend.core.settings import Settings
from backend.ops.checkpoints import delete_threads, list_threads
from backend.ops.files import TRASH_DIRNAME, remove_path, tree_stats
from backend.ops.policy import (
    Item,
    RetentionPolicy,
    active_conversations,
    pid_alive,
    plan_cleanup,
)
from backend.storage.models import Artifact, Conversation, Run, StoredFile, utcnow

log = logging.getLogger(__name__)


@dataclass
class CleanupReport:
    dry_run: bool
    planned: list[Item] = field(default_factory=list)
    removed: list[Item] = field(default_factory=list)
    kept: list[tuple[Item, str]] = field(default_factory=list)
    """Planned but kept at the last moment, with the reason (it became active, changed, or got a record)."""
    errors: list[str] = field(default_factory=list)

    @property
    def freed_bytes(self) -> int:
        return sum(item.size_bytes for item in self.removed)

    def summary(self) -> str:
        if self.dry_run:
            total = sum(item.size_bytes for item in self.planned)
            return f"would remove {len(self.planned)} item(s), {total / 1024 / 1024:.1f} MB"
        text = f"removed {len(self.removed)} item(s), freed {self.freed_bytes / 1024 / 1024:.1f} MB"
        if self.kept:
            text += f"; kept {len(self.kept)} that became busy"
        if self.errors:
            text += f"; {len(self.errors)} error(s)"
        return text


async def run_cleanup(
    *,
    settings: Settings,
    sessions: sessionmaker[Session],
    dry_run: bool,
    now: datetime | None = None,
    sandbox: Any | None = None,
    checkpointer: Any | None = None,
) -> CleanupReport:
    """Apply the retention policy (or, with `dry_run`, only say what it would remove)."""
    report = CleanupReport(dry_run=dry_run)
    report.planned = await to_thread.run_sync(lambda: plan_cleanup(settings=settings, sessions=sessions, now=now))
    try:
        threads = await list_threads(settings=settings, checkpointer=checkpointer)
        known = await to_thread.run_sync(lambda: _existing(sessions, threads))
        orphans = sorted(threads - known)
        report.planned += [Item("checkpoint", t, 0, "conversation no longer exists", t) for t in orphans]
    except Exception as exc:  # an unreadable checkpoint store must not stop the file cleanup
        report.errors.append(f"checkpoints: {type(exc).__name__}: {exc}")
    if dry_run:
        return report
    checker = _Checker(settings=settings, sessions=sessions)
    for item in report.planned:
        try:
            reason = await to_thread.run_sync(checker.busy, item)
            if reason:
                report.kept.append((item, reason))
                continue
            await _remove(item, settings=settings, sessions=sessions, sandbox=sandbox, checkpointer=checkpointer)
        except Exception as exc:  # one stubborn item must not stop the rest
            report.errors.append(f"{item.kind} {item.target}: {type(exc).__name__}: {exc}")
            continue
        report.removed.append(item)
        record_cleanup(kind=item.kind, freed_bytes=item.size_bytes)
    if report.removed or report.errors:
        log.info("cleanup: %s", report.summary())
    for item, reason in report.kept:
        log.info("cleanup kept %s %s: %s", item.kind, item.target, reason)
    for error in report.errors:
        log.warning("cleanup error: %s", error)
    return report


def _existing(sessions: sessionmaker[Session], ids: set[str]) -> set[str]:
    if not ids:
        return set()
    with sessions() as session:
        return set(session.scalars(select(Conversation.id).where(Conversation.id.in_(ids))))


class _Checker:
    """Fresh look at one planned item, just before it is removed."""

    def __init__(self, *, settings: Settings, sessions: sessionmaker[Session]) -> None:
        self.settings = settings
        self.sessions = sessions
        self.horizon = RetentionPolicy.from_settings(settings).active_horizon

    def busy(self, item: Item) -> str:
        """Why `item` must stay after all, or "" when it may go."""
        with self.sessions() as session:
            if item.conversation_id and active_conversations(
                session, horizon=self.horizon, now=utcnow(), conversation_id=item.conversation_id
            ):
                return "its conversation has a run in flight"
            checks: dict[str, Callable[[Session, Item], str]] = {
                "session": self._session, "artifact": self._artifact, "run": self._run,
                "upload": self._upload, "checkpoint": self._checkpoint, "pool_slot": self._pool_slot,
            }
            check = checks.get(item.kind)
            return check(session, item) if check is not None else ""

    @staticmethod
    def _changed(item: Item) -> str:
        return "changed since planning" if tree_stats(Path(item.target)).newest_mtime > item.stamp else ""

    def _session(self, session: Session, item: Item) -> str:
        exists = session.get(Conversation, item.conversation_id or "") is not None
        if item.reason.startswith("conversation no longer") and exists:
            return "its conversation exists again"
        return self._changed(item)

    def _artifact(self, session: Session, item: Item) -> str:
        recorded = session.scalar(select(Artifact.id).where(Artifact.path == item.target))
        if item.reason == "no artifact record" and recorded:
            return "it has a record now"
        return self._changed(item)

    def _run(self, session: Session, item: Item) -> str:
        run = session.get(Run, item.target)
        if run is not None and run.status == "running" and utcnow() - run.created_at < self.horizon:
            return "the run is in flight"
        return ""

    def _upload(self, session: Session, item: Item) -> str:
        path = Path(item.target)
        query = select(StoredFile.id).where(StoredFile.user_id == path.parent.name,
                                            StoredFile.stored_name == path.name)
        return "it has a file record now" if session.scalar(query) else self._changed(item)

    def _checkpoint(self, session: Session, item: Item) -> str:
        return "its conversation exists" if session.get(Conversation, item.target) else ""

    def _pool_slot(self, session: Session, item: Item) -> str:
        pid = Path(item.target).name.split("-", 1)[0]
        return "its server is running" if pid_alive(int(pid)) else ""


async def _remove(item: Item, *, settings: Settings, sessions: sessionmaker[Session], sandbox: Any | None,
                  checkpointer: Any | None) -> None:
    trash = settings.data_dir / TRASH_DIRNAME
    if item.kind == "checkpoint":
        await delete_threads([item.target], settings=settings, checkpointer=checkpointer)
        return
    if item.kind == "run":
        await to_thread.run_sync(_delete_rows, sessions, Run, item.target)
        for path in item.paths:
            await to_thread.run_sync(functools.partial(remove_path, Path(path), trash_root=trash))
        return
    if item.kind == "session" and sandbox is not None and item.conversation_id:
        await sandbox.reset(item.conversation_id)  # waits for code running there, then drops its worker
    if item.kind == "artifact":
        await to_thread.run_sync(_delete_artifact_rows, sessions, item.target)
    await to_thread.run_sync(lambda: remove_path(Path(item.target), trash_root=trash))


def _delete_rows(sessions: sessionmaker[Session], model: type[Run], row_id: str) -> None:
    with sessions() as session, session.begin():
        row = session.get(model, row_id)
        if row is not None:
            session.delete(row)


def _delete_artifact_rows(sessions: sessionmaker[Session], path: str) -> None:
    with sessions() as session, session.begin():
        session.execute(delete(Artifact).where(Artifact.path == path))
