"""Where `@llm_func` snippets run: a small `SnippetRunner` protocol and its default on the project's sandbox.

The default runner owns a private `SandboxManager` on its own event-loop thread, so sync and async callers
on any loop share one warm sandbox; every snippet gets a fresh short-lived session that is reset afterwards.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import json
import keyword
import secrets
import shutil
import threading
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from pydantic_core import PydanticSerializationError, to_jsonable_python

from backend.llm.contracts.reply import OUTPUT_NAME

if TYPE_CHECKING:
    from backend.core.settings import Settings
    from backend.sandbox.manager import SandboxManager
    from backend.sandbox.result import SandboxResult

SNIPPET_TIMEOUT_SECONDS = 10.0
"""Wall-clock cap for one snippet (they only build a small value); the settings' code timeout caps it too."""
SNIPPET_POOL_SIZE = 0
"""Spare interpreters of the runner's private manager. 0: a fresh plain interpreter per snippet (~0.1 s here);
a warm spare answers in ~0.04 s but each refill re-imports pandas/matplotlib (~1 s of CPU) while the model runs."""
MAX_INPUTS_JSON_CHARS = 200_000
"""Inputs bigger than this (as JSON) are not defined as variables in the snippet (the prompt still shows them)."""
SESSION_PREFIX = "llm-func-"
SHUTDOWN_WAIT_SECONDS = 5.0
PRELUDE_LINES = 1

_EMIT = """

def _llm_default(_o):
    if hasattr(_o, "tolist"):
        return _o.tolist()
    if isinstance(_o, (set, frozenset)):
        return sorted(_o, key=repr)
    raise TypeError(f"{{type(_o).__name__}} is not JSON data (use str, int, float, bool, None, list or dict)")
print({marker!r} + _llm_json.dumps({name}, default=_llm_default))
"""


@dataclass(frozen=True)
class SnippetOutcome:
    """The JSON text of `llm_output`, or an error message the model can act on."""

    value_json: str | None = None
    error: str | None = None
    stdout: str = ""


@runtime_checkable
class SnippetRunner(Protocol):
    """Runs one untrusted snippet that assigns `llm_output` and returns that value as JSON."""

    async def run_snippet(
        self, code: str, *, limit_seconds: float, inputs: Mapping[str, Any] | None = None
    ) -> SnippetOutcome:
        """`inputs` (the call's arguments) should be defined as variables before the snippet runs."""
        ...


def input_prelude(inputs: Mapping[str, Any]) -> str:
    """One line defining the call's JSON-able arguments as variables (models arrive as dicts)."""
    names, values = [], []
    for name, value in inputs.items():
        if not name.isidentifier() or name.startswith("_") or keyword.iskeyword(name):
            continue
        try:
            values.append(to_jsonable_python(value))
        except (PydanticSerializationError, TypeError, ValueError):  # not JSON data: the snippet does not get it
            continue
        names.append(name)
    text = json.dumps(values)
    if not names or len(text) > MAX_INPUTS_JSON_CHARS:
        return "import json as _llm_json"
    return f"import json as _llm_json; {', '.join(names)}, = _llm_json.loads({text!r})"


def wrap_snippet(code: str, marker: str, inputs: Mapping[str, Any] | None = None) -> str:
    """Prelude line (inputs), the snippet, then a print of `marker + json.dumps(llm_output)`.

    The prelude is always exactly `PRELUDE_LINES` long, so error lines map back to the snippet's own.
    """
    prelude = input_prelude(inputs or {})
    return f"{prelude}\n{code.rstrip()}\n" + _EMIT.format(marker=marker, name=OUTPUT_NAME)


def outcome_from_result(result: SandboxResult, marker: str, *, snippet_lines: int) -> SnippetOutcome:
    """Read the marked value from a sandbox run, or turn its failure into feedback.

    Errors raised by the appended emit code (e.g. a value json cannot encode) carry no line number:
    the model never saw those lines.
    """
    kept = [line for line in result.stdout.splitlines() if not line.startswith(marker)]
    stdout = "\n".join(kept)
    if not result.ok:
        name, message = result.error_type or "Error", result.error_message or ""
        if name == "NameError" and OUTPUT_NAME in message:
            return SnippetOutcome(error=f"the snippet never assigned `{OUTPUT_NAME}`", stdout=stdout)
        line = (result.error_line or 0) - PRELUDE_LINES
        where = f" (line {line})" if 0 < line <= snippet_lines else ""
        reason = f", killed: {result.killed_reason}" if result.killed_reason else ""
        return SnippetOutcome(error=f"the snippet raised {name}: {message}{where}{reason}", stdout=stdout)
    values = [line[len(marker) :] for line in result.stdout.splitlines() if line.startswith(marker)]
    if not values:
        return SnippetOutcome(error=f"`{OUTPUT_NAME}` was too large to return; keep it small", stdout=stdout)
    return SnippetOutcome(value_json=values[-1], stdout=stdout)


