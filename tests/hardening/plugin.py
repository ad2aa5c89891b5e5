"""pytest plugin for `benchmarks/hardening_report.py`: joins each test's tally with its outcome into one JSON.

    python -m pytest tests/security tests/reliability -p tests.hardening.plugin --hardening-json PATH
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from tests.hardening.tally import PROPERTY


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--hardening-json", default="", help="where to write the hardening tally (JSON)")


class Collector:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.started = time.time()
        self.outcomes: dict[str, str] = {}
        self.durations: dict[str, float] = {}
        self.categories: dict[str, dict[str, Any]] = {}
        self.tests: list[dict[str, Any]] = []

    @staticmethod
    def _outcome(report: pytest.TestReport) -> str:
        if report.skipped and getattr(report, "wasxfail", None) is not None:
            return "xfailed"  # a known, reported finding that is still open
        return str(report.outcome)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        nodeid = report.nodeid
        self.durations[nodeid] = self.durations.get(nodeid, 0.0) + report.duration
        if report.when == "call" or (report.when == "setup" and not report.passed):
            self.outcomes[nodeid] = self._outcome(report)
        if report.when != "teardown":
            return
        outcome = "failed" if report.failed else self.outcomes.get(nodeid, "failed")
        self.tests.append({"nodeid": nodeid, "outcome": outcome, "seconds": round(self.durations.get(nodeid, 0.0), 3)})
        for key, notes in report.user_properties:
            if key != PROPERTY:
                continue
            for category, entry in notes.items():
                total = self.categories.setdefault(category, {"cases": 0, "ok": 0, "failures": 0, "tests": 0,
                                                              "xfailed": 0, "failed_tests": [], "figures": {}})
                cases, failures = int(entry["cases"]), int(entry["failures"])
                total["cases"] += cases
                total["failures"] += failures
                total["tests"] += 1
                if outcome == "passed":
                    total["ok"] += max(cases - failures, 0)
                elif outcome == "xfailed":
                    total["xfailed"] += cases
                else:  # the case that failed the test is not counted as held (whichever it was)
                    total["failed_tests"].append(report.nodeid)
                    total["ok"] += max(cases - max(failures, 1), 0)
                total["figures"].update(entry["figures"])

    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        summary = {
            "started": self.started,
            "seconds": round(time.time() - self.started, 1),
            "exitstatus": int(exitstatus),
            "categories": self.categories,
            "tests": self.tests,
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(json.dumps(summary, indent=1))


def pytest_configure(config: pytest.Config) -> None:
    target = config.getoption("--hardening-json")
    if target:
        config.pluginmanager.register(Collector(Path(target)), "hardening-collector")
