"""The built-in tools (python_coder, rag_search, web_search, calculator) and `build_registry`, which adds plugins.

A built-in whose module cannot be imported is still registered, under its name, as a tool that answers
"unavailable: ..." so the agent learns it is missing instead of the server failing to start.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from langchain_core.runnables import RunnableConfig
from langchain_core.tools import BaseTool, StructuredTool

from backend.core.settings import Settings
from backend.tools.registry import TASK_TOOL_METADATA, ToolRegistry, ToolUnavailableError, tool_context, truncate
from backend.tools.safe_math import evaluate, format_number

if TYPE_CHECKING:
    from backend.tools.python_coder import CoderResult, SandboxRunner

logger = logging.getLogger(__name__)

CODER_OUTPUT_CHARS = 3000
"""Longest program output the python_coder tool hands back to the agent."""
SEARCH_TOOLS = (("backend.tools.rag", "rag_search"), ("backend.tools.web_search", "web_search"))


def calculator(expression: str) -> str:
    """Evaluate an arithmetic expression on numbers you already have (not data in files: use python_coder).

    Supports + - * / // % ** (or ^), parentheses, sqrt, log, log10, exp, sin, cos, tan, abs, round, min, max,
    sum, mean, floor, ceil, factorial and the constants pi, e, tau.

    Args:
        expression: The expression, for example "sqrt(2) * (3 + 4)^2".
    """
    return format_number(evaluate(expression))


def make_python_coder(sandbox_for: Callable[[Settings], SandboxRunner]) -> BaseTool:
    """The python_coder tool, running code in the sandbox `sandbox_for(settings)` returns."""

    async def python_coder(question: str, config: RunnableConfig) -> str:
        """Write and run Python to compute an answer from the attached files or the variables saved earlier.

        Use it for anything that needs the data: statistics, filtering, grouping, models, plots, saved results.

        Args:
            question: What to compute, in plain words, with every detail that matters (file, columns, filters,
                rounding, output format).
        """
        ctx = tool_context(config)
        if ctx.settings is None or ctx.llm is None or not ctx.session_id:
            raise ToolUnavailableError("python_coder needs a run context (settings, model, session)")
        try:
            from backend.tools.python_coder import CoderContext, run_coder
        except ImportError as exc:
            raise ToolUnavailableError(f"the python coder is not installed ({exc})") from exc
        result = await run_coder(
            question=question, session_id=ctx.session_id, llm=ctx.llm, sandbox=sandbox_for(ctx.settings),
            settings=ctx.settings, files=ctx.files, on_event=ctx.emit, run_id=ctx.run_id,
            context=CoderContext(history=ctx.history, notepad=ctx.notepad, variables=ctx.variables, plan=ctx.plan),
        )
        return coder_observation(result)

    return _task_tool(python_coder)


class CoderFailedError(RuntimeError):
    """The coder spent its attempts without a working program; the message carries the last error and output."""


def coder_observation(result: CoderResult) -> str:
    """What the agent reads: the program's output (and files made), or why it failed (raised as an error)."""
    made = [*result.figures, *result.files]
    extra = f"\nFiles created: {', '.join(made)}" if made else ""
    if not result.success:
        shown = f"\nLast output:\n{truncate(result.output, CODER_OUTPUT_CHARS)}" if result.output else ""
        raise CoderFailedError(f"{result.error or 'no working program'}{shown}{extra}")
    return f"{truncate(result.output or '(the program printed nothing)', CODER_OUTPUT_CHARS)}{extra}"


def build_registry(*, settings: Settings, sandbox: SandboxRunner | None = None) -> ToolRegistry:
    """Built-ins, then every tool found in `settings.tool_plugin_paths`; `sandbox=None` starts one on first use."""
    registry = ToolRegistry([make_python_coder(_sandbox_factory(sandbox))])
    registry.register(StructuredTool.from_function(calculator, parse_docstring=True))
    for module, name in SEARCH_TOOLS:
        registry.register(_import_tool(module, name))
    registry.discover(settings.tool_plugin_paths)
    return registry


def _sandbox_factory(sandbox: SandboxRunner | None) -> Callable[[Settings], SandboxRunner]:
    holder: dict[str, Any] = {"sandbox": sandbox}

    def get(settings: Settings) -> SandboxRunner:
        if holder["sandbox"] is None:
            try:
                from backend.sandbox.manager import SandboxManager
            except ImportError as exc:
                raise ToolUnavailableError(f"the sandbox is not installed ({exc})") from exc
            holder["sandbox"] = SandboxManager(settings=settings)
        runner: SandboxRunner = holder["sandbox"]
        return runner

    return get


def _import_tool(module: str, name: str) -> BaseTool:
    try:
        func = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as exc:
        logger.warning("tool %s unavailable: %s", name, exc)
        return _unavailable(name, f"{module}.{name} could not be loaded ({type(exc).__name__}: {exc})")
    return _task_tool(func)


def _task_tool(func: Callable[..., Any]) -> BaseTool:
    """A tool whose one argument is a task in words, so Plan-Execute may call it directly for a step."""
    return StructuredTool.from_function(coroutine=func, parse_docstring=True, metadata={TASK_TOOL_METADATA: True})


def _unavailable(name: str, reason: str) -> BaseTool:
    async def unavailable(query: str) -> str:
        raise ToolUnavailableError(reason)

    return StructuredTool.from_function(
        coroutine=unavailable, name=name, description=f"(currently unavailable: {reason})"
    )
