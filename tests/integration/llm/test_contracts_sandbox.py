"""`@llm_func` snippets in the real sandbox: computed values come back, errors and refusals are fed back."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from backend.core.settings import Settings
from backend.llm.contracts import SandboxSnippetRunner, llm_func, record_llm_calls, use_llm, use_runner
from backend.llm.fake import ScriptedChatModel
from backend.sandbox.manager import SandboxManager


@pytest.fixture
async def runner(settings: Settings) -> AsyncIterator[SandboxSnippetRunner]:
    manager = SandboxManager(settings=settings.model_copy(update={"sandbox_pool_size": 0}))
    yield SandboxSnippetRunner(manager=manager)
    await manager.shutdown()


@llm_func(max_retries=1)
async def primes_below(limit: int) -> list[int]:
    """Every prime number below {limit}, ascending."""
    raise NotImplementedError


async def test_computed_snippet_value_comes_back_from_the_sandbox(runner: SandboxSnippetRunner) -> None:
    code = "llm_output = [n for n in range(2, 20) if all(n % d for d in range(2, n))]"
    model = ScriptedChatModel(replies=[f"```python\n{code}\n```"])
    with use_llm(model), use_runner(runner), record_llm_calls() as calls:
        assert await primes_below(20) == [2, 3, 5, 7, 11, 13, 17, 19]
    assert calls[0].get_attempts_history()[0].path == "sandbox"


async def test_snippet_can_compute_from_the_call_arguments(runner: SandboxSnippetRunner) -> None:
    model = ScriptedChatModel(replies=["llm_output = [n for n in range(2, limit) if all(n % d for d in range(2, n))]"])
    with use_llm(model), use_runner(runner):
        assert await primes_below(12) == [2, 3, 5, 7, 11]


async def test_runtime_error_in_the_sandbox_is_fed_back(runner: SandboxSnippetRunner) -> None:
    model = ScriptedChatModel(replies=["x = [2, 3]\nllm_output = x[5]", "llm_output = [2, 3, 5, 7]"])
    with use_llm(model), use_runner(runner):
        assert await primes_below(10) == [2, 3, 5, 7]
    feedback = str(model.calls[1][-1].content)
    assert "IndexError: list index out of range (line 2)" in feedback


async def test_policy_refusal_is_fed_back_not_executed(runner: SandboxSnippetRunner, settings: Settings) -> None:
    escape = "import subprocess\nllm_output = [subprocess.getoutput('id')]"
    model = ScriptedChatModel(replies=[escape, "llm_output = [2]"])
    with use_llm(model), use_runner(runner):
        assert await primes_below(3) == [2]
    assert "PolicyViolation" in str(model.calls[1][-1].content)


async def test_snippet_sessions_leave_no_directories_behind(runner: SandboxSnippetRunner, settings: Settings) -> None:
    model = ScriptedChatModel(replies=["llm_output = sorted({3, 2})"])
    with use_llm(model), use_runner(runner):
        assert await primes_below(4) == [2, 3]
    leftovers = [p.name for p in settings.sessions_dir.iterdir() if p.name.startswith("llm-func-")]
    assert leftovers == []


def test_default_runner_serves_sync_calls_from_its_own_loop(settings: Settings) -> None:
    @llm_func(max_retries=0)
    def total(values: list[int]) -> int:
        """The sum of the values."""
        raise NotImplementedError

    runner = SandboxSnippetRunner(settings=settings)
    try:
        with use_llm(ScriptedChatModel(replies=["llm_output = sum([1, 2, 3])"] * 2)), use_runner(runner):
            assert total([1, 2, 3]) == 6
            assert total([1, 2, 3]) == 6  # a second asyncio.run loop reuses the runner's manager
    finally:
        runner.close()
