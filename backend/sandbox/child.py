"""Sandbox child: a notebook-like kernel that runs code received over a length-prefixed JSON pipe.

Runs inside the isolation layers as `python -I -B child.py CONFIG_JSON`; it is never imported by the
server and depends only on the standard library (plus `child_vars` and the data libraries it imports).
Protocol: each frame is a 4-byte big-endian length followed by UTF-8 JSON; no pickle anywhere.
"""

from __future__ import annotations

import ast
import builtins
import contextlib
import faulthandler
import json
import os
import resource
import signal
import struct
import sys
import time
from typing import Any

# -I keeps the script dir off sys.path; -S skips `site` (faster), so the venv's packages are added by hand.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import child_vars

HEADER = struct.Struct(">I")
MAX_FRAME_BYTES = 64 * 1024 * 1024
OUTPUT_KILL_CHARS = 50_000_000
"""Writing more than this many characters in one run aborts it (the kept part is much smaller)."""
TAIL_FRACTION = 4
"""The last 1/TAIL_FRACTION of the kept budget holds the end of the output."""
CELL_FILENAME = "<cell>"
WARM_MODULES = ("numpy", "pandas", "pyarrow", "matplotlib", "matplotlib.pyplot")
_RUN_LIMIT = [0.0]  # seconds allowed for the current run, read by the alarm handler


class OutputLimitExceeded(BaseException):
    """Raised inside user code when it writes more than OUTPUT_KILL_CHARS (BaseException: hard to swallow)."""


class SandboxTimeout(BaseException):
    """Raised inside user code by the soft wall-clock alarm; the server's hard kill is the backstop."""


class CappedStream:
    """A text stream keeping the head and tail of what is written, counting the rest."""

    def __init__(self, keep: int) -> None:
        self.head_budget = keep - keep // TAIL_FRACTION
        self.tail_budget = keep // TAIL_FRACTION
        self.head: list[str] = []
        self.head_len = 0
        self.tail = ""
        self.total = 0

    def write(self, text: str) -> int:
        if not isinstance(text, str):
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        self.total += len(text)
        if self.total > OUTPUT_KILL_CHARS:
            raise OutputLimitExceeded(f"output exceeded {OUTPUT_KILL_CHARS} characters")
        room = self.head_budget - self.head_len
        if room > 0:
            self.head.append(text[:room])
            self.head_len += min(room, len(text))
            text = text[room:]
        if text and self.tail_budget:
            self.tail = (self.tail + text)[-self.tail_budget :]
        return self.total

    def flush(self) -> None:
        return None

    def isatty(self) -> bool:
        return False

    def snapshot(self) -> dict[str, Any]:
        return {"head": "".join(self.head), "tail": self.tail, "total": self.total}


def read_frame(stream: Any) -> dict[str, Any] | None:
    header = stream.read(HEADER.size)
    if len(header) < HEADER.size:
        return None
    (size,) = HEADER.unpack(header)
    if size > MAX_FRAME_BYTES:
        raise ValueError("frame too large")
    payload: dict[str, Any] = json.loads(stream.read(size).decode("utf-8"))
    return payload


def write_frame(fd: int, message: dict[str, Any]) -> None:
    data = json.dumps(message, default=str).encode("utf-8")
    view = memoryview(HEADER.pack(len(data)) + data)
    while view:
        view = view[os.write(fd, view) :]


def apply_limits(config: dict[str, Any]) -> None:
    """Resource limits first, then drop to the sandbox uid (when started as root)."""
    mb = 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (config["memory_mb"] * mb, config["memory_mb"] * mb))
    resource.setrlimit(resource.RLIMIT_FSIZE, (config["fsize_mb"] * mb, config["fsize_mb"] * mb))
    resource.setrlimit(resource.RLIMIT_NPROC, (config["nproc"], config["nproc"]))
    resource.setrlimit(resource.RLIMIT_NOFILE, (config["nofile"], config["nofile"]))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_CPU, (config["cpu_seconds"], config["cpu_seconds"] + 1))
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # oversized writes raise OSError instead of killing
    uid = config.get("uid")
    if uid is not None and os.geteuid() == 0:
        os.setgroups([])
        os.setgid(config["gid"])
        os.setuid(uid)
        if os.geteuid() == 0 or os.getuid() == 0:
            raise SystemExit("could not drop root")


