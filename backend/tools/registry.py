"""One registry of the tools agents may call: built-ins, `@tool` objects and functions auto-discovered in plugins.

A tool's JSON schema comes from its type hints and docstring (Google-style `Args:` become argument
descriptions). Per-run facts (user, conversation, files, event sink, LLM) reach a tool through the
`RunnableConfig` it may declare as a parameter (`tool_context(config)`), never through arguments the
LLM sees or could forge. `invoke` turns every failure into an observation string: a tool never crashes a run.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from langchain_core.runnables import RunnableConfig
from langchain_core.tools import BaseTool, StructuredTool
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import ValidationError

from backend.tools.discovery import load_plugin, module_tools

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel

    from backend.agents.events import RunEvent
    from backend.core.settings import Settings

logger = logging.getLogger(__name__)

TOOL_CONTEXT_KEY = "tool_context"
"""Key under `config["configurable"]` that carries the run's `ToolContext` to tools."""
MAX_OBSERVATION_CHARS = 4000
"""Longest tool output handed back to the LLM; the rest is cut with a marker."""
TASK_TOOL_METADATA = "accepts_task"
"""Tool metadata flag: its one argument is a task in plain words, so a plan step may call it directly."""
DESCRIBE_CHARS = 240
"""Longest tool description in the text-protocol tool list (small models need the gist, not the manual)."""


def _ignore_event(event: RunEvent) -> None:
    """Default event sink: a tool run outside an agent has nobody listening."""


@dataclass(frozen=True, kw_only=True)
class ToolContext:
    """Per-run facts a tool may need but the LLM must neither see nor choose."""

    run_id: str = ""
    user_id: str = ""
    session_id: str = ""
    """The conversation id: sandbox session, notepad and variable store are keyed by it."""
    files: Mapping[str, Path] = field(default_factory=dict)
    """Uploaded files of this turn: sanitised name -> path."""
    llm: BaseChatModel | None = None
    settings: Settings | None = None
    history: str = ""
    notepad: str = ""
    variables: str = ""
    plan: str = ""
    """The plan step being executed and what earlier steps produced (Plan-Execute only)."""
    emit: Callable[[RunEvent], None] = _ignore_event


def tool_context(config: RunnableConfig | None) -> ToolContext:
    """The `ToolContext` a registry invocation put into `config`; an empty one when called directly."""
    value = (config or {}).get("configurable", {}).get(TOOL_CONTEXT_KEY)
    return value if isinstance(value, ToolContext) else ToolContext()


class ToolUnavailableError(RuntimeError):
    """The tool's backing module or service is not installed or not configured; the message says what is missing."""


@dataclass(frozen=True)
class ToolOutcome:
    """What one call produced, as the LLM will read it, plus facts for the trace."""

    ok: bool
    output: str
    error: str | None = None
    duration_ms: float = 0.0

    @property
    def observation(self) -> str:
        return self.output if self.ok else f"Error: {self.error}"


