"""The real sandbox: notebook-like persistence, uploads, artifacts, limits and worker replacement."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from backend.core.settings import Settings
from backend.sandbox.manager import SandboxManager

pytestmark = pytest.mark.slow


@pytest.fixture
def sandbox_settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"sandbox_pool_size": 0, "code_timeout_seconds": 10.0})


@pytest.fixture
async def manager(sandbox_settings: Settings) -> AsyncIterator[SandboxManager]:
    mgr = SandboxManager(settings=sandbox_settings)
    yield mgr
    await mgr.shutdown()


async def test_layers_report_the_bwrap_sandbox_on_this_machine(manager: SandboxManager) -> None:
    layers = manager.layers()
    assert layers["bwrap"] and layers["network_namespace"] and layers["readonly_filesystem"]
    assert layers["rlimits"] and layers["cleared_env"] and layers["unprivileged_uid"]


async def test_output_exception_and_failing_line_are_reported(manager: SandboxManager) -> None:
    result = await manager.run(session_id="s1", code="print('before')\nx = {}\nx['missing']")
    assert not result.ok
    assert result.stdout == "before\n"
    assert (result.error_type, result.error_message, result.error_line) == ("KeyError", "'missing'", 3)
    assert 'File "<cell>", line 3' in result.stderr


async def test_trailing_expression_is_displayed_like_a_notebook(manager: SandboxManager) -> None:
    assert (await manager.run(session_id="s1", code="a = 20\na * 2 + 2")).stdout == "42\n"


async def test_variables_persist_across_two_runs(manager: SandboxManager) -> None:
    first = await manager.run(session_id="s1", code="import pandas as pd\ndf = pd.DataFrame({'v': range(5)})")
    assert [(v.name, v.type, v.shape) for v in first.variables] == [("df", "DataFrame", "(5, 1)")]
    second = await manager.run(session_id="s1", code="print(df['v'].sum())")
    assert second.stdout == "10\n"


async def test_in_place_changes_are_reported_and_saved(manager: SandboxManager) -> None:
    await manager.run(session_id="s1", code="import pandas as pd\ndf = pd.DataFrame({'v': [1, 2]})")
    result = await manager.run(session_id="s1", code="df['w'] = df['v'] * 2")
    assert [v.name for v in result.variables] == ["df"]
    meta = manager.variables("s1").get("df")
    assert meta is not None and meta.columns == ["v", "w"]


async def test_sessions_do_not_share_variables(manager: SandboxManager) -> None:
    await manager.run(session_id="a", code="secret = 1")
    result = await manager.run(session_id="b", code="print(secret)")
    assert result.error_type == "NameError"


async def test_variables_survive_a_server_restart_via_the_store(sandbox_settings: Settings) -> None:
    first = SandboxManager(settings=sandbox_settings)
    code = "import numpy as np, pandas as pd\ndf = pd.DataFrame({'k': ['a', 'b']})\narr = np.ones(3)\nanswer = {'n': 2}"
    assert (await first.run(session_id="s1", code=code)).ok
    await first.shutdown()
    second = SandboxManager(settings=sandbox_settings)
    try:
        result = await second.run(session_id="s1", code="print(list(df['k']), arr.sum(), answer['n'])")
    finally:
        await second.shutdown()
    assert result.stdout == "['a', 'b'] 3.0 2\n"


async def test_idle_worker_is_recycled_and_restored_from_the_store(sandbox_settings: Settings) -> None:
    mgr = SandboxManager(settings=sandbox_settings.model_copy(update={"sandbox_idle_seconds": 0.2}))
    try:
        await mgr.run(session_id="s1", code="kept = [1, 2]\ndef not_persisted():\n    return 1")
        await asyncio.sleep(1.0)
        result = await mgr.run(session_id="s1", code="print(kept)\nnot_persisted()")
    finally:
        await mgr.shutdown()
    assert result.stdout == "[1, 2]\n"
    assert result.error_type == "NameError"  # a new interpreter: only stored values came back


async def test_warm_pool_worker_binds_to_a_session_with_pandas_ready(sandbox_settings: Settings) -> None:
    mgr = SandboxManager(settings=sandbox_settings.model_copy(update={"sandbox_pool_size": 1}))
    try:
        await mgr.prewarm()
        (mgr.workdir("warm") / "earlier.txt").write_text("kept")
        code = "import sys\nprint('pandas' in sys.modules, open('earlier.txt').read())"
        result = await mgr.run(session_id="warm", code=code, enforce_policy=False)  # sys.modules is refused
        await mgr.run(session_id="warm", code="open('made.txt', 'w').write('x')")
    finally:
        await mgr.shutdown()
    assert result.stdout == "True kept\n"
    assert (sandbox_settings.sessions_dir / "warm" / "work" / "made.txt").read_text() == "x"


async def test_uploaded_files_are_readable_but_not_writable(manager: SandboxManager, tmp_path: Path) -> None:
    upload = tmp_path / "upload-blob"
    upload.write_text("region,amount\nn,1\ns,2\n")
    code = (
        "import pandas as pd\nprint(pd.read_csv('sales.csv')['amount'].sum())\n"
        "try:\n    open('sales.csv', 'a').write('x')\nexcept OSError as e:\n    print(type(e).__name__)"
    )
    result = await manager.run(session_id="s1", code=code, files={"sales.csv": upload})
    assert result.stdout == "3\nPermissionError\n"
    assert upload.read_text() == "region,amount\nn,1\ns,2\n"


async def test_created_files_and_undrawn_figures_are_reported(manager: SandboxManager) -> None:
    code = (
        "import matplotlib.pyplot as plt\nplt.plot([1, 2, 3])\nplt.title('Sales by month')\n"
        "open('summary.txt', 'w').write('ok')"
    )
    result = await manager.run(session_id="s1", code=code)
    assert result.ok, result.stderr
    assert result.figures == ["sales_by_month.png"]
    assert sorted(result.files_created) == ["sales_by_month.png", "summary.txt"]


async def test_explicitly_saved_figure_is_not_duplicated(manager: SandboxManager) -> None:
    code = "import matplotlib.pyplot as plt\nplt.plot([1, 2])\nplt.savefig('mine.png')"
    result = await manager.run(session_id="s1", code=code)
    assert result.files_created == ["mine.png"] and result.figures == []


async def test_long_output_is_truncated_with_a_marker(manager: SandboxManager, sandbox_settings: Settings) -> None:
    result = await manager.run(session_id="s1", code="for i in range(100000):\n    print(i)")
    assert result.ok and result.truncated
    assert "output truncated" in result.stdout
    assert result.stdout.endswith("99999\n")
    assert len(result.stdout) <= sandbox_settings.code_max_output_chars + 100


async def test_policy_refusal_is_a_typed_result_the_llm_can_read(manager: SandboxManager) -> None:
    result = await manager.run(session_id="s1", code="import os\nos.system('id')")
    assert (result.ok, result.killed_reason, result.error_type) == (False, "blocked", "PolicyViolation")
    assert "blocked: os.system (line 2)" in result.observation()


async def test_reset_forgets_live_and_stored_variables(manager: SandboxManager) -> None:
    await manager.run(session_id="s1", code="x = 1")
    await manager.reset("s1")
    assert (await manager.run(session_id="s1", code="x")).error_type == "NameError"
    assert manager.variables("s1").catalog() == []


async def test_bad_session_id_and_timeout_are_refused_clearly(manager: SandboxManager) -> None:
    with pytest.raises(ValueError, match="session id"):
        await manager.run(session_id="../etc", code="1")
    with pytest.raises(ValueError, match="timeout"):
        await manager.run(session_id="s1", code="1", timeout=-1)


async def test_unshare_fallback_still_cuts_the_network_and_caps_memory(sandbox_settings: Settings) -> None:
    mgr = SandboxManager(settings=sandbox_settings, isolation="unshare")
    try:
        assert mgr.layers()["network_namespace"] and not mgr.layers()["readonly_filesystem"]
        code = "import socket\nsocket.create_connection(('1.1.1.1', 53), timeout=2)"
        net = await mgr.run(session_id="s1", code=code, enforce_policy=False)
        mem = await mgr.run(session_id="s1", code="x = bytearray(10 * 1024**3)")
    finally:
        await mgr.shutdown()
    assert (net.error_type, net.error_message) == ("OSError", "[Errno 101] Network is unreachable")
    assert mem.killed_reason == "memory"