@dataclass
class ScriptedSnippetRunner:
    """Test double: returns scripted outcomes in order and records every snippet it was given."""

    outcomes: list[SnippetOutcome] = field(default_factory=list)
    codes: list[str] = field(default_factory=list)
    inputs: list[dict[str, Any]] = field(default_factory=list)

    async def run_snippet(
        self, code: str, *, limit_seconds: float, inputs: Mapping[str, Any] | None = None
    ) -> SnippetOutcome:
        self.codes.append(code)
        self.inputs.append(dict(inputs or {}))
        if not self.outcomes:
            raise AssertionError(f"ScriptedSnippetRunner has no outcome for snippet #{len(self.codes)}")
        return self.outcomes.pop(0)


class SandboxSnippetRunner:
    """Runs snippets in the project's sandbox, one fresh session per snippet.

    With `manager=` it uses that manager on the caller's event loop (the caller owns it). Without, it starts
    a private manager on a daemon event-loop thread the first time it is needed and stops it at exit.
    """

    def __init__(self, *, settings: Settings | None = None, manager: SandboxManager | None = None) -> None:
        self._settings = settings
        self._manager = manager
        self._owns_manager = manager is None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock = threading.Lock()

    async def run_snippet(
        self, code: str, *, limit_seconds: float, inputs: Mapping[str, Any] | None = None
    ) -> SnippetOutcome:
        wrapped = wrap_snippet(code, marker := f"@@{OUTPUT_NAME}:{secrets.token_hex(8)}@@", inputs)
        lines = code.count("\n") + 1
        if not self._owns_manager:
            return await self._run(wrapped, marker, lines, limit_seconds=limit_seconds)
        loop = self._ensure_loop()
        future = asyncio.run_coroutine_threadsafe(self._run(wrapped, marker, lines, limit_seconds=limit_seconds), loop)
        return await asyncio.wrap_future(future)

    async def _run(self, wrapped: str, marker: str, lines: int, *, limit_seconds: float) -> SnippetOutcome:
        manager = self._get_manager()
        session_id = SESSION_PREFIX + secrets.token_hex(8)
        try:
            result = await manager.run(session_id=session_id, code=wrapped, timeout=limit_seconds)
        finally:
            with contextlib.suppress(Exception):  # a failed cleanup must not hide the answer
                await manager.reset(session_id)
            await asyncio.to_thread(shutil.rmtree, manager.settings.sessions_dir / session_id, True)
        return outcome_from_result(result, marker, snippet_lines=lines)

    def _get_manager(self) -> SandboxManager:
        if self._manager is None:
            from backend.sandbox.manager import SandboxManager

            settings = self._settings
            if settings is None:
                from backend.core.settings import get_settings

                settings = get_settings()
            pool = min(SNIPPET_POOL_SIZE, settings.sandbox_pool_size)
            self._manager = SandboxManager(settings=settings.model_copy(update={"sandbox_pool_size": pool}))
        return self._manager

    def _ensure_loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                thread = threading.Thread(target=loop.run_forever, name="llm-func-sandbox", daemon=True)
                thread.start()
                self._loop = loop
                atexit.register(self.close)
            return self._loop

    def close(self) -> None:
        """Stop the private manager and its loop (registered with atexit; safe to call twice)."""
        with self._lock:
            loop, self._loop = self._loop, None
        if loop is None:
            return
        manager = self._manager
        if manager is not None and self._owns_manager:
            with contextlib.suppress(Exception):
                asyncio.run_coroutine_threadsafe(manager.shutdown(), loop).result(SHUTDOWN_WAIT_SECONDS)
            self._manager = None
        loop.call_soon_threadsafe(loop.stop)


_current_runner: ContextVar[SnippetRunner | None] = ContextVar("llm_func_runner", default=None)
_default_runner: SnippetRunner | None = None
_default_lock = threading.Lock()


@contextlib.contextmanager
def use_runner(runner: SnippetRunner) -> Iterator[SnippetRunner]:
    """Run `@llm_func` snippets made inside the block with `runner` (tests inject a fake here)."""
    token = _current_runner.set(runner)
    try:
        yield runner
    finally:
        _current_runner.reset(token)


def set_default_runner(runner: SnippetRunner | None) -> None:
    """Process-wide runner (e.g. one sharing the app's SandboxManager); None restores the lazy default."""
    global _default_runner
    with _default_lock:
        _default_runner = runner


def resolve_runner(explicit: SnippetRunner | None = None) -> SnippetRunner:
    """Decorator's runner, else the one set by `use_runner`, else the process default (created lazily)."""
    global _default_runner
    runner = explicit or _current_runner.get()
    if runner is not None:
        return runner
    with _default_lock:
        if _default_runner is None:
            _default_runner = SandboxSnippetRunner()
        return _default_runner
