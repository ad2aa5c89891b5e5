"""One sandboxed interpreter process: start it, exchange frames with a deadline, kill its whole group."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from pathlib import Path
from typing import Any, NoReturn

from backend.sandbox.isolation import Capabilities, build_launch
from backend.sandbox.protocol import ProtocolError, encode, read_frame

START_TIMEOUT_SECONDS = 60.0
"""A warm start imports pandas/matplotlib; on two busy cores this can take several seconds."""
STDERR_TAIL_CHARS = 4000
"""Last characters of the child's raw stderr kept for crash reports (faulthandler, bwrap errors)."""
READ_CHUNK = 65536


class WorkerError(RuntimeError):
    """The worker could not answer; it has been killed and must be replaced."""


class WorkerTimeout(WorkerError):
    """No answer before the deadline."""


class WorkerCrashed(WorkerError):
    """The child exited or broke the protocol."""

    def __init__(self, message: str, *, returncode: int | None, detail: str) -> None:
        super().__init__(message)
        self.returncode = returncode
        self.detail = detail


class Worker:
    """A started child plus its directories; `session_id` is set once it is bound to a session."""

    def __init__(self, *, proc: asyncio.subprocess.Process, work: Path, vars_dir: Path, warm: bool) -> None:
        self.proc = proc
        self.work = work
        self.vars_dir = vars_dir
        self.warm = warm
        self.session_id: str | None = None
        self.slot: Path | None = None
        self.last_used = time.monotonic()
        self.runs = 0
        self.work_path = ""
        self.vars_path = ""
        self._stderr = ""
        self._lock = asyncio.Lock()
        self._drain = asyncio.create_task(self._drain_stderr())

    @classmethod
    async def start(cls, *, caps: Capabilities, work: Path, vars_dir: Path, memory_mb: int, warm: bool) -> Worker:
        launch = build_launch(caps=caps, work=work, vars_dir=vars_dir, memory_mb=memory_mb, warm=warm)
        proc = await asyncio.create_subprocess_exec(
            *launch.argv,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=launch.env,
            cwd=launch.cwd,
            start_new_session=True,
        )
        worker = cls(proc=proc, work=work, vars_dir=vars_dir, warm=warm)
        worker.work_path, worker.vars_path = launch.work_path, launch.vars_path
        try:
            hello = await worker._receive(seconds=START_TIMEOUT_SECONDS)
        except BaseException:  # includes cancellation during shutdown: never leave an orphan child
            worker.kill()
            with contextlib.suppress(BaseException):
                await worker.close()  # reap it and let its pipes close while the loop still runs
            raise
        if not hello.get("ready"):
            await worker.close()
            raise WorkerCrashed("child did not report ready", returncode=proc.returncode, detail=str(hello)[:500])
        return worker

    @property
    def alive(self) -> bool:
        return self.proc.returncode is None

    def stderr_tail(self) -> str:
        return self._stderr

    async def request(self, message: dict[str, Any], *, seconds: float) -> dict[str, Any]:
        """Send one frame and wait up to `seconds` for the answer; on expiry the worker is killed."""
        async with self._lock:
            self.last_used = time.monotonic()
            assert self.proc.stdin is not None
            try:
                self.proc.stdin.write(encode(message))
                await self.proc.stdin.drain()
            except (BrokenPipeError, ConnectionResetError) as exc:
                await self._crashed(f"pipe closed: {exc}")
            reply = await self._receive(seconds=seconds)
            self.last_used = time.monotonic()
            return reply

    async def _receive(self, *, seconds: float) -> dict[str, Any]:
        assert self.proc.stdout is not None
        try:
            return await asyncio.wait_for(read_frame(self.proc.stdout), seconds)
        except TimeoutError:
            await self.close()
            raise WorkerTimeout(f"no reply within {seconds:g} s") from None
        except (asyncio.IncompleteReadError, ProtocolError) as exc:
            await self._crashed(str(exc) or type(exc).__name__)

    async def _crashed(self, why: str) -> NoReturn:
        self.kill()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.proc.wait(), 5.0)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(self._drain), 1.0)
        raise WorkerCrashed(f"worker died: {why}", returncode=self.proc.returncode, detail=self._stderr)

    async def _drain_stderr(self) -> None:
        """Keep only the tail: a child printing gigabytes at fd level cannot grow server memory."""
        assert self.proc.stderr is not None
        while chunk := await self.proc.stderr.read(READ_CHUNK):
            self._stderr = (self._stderr + chunk.decode("utf-8", "replace"))[-STDERR_TAIL_CHARS:]

    def kill(self) -> None:
        """SIGKILL the process group; bwrap's --die-with-parent and the pid namespace take the rest."""
        # Only killpg: Process.kill() polls the Popen first, which can reap the child behind asyncio's
        # watcher and lose its exit status.
        if self.proc.returncode is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                with contextlib.suppress(ProcessLookupError):
                    self.proc.kill()
        if self.proc.stdin is not None and not self.proc.stdin.is_closing():
            self.proc.stdin.close()  # releases the pipe transport now, not at garbage collection

    async def close(self) -> None:
        self.kill()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.proc.wait(), 5.0)
        self._drain.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self._drain
