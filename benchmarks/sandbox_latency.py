"""Sandbox latency: `print(1)` cold vs warm, first run on a pre-warmed pool worker, a warm pandas groupby.

    .venv/bin/python benchmarks/sandbox_latency.py [--runs 20]

Baseline measured in the same run: a bare `python -I -c 'print(1)'` subprocess with no isolation, so the
cost of bwrap + the protocol is visible as a ratio. Goals (issue 3): warm < 30 ms, cold < 150 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from backend.core.settings import Settings  # noqa: E402
from backend.sandbox.manager import SandboxManager  # noqa: E402

GROUPBY_SETUP = (
    "import numpy as np, pandas as pd\n"
    "rng = np.random.default_rng(0)\n"
    "df = pd.DataFrame({'k': rng.integers(0, 100, 100_000), 'v': rng.random(100_000)})"
)
GROUPBY = "print(df.groupby('k')['v'].sum().head(3))"
GROUPBY_NO_REF = "print(len(pd.DataFrame({'k': [1]})))"


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def timed(fn: Callable[[], Awaitable[object]], runs: int) -> list[float]:
    out = []
    for _ in range(runs):
        start = time.perf_counter()
        await fn()
        out.append((time.perf_counter() - start) * 1000)
    return out


async def main(runs: int) -> None:
    data = Path(tempfile.mkdtemp(prefix="sandbox-bench-"))
    base = Settings(_env_file=None, data_dir=data, llm_providers=["fake"], sandbox_pool_size=0)  # type: ignore[call-arg]
    rows: list[tuple[str, list[float], str, float | None]] = []

    def bare() -> None:
        subprocess.run([sys.executable, "-I", "-c", "print(1)"], check=True, capture_output=True)

    baseline = await timed(lambda: asyncio.to_thread(bare), runs)
    rows.append(("baseline: bare python -I -c print(1)", baseline, "-", None))

    cold = SandboxManager(settings=base)
    counter = iter(range(10**6))

    async def cold_run() -> None:
        sid = f"cold{next(counter)}"
        result = await cold.run(session_id=sid, code="print(1)")
        assert result.stdout == "1\n", result
        await cold.reset(sid)

    print(f"sandbox layers: {cold.layers()}")
    rows.append(("cold: new session, new worker, print(1)", await timed(cold_run, runs), "< 150", 150.0))
    await cold.run(session_id="warm", code="x = 1")
    warm_runs = await timed(lambda: cold.run(session_id="warm", code="print(1)"), runs)
    rows.append(("warm: bound worker, print(1)", warm_runs, "< 30", 30.0))
    await cold.shutdown()

    pooled = SandboxManager(settings=base.model_copy(update={"sandbox_pool_size": 1}))
    pool_times = []
    for i in range(runs):
        await pooled.prewarm()
        start = time.perf_counter()
        await pooled.run(session_id=f"pool{i}", code="print(1)")
        pool_times.append((time.perf_counter() - start) * 1000)
        await pooled.reset(f"pool{i}")
    rows.append(("pool: first run on a pre-warmed worker", pool_times, "-", None))

    await pooled.run(session_id="pandas", code=GROUPBY_SETUP)
    groupby = await timed(lambda: pooled.run(session_id="pandas", code=GROUPBY), runs)
    rows.append(("warm: groupby on 100k rows (df re-hashed)", groupby, "-", None))
    plain = await timed(lambda: pooled.run(session_id="pandas", code=GROUPBY_NO_REF), runs)
    rows.append(("warm: small pandas op, no big var touched", plain, "< 30", 30.0))
    await pooled.shutdown()

    base_p50 = statistics.median(baseline)
    print(f"\n{'case':46s} {'n':>3s} {'p50 ms':>8s} {'p95 ms':>8s} {'x bare':>7s} {'goal':>6s}  met")
    for name, values, goal, limit in rows:
        p50, p95 = statistics.median(values), pct(values, 0.95)
        met = "-" if limit is None else ("yes" if p50 < limit else "NO")
        print(f"{name:46s} {len(values):3d} {p50:8.1f} {p95:8.1f} {p50 / base_p50:7.2f} {goal:>6s}  {met}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20, help="runs per case (>= 20 for the report)")
    asyncio.run(main(parser.parse_args().runs))
