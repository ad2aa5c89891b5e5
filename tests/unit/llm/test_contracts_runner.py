"""The sandbox snippet runner: wraps the snippet, reads only the marked value, cleans up its session."""

from __future__ import annotations

import re

import pytest
from pydantic import BaseModel

from backend.core.settings import Settings
from backend.llm.contracts import SandboxSnippetRunner, ScriptedSnippetRunner, SnippetOutcome
from backend.llm.contracts.runner import (
    PRELUDE_LINES,
    input_prelude,
    resolve_runner,
    set_default_runner,
    use_runner,
    wrap_snippet,
)
from backend.sandbox.result import SandboxResult


class FakeManager:
    """Stands in for SandboxManager: answers with a scripted stdout/error and records sessions."""

    def __init__(self, settings: Settings, *, value: str | None = None, error: tuple[str, str, int] | None = None,
                 extra_stdout: str = "") -> None:
        self.settings = settings
        self.value, self.error, self.extra_stdout = value, error, extra_stdout
        self.runs: list[tuple[str, str, float | None]] = []
        self.resets: list[str] = []

    async def run(self, *, session_id: str, code: str, timeout: float | None = None) -> SandboxResult:  # noqa: ASYNC109
        self.runs.append((session_id, code, timeout))
        (self.settings.sessions_dir / session_id / "work").mkdir(parents=True)
        if self.error:
            kind, message, line = self.error
            return SandboxResult(ok=False, error_type=kind, error_message=message, error_line=line)
        marker = re.search(r"print\('(@@llm_output:[0-9a-f]+@@)'", code)
        assert marker is not None
        return SandboxResult(ok=True, stdout=f"{self.extra_stdout}{marker.group(1)}{self.value}\n")

    async def reset(self, session_id: str) -> None:
        self.resets.append(session_id)


def runner_for(manager: FakeManager) -> SandboxSnippetRunner:
    return SandboxSnippetRunner(manager=manager)  # type: ignore[arg-type]


async def test_value_is_read_from_the_marked_line_only(settings: Settings) -> None:
    manager = FakeManager(settings, value='{"a": 1}', extra_stdout='{"fake": "value"}\n')
    outcome = await runner_for(manager).run_snippet("llm_output = {'a': 1}", limit_seconds=5)
    assert outcome == SnippetOutcome(value_json='{"a": 1}', stdout='{"fake": "value"}')


async def test_each_snippet_gets_a_fresh_session_that_is_reset_and_removed(settings: Settings) -> None:
    manager = FakeManager(settings, value="1")
    runner = runner_for(manager)
    await runner.run_snippet("llm_output = 1", limit_seconds=5)
    await runner.run_snippet("llm_output = 1", limit_seconds=5)
    first, second = (session for session, _, _ in manager.runs)
    assert first != second and first.startswith("llm-func-")
    assert manager.resets == [first, second]
    assert not (settings.sessions_dir / first).exists()
    assert manager.runs[0][2] == 5


async def test_missing_llm_output_is_explained(settings: Settings) -> None:
    manager = FakeManager(settings, error=("NameError", "name 'llm_output' is not defined", 3))
    outcome = await runner_for(manager).run_snippet("x = 1", limit_seconds=5)
    assert outcome.error == "the snippet never assigned `llm_output`"


async def test_errors_report_the_snippets_own_line_numbers(settings: Settings) -> None:
    inside = FakeManager(settings, error=("ZeroDivisionError", "division by zero", 3))  # prelude line + 2
    outcome = await runner_for(inside).run_snippet("a = 1\nllm_output = a / 0", limit_seconds=5)
    assert outcome.error == "the snippet raised ZeroDivisionError: division by zero (line 2)"
    emitted = FakeManager(settings, error=("TypeError", "set is not JSON data", 9))
    outcome = await runner_for(emitted).run_snippet("llm_output = {1}", limit_seconds=5)
    assert outcome.error == "the snippet raised TypeError: set is not JSON data"


def test_wrapped_snippet_is_prelude_then_snippet_then_emit() -> None:
    wrapped = wrap_snippet("a = 1\nllm_output = a", "@@m@@", {"text": "hi"})
    lines = wrapped.splitlines()
    assert len(lines[0].splitlines()) == PRELUDE_LINES and lines[1:3] == ["a = 1", "llm_output = a"]
    assert "print('@@m@@' + _llm_json.dumps(llm_output, default=_llm_default))" in wrapped


def test_prelude_defines_json_inputs_and_skips_the_rest() -> None:
    class Point(BaseModel):
        x: int

    prelude = input_prelude({"text": "it's \"quoted\"\n", "n": 3, "p": Point(x=1), "client": object()})
    namespace: dict[str, object] = {}
    exec(prelude, namespace)  # test-only: checks the generated line is valid Python with the right values
    assert (namespace["text"], namespace["n"], namespace["p"]) == ("it's \"quoted\"\n", 3, {"x": 1})
    assert "client" not in namespace
    assert "\n" not in prelude


def test_prelude_without_usable_inputs_is_still_one_line() -> None:
    assert input_prelude({}) == input_prelude({"x": object()}) == "import json as _llm_json"


def test_runner_resolution_prefers_explicit_then_context_then_default() -> None:
    explicit, scoped, default = ScriptedSnippetRunner(), ScriptedSnippetRunner(), ScriptedSnippetRunner()
    set_default_runner(default)
    try:
        assert resolve_runner() is default
        with use_runner(scoped):
            assert resolve_runner() is scoped
            assert resolve_runner(explicit) is explicit
    finally:
        set_default_runner(None)
    assert isinstance(resolve_runner(), SandboxSnippetRunner)
    set_default_runner(None)


async def test_scripted_runner_without_outcomes_fails_loudly() -> None:
    with pytest.raises(AssertionError, match="no outcome"):
        await ScriptedSnippetRunner().run_snippet("llm_output = 1", limit_seconds=1)


def test_fake_manager_matches_the_real_signature() -> None:
    import inspect

    from backend.sandbox.manager import SandboxManager

    real = inspect.signature(SandboxManager.run).parameters
    assert {"session_id", "code", "timeout"} <= set(real)
