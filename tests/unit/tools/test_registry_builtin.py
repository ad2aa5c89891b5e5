"""Built-in tools: what the server registers, how python_coder hands run context to the coder, and lazy fallbacks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import backend.tools.python_coder as coder_package
from backend.tools import builtin
from backend.tools.builtin import build_registry
from backend.tools.python_coder import CoderResult
from backend.tools.registry import TASK_TOOL_METADATA, ToolContext


class FakeCoder:
    """Stands in for `run_coder`, recording its keyword arguments."""

    def __init__(self, result: CoderResult) -> None:
        self.result = result
        self.kwargs: dict[str, Any] = {}

    async def __call__(self, **kwargs: Any) -> CoderResult:
        self.kwargs = kwargs
        kwargs["on_event"]("coder event")  # the agent's sink is synchronous (LangGraph's stream writer)
        return self.result


def context(settings: Any, events: list[Any]) -> ToolContext:
    return ToolContext(run_id="run", user_id="user", session_id="conv", settings=settings, llm=object(),  # type: ignore[arg-type]
                       files={"data.csv": Path("/tmp/data.csv")}, history="h", notepad="n", variables="v",
                       plan="step 2 of 3", emit=events.append)


def test_server_registry_has_the_builtins(settings):
    registry = build_registry(settings=settings, sandbox=object())  # type: ignore[arg-type]
    assert registry.names() == ["python_coder", "calculator", "rag_search", "web_search"]
    task_tools = [t.name for t in registry.tools if (t.metadata or {}).get(TASK_TOOL_METADATA)]
    assert task_tools == ["python_coder", "rag_search", "web_search"]


def test_plugins_from_settings_are_added(settings, tmp_path):
    plugin = tmp_path / "extra.py"
    plugin.write_text('def ping() -> str:\n    """Ping."""\n    return "pong"\n')
    settings.tool_plugin_paths = [str(plugin)]
    assert "ping" in build_registry(settings=settings, sandbox=object())  # type: ignore[arg-type]


async def test_a_builtin_whose_module_is_missing_reports_unavailable(settings, monkeypatch):
    monkeypatch.setattr(builtin, "SEARCH_TOOLS", (("backend.tools.not_written_yet", "rag_search"),))
    registry = build_registry(settings=settings, sandbox=object())  # type: ignore[arg-type]
    outcome = await registry.invoke("rag_search", {"query": "x"})
    assert not outcome.ok
    assert outcome.error.startswith("unavailable: backend.tools.not_written_yet.rag_search could not be loaded")


async def test_python_coder_gets_session_files_context_and_plan(settings, monkeypatch):
    fake = FakeCoder(CoderResult(success=True, output="mean = 3.5", figures=["hist.png"]))
    monkeypatch.setattr(coder_package, "run_coder", fake)
    sandbox = object()
    registry = build_registry(settings=settings, sandbox=sandbox)  # type: ignore[arg-type]
    events: list[Any] = []
    outcome = await registry.invoke("python_coder", {"question": "mean of x"}, context=context(settings, events))
    assert outcome.ok and outcome.output == "mean = 3.5\nFiles created: hist.png"
    kwargs = fake.kwargs
    assert (kwargs["question"], kwargs["session_id"], kwargs["run_id"]) == ("mean of x", "conv", "run")
    assert kwargs["sandbox"] is sandbox and kwargs["files"] == {"data.csv": Path("/tmp/data.csv")}
    assert kwargs["context"].model_dump() == {"history": "h", "notepad": "n", "variables": "v", "plan": "step 2 of 3"}
    assert events == ["coder event"]


async def test_python_coder_failure_is_an_error_observation(settings, monkeypatch):
    fake = FakeCoder(CoderResult(success=False, error="KeyError: 'fare'", output="partial"))
    monkeypatch.setattr(coder_package, "run_coder", fake)
    registry = build_registry(settings=settings, sandbox=object())  # type: ignore[arg-type]
    outcome = await registry.invoke("python_coder", {"question": "q"}, context=context(settings, []))
    assert not outcome.ok
    assert outcome.error == "CoderFailedError: KeyError: 'fare'\nLast output:\npartial"


async def test_python_coder_outside_a_run_is_unavailable(settings):
    registry = build_registry(settings=settings, sandbox=object())  # type: ignore[arg-type]
    outcome = await registry.invoke("python_coder", {"question": "q"})
    assert outcome.error == "unavailable: python_coder needs a run context (settings, model, session)"


@pytest.mark.parametrize(("expression", "output"), [("2^8", "256"), ("10/4", "2.5")])
async def test_calculator_tool(settings, expression, output):
    registry = build_registry(settings=settings, sandbox=object())  # type: ignore[arg-type]
    outcome = await registry.invoke("calculator", {"expression": expression})
    assert outcome.output == output


async def test_calculator_errors_are_observations(settings):
    registry = build_registry(settings=settings, sandbox=object())  # type: ignore[arg-type]
    outcome = await registry.invoke("calculator", {"expression": "__import__('os')"})
    assert not outcome.ok
    assert outcome.error == "SafeMathError: function '__import__' is not allowed; allowed: " + ", ".join(
        sorted(["abs", "round", "min", "max", "sum", "mean", "sqrt", "exp", "log", "log10", "log2", "sin", "cos",
                "tan", "asin", "acos", "atan", "floor", "ceil", "factorial", "hypot"])
    )
