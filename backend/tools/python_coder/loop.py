"""The coder loop: generate a program, check it, run it in the sandbox, fix errors, verify the output, return.

One conversation per call: the system rules, then files + context + question, then each program and what went
wrong with it, so llama.cpp only evaluates new tokens. When that conversation goes in circles (the same program
twice, the same error twice, a reply looping on itself), and after a syntax error or a rejected output (where,
measured on DABench, the small model mostly repeats its script when asked to correct it in place), it restarts from
the opening messages plus a list of the failures. Each generation counts against `coder_max_executions`, each
verdict against `coder_max_verifications`.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Protocol

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage

from backend.agents.events import CodeEvent, FigureEvent, FileEvent, OutputEvent, RunEvent
from backend.core.settings import Settings
from backend.llm.contracts import record_llm_calls
from backend.llm.errors import short_error
from backend.sandbox.result import SandboxResult
from backend.sandbox.worker import WorkerCrashed
from backend.storage.inspect import FileDescription, FileInspectionError, describe_file
from backend.tools.python_coder import prompts
from backend.tools.python_coder.extract import extract_code, repetition_start, syntax_error
from backend.tools.python_coder.models import (
    FIGURE_SUFFIXES,
    AttemptKind,
    CoderAttempt,
    CoderContext,
    CoderResult,
    Verdict,
    VerdictSource,
)
from backend.tools.python_coder.verify import llm_verdict, looks_direct, rule_verdict

logger = logging.getLogger(__name__)

HEAD_ROWS = 2
"""Rows of each table shown to the model: enough to see formats, cheap in prompt tokens."""
FILE_PROMPT_CHARS = 2500
"""Longest description of one file in the prompt."""
DESCRIPTION_CACHE_SIZE = 64
"""File descriptions kept in memory (keyed by path, name, mtime and size)."""
MAX_REPLY_CHARS = 5000
"""A code reply longer than this is cut off: the answers here need short scripts, and CPU tokens are dear."""

NO_CODE = "the reply contained no Python code"
LOOPING = "the reply kept repeating itself and was cut off"
REPEATED = "the same program as an earlier attempt (not run again)"
WORKER_CRASHED = WorkerCrashed.__name__
"""`error_type` of a run whose sandbox worker died under it (killed, out of memory, crashed)."""

EventSink = Callable[[RunEvent], Awaitable[None] | None]


class SandboxRunner(Protocol):
    """What the coder needs from `backend.sandbox.manager.SandboxManager`."""

    async def run(
        self, *, session_id: str, code: str, files: Mapping[str, Path] | None = None, timeout: float | None = None  # noqa: ASYNC109
    ) -> SandboxResult: ...


async def run_coder(
    *,
    question: str,
    session_id: str,
    llm: BaseChatModel,
    sandbox: SandboxRunner,
    settings: Settings,
    files: Mapping[str, Path] | None = None,
    context: CoderContext | None = None,
    on_event: EventSink | None = None,
    run_id: str | None = None,
) -> CoderResult:
    """Answer `question` by writing and running Python; never raises for model, code or sandbox failures."""
    loop = _CoderLoop(question=question, session_id=session_id, llm=llm, sandbox=sandbox, settings=settings,
                      files=dict(files or {}), on_event=on_event, run_id=run_id or session_id)
    descriptions = await asyncio.to_thread(describe_files, loop.files)
    loop.tables = {d.name: d for d in descriptions.values() if isinstance(d, FileDescription)}
    texts = [d.as_prompt(max_chars=FILE_PROMPT_CHARS) if isinstance(d, FileDescription) else d
             for d in descriptions.values()]
    return await loop.run(prompts.task_messages(question=question, file_descriptions=texts, context=context))


def describe_files(files: Mapping[str, Path]) -> dict[str, FileDescription | str]:
    """Description of each file, or a one-line note when it cannot be read (the model still learns its name)."""
    out: dict[str, FileDescription | str] = {}
    for name, path in files.items():
        try:
            stat = Path(path).stat()
            out[name] = _describe_cached(str(path), name, stat.st_mtime_ns, stat.st_size)
        except (FileInspectionError, OSError) as exc:
            out[name] = f"File `{name}`: could not be inspected ({exc})"
    return out


@functools.lru_cache(maxsize=DESCRIPTION_CACHE_SIZE)
def _describe_cached(path: str, name: str, mtime_ns: int, size: int) -> FileDescription:
    """Every coder call of a conversation sees the same files: describe each version once."""
    return describe_file(Path(path), max_rows=HEAD_ROWS, name=name)


def _same_code(a: str, b: str) -> bool:
    return " ".join(a.split()) == " ".join(b.split())


class _CoderLoop:
    """State of one coder call; `run` is the loop itself."""

    def __init__(self, *, question: str, session_id: str, llm: BaseChatModel, sandbox: SandboxRunner,
                 settings: Settings, files: dict[str, Path], on_event: EventSink | None, run_id: str) -> None:
        self.question, self.session_id, self.llm, self.sandbox = question, session_id, llm, sandbox
        self.settings, self.files, self.on_event, self.run_id = settings, files, on_event, run_id
        self.tables: dict[str, FileDescription] = {}
        self.attempts: list[CoderAttempt] = []
        self.created: list[str] = []
        self.llm_calls = 0
        self.started = time.perf_counter()

    async def run(self, opening: list[BaseMessage]) -> CoderResult:
        """Generate → check → run → fix/verify until a verified answer or a limit; see the module docstring."""
        messages = list(opening)
        executions = verifications = 0
        kind: AttemptKind = "generate"
        while executions < self.settings.coder_max_executions:
            try:
                reply, seconds, stuck = await self._ask(messages, stop=prompts.CODE_STOP)
            except Exception as exc:  # provider chain exhausted, timeout...: a clear failure, not a crash
                return self._finish(False, error=f"the language model failed: {short_error(exc)}")
            code = extract_code(reply)
            repeated = bool(code) and any(_same_code(code, a.code) for a in self.attempts)
            attempt = CoderAttempt(number=len(self.attempts) + 1, kind=kind, code=code, llm_seconds=seconds)
            self.attempts.append(attempt)
            executions += 1
            kind = "fix"
            if stuck or repeated:  # a conversation that produced this will produce it again: start afresh
                attempt.static_error = LOOPING if stuck else REPEATED
                messages = [*opening, prompts.restart_message(self._problems())]
                continue
            if not code:
                attempt.static_error = NO_CODE
                messages += [AIMessage(content=reply), prompts.no_code_message()]
                continue
            messages.append(prompts.assistant_code(code))
            await self._emit(CodeEvent(run_id=self.run_id, code=code, attempt=attempt.number))
            if error := syntax_error(code):  # measured: asked to fix in place, the 1.5B model repeats the script
                attempt.static_error = error
                await self._emit(OutputEvent(run_id=self.run_id, error=error))
                messages = [*opening, prompts.restart_message(self._problems())]
                continue
            try:
                result = await self.sandbox.run(session_id=self.session_id, code=code, files=self.files)
            except Exception as exc:  # the sandbox itself is broken: retrying the model will not help
                return self._finish(False, error=f"the sandbox failed: {short_error(exc)}")
            attempt.result = result
            await self._emit(OutputEvent(run_id=self.run_id, stdout=result.stdout, stderr=result.stderr,
                                         error=None if result.ok else result.observation(max_chars=500)))
            if not result.ok:
                if self._same_error_twice():
                    messages = [*opening, prompts.restart_message(self._problems())]
                else:
                    messages.append(prompts.fix_message(code=code, result=result, hint=self._hint(result)))
                continue
            await self._emit_files(result.files_created)
            if self.settings.coder_max_verifications == 0:
                return self._finish(True, final=attempt)
            verdict, attempt.verdict_source = await self._verify(result)
            attempt.verdict = verdict
            verifications += 1
            if verdict.answers_question:
                return self._finish(True, final=attempt)
            if verifications >= self.settings.coder_max_verifications:
                return self._finish(False, final=attempt, error=f"verification failed: {verdict.reason}")
            messages = [*opening, prompts.restart_message(self._problems())]  # in place it repeats 3 times in 4
            kind = "revise"
        limit = self.settings.coder_max_executions
        return self._finish(False, error=f"no working answer after {limit} executions; {self._why_given_up()}")

    def _why_given_up(self) -> str:
        """The problem to report when the executions ran out.

        A worker that died under the last program that ran is named as such: the attempts after it (typically the
        same program again, not run a second time) would otherwise hide the crash behind their own problems."""
        runs = [a.result for a in self.attempts if a.result is not None]
        if runs and runs[-1].error_type == WORKER_CRASHED:
            return f"the sandbox worker crashed: {runs[-1].error_message or 'no reason given'}"
        last = self._problems()[-1:] or ["none recorded"]
        return f"last problem: {last[0]}"

    def _problems(self) -> list[str]:
        """One line per failed attempt, oldest first, for restart prompts and the final error."""
        lines: list[str] = []
        for attempt in self.attempts:
            result = attempt.result
            if attempt.static_error:
                lines.append(attempt.static_error)
            elif result is not None and not result.ok:
                where = ""
                code_lines = attempt.code.split("\n")
                if result.error_line and 0 < result.error_line <= len(code_lines):
                    where = f" at `{code_lines[result.error_line - 1].strip()[:120]}`"
                lines.append(f"{result.error_type}: {(result.error_message or '')[:200]}{where}")
            elif attempt.verdict is not None and not attempt.verdict.answers_question:
                lines.append(f"wrong output: {attempt.verdict.reason}")
        return list(dict.fromkeys(lines))

    def _same_error_twice(self) -> bool:
        """The last two runs failed the same way: the fix conversation is going in circles."""
        runs = [a.result for a in self.attempts if a.result is not None]
        if len(runs) < 2 or runs[-1].ok or runs[-2].ok:
            return False
        return (runs[-1].error_type, runs[-1].error_message) == (runs[-2].error_type, runs[-2].error_message)

    async def _ask(self, messages: list[BaseMessage], *, stop: list[str] | None) -> tuple[str, float, bool]:
        """Stream one reply; stop early (flagged) when it loops on the same lines or grows past any sane script."""
        started = time.perf_counter()
        pieces: list[str] = []
        size = 0
        stuck = False
        self.llm_calls += 1
        stream = self.llm.astream(messages, stop=stop)
        try:
            async for chunk in stream:
                piece = chunk.content if isinstance(chunk.content, str) else str(chunk.content)
                pieces.append(piece)
                size += len(piece)
                if size > MAX_REPLY_CHARS:
                    stuck = True
                    break
                if "\n" in piece and (cut := repetition_start("".join(pieces))) is not None:
                    pieces = ["\n".join("".join(pieces).split("\n")[:cut])]
                    stuck = True
                    break
        finally:
            close = getattr(stream, "aclose", None)
            if close is not None:  # closing the stream is what stops the model generating
                await close()
        return "".join(pieces), time.perf_counter() - started, stuck

    async def _verify(self, result: SandboxResult) -> tuple[Verdict, VerdictSource]:
        """Rules first; the LLM judges only when `coder_verify_mode` says the rules are not enough."""
        rule = rule_verdict(question=self.question, output=result.stdout, produced_files=result.files_created)
        mode = self.settings.coder_verify_mode
        if rule is not None and not rule.answers_question:
            return rule, "rules"
        if mode == "rules" or (mode == "auto" and (rule is not None or looks_direct(result.stdout))):
            return rule or Verdict(answers_question=True, reason="plain computed answer"), "rules"
        shown = result.stdout.strip() or f"(nothing printed; files created: {', '.join(result.files_created)})"
        started = time.perf_counter()
        with record_llm_calls() as calls:
            try:
                verdict = await llm_verdict(llm=self.llm, question=self.question, code=self.attempts[-1].code,
                                            output=shown)
            except Exception as exc:  # a broken verifier must not discard a clean run
                logger.warning("coder verifier failed, accepting output: %s", short_error(exc))
                verdict = None
        self.llm_calls += sum(len(call.get_attempts_history()) for call in calls)
        self.attempts[-1].llm_seconds += time.perf_counter() - started
        if verdict is None:
            return Verdict(answers_question=True, reason="verifier unavailable"), "skipped"
        return verdict, "llm"

    def _hint(self, result: SandboxResult) -> str:
        """Cheap facts that fix the commonest errors: the real columns on a KeyError, the real files on a miss."""
        if result.error_type == "KeyError" and self.tables:
            return "\n".join(f"Columns of {name}: {[c.name for c in d.columns]}" for name, d in self.tables.items())
        if result.error_type in ("FileNotFoundError", "OSError") and self.files:
            return f"Files in the current directory: {', '.join(self.files)}"
        return ""

    async def _emit(self, event: RunEvent) -> None:
        if self.on_event is None:
            return
        outcome = self.on_event(event)
        if inspect.isawaitable(outcome):
            await outcome

    async def _emit_files(self, names: list[str]) -> None:
        for name in names:
            if name in self.created:
                continue
            self.created.append(name)
            artifact = f"{self.session_id}/{name}"
            if name.lower().endswith(FIGURE_SUFFIXES):
                await self._emit(FigureEvent(run_id=self.run_id, artifact_id=artifact, name=name))
            else:
                await self._emit(FileEvent(run_id=self.run_id, artifact_id=artifact, name=name))

    def _finish(self, success: bool, *, final: CoderAttempt | None = None, error: str | None = None) -> CoderResult:
        clean = final or next((a for a in reversed(self.attempts) if a.result and a.result.ok), None)
        return CoderResult(
            success=success,
            code=clean.code if clean else (self.attempts[-1].code if self.attempts else ""),
            output=clean.result.stdout if clean and clean.result else "",
            error=error,
            figures=[n for n in self.created if n.lower().endswith(FIGURE_SUFFIXES)],
            files=[n for n in self.created if not n.lower().endswith(FIGURE_SUFFIXES)],
            attempts=self.attempts,
            executions=sum(1 for a in self.attempts if a.result is not None),
            llm_calls=self.llm_calls,
            seconds=time.perf_counter() - self.started,
        )
