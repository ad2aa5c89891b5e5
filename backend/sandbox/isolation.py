"""OS isolation for sandbox children: probe which layers this machine offers and build the launch command."""

from __future__ import annotations

import json
import logging
import os
import shutil
import site
import stat
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Literal

Mode = Literal["bwrap", "unshare", "none"]
logger = logging.getLogger(__name__)

SANDBOX_UID = 65534
"""Unprivileged uid the child drops to when the server runs as root (`nobody`)."""
SANDBOX_GID = 65534
TMPFS_BYTES = 256 * 1024 * 1024
"""Size of the fresh /tmp inside bwrap."""
FILE_SIZE_MB = 512
"""RLIMIT_FSIZE: largest file the code may write."""
MAX_PROCESSES = 64
"""RLIMIT_NPROC: processes/threads per sandbox (fork bombs stop here)."""
MAX_OPEN_FILES = 256
"""RLIMIT_NOFILE."""
WORKER_CPU_SECONDS = 3600
"""Hard RLIMIT_CPU over a worker's whole life; each run gets its own soft limit on top of what was used."""
PROBE_TIMEOUT_SECONDS = 10.0
CHILD_DIR = Path(__file__).resolve().parent
SANDBOX_ROOT = "/sandbox"
"""Everything session-specific is mounted under this path inside bwrap (must not contain the venv)."""
CHILD_MOUNT = f"{SANDBOX_ROOT}/runner"
WORK_MOUNT = f"{SANDBOX_ROOT}/work"
VARS_MOUNT = f"{SANDBOX_ROOT}/vars"
CHILD_ENV = {
    "PATH": "/usr/local/bin:/usr/bin:/bin",
    "HOME": "/tmp",  # noqa: S108  (the sandbox's own private tmpfs)
    "TMPDIR": "/tmp",  # noqa: S108
    "LANG": "C.UTF-8",
    "OPENBLAS_NUM_THREADS": "1",
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "NUMEXPR_NUM_THREADS": "1",
    "MPLBACKEND": "Agg",
    "MPLCONFIGDIR": "/tmp/matplotlib",  # noqa: S108
}
"""The whole environment of the child: nothing from the server (no APP_*, no keys)."""


@dataclass(frozen=True)
class Launch:
    """What one child is started with: the argv, its environment and working directory."""

    argv: list[str]
    env: dict[str, str]
    cwd: str
    work_path: str
    vars_path: str


@dataclass
class Capabilities:
    """Result of probing the machine once: the chosen mode and the layers it gives."""

    mode: Mode
    drop_uid: bool
    layers: dict[str, bool] = field(default_factory=dict)


def _python_roots() -> list[str]:
    """Directories the interpreter and the venv live in, which the sandbox mounts read-only."""
    roots = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix}
    roots.add(str(Path(sys.executable).resolve().parent.parent))
    kept = sorted(r for r in roots if r and not r.startswith("/usr/"))
    return [r for r in kept if not any(r != o and r.startswith(o + "/") for o in kept)]


def _world_accessible(path: str) -> bool:
    """Whether an unprivileged uid can reach `path` (every ancestor searchable by others)."""
    current = Path(path).resolve()
    return all(part.stat().st_mode & stat.S_IXOTH for part in [current, *current.parents])


def _is_root() -> bool:
    return os.geteuid() == 0


def child_config(*, memory_mb: int, warm: bool, vars_path: str, drop_uid: bool) -> str:
    config = {
        "memory_mb": memory_mb,
        "fsize_mb": FILE_SIZE_MB,
        "nproc": MAX_PROCESSES,
        "nofile": MAX_OPEN_FILES,
        "cpu_seconds": WORKER_CPU_SECONDS,
        "warm": warm,
        "vars_dir": vars_path,
        "uid": SANDBOX_UID if drop_uid else None,
        "site_packages": site.getsitepackages(),  # the child runs with -S (no `site`: faster start)
        "gid": SANDBOX_GID,
    }
    return json.dumps(config)


def _system_dirs() -> list[str]:
    args: list[str] = ["--ro-bind", "/usr", "/usr"]
    for name in ("/bin", "/sbin", "/lib", "/lib64", "/lib32"):
        path = Path(name)
        if path.is_symlink():
            args += ["--symlink", str(path.readlink()), name]
        elif path.is_dir():
            args += ["--ro-bind", name, name]
    return args


def _searchable_parents(path: str) -> list[str]:
    """Create mount-point parents as 0755: bwrap otherwise makes them with the server's umask."""
    args: list[str] = []
    for parent in reversed(Path(path).parents[:-1]):
        args += ["--perms", "0755", "--dir", str(parent)]
    return args


