"""SandboxManager: runs untrusted Python per session in isolated, warm, notebook-like worker processes."""

from __future__ import annotations

import asyncio
import logging
import secrets
import shutil
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from backend.core.metrics import instrument_sandbox_run
from backend.core.settings import Settings
from backend.sandbox import policy
from backend.sandbox.isolation import Capabilities, Mode, probe
from backend.sandbox.replies import crash_reply, result_from_reply
from backend.sandbox.result import SandboxResult
from backend.sandbox.worker import Worker, WorkerCrashed, WorkerError, WorkerTimeout
from backend.sandbox.workspace import (
    Snapshot,
    adopt_slot,
    changed_files,
    check_session_id,
    make_dir,
    new_slot,
    remove_escaping_symlinks,
    snapshot,
    stage_uploads,
    sweep_stale_slots,
)
from backend.storage.variables import VariableStore

logger = logging.getLogger(__name__)

HARD_KILL_GRACE_SECONDS = 2.0
"""After the soft in-child alarm, how long before the process group is SIGKILLed."""
MAX_TIMEOUT_SECONDS = 3600.0
"""Upper bound for a caller-supplied per-run timeout."""
RESTORE_TIMEOUT_SECONDS = 120.0
"""Time allowed to reload a session's saved variables into a fresh worker."""
REAPER_MAX_INTERVAL_SECONDS = 30.0
MAX_SESSION_WORKERS = 8
"""Live session interpreters; beyond this the least recently used idle one is recycled (its variables are stored)."""


