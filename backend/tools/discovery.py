"""Plugin discovery for the tool registry: load modules, files or folders and pick out their tool candidates."""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from types import ModuleType
from typing import Any

from langchain_core.tools import BaseTool

PLUGIN_MODULE_PREFIX = "agent_plugins"
"""Package name under which plugin files loaded from folders are registered in `sys.modules`."""


def load_plugin(path: str) -> Iterable[ModuleType]:
    """A folder yields each `*.py` not starting with `_`; a `.py` file itself; anything else is a module name."""
    target = Path(path).expanduser()
    if target.is_dir():
        for file in sorted(target.glob("*.py")):
            if not file.name.startswith("_"):
                yield _load_file(file)
    elif target.suffix == ".py" and target.is_file():
        yield _load_file(target)
    else:
        yield importlib.import_module(path)


def _load_file(file: Path) -> ModuleType:
    digest = hashlib.sha256(str(file.resolve()).encode()).hexdigest()[:8]
    name = f"{PLUGIN_MODULE_PREFIX}.{file.stem}_{digest}"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, file)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {file}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


def module_tools(module: ModuleType) -> Iterable[BaseTool | Callable[..., Any]]:
    """`BaseTool` objects and public functions defined in the module (only names in `__all__` if it has one)."""
    exported = getattr(module, "__all__", None)
    for attr, value in vars(module).items():
        if attr.startswith("_") or (exported is not None and attr not in exported):
            continue
        if isinstance(value, BaseTool) or (inspect.isfunction(value) and value.__module__ == module.__name__):
            yield value