def bwrap_argv(*, work: Path, vars_dir: Path, as_root: bool) -> list[str]:
    """bubblewrap: new mount/pid/net/ipc/uts namespaces, read-only system, only /work and /vars writable."""
    argv = ["bwrap", "--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts", "--unshare-cgroup-try"]
    if as_root:  # no user namespace: the child drops to SANDBOX_UID itself, so RLIMIT_NPROC applies
        argv += ["--cap-drop", "ALL", "--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]
    else:
        argv += ["--unshare-user", "--cap-drop", "ALL"]
    argv += ["--die-with-parent", "--new-session", "--hostname", "sandbox", "--clearenv"]
    argv += _system_dirs()
    # The fresh /tmp comes before the interpreter's mounts: bwrap applies them in order, and a venv that lives
    # under /tmp (a checkout in /tmp) would otherwise be hidden by the tmpfs, failing the probe.
    argv += ["--perms", "01777", "--size", str(TMPFS_BYTES), "--tmpfs", "/tmp"]  # noqa: S108  (fresh, private)
    for root in _python_roots():
        if root == SANDBOX_ROOT or root.startswith(SANDBOX_ROOT + "/"):
            raise RuntimeError(f"the interpreter at {root} would be hidden by the sandbox mounts")
        argv += [*_searchable_parents(root), "--ro-bind", root, root]
    argv += [*_searchable_parents(CHILD_MOUNT), "--ro-bind", str(CHILD_DIR), CHILD_MOUNT]
    argv += ["--proc", "/proc", "--dev", "/dev"]
    argv += ["--bind", str(work), WORK_MOUNT, "--bind", str(vars_dir), VARS_MOUNT, "--chdir", WORK_MOUNT]
    for key, value in CHILD_ENV.items():
        argv += ["--setenv", key, value]
    return argv


def unshare_argv(*, as_root: bool) -> list[str]:
    """util-linux unshare: network/pid/ipc isolation only; the filesystem stays the host's."""
    if as_root:
        return ["unshare", "--net", "--pid", "--ipc", "--uts", "--fork", "--kill-child", "--mount-proc"]
    return ["unshare", "--user", "--map-root-user", "--net", "--pid", "--ipc", "--fork", "--kill-child", "--mount-proc"]


def build_launch(*, caps: Capabilities, work: Path, vars_dir: Path, memory_mb: int, warm: bool) -> Launch:
    python = sys.executable
    if caps.mode == "bwrap":
        prefix = bwrap_argv(work=work, vars_dir=vars_dir, as_root=_is_root())
        child, work_path, vars_path, cwd = f"{CHILD_MOUNT}/child.py", WORK_MOUNT, VARS_MOUNT, "/"
    else:
        prefix = unshare_argv(as_root=_is_root()) if caps.mode == "unshare" else []
        child, work_path, vars_path, cwd = str(CHILD_DIR / "child.py"), str(work), str(vars_dir), str(work)
    config = child_config(memory_mb=memory_mb, warm=warm, vars_path=vars_path, drop_uid=caps.drop_uid)
    argv = [*prefix, python, "-I", "-S", "-B", child, config]
    return Launch(argv=argv, env=dict(CHILD_ENV), cwd=cwd, work_path=work_path, vars_path=vars_path)


def _probe(argv: list[str]) -> bool:
    try:
        done = subprocess.run(
            argv, capture_output=True, timeout=PROBE_TIMEOUT_SECONDS, env=dict(CHILD_ENV), check=False
        )
    except (OSError, subprocess.SubprocessError):
        return False
    return done.returncode == 0


@lru_cache(maxsize=4)
def probe(preferred: Mode | None = None) -> Capabilities:
    """Find the strongest mode that works here (cached: the answer does not change while running)."""
    root = _is_root()
    tmp = Path(tempfile.gettempdir())
    bwrap_ok = bool(shutil.which("bwrap")) and _probe(
        [*bwrap_argv(work=tmp, vars_dir=tmp, as_root=root), sys.executable, "-I", "-c", "pass"]
    )
    unshare_ok = bool(shutil.which("unshare")) and _probe([*unshare_argv(as_root=root), "true"])
    if preferred is not None:
        mode: Mode = preferred
    else:
        mode = "bwrap" if bwrap_ok else "unshare" if unshare_ok else "none"
    if (mode == "bwrap" and not bwrap_ok) or (mode == "unshare" and not unshare_ok):
        raise RuntimeError(f"sandbox isolation mode {mode!r} is not available on this machine")
    # Outside bwrap the child sees host paths, so it can drop root only if the interpreter is reachable.
    drop = root and (mode == "bwrap" or all(_world_accessible(r) for r in _python_roots()))
    namespaced = mode != "none"
    layers = {
        "bwrap": mode == "bwrap",
        "unshare": mode == "unshare",
        "network_namespace": namespaced,
        "pid_namespace": namespaced,
        "readonly_filesystem": mode == "bwrap",
        "private_tmp": mode == "bwrap",
        "unprivileged_uid": drop or not root,
        "rlimits": True,
        "cleared_env": True,
        "process_group_kill": True,
        "static_check": True,
        "seccomp": False,
        "cgroups": False,
    }
    if mode != "bwrap":
        logger.warning("sandbox runs without bubblewrap (mode %s): the host filesystem is visible to code", mode)
    if root and not drop:
        logger.warning("sandboxed code runs as root: the interpreter is not reachable by uid %d", SANDBOX_UID)
    return Capabilities(mode=mode, drop_uid=drop, layers=layers)
