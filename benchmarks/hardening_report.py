"""Hardening report: runs tests/security and tests/reliability and prints one table of what was tried and held.

The suites note their cases through the `tally` fixture (tests/hardening/tally.py); the plugin
tests/hardening/plugin.py joins them with each test's outcome into benchmarks/results/hardening.json (gitignored),
which this script then prints. A case of a failed test never counts as held.

    .venv/bin/python benchmarks/hardening_report.py            # run the suites (~5 min on 2 cores), then print
    .venv/bin/python benchmarks/hardening_report.py --no-run   # print the last results again
    .venv/bin/python benchmarks/hardening_report.py -- -k auth # extra pytest arguments after `--`
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "hardening.json"
SUITES = ["tests/security", "tests/reliability"]

ROWS = [
    ("escape", "sandbox escape payloads via /api/chat", "payloads tried", "contained"),
    ("isolation", "two users at once: hogs + quick queries", "scenarios", "isolated, within limits"),
    ("auth", "auth & isolation: routes x credentials", "cases", "passed (401/403/404, no leak)"),
    ("fuzz: upload", "upload fuzzing (names, bodies, polyglots)", "cases", "without a server error"),
    ("fuzz: API schema", "schemathesis: real ids + negative mode", "cases", "without a server error"),
    ("fuzz: hostile JSON", "hostile JSON bodies x JSON routes", "cases", "without a server error"),
    ("faults", "faults injected", "faults", "survived, nothing lost"),
    ("request limits", "oversize / unencodable / non-UTF-8 bodies", "cases", "refused with 413/422, never 500"),
]


def run_suites(results: Path, extra: list[str]) -> int:
    command = [sys.executable, "-m", "pytest", *SUITES, "-p", "tests.hardening.plugin",
               "--hardening-json", str(results), "-q", "-p", "no:logging", *extra]
    print("$", " ".join(command[1:]), flush=True)
    return subprocess.call(command, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})


def _figure(figures: dict[str, float], name: str, unit: str = "", digits: int = 0) -> str:
    value = figures.get(name)
    return "?" if value is None else f"{value:.{digits}f}{unit}"


def table(summary: dict[str, Any]) -> str:
    categories: dict[str, dict[str, Any]] = summary["categories"]
    lines = [f"{'suite':<44} {'tried':>7} {'held':>7}  meaning of 'held'", "-" * 96]
    for key, title, _tried, held in ROWS:
        entry = categories.get(key)
        if entry is None:
            lines.append(f"{title:<44} {'-':>7} {'-':>7}  (not run)")
            continue
        ok = entry["ok"]
        extra = ""
        if key.startswith("fuzz"):  # held = answered without a 5xx; other failures are listed below
            ok = entry["cases"] - entry["failures"]
            extra = f"; {entry['failures']} server errors"
        if key == "isolation":
            extra = f"; quick turn {_figure(entry['figures'], 'quick_turn_s', ' s', 1)} next to the hogs"
        lines.append(f"{title:<44} {entry['cases']:>7} {ok:>7}  {held}{extra}")
        for sub_key, sub_entry in sorted(categories.items()):
            if sub_key.startswith(key + ": "):
                label = "  - " + sub_key.removeprefix(key + ": ")
                lines.append(f"{label:<44} {sub_entry['cases']:>7} {sub_entry['ok']:>7}")
        lines += [f"{'':<44} {'':>7} {'':>7}  FAILED: {nodeid}" for nodeid in entry["failed_tests"][:5]]
    load = categories.get("load")
    if load is not None:
        f = load["figures"]
        lines.append(f"{'load: ' + _figure(f, 'users') + ' users chatting for ' + _figure(f, 'seconds', ' s'):<44} "
                     f"{_figure(f, 'turns'):>7} {_figure(f, 'turns') if not load['failed_tests'] else '0':>7}  "
                     f"turns done; {_figure(f, 'errors')} errors, {_figure(f, 'lost_messages')} lost messages")
        lines.append(f"{'':<44} {'':>7} {'':>7}  {_figure(f, 'turns_per_s', '', 1)} turns/s, turn p50 "
                     f"{_figure(f, 'turn_p50_ms', ' ms')} p99 {_figure(f, 'turn_p99_ms', ' ms')}; /api/health p50 "
                     f"{_figure(f, 'health_p50_ms', ' ms', 1)} p99 {_figure(f, 'health_p99_ms', ' ms', 1)} "
                     f"({_figure(f, 'health_samples')} samples)")
        lines += [f"{'':<44} {'':>7} {'':>7}  FAILED: {nodeid}" for nodeid in load["failed_tests"][:5]]
    tests = summary["tests"]
    counts = {o: sum(1 for t in tests if t["outcome"] == o) for o in ("passed", "failed", "skipped", "xfailed")}
    lines.append("-" * 96)
    started = time.strftime("%Y-%m-%d %H:%M", time.localtime(summary["started"]))
    lines.append(f"tests: {counts['passed']} passed, {counts['failed']} failed, {counts['skipped']} skipped, "
                 f"{counts['xfailed']} xfailed in "
                 f"{summary['seconds']:.0f} s (started {started}; {os.cpu_count()} CPUs)")
    lines += [f"  failed: {t['nodeid']}" for t in tests if t["outcome"] == "failed"][:10]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-run", action="store_true", help="print the last results without running the suites")
    parser.add_argument("--json", type=Path, default=RESULTS, help="results file (default: %(default)s)")
    parser.add_argument("pytest_args", nargs="*", help="extra pytest arguments (after --)")
    args = parser.parse_args()
    status = 0
    if not args.no_run:
        status = run_suites(args.json, args.pytest_args)
    if not args.json.exists():
        print(f"no results at {args.json}: run without --no-run first")
        return 2
    print()
    print(table(json.loads(args.json.read_text())))
    return status


if __name__ == "__main__":
    sys.exit(main())
