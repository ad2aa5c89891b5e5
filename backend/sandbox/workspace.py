"""Host-side session directories: create and own them, bind pool slots, stage uploads, diff the workdir."""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import stat
from collections.abc import Iterator, Mapping
from pathlib import Path

from backend.sandbox.isolation import SANDBOX_GID, SANDBOX_UID

SESSION_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$")
UPLOAD_NAME_PATTERN = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_. ()+-]{0,199}$")
MAX_SCAN_ENTRIES = 5000
"""Files looked at when diffing the workdir after a run (a run creating more is reported partially)."""
MAX_SCAN_DEPTH = 6
READ_ONLY_MODE = 0o444
POOL_DIR = ".pool"
Snapshot = dict[str, tuple[int, int]]


class BadSessionId(ValueError):
    """A session id that could name a path outside the sessions directory."""


class BadUploadName(ValueError):
    """An upload name that is not a plain, safe file name."""


def check_session_id(session_id: str) -> str:
    if not isinstance(session_id, str) or not SESSION_ID_PATTERN.match(session_id):
        raise BadSessionId(f"session id must match {SESSION_ID_PATTERN.pattern}, got {session_id!r}")
    return session_id


def make_dir(path: Path, *, sandbox_owned: bool) -> Path:
    """Create a directory; when the server is root, the sandbox uid must own it to write there."""
    path.mkdir(parents=True, exist_ok=True)
    if sandbox_owned and os.geteuid() == 0:
        os.chown(path, SANDBOX_UID, SANDBOX_GID)
    return path


def adopt_slot(*, slot: Path, session_dir: Path) -> None:
    """Give a pool slot's dirs to a session by renaming them into place.

    The warm child has the slot's `work`/`vars` inodes mounted; a rename keeps those mounts, so the
    already-running interpreter now writes into the session's directories. Existing session content
    is moved into the slot dirs first.
    """
    session_dir.mkdir(parents=True, exist_ok=True)
    for sub in ("work", "vars"):
        src, dst = slot / sub, session_dir / sub
        if dst.is_dir() and not dst.is_symlink():
            for entry in list(dst.iterdir()):
                entry.rename(src / entry.name)
            dst.rmdir()
        src.rename(dst)
    with contextlib.suppress(OSError):
        slot.rmdir()


def new_slot(sessions_dir: Path, token: str) -> Path:
    """A pool slot path tagged with this server's pid, so a later server can sweep slots of dead ones."""
    return sessions_dir / POOL_DIR / f"{os.getpid()}-{token}"


def sweep_stale_slots(sessions_dir: Path) -> list[str]:
    """Remove pool slots left by servers that died without shutting down."""
    removed = []
    pool = sessions_dir / POOL_DIR
    for slot in pool.iterdir() if pool.is_dir() else []:
        pid_text = slot.name.split("-", 1)[0]
        if not pid_text.isdigit() or int(pid_text) == os.getpid():
            continue
        try:
            os.kill(int(pid_text), 0)
        except ProcessLookupError:
            shutil.rmtree(slot, ignore_errors=True)
            removed.append(slot.name)
        except PermissionError:
            continue
    return removed


def stage_uploads(*, work: Path, files: Mapping[str, Path]) -> list[str]:
    """Make uploads visible in the workdir without letting the sandbox change the originals."""
    staged = []
    for name, source in files.items():
        if not UPLOAD_NAME_PATTERN.match(name) or ".." in name:
            raise BadUploadName(f"upload name {name!r} is not a plain file name")
        src = Path(source)
        info = src.stat()
        if not stat.S_ISREG(info.st_mode):
            raise BadUploadName(f"upload {name!r} is not a regular file")
        dest = work / name
        try:
            current = dest.lstat()
            if stat.S_ISREG(current.st_mode) and (current.st_size, current.st_mtime_ns) == (
                info.st_size,
                info.st_mtime_ns,
            ):
                staged.append(name)
                continue
        except FileNotFoundError:
            pass
        _place(src, dest, info)
        staged.append(name)
    return staged


def _place(src: Path, dest: Path, info: os.stat_result) -> None:
    """Hard link when the sandbox uid can read but not write the original; otherwise a read-only copy.

    Both go through a fresh temporary name (O_EXCL, never a symlink the sandbox planted) and a rename,
    which replaces whatever sits at `dest` without following it.
    """
    tmp = dest.with_name(f".staging-{secrets.token_hex(8)}")
    linkable = (
        os.geteuid() == 0
        and info.st_mode & stat.S_IROTH
        and not info.st_mode & stat.S_IWOTH
        and info.st_uid != SANDBOX_UID
        and info.st_dev == dest.parent.stat().st_dev
    )
    try:
        if linkable:
            os.link(src, tmp)
        else:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, READ_ONLY_MODE)
            with os.fdopen(fd, "wb") as out, src.open("rb") as inp:
                shutil.copyfileobj(inp, out)
            os.utime(tmp, ns=(info.st_atime_ns, info.st_mtime_ns), follow_symlinks=False)
        tmp.replace(dest)
    finally:
        tmp.unlink(missing_ok=True)


def _walk(work: Path) -> Iterator[tuple[str, str, os.stat_result, int]]:
    """(relative dir, name, lstat, dir fd) for every entry; fd-based, so a swapped-in symlink is never followed."""
    for dirpath, dirnames, filenames, dirfd in os.fwalk(work, follow_symlinks=False):
        rel = os.path.relpath(dirpath, work)
        if rel != "." and rel.count(os.sep) + 1 >= MAX_SCAN_DEPTH:
            dirnames.clear()
        for name in [*dirnames, *filenames]:
            try:
                info = os.stat(name, dir_fd=dirfd, follow_symlinks=False)
            except OSError:
                continue
            yield rel, name, info, dirfd


def snapshot(work: Path) -> Snapshot:
    """Regular files under the workdir with (size, mtime); symlinks are never followed."""
    found: Snapshot = {}
    for rel, name, info, _ in _walk(work):
        if stat.S_ISREG(info.st_mode):
            found[str(Path(rel) / name)] = (info.st_size, info.st_mtime_ns)
            if len(found) >= MAX_SCAN_ENTRIES:
                break
    return found


def changed_files(before: Snapshot, after: Snapshot) -> list[str]:
    return sorted(path for path, sig in after.items() if before.get(path) != sig)


def remove_escaping_symlinks(work: Path) -> list[str]:
    """Delete symlinks in the workdir that point outside it, so nothing on the server follows them."""
    removed = []
    for rel, name, info, dirfd in _walk(work):
        if not stat.S_ISLNK(info.st_mode):
            continue
        try:
            target = os.readlink(name, dir_fd=dirfd)
        except OSError:
            continue
        resolved = os.path.normpath(work / rel / target)
        if not Path(resolved).is_relative_to(work):
            with contextlib.suppress(OSError):
                os.unlink(name, dir_fd=dirfd)
                removed.append(str(Path(rel) / name))
    return removed


def clear_dir(path: Path) -> None:
    """Empty a directory without following symlinks inside it."""
    if not path.is_dir():
        return
    for entry in path.iterdir():
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)
