"""Filesystem helpers for cleanup: sizes and last-change times without following symlinks, and safe removal."""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import stat
from dataclasses import dataclass
from pathlib import Path

MAX_SCAN_ENTRIES = 200_000
"""Entries looked at per tree; a bigger tree is measured partially (size is then a lower bound)."""
TRASH_DIRNAME = ".trash"
"""Under data_dir: trees are renamed here first (one atomic step), then deleted."""


@dataclass(frozen=True)
class TreeStats:
    size_bytes: int
    newest_mtime: float
    """Latest modification time of the tree or anything in it (seconds since the epoch)."""


def tree_stats(path: Path) -> TreeStats:
    """Total size and newest mtime of a file or directory tree; symlinks are counted, never followed."""
    try:
        info = path.lstat()
    except OSError:
        return TreeStats(0, 0.0)
    if not stat.S_ISDIR(info.st_mode):
        return TreeStats(info.st_size, info.st_mtime)
    size, newest, seen = 0, info.st_mtime, 0
    for dirpath, dirnames, filenames in os.walk(path, followlinks=False):
        for name in [*dirnames, *filenames]:
            seen += 1
            if seen > MAX_SCAN_ENTRIES:
                return TreeStats(size, newest)
            with contextlib.suppress(OSError):
                entry = (Path(dirpath) / name).lstat()
                newest = max(newest, entry.st_mtime)
                if not stat.S_ISDIR(entry.st_mode):
                    size += entry.st_size
    return TreeStats(size, newest)


def remove_path(path: Path, *, trash_root: Path) -> bool:
    """Delete a file or a tree; a tree is first renamed into `trash_root` so it vanishes in one step.

    Returns False when there was nothing to delete. Leftovers of a failed rmtree stay in the trash and are
    removed by the next cleanup.
    """
    try:
        info = path.lstat()
    except FileNotFoundError:
        return False
    if not stat.S_ISDIR(info.st_mode):
        path.unlink(missing_ok=True)
        return True
    trash_root.mkdir(parents=True, exist_ok=True)
    target = trash_root / f"{path.name}-{secrets.token_hex(4)}"
    try:
        path.rename(target)
    except OSError:  # another filesystem: delete in place
        target = path
    shutil.rmtree(target, ignore_errors=True)
    return True


def free_bytes(path: Path) -> int:
    """Free space on the filesystem holding `path` (or its nearest existing parent)."""
    probe = path
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    return shutil.disk_usage(probe).free
