"""Turn a child's JSON reply (untrusted: user code can forge it) or a worker failure into a SandboxResult."""

from __future__ import annotations

import re
import signal
from typing import Any

from pydantic import ValidationError

from backend.sandbox.result import SandboxResult, VariableInfo, clip_output, clip_text
from backend.sandbox.worker import WorkerCrashed

CRASH_LINE = re.compile(r'File "<cell>", line (\d+)')
CRASH_DETAIL_CHARS = 2000
"""Tail of the child's raw stderr (faulthandler output) shown with a crash."""
KILL_REASONS = ("timeout", "memory", "output", "crash")


def _stream(value: Any, limit: int) -> tuple[str, bool]:
    if isinstance(value, dict):
        head, tail = str(value.get("head", ""))[:limit], str(value.get("tail", ""))[:limit]
        return clip_output(head=head, tail=tail, total=int(value["total"]))
    return clip_text(str(value or ""), limit=limit)


def result_from_reply(reply: dict[str, Any], *, files: list[str], elapsed_ms: float, limit: int) -> SandboxResult:
    """Build the result; a malformed reply becomes a typed crash instead of an exception in the server."""
    try:
        stdout, cut_out = _stream(reply.get("stdout"), limit)
        stderr, cut_err = _stream(reply.get("stderr"), limit)
        killed = reply.get("killed")
        figures = reply.get("figures") or []
        return SandboxResult(
            ok=bool(reply.get("ok")),
            stdout=stdout,
            stderr=stderr,
            truncated=cut_out or cut_err,
            error_type=reply.get("error_type"),
            error_message=reply.get("error_message"),
            error_line=reply.get("error_line"),
            duration_ms=float(reply.get("duration_ms") or elapsed_ms),
            files_created=files,
            figures=[f for f in figures if f in files],
            variables=[VariableInfo.model_validate(v) for v in reply.get("variables") or []],
            killed_reason=killed if killed in KILL_REASONS else None,
        )
    except (ValidationError, ValueError, TypeError, KeyError) as exc:
        return SandboxResult(
            ok=False,
            error_type="ProtocolError",
            error_message=f"the sandbox sent a malformed reply ({type(exc).__name__})",
            duration_ms=elapsed_ms,
            files_created=files,
            killed_reason="crash",
        )


def crash_reply(exc: WorkerCrashed) -> dict[str, Any]:
    """Name what ended the child: SIGXCPU (CPU limit), SIGKILL, a crash signal, or an exit code."""
    code = exc.returncode
    signum = -code if code is not None and code < 0 else code - 128 if code is not None and code > 128 else None
    line = CRASH_LINE.findall(exc.detail)
    reply: dict[str, Any] = {"ok": False, "killed": "crash", "error_line": int(line[-1]) if line else None}
    if signum == signal.SIGXCPU:
        reply.update(error_type="TimeoutError", error_message="CPU time limit exceeded", killed="timeout")
    elif signum == signal.SIGKILL:
        reply.update(error_type="WorkerCrashed", error_message="the interpreter was killed (SIGKILL: out of memory?)")
    else:
        known = {s.value: s.name for s in signal.Signals}
        name = known.get(signum, f"exit {code}") if signum is not None else f"exit {code}"
        reply.update(error_type="WorkerCrashed", error_message=f"the interpreter crashed ({name})")
    reply["stderr"] = exc.detail[-CRASH_DETAIL_CHARS:]
    return reply