class ToolRegistry:
    """Name -> tool, in registration order; discovery problems are kept in `discovery_errors`, not raised."""

    def __init__(self, tools: Iterable[BaseTool | Callable[..., Any]] = ()) -> None:
        self._tools: dict[str, BaseTool] = {}
        self.discovery_errors: list[str] = []
        for item in tools:
            self.register(item)

    # --- registration -----------------------------------------------------------------
    def register(
        self, item: BaseTool | Callable[..., Any], *, name: str | None = None, replace: bool = False
    ) -> BaseTool:
        """Add a `BaseTool` or a plain (sync or async) function with a docstring; returns the tool."""
        tool = item if isinstance(item, BaseTool) else _function_tool(item, name=name)
        if tool.name in self._tools and not replace:
            raise ValueError(f"a tool named {tool.name!r} is already registered")
        self._tools[tool.name] = tool
        return tool

    def discover(self, paths: Iterable[str]) -> list[str]:
        """Load tools from plugin modules (`pkg.mod`), files (`x.py`) or folders of files; returns names added.

        From each module: every `BaseTool` object (`@tool`) and every public function defined there with a
        docstring (only names in `__all__` when the module defines it). Broken plugins are skipped and noted.
        """
        added: list[str] = []
        for path in paths:
            try:
                modules = list(load_plugin(path))
            except Exception as exc:
                self._note(f"plugin {path!r} failed to load: {type(exc).__name__}: {exc}")
                continue
            for module in modules:
                for candidate in module_tools(module):
                    try:
                        added.append(self.register(candidate).name)
                    except Exception as exc:  # a broken plugin function must not stop discovery
                        label = getattr(candidate, "name", None) or getattr(candidate, "__name__", repr(candidate))
                        self._note(f"plugin {module.__name__}: skipped {label!r}: {exc}")
        return added

    def _note(self, message: str) -> None:
        logger.warning(message)
        self.discovery_errors.append(message)

    # --- lookup -----------------------------------------------------------------------
    def __contains__(self, name: object) -> bool:
        return name in self._tools

    def __len__(self) -> int:
        return len(self._tools)

    def names(self) -> list[str]:
        return list(self._tools)

    def get(self, name: str) -> BaseTool | None:
        return self._tools.get(name)

    @property
    def tools(self) -> list[BaseTool]:
        return list(self._tools.values())

    def subset(self, names: Iterable[str]) -> ToolRegistry:
        """A registry with only the named tools that exist here (order kept)."""
        wanted = set(names)
        return ToolRegistry(tool for tool in self.tools if tool.name in wanted)

    def schemas(self) -> list[dict[str, Any]]:
        """OpenAI-style function schemas, as `bind_tools` sends them; injected parameters are not included."""
        return [convert_to_openai_tool(tool) for tool in self.tools]

    def describe(self) -> str:
        """One line per tool (`name(arg: type, ...): description`) for prompts of models without tool calling."""
        lines = []
        for schema in self.schemas():
            fn = schema["function"]
            props = fn.get("parameters", {}).get("properties", {})
            args = ", ".join(f"{arg}: {spec.get('type', 'any')}" for arg, spec in props.items())
            summary = truncate(" ".join((fn.get("description") or "").split()), DESCRIBE_CHARS)
            lines.append(f"- {fn['name']}({args}): {summary}")
        return "\n".join(lines)

    # --- invocation -------------------------------------------------------------------
    async def invoke(
        self, name: str, args: Any, *, context: ToolContext | None = None, config: RunnableConfig | None = None
    ) -> ToolOutcome:
        """Run one tool call; every failure (unknown tool, bad arguments, exception) becomes an error outcome."""
        started = time.perf_counter()
        tool = self._tools.get(name)
        if tool is None:
            return _failed(f"unknown tool {name!r}; available tools: {', '.join(self._tools) or 'none'}", started)
        args = _as_arguments(tool, args)
        if not isinstance(args, dict):
            return _failed(f"arguments for {name!r} must be a JSON object, got {type(args).__name__}", started)
        merged: RunnableConfig = {**(config or {})}
        merged["configurable"] = {**merged.get("configurable", {}), TOOL_CONTEXT_KEY: context or ToolContext()}
        try:
            result = await tool.ainvoke(args, merged)
        except asyncio.CancelledError:
            raise
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'args'}: {e['msg']}" for e in exc.errors())
            expected = json.dumps(_properties(tool))
            return _failed(f"invalid arguments for {name!r}: {problems}. Expected: {expected}", started)
        except ToolUnavailableError as exc:
            return _failed(f"unavailable: {exc}", started)
        except Exception as exc:
            logger.info("tool %s failed: %s: %s", name, type(exc).__name__, exc)
            return _failed(f"{type(exc).__name__}: {exc}", started)
        return ToolOutcome(ok=True, output=render_output(result), duration_ms=_ms(started))


def _as_arguments(tool: BaseTool, args: Any) -> Any:
    """Accept what small models send: a JSON string of the object, or the bare value of a one-argument tool."""
    if isinstance(args, str):
        try:
            decoded = json.loads(args)
        except ValueError:
            decoded = None
        if isinstance(decoded, dict):
            return decoded
    if isinstance(args, dict) or args is None:
        return {} if args is None else args
    properties = list(_properties(tool))
    return {properties[0]: args} if len(properties) == 1 else args


def task_argument(tool: BaseTool) -> str | None:
    """The argument to put a plain-words task in, for tools flagged with `TASK_TOOL_METADATA`; else None."""
    properties = list(_properties(tool))
    if not (tool.metadata or {}).get(TASK_TOOL_METADATA) or len(properties) != 1:
        return None
    return properties[0]


def _properties(tool: BaseTool) -> dict[str, Any]:
    schema: Any = tool.tool_call_schema
    if isinstance(schema, dict):
        return dict(schema.get("properties", {}))
    as_json = schema.model_json_schema() if hasattr(schema, "model_json_schema") else schema.schema()
    return dict(as_json.get("properties", {}))


def render_output(result: Any, *, max_chars: int = MAX_OBSERVATION_CHARS) -> str:
    """Text the LLM reads for a tool's return value, cut to `max_chars`."""
    if isinstance(result, str):
        text = result
    elif hasattr(result, "model_dump_json"):
        text = result.model_dump_json()
    else:
        try:
            text = json.dumps(result, default=str, ensure_ascii=False)
        except (TypeError, ValueError):
            text = str(result)
    return truncate(text or "(no output)", max_chars)


def truncate(text: str, max_chars: int) -> str:
    if len(text) <= max_chars:
        return text
    return text[: max_chars - 40] + f"\n… [cut: {len(text) - max_chars + 40} more chars]"


def _failed(error: str, started: float) -> ToolOutcome:
    return ToolOutcome(ok=False, output="", error=truncate(error, MAX_OBSERVATION_CHARS), duration_ms=_ms(started))


def _ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000


def _function_tool(fn: Callable[..., Any], *, name: str | None) -> BaseTool:
    if not callable(fn) or not inspect.isroutine(fn):
        raise TypeError(f"{fn!r} is neither a BaseTool nor a function")
    if not (fn.__doc__ or "").strip():
        raise ValueError(f"function {fn.__name__!r} has no docstring: the LLM needs one to know what it does")
    is_async = inspect.iscoroutinefunction(fn)
    return StructuredTool.from_function(
        func=None if is_async else fn,
        coroutine=fn if is_async else None,
        name=name or fn.__name__,
        parse_docstring=True,
        error_on_invalid_docstring=False,
    )