class SandboxManager:
    """Owns the worker pool and the session → worker binding; `run` never blocks the event loop."""

    def __init__(self, *, settings: Settings, isolation: Mode | None = None) -> None:
        self.settings = settings
        self._isolation = isolation
        self._caps: Capabilities | None = None
        self._idle: list[Worker] = []
        self._bound: dict[str, Worker] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._starting = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._reaper: asyncio.Task[None] | None = None
        self._closed = False

    # --- public interface ---------------------------------------------------------------
    def layers(self) -> dict[str, bool]:
        """Which isolation layers are active on this machine (probed once)."""
        return dict(self._capabilities().layers)

    def workdir(self, session_id: str) -> Path:
        check_session_id(session_id)
        return make_dir(self.settings.sessions_dir / session_id / "work", sandbox_owned=True)

    def variables(self, session_id: str) -> VariableStore:
        check_session_id(session_id)
        return VariableStore(root=self.settings.sessions_dir / session_id / "vars")

    async def prewarm(self) -> None:
        """Fill the warm pool now and wait for it (the server calls this at start-up)."""
        await asyncio.to_thread(self._capabilities)
        self._ensure_reaper()
        self._refill()
        await asyncio.gather(*list(self._tasks), return_exceptions=True)

    @instrument_sandbox_run
    async def run(
        self,
        *,
        session_id: str,
        code: str,
        files: Mapping[str, Path] | None = None,
        timeout: float | None = None,  # noqa: ASYNC109  (a limit for the child, not for this coroutine)
        enforce_policy: bool = True,
    ) -> SandboxResult:
        """Run `code` in the session's interpreter. `enforce_policy=False` exists for the escape suite only."""
        check_session_id(session_id)
        if not isinstance(code, str):
            raise TypeError("code must be a string")
        if self._closed:
            raise RuntimeError("sandbox manager is shut down")
        limit = self._limit(timeout)
        if enforce_policy and (violations := policy.check(code)):
            return SandboxResult(
                ok=False,
                error_type="PolicyViolation",
                error_message=policy.explain(violations),
                error_line=violations[0].line,
                killed_reason="blocked",
            )
        async with self._lock(session_id):
            started = time.perf_counter()
            try:
                worker = await self._worker_for(session_id)
            except WorkerError as exc:
                return SandboxResult(ok=False, error_type="SandboxUnavailable", error_message=str(exc)[:500])
            if files:
                await asyncio.to_thread(stage_uploads, work=worker.work, files=files)
            before = await asyncio.to_thread(snapshot, worker.work)
            request = {
                "op": "run",
                "code": code,
                "timeout": limit,
                "max_output": self.settings.code_max_output_chars,
                "save": True,
                "figures_dir": worker.work_path,
            }
            try:
                reply = await worker.request(request, seconds=limit + HARD_KILL_GRACE_SECONDS)
            except WorkerTimeout:
                reply = {"ok": False, "error_type": "TimeoutError", "error_message": f"exceeded {limit:g} s"}
                reply["killed"] = "timeout"
            except WorkerCrashed as exc:
                reply = crash_reply(exc)
            worker.runs += 1
            result = await asyncio.to_thread(self._finish, session_id, worker, reply, before, started)
            if result.killed_reason in ("timeout", "memory", "crash") or not worker.alive:
                await self._discard(session_id)
            return result

    async def reset(self, session_id: str) -> None:
        """Forget the live interpreter and the saved variables; files in the workdir stay."""
        check_session_id(session_id)
        async with self._lock(session_id):
            await self._discard(session_id)
            await asyncio.to_thread(self.variables(session_id).clear)

    async def shutdown(self) -> None:
        self._closed = True
        if self._reaper is not None:
            self._reaper.cancel()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        workers = [*self._idle, *self._bound.values()]
        self._idle, self._bound = [], {}
        await asyncio.gather(*(w.close() for w in workers), return_exceptions=True)
        for worker in workers:
            if worker.slot is not None:
                await asyncio.to_thread(shutil.rmtree, worker.slot, True)

    # --- workers ------------------------------------------------------------------------
    def _capabilities(self) -> Capabilities:
        if self._caps is None:
            self._caps = probe(self._isolation)
        return self._caps

    def _limit(self, timeout: float | None) -> float:
        limit = self.settings.code_timeout_seconds if timeout is None else float(timeout)
        if not 0 < limit <= MAX_TIMEOUT_SECONDS:
            raise ValueError(f"timeout must be in (0, {MAX_TIMEOUT_SECONDS:g}] seconds, got {timeout!r}")
        return limit

    def _lock(self, session_id: str) -> asyncio.Lock:
        return self._locks.setdefault(session_id, asyncio.Lock())

    async def _start(self, *, work: Path, vars_dir: Path, warm: bool) -> Worker:
        caps = await asyncio.to_thread(self._capabilities)
        memory = self.settings.code_memory_mb
        return await Worker.start(caps=caps, work=work, vars_dir=vars_dir, memory_mb=memory, warm=warm)

    async def _worker_for(self, session_id: str) -> Worker:
        worker = self._bound.get(session_id)
        if worker is not None and worker.alive:
            return worker
        await self._discard(session_id)
        self._ensure_reaper()
        await self._evict_if_full()
        session_dir = self.settings.sessions_dir / session_id
        worker = await self._take_spare(session_dir)
        if worker is None:
            work = await asyncio.to_thread(make_dir, session_dir / "work", sandbox_owned=True)
            vars_dir = await asyncio.to_thread(make_dir, session_dir / "vars", sandbox_owned=True)
            worker = await self._start(work=work, vars_dir=vars_dir, warm=False)
        worker.session_id = session_id
        self._bound[session_id] = worker
        self._refill()
        entries = [
            m.model_dump(include={"name", "kind", "file"})
            for m in await asyncio.to_thread(self.variables(session_id).catalog)
            if m.kind != "figure"
        ]
        if entries:
            reply = await worker.request({"op": "restore", "entries": entries}, seconds=RESTORE_TIMEOUT_SECONDS)
            if reply.get("failed"):
                logger.warning("session %s: variables not restored: %s", session_id, reply["failed"])
        return worker

    async def _evict_if_full(self) -> None:
        while len(self._bound) >= MAX_SESSION_WORKERS:
            idle = [(w.last_used, sid) for sid, w in self._bound.items() if not self._lock(sid).locked()]
            if not idle:
                return
            await self._discard(min(idle)[1])

    async def _take_spare(self, session_dir: Path) -> Worker | None:
        while self._idle:
            worker = self._idle.pop()
            if not worker.alive or worker.slot is None:
                await worker.close()
                continue
            await asyncio.to_thread(adopt_slot, slot=worker.slot, session_dir=session_dir)
            worker.work, worker.vars_dir, worker.slot = session_dir / "work", session_dir / "vars", None
            return worker
        return None

    def _refill(self) -> None:
        missing = self.settings.sandbox_pool_size - len(self._idle) - self._starting
        for _ in range(max(0, missing)):
            self._starting += 1
            self._spawn(self._start_spare())

    async def _start_spare(self) -> None:
        slot = new_slot(self.settings.sessions_dir, secrets.token_hex(8))
        try:
            work = await asyncio.to_thread(make_dir, slot / "work", sandbox_owned=True)
            vars_dir = await asyncio.to_thread(make_dir, slot / "vars", sandbox_owned=True)
            worker = await self._start(work=work, vars_dir=vars_dir, warm=True)
            worker.slot = slot
            if self._closed:
                await worker.close()
                await asyncio.to_thread(shutil.rmtree, slot, True)
            else:
                self._idle.append(worker)
        except asyncio.CancelledError:
            shutil.rmtree(slot, ignore_errors=True)  # an empty slot: quick enough for the loop thread
            raise
        except Exception:
            logger.exception("could not start a warm sandbox worker")
            await asyncio.to_thread(shutil.rmtree, slot, True)
        finally:
            self._starting -= 1

    async def _discard(self, session_id: str) -> None:
        worker = self._bound.pop(session_id, None)
        if worker is not None:
            await worker.close()

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _ensure_reaper(self) -> None:
        if self._reaper is None or self._reaper.done():
            self._reaper = asyncio.create_task(self._reap())

    async def _reap(self) -> None:
        """Sweep slots of dead servers once, then recycle idle session workers until shutdown."""
        swept = await asyncio.to_thread(sweep_stale_slots, self.settings.sessions_dir)
        if swept:
            logger.info("removed %d stale sandbox pool slots", len(swept))
        await self._recycle_idle()

    async def _recycle_idle(self) -> None:
        """Recycle session workers idle longer than `sandbox_idle_seconds` (their variables are in the store)."""
        idle_limit = self.settings.sandbox_idle_seconds
        while not self._closed:
            await asyncio.sleep(min(max(idle_limit / 4, 0.05), REAPER_MAX_INTERVAL_SECONDS))
            now = time.monotonic()
            for session_id, worker in list(self._bound.items()):
                if now - worker.last_used > idle_limit and not self._lock(session_id).locked():
                    async with self._lock(session_id):
                        if self._bound.get(session_id) is worker:
                            await self._discard(session_id)

    # --- results ------------------------------------------------------------------------
    def _finish(
        self, session_id: str, worker: Worker, reply: dict[str, Any], before: Snapshot, started: float
    ) -> SandboxResult:
        """Diff the workdir, persist the variable catalog and build the result (runs in a thread)."""
        remove_escaping_symlinks(worker.work)
        files = changed_files(before, snapshot(worker.work))
        saved, deleted = reply.get("saved"), reply.get("deleted")
        warnings: list[str] = []
        if isinstance(saved, list) and isinstance(deleted, list) and (reply.get("ok") or saved or deleted):
            saved = [item for item in saved if isinstance(item, dict)]
            warnings += [_unsaved(item) for item in saved if "error" in item]
            try:
                self.variables(session_id).update(saved=saved, deleted=[d for d in deleted if isinstance(d, str)])
            except OSError as exc:  # disk full: the run itself succeeded; the previous catalog stays intact
                logger.warning("session %s: variable catalog not updated: %s", session_id, exc)
                warnings.append(f"the variables of this run were not saved ({type(exc).__name__}: {exc}); "
                                "earlier ones are kept")
        elapsed = (time.perf_counter() - started) * 1000
        result = result_from_reply(reply, files=files, elapsed_ms=elapsed, limit=self.settings.code_max_output_chars)
        if warnings:
            shown = "\n".join(f"Warning: {w}" for w in warnings)
            result = result.model_copy(update={"warnings": warnings,
                                               "stderr": f"{result.stderr}\n{shown}".lstrip("\n")})
        return result


def _unsaved(item: dict[str, Any]) -> str:
    """A save failure reported by the child (untrusted text: clipped)."""
    name, error = str(item.get("name", "?"))[:100], str(item.get("error", ""))[:300]
    return f"variable `{name}` was not saved ({error}); it is lost when this session's interpreter restarts"
