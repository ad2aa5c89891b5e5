"""What the hardening suites tried and how it went, for `benchmarks/hardening_report.py`.

Tests take the `tally` fixture and note cases per category (`tally.case("escape")`, `tally.case("fuzz", n)`),
failures they tolerated and counted (`tally.fail("fuzz")`, e.g. a 5xx seen before the assertion that fails
the test) and figures (`tally.figure("load", "health_p99_ms", 12.0)`). The notes travel as the test's
`user_properties`; `tests/hardening/plugin.py` joins them with each test's outcome. A case of a failed test
counts as failed, so a suite cannot report "contained" for something its assertions rejected.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

PROPERTY = "hardening"


@dataclass
class Entry:
    cases: int = 0
    failures: int = 0
    figures: dict[str, float] = field(default_factory=dict)


@dataclass
class Tally:
    entries: dict[str, Entry] = field(default_factory=dict)

    def _entry(self, category: str) -> Entry:
        return self.entries.setdefault(category, Entry())

    def case(self, category: str, n: int = 1) -> None:
        self._entry(category).cases += n

    def fail(self, category: str, n: int = 1) -> None:
        self._entry(category).failures += n

    def figure(self, category: str, name: str, value: float) -> None:
        self._entry(category).figures[name] = float(value)

    def as_property(self) -> dict[str, Any]:
        return {name: {"cases": e.cases, "failures": e.failures, "figures": e.figures}
                for name, e in self.entries.items()}


@pytest.fixture
def tally(request: pytest.FixtureRequest) -> Iterator[Tally]:
    """Notes for the hardening report (attached to the test when it ends, whatever its outcome)."""
    notes = Tally()
    yield notes
    request.node.user_properties.append((PROPERTY, notes.as_property()))