class Kernel:
    """The persistent namespace plus the bookkeeping that finds new and changed variables."""

    def __init__(self, vars_dir: str) -> None:
        self.vars_dir = vars_dir
        self.ns: dict[str, Any] = {"__name__": "__main__", "__builtins__": builtins, "exit": sys.exit, "quit": sys.exit}
        self.ids: dict[str, int] = {}

    def restore(self, entries: list[dict[str, Any]]) -> dict[str, Any]:
        restored, failed = [], []
        for entry in entries:
            try:
                self.ns[entry["name"]] = child_vars.load(entry, self.vars_dir)
                restored.append(entry["name"])
            except Exception as exc:
                failed.append(f"{entry.get('name')}: {type(exc).__name__}: {exc}")
        self.ids = {k: id(v) for k, v in self.ns.items()}
        return {"ok": not failed, "restored": restored, "failed": failed}

    def run(self, request: dict[str, Any]) -> dict[str, Any]:
        out, err = CappedStream(request["max_output"]), CappedStream(request["max_output"])
        code: str = request["code"]
        mentioned = _mentioned_names(code)
        before = {n: child_vars.fingerprint(self.ns[n]) for n in mentioned if n in self.ns}
        reply: dict[str, Any] = {"ok": True, "error_type": None, "error_message": None, "error_line": None}
        started = time.perf_counter()
        sys.stdout, sys.stderr = out, err
        _RUN_LIMIT[0] = float(request["timeout"])
        _arm_cpu_limit(_RUN_LIMIT[0])
        signal.setitimer(signal.ITIMER_REAL, float(request["timeout"]))
        try:
            _execute(code, self.ns)
        except BaseException as exc:  # user code may raise anything, including SystemExit
            signal.setitimer(signal.ITIMER_REAL, 0)
            reply.update(_describe_error(exc, err))
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            sys.stdout, sys.stderr = sys.__stdout__, sys.__stderr__
        reply["duration_ms"] = (time.perf_counter() - started) * 1000
        reply["stdout"], reply["stderr"] = out.snapshot(), err.snapshot()
        changed = self._changed(mentioned, before)
        reply["variables"] = [child_vars.describe(n, self.ns[n]) for n in changed]
        reply["deleted"] = sorted(n for n in self.ids if n not in self.ns)
        reply["figures"] = child_vars.save_open_figures(request["figures_dir"]) if reply["ok"] else []
        reply["saved"] = child_vars.save_all(changed, self.ns, self.vars_dir) if reply["ok"] and request["save"] else []
        self.ids = {k: id(v) for k, v in self.ns.items()}
        return reply

    def _changed(self, mentioned: set[str], before: dict[str, Any]) -> list[str]:
        names = []
        for name, value in self.ns.items():
            if name.startswith("_") or not child_vars.is_data(value):
                continue
            rebound = self.ids.get(name) != id(value)
            if rebound or (name in mentioned and child_vars.fingerprint(value) != before.get(name)):
                names.append(name)
        return names


def _mentioned_names(code: str) -> set[str]:
    try:
        return {node.id for node in ast.walk(ast.parse(code)) if isinstance(node, ast.Name)}
    except SyntaxError:
        return set()


