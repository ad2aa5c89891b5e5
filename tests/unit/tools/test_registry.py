"""Tool registry: schemas from hints and docstrings, plugin auto-discovery, and failures turned into observations."""

from __future__ import annotations

import asyncio
import textwrap
from pathlib import Path
from typing import Any

import pytest
from langchain_core.tools import tool

from backend.tools.registry import MAX_OBSERVATION_CHARS, ToolContext, ToolRegistry, ToolUnavailableError


def scale(values: list[float], factor: float = 2.0, label: str | None = None) -> dict[str, Any]:
    """Multiply numbers by a factor.

    Args:
        values: The numbers to scale.
        factor: What to multiply by.
        label: Optional name for the result.
    """
    return {"label": label, "scaled": [v * factor for v in values]}


@tool
def shout(text: str) -> str:
    """Upper-case a text."""
    return text.upper()


def parameters(registry: ToolRegistry, name: str) -> dict[str, Any]:
    schema = next(s for s in registry.schemas() if s["function"]["name"] == name)
    return schema["function"]["parameters"]


def write(folder: Path, name: str, source: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(textwrap.dedent(source))
    return path


def test_schema_comes_from_type_hints_and_docstring():
    params = parameters(ToolRegistry([scale]), "scale")
    assert params["required"] == ["values"]
    assert params["properties"]["values"] == {"description": "The numbers to scale.", "items": {"type": "number"},
                                              "type": "array"}
    assert params["properties"]["factor"]["default"] == 2.0
    assert params["properties"]["factor"]["description"] == "What to multiply by."


def test_decorated_tools_register_as_they_are():
    registry = ToolRegistry([shout])
    assert registry.names() == ["shout"]
    assert registry.schemas()[0]["function"]["description"] == "Upper-case a text."


def test_functions_without_a_docstring_are_refused():
    def undocumented(x: int) -> int:
        return x

    with pytest.raises(ValueError, match="no docstring"):
        ToolRegistry([undocumented])


def test_a_name_can_only_be_registered_once():
    registry = ToolRegistry([scale])
    with pytest.raises(ValueError, match="already registered"):
        registry.register(scale)


def test_describe_lists_tools_for_text_only_models():
    assert ToolRegistry([scale]).describe() == "- scale(values: array, factor: number, label: any): " \
                                               "Multiply numbers by a factor."


def test_plugin_folder_functions_and_decorated_tools_are_discovered(tmp_path):
    write(tmp_path / "plugins", "units.py", '''
        from langchain_core.tools import tool
        from os.path import join  # imported helpers are not tools

        def celsius_to_fahrenheit(celsius: float) -> float:
            """Convert a temperature.

            Args:
                celsius: Degrees Celsius.
            """
            return celsius * 9 / 5 + 32

        def _private(x: int) -> int:
            """Not exported."""
            return x

        @tool
        def greet(name: str) -> str:
            """Say hello."""
            return f"hello {name}"
    ''')
    write(tmp_path / "plugins", "_ignored.py", "def hidden() -> None:\n    '''Hidden.'''\n")
    registry = ToolRegistry()
    added = registry.discover([str(tmp_path / "plugins")])
    assert sorted(added) == ["celsius_to_fahrenheit", "greet"]
    assert parameters(registry, "celsius_to_fahrenheit")["properties"]["celsius"]["type"] == "number"
    assert registry.discovery_errors == []


async def test_discovered_plugin_tools_can_be_invoked(tmp_path):
    path = write(tmp_path, "double.py", '''
        def double(n: int) -> int:
            """Double a number.

            Args:
                n: The number.
            """
            return 2 * n
    ''')
    registry = ToolRegistry()
    registry.discover([str(path)])
    outcome = await registry.invoke("double", {"n": 21})
    assert outcome.ok and outcome.output == "42"


def test_all_limits_what_a_plugin_exports(tmp_path):
    write(tmp_path, "limited.py", '''
        __all__ = ["kept"]

        def kept() -> str:
            """Kept."""
            return "k"

        def helper() -> str:
            """Helper, not exported."""
            return "h"
    ''')
    registry = ToolRegistry()
    registry.discover([str(tmp_path / "limited.py")])
    assert registry.names() == ["kept"]


def test_broken_plugins_are_noted_not_raised(tmp_path):
    write(tmp_path, "broken.py", "def oops(:\n")
    write(tmp_path, "fine.py", 'def ok() -> str:\n    """Fine."""\n    return "ok"\n')
    registry = ToolRegistry()
    registry.discover([str(tmp_path / "broken.py"), "no_such_plugin_module", str(tmp_path / "fine.py")])
    assert registry.names() == ["ok"]
    assert len(registry.discovery_errors) == 2
    assert "SyntaxError" in registry.discovery_errors[0]
    assert "ModuleNotFoundError" in registry.discovery_errors[1]


def test_plugins_cannot_replace_a_registered_tool(tmp_path):
    write(tmp_path, "clash.py", 'def scale() -> str:\n    """Impostor."""\n    return "x"\n')
    registry = ToolRegistry([scale])
    registry.discover([str(tmp_path / "clash.py")])
    assert "already registered" in registry.discovery_errors[0]
    assert "Multiply" in registry.schemas()[0]["function"]["description"]


def test_dotted_module_paths_are_discovered():
    registry = ToolRegistry()
    registry.discover(["backend.tools.web_search"])
    assert "web_search" in registry


async def test_results_are_rendered_as_text():
    outcome = await ToolRegistry([scale]).invoke("scale", {"values": [1, 2], "label": "x"})
    assert outcome.ok and outcome.output == '{"label": "x", "scaled": [2.0, 4.0]}'


async def test_unknown_tool_is_an_error_outcome_naming_the_tools():
    outcome = await ToolRegistry([scale]).invoke("nope", {})
    assert not outcome.ok and outcome.error == "unknown tool 'nope'; available tools: scale"
    assert outcome.observation.startswith("Error: unknown tool")


async def test_invalid_arguments_explain_what_was_expected():
    outcome = await ToolRegistry([scale]).invoke("scale", {"values": "many"})
    assert not outcome.ok
    assert "invalid arguments for 'scale'" in outcome.error
    assert "values" in outcome.error and "Expected:" in outcome.error


async def test_exceptions_become_error_outcomes():
    def divide(a: float, b: float) -> float:
        """Divide.

        Args:
            a: Numerator.
            b: Denominator.
        """
        return a / b

    outcome = await ToolRegistry([divide]).invoke("divide", {"a": 1, "b": 0})
    assert not outcome.ok and outcome.error == "ZeroDivisionError: float division by zero"


async def test_unavailable_tools_say_so():
    async def offline(query: str) -> str:
        """Offline service.

        Args:
            query: Anything.
        """
        raise ToolUnavailableError("service is not configured")

    outcome = await ToolRegistry([offline]).invoke("offline", {"query": "x"})
    assert outcome.error == "unavailable: service is not configured"


@pytest.mark.parametrize("args", ["hello", '{"text": "hello"}', {"text": "hello"}])
async def test_small_model_argument_shapes_are_accepted(args):
    outcome = await ToolRegistry([shout]).invoke("shout", args)
    assert outcome.ok and outcome.output == "HELLO"


async def test_non_object_arguments_for_multi_argument_tools_are_refused():
    outcome = await ToolRegistry([scale]).invoke("scale", [1, 2])
    assert not outcome.ok and "must be a JSON object" in outcome.error


async def test_long_outputs_are_cut_with_a_marker():
    def big() -> str:
        """Big output."""
        return "x" * (MAX_OBSERVATION_CHARS * 3)

    outcome = await ToolRegistry([big]).invoke("big", {})
    assert len(outcome.output) <= MAX_OBSERVATION_CHARS + 60
    assert "[cut:" in outcome.output


async def test_cancellation_is_not_swallowed():
    async def slow() -> str:
        """Slow."""
        await asyncio.sleep(10)
        return "late"

    task = asyncio.create_task(ToolRegistry([slow]).invoke("slow", {}, context=ToolContext()))
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


def test_subset_keeps_only_named_tools():
    assert ToolRegistry([scale, shout]).subset(["shout", "missing"]).names() == ["shout"]
