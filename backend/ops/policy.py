"""Retention policy: decide what cleanup may remove (old or orphaned scratch, artifacts, runs, uploads, slots).

Planning only reads. Nothing that belongs to an active conversation is ever proposed: a conversation is active
while it has a run marked running that is younger than the turn budget plus a grace period, or while its
scratch dir changed in the last `MIN_IDLE_SECONDS`.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Literal

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from backend.core.settings import Settings
from backend.ops.files import TRASH_DIRNAME, tree_stats
from backend.storage.models import Artifact, Conversation, Run, StoredFile, User, utcnow

ACTIVE_RUN_GRACE_SECONDS = 300.0
"""A run row still marked running is treated as live this long past the turn budget (then it is a dead server's)."""
MIN_IDLE_SECONDS = 600.0
"""Scratch changed more recently than this is never removed, whatever the policy says."""
ORPHAN_MIN_AGE_SECONDS = 3600.0
"""Files with no database row are left alone this long (a row may be about to be committed)."""
ARTIFACTS_DIRNAME = "artifacts"
POOL_DIRNAME = ".pool"
MB = 1024 * 1024

Kind = Literal["session", "artifact", "run", "upload", "pool_slot", "checkpoint", "trash"]


@dataclass(frozen=True)
class Item:
    """One thing cleanup would remove, and why."""

    kind: Kind
    target: str
    """A path for files and trees; an id for runs and checkpoint threads."""
    size_bytes: int
    reason: str
    conversation_id: str | None = None
    stamp: float = 0.0
    """Newest mtime seen when planning: a tree that changed since is kept."""
    paths: tuple[str, ...] = ()
    """Files that go with a database row (a run's artifacts)."""


@dataclass(frozen=True)
class RetentionPolicy:
    max_age: timedelta
    scratch_max_bytes: int
    artifacts_max_bytes: int
    active_horizon: timedelta

    @classmethod
    def from_settings(cls, settings: Settings) -> RetentionPolicy:
        return cls(
            max_age=timedelta(days=settings.retention_days),
            scratch_max_bytes=settings.scratch_max_mb * MB,
            artifacts_max_bytes=settings.artifacts_max_mb * MB,
            active_horizon=timedelta(seconds=settings.agent_turn_seconds + ACTIVE_RUN_GRACE_SECONDS),
        )


def active_conversations(session: Session, *, horizon: timedelta, now: datetime,
                         conversation_id: str | None = None) -> set[str]:
    """Conversations with a run in flight (optionally just: is this one?)."""
    query = select(Run.conversation_id).where(Run.status == "running", Run.created_at >= now - horizon)
    if conversation_id is not None:
        query = query.where(Run.conversation_id == conversation_id)
    return {cid for cid in session.scalars(query) if cid}


@dataclass
class _Snapshot:
    conversations: dict[str, datetime]
    active: set[str]
    users: set[str]
    stored: set[tuple[str, str]]
    artifact_paths: set[str] = field(default_factory=set)


def plan_cleanup(*, settings: Settings, sessions: sessionmaker[Session], now: datetime | None = None) -> list[Item]:
    """Everything the retention policy in `settings` would remove now (reads only)."""
    now = now or utcnow()
    policy = RetentionPolicy.from_settings(settings)
    cutoff = now - policy.max_age
    wall = time.time() - (utcnow() - now).total_seconds()  # `now` on the filesystem clock
    with sessions() as session:
        snap = _Snapshot(
            conversations=dict(session.execute(select(Conversation.id, Conversation.updated_at)).tuples().all()),
            active=active_conversations(session, horizon=policy.active_horizon, now=now),
            users=set(session.scalars(select(User.id))),
            stored=set(session.execute(select(StoredFile.user_id, StoredFile.stored_name)).tuples().all()),
        )
        items = _runs(session, cutoff=cutoff, snap=snap)
        items += _artifacts(session, settings=settings, policy=policy, cutoff=cutoff, snap=snap, wall=wall,
                            taken={p for item in items for p in item.paths})
    items += _sessions(settings=settings, policy=policy, cutoff=cutoff, snap=snap, wall=wall)
    items += _uploads(settings=settings, snap=snap, wall=wall)
    items += _pool_slots(settings.sessions_dir / POOL_DIRNAME)
    items += _trash(settings.data_dir / TRASH_DIRNAME)
    return items


def _runs(session: Session, *, cutoff: datetime, snap: _Snapshot) -> list[Item]:
    ended = func.coalesce(Run.finished_at, Run.created_at)
    old = session.scalars(select(Run).where(ended < cutoff).order_by(Run.created_at)).all()
    items = []
    for run in old:
        if run.conversation_id in snap.active:
            continue
        paths = tuple(p for p in session.scalars(select(Artifact.path).where(Artifact.run_id == run.id)) if p)
        size = sum(tree_stats(Path(p)).size_bytes for p in paths)
        items.append(Item("run", run.id, size, f"run ended before {cutoff:%Y-%m-%d}", run.conversation_id,
                          paths=paths))
    return items


def _artifacts(session: Session, *, settings: Settings, policy: RetentionPolicy, cutoff: datetime,
               snap: _Snapshot, wall: float, taken: set[str]) -> list[Item]:
    """Artifact files: orphans, expired ones (their row goes too), then the oldest beyond the size cap."""
    rows = session.execute(select(Artifact.path, Artifact.created_at, Artifact.conversation_id)).tuples().all()
    known = {path: (created, cid) for path, created, cid in rows if path}
    items: list[Item] = []
    kept: list[tuple[float, Path, int, str | None]] = []
    root = settings.data_dir / ARTIFACTS_DIRNAME
    for path in _files(root, depth=2):
        stats = tree_stats(path)
        row = known.get(str(path))
        if str(path) in taken:
            continue
        if row is None:
            if wall - stats.newest_mtime > ORPHAN_MIN_AGE_SECONDS:
                items.append(Item("artifact", str(path), stats.size_bytes, "no artifact record",
                                  stamp=stats.newest_mtime))
            continue
        created, cid = row
        if cid in snap.active:
            continue
        if created < cutoff:
            items.append(Item("artifact", str(path), stats.size_bytes, f"created before {cutoff:%Y-%m-%d}", cid,
                              stamp=stats.newest_mtime))
        else:
            kept.append((created.timestamp(), path, stats.size_bytes, cid))
    items += _over_cap(kept, cap=policy.artifacts_max_bytes, kind="artifact", limit_name="APP_ARTIFACTS_MAX_MB")
    return items


def _sessions(*, settings: Settings, policy: RetentionPolicy, cutoff: datetime, snap: _Snapshot,
              wall: float) -> list[Item]:
    """Session scratch (work, vars, notepad): orphans, idle past retention, then least recently used over the cap."""
    root = settings.sessions_dir
    items: list[Item] = []
    kept: list[tuple[float, Path, int, str | None]] = []
    for path in sorted(root.iterdir()) if root.is_dir() else []:
        if path.name.startswith(".") or not path.is_dir() or path.is_symlink() or path.name in snap.active:
            continue
        stats = tree_stats(path)
        idle = wall - stats.newest_mtime
        if idle < MIN_IDLE_SECONDS:
            continue
        updated = snap.conversations.get(path.name)
        if updated is None:
            if idle > ORPHAN_MIN_AGE_SECONDS:
                items.append(Item("session", str(path), stats.size_bytes, "conversation no longer exists",
                                  path.name, stats.newest_mtime))
            continue
        last = max(updated.timestamp(), stats.newest_mtime)
        if last < cutoff.timestamp():
            items.append(Item("session", str(path), stats.size_bytes, f"idle since before {cutoff:%Y-%m-%d}",
                              path.name, stats.newest_mtime))
        else:
            kept.append((last, path, stats.size_bytes, path.name))
    items += _over_cap(kept, cap=policy.scratch_max_bytes, kind="session", limit_name="APP_SCRATCH_MAX_MB")
    return items


def _over_cap(kept: list[tuple[float, Path, int, str | None]], *, cap: int, kind: Kind,
              limit_name: str) -> list[Item]:
    """Oldest first until what stays fits under `cap` (0 = no cap)."""
    total = sum(size for _, _, size, _ in kept)
    items = []
    for _, path, size, cid in sorted(kept, key=lambda entry: entry[0]):
        if not cap or total <= cap:
            break
        stamp = tree_stats(path).newest_mtime
        items.append(Item(kind, str(path), size, f"over {limit_name}={cap // MB}", cid, stamp))
        total -= size
    return items


def _uploads(*, settings: Settings, snap: _Snapshot, wall: float) -> list[Item]:
    """Uploaded bytes with no file record (a deleted user or file whose removal was interrupted)."""
    items = []
    root = settings.uploads_dir
    for user_dir in sorted(root.iterdir()) if root.is_dir() else []:
        if not user_dir.is_dir() or user_dir.is_symlink():
            continue
        for path in sorted(user_dir.iterdir()):
            if (user_dir.name, path.name) in snap.stored:
                continue
            stats = tree_stats(path)
            if wall - stats.newest_mtime > ORPHAN_MIN_AGE_SECONDS:
                why = "no file record" if user_dir.name in snap.users else "user no longer exists"
                items.append(Item("upload", str(path), stats.size_bytes, why, stamp=stats.newest_mtime))
    return items


def _pool_slots(pool: Path) -> list[Item]:
    """Warm-worker slots of sandbox servers that died without shutting down."""
    items = []
    for slot in sorted(pool.iterdir()) if pool.is_dir() else []:
        pid = slot.name.split("-", 1)[0]
        if pid.isdigit() and not pid_alive(int(pid)):
            items.append(Item("pool_slot", str(slot), tree_stats(slot).size_bytes, f"server pid {pid} is gone"))
    return items


def _trash(trash: Path) -> list[Item]:
    return [Item("trash", str(p), tree_stats(p).size_bytes, "left by an interrupted delete")
            for p in (sorted(trash.iterdir()) if trash.is_dir() else [])]


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _files(root: Path, *, depth: int) -> Iterable[Path]:
    """Regular files exactly `depth` levels under root (artifacts/<user>/<file>)."""
    if not root.is_dir():
        return
    for path in sorted(root.glob("/".join(["*"] * depth))):
        if path.is_file() and not path.is_symlink():
            yield path