def _execute(code: str, ns: dict[str, Any]) -> None:
    """Run like a notebook cell: the value of a trailing expression is printed."""
    tree = ast.parse(code, CELL_FILENAME)
    last = tree.body[-1] if tree.body else None
    if isinstance(last, ast.Expr):
        tree.body.pop()
        exec(compile(tree, CELL_FILENAME, "exec"), ns)  # noqa: S102  (this *is* the sandbox)
        value = eval(compile(ast.Expression(last.value), CELL_FILENAME, "eval"), ns)  # noqa: S307
        if value is not None:
            print(repr(value))
    else:
        exec(compile(tree, CELL_FILENAME, "exec"), ns)  # noqa: S102


def _describe_error(exc: BaseException, err: CappedStream) -> dict[str, Any]:
    import traceback  # only on errors: it pulls in tokenize/linecache, slow for a cold start

    line = getattr(exc, "lineno", None) if isinstance(exc, SyntaxError) else None
    for frame in traceback.extract_tb(exc.__traceback__):
        if frame.filename == CELL_FILENAME:
            line = frame.lineno
    killed = None
    name, message = type(exc).__name__, str(exc)
    if isinstance(exc, SandboxTimeout):
        name, killed = "TimeoutError", "timeout"
    elif isinstance(exc, OutputLimitExceeded):
        killed = "output"
    elif isinstance(exc, MemoryError):
        killed = "memory"
        message = message or "memory limit exceeded"
    try:
        tb = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename != __file__]
        text = "Traceback (most recent call last):\n" + "".join(traceback.format_list(tb))
        err.write(text + "".join(traceback.format_exception_only(type(exc), exc)))
    except BaseException:  # noqa: S110  (the error itself is already captured)
        pass
    return {"ok": False, "error_type": name, "error_message": message, "error_line": line, "killed": killed}


def _arm_cpu_limit(seconds: float) -> None:
    """RLIMIT_CPU counts the worker's whole life, so each run gets `used + seconds` as its soft limit."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    _, hard = resource.getrlimit(resource.RLIMIT_CPU)
    soft = int(usage.ru_utime + usage.ru_stime + seconds) + 1
    resource.setrlimit(resource.RLIMIT_CPU, (min(soft, hard), hard))


def _on_alarm(signum: int, frame: Any) -> None:
    what = "CPU time" if signum == signal.SIGXCPU else "wall-clock"
    raise SandboxTimeout(f"exceeded {_RUN_LIMIT[0]:g} s ({what} limit)")


def _leave_protocol(proto_in: Any, proto_out: int) -> None:
    """In a forked child of user code: drop the protocol pipes so it cannot garble the kernel's replies."""
    for fd in (proto_in.fileno(), proto_out):
        with contextlib.suppress(OSError):
            os.close(fd)


def main() -> None:
    config = json.loads(sys.argv[1])
    sys.path.extend(p for p in config.get("site_packages", []) if p not in sys.path)
    proto_in = os.fdopen(os.dup(0), "rb", buffering=0)
    proto_out = os.dup(1)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.dup2(2, 1)  # stray fd-level writes go to the server's stderr drain, never into the protocol
    apply_limits(config)
    if config.get("warm"):
        for module in WARM_MODULES:
            __import__(module)
    signal.signal(signal.SIGALRM, _on_alarm)
    signal.signal(signal.SIGXCPU, _on_alarm)
    faulthandler.enable(file=2)
    kernel = Kernel(config["vars_dir"])
    kernel_pid = os.getpid()
    os.register_at_fork(after_in_child=lambda: _leave_protocol(proto_in, proto_out))
    write_frame(proto_out, {"ready": True, "pid": os.getpid(), "uid": os.getuid(), "warm": bool(config.get("warm"))})
    while (request := read_frame(proto_in)) is not None:
        op = request.get("op")
        if op == "run":
            reply = kernel.run(request)
            if os.getpid() != kernel_pid:  # a fork() in user code finished the cell: only the kernel answers
                os._exit(0)
        elif op == "restore":
            reply = kernel.restore(request["entries"])
        else:
            reply = {"ok": True, "pong": True}
        write_frame(proto_out, reply)


if __name__ == "__main__":
    main()
