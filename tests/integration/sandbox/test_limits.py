"""Each limit ends the run with a typed result the LLM can read; the worker is replaced and the server carries on."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import pytest

from backend.core.settings import Settings
from backend.sandbox.manager import HARD_KILL_GRACE_SECONDS, SandboxManager

pytestmark = pytest.mark.slow

LIMIT_SECONDS = 3.0


@pytest.fixture
async def manager(settings: Settings) -> AsyncIterator[SandboxManager]:
    mgr = SandboxManager(settings=settings.model_copy(update={"sandbox_pool_size": 0}))
    yield mgr
    await mgr.shutdown()


async def _still_serves(manager: SandboxManager) -> None:
    after = await manager.run(session_id="s1", code="print('ok')")
    assert after.stdout == "ok\n"


async def test_infinite_loop_times_out_with_the_limit_in_the_message(manager: SandboxManager) -> None:
    start = time.monotonic()
    result = await manager.run(session_id="s1", code="while True:\n    pass", timeout=LIMIT_SECONDS)
    assert time.monotonic() - start < LIMIT_SECONDS + HARD_KILL_GRACE_SECONDS + 3
    assert (result.killed_reason, result.error_type) == ("timeout", "TimeoutError")
    assert result.observation().startswith("TimeoutError: exceeded 3 s")
    await _still_serves(manager)


async def test_code_that_ignores_the_soft_alarm_is_killed_hard(manager: SandboxManager) -> None:
    code = "import signal\nsignal.signal(signal.SIGALRM, signal.SIG_IGN)\nwhile True:\n    pass"
    start = time.monotonic()
    result = await manager.run(session_id="s1", code=code, timeout=LIMIT_SECONDS, enforce_policy=False)
    assert time.monotonic() - start < LIMIT_SECONDS + HARD_KILL_GRACE_SECONDS + 3
    # Whichever backstop fires first on a loaded machine: the CPU rlimit (SIGXCPU) or the wall-clock killpg.
    assert result.killed_reason == "timeout"
    assert result.error_message in ("exceeded 3 s", "exceeded 3 s (CPU time limit)"), result.error_message
    await _still_serves(manager)


async def test_ten_gigabyte_allocation_is_a_memory_error(manager: SandboxManager) -> None:
    result = await manager.run(session_id="s1", code="x = bytearray(10 * 1024**3)")
    assert (result.killed_reason, result.error_type, result.error_line) == ("memory", "MemoryError", 1)
    await _still_serves(manager)


async def test_fork_bomb_is_capped_and_timed_out(manager: SandboxManager) -> None:
    code = "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass"
    result = await manager.run(session_id="s1", code=code, timeout=LIMIT_SECONDS, enforce_policy=False)
    assert result.killed_reason == "timeout"
    await _still_serves(manager)


async def test_printing_a_gigabyte_stops_at_the_output_limit(manager: SandboxManager, settings: Settings) -> None:
    result = await manager.run(session_id="s1", code="for _ in range(1000):\n    print('x' * 10**6)")
    assert (result.killed_reason, result.error_type) == ("output", "OutputLimitExceeded")
    assert result.truncated and len(result.stdout) <= settings.code_max_output_chars + 100
    await _still_serves(manager)


async def test_interpreter_crash_is_reported_with_the_failing_line(manager: SandboxManager) -> None:
    code = "x = 1\nimport ctypes\nctypes.string_at(0)"
    result = await manager.run(session_id="s1", code=code, enforce_policy=False)
    assert (result.killed_reason, result.error_type) == ("crash", "WorkerCrashed")
    assert "SIGSEGV" in (result.error_message or "")
    assert result.error_line == 3
    await _still_serves(manager)


async def test_writing_a_huge_file_hits_the_file_size_limit(manager: SandboxManager) -> None:
    code = "with open('big.bin', 'wb') as f:\n    for _ in range(2048):\n        f.write(b'0' * 2**20)"
    result = await manager.run(session_id="s1", code=code)
    assert result.error_type == "OSError" and "File too large" in (result.error_message or "")
