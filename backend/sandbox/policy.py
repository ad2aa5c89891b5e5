"""Static AST check run before sandboxed code: a first filter that tells the LLM *why* code is refused.

It resolves full dotted paths through import aliases (`import os as o; o.system(...)` is `os.system`),
so it is not fooled the way a top-level-name check is. It is not the security boundary — the OS layers
in `isolation.py` are — and the escape suite runs payloads with this check bypassed to prove that.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass

BLOCKED_MODULES = frozenset(
    {
        "subprocess", "socket", "ssl", "ctypes", "cffi", "multiprocessing", "importlib", "imp", "builtins",
        "pty", "signal", "resource", "fcntl", "termios", "mmap", "posix", "_posixsubprocess", "pwd", "grp",
        "http", "urllib", "urllib3", "requests", "httpx", "aiohttp", "ftplib", "smtplib", "telnetlib",
        "socketserver", "xmlrpc", "asyncio", "selectors", "select", "webbrowser", "pickle", "shelve",
        "marshal", "dill", "joblib", "code", "codeop", "gc", "inspect", "faulthandler", "sysconfig",
        "threading", "_thread", "concurrent", "runpy", "pydoc", "zipimport", "tracemalloc", "ptrace",
    }
)  # fmt: skip
"""Importing any of these (or a submodule) is refused."""

BLOCKED_NAMES = frozenset(
    {
        "os.system", "os.popen", "os.fork", "os.forkpty", "os.vfork", "os.kill", "os.killpg", "os.abort",
        "os.chroot", "os.symlink", "os.link", "os.chdir", "os.fchdir", "os.setuid", "os.setgid",
        "os.seteuid", "os.setegid", "os.setreuid", "os.setresuid", "os.setgroups", "os.putenv",
        "os.unsetenv", "os.register_at_fork", "os.pidfd_open", "os.memfd_create", "os.mkfifo", "os.mknod",
        "os.plock", "os.nice", "os.sched_setaffinity", "os.setsid", "os.setpgid", "shutil.chown",
        "sys.modules", "sys._getframe", "sys.settrace", "sys.setprofile", "sys.addaudithook", "sys.meta_path",
        "sys.path_hooks", "sys.setrecursionlimit", "sys.breakpointhook", "sys.stdin",
        "sys.__stdout__", "sys.__stderr__", "pathlib.Path.symlink_to", "pathlib.Path.hardlink_to",
        "operator.attrgetter", "operator.methodcaller",
    }
)  # fmt: skip
"""Dotted names refused wherever they appear (called or not)."""

BLOCKED_PREFIXES = ("os.exec", "os.spawn", "os.posix_spawn", "os.wait", "pathlib.Path.chmod", "os.set")
"""Families of dotted names refused by prefix (os.execv, os.spawnlp, ...)."""

BLOCKED_BUILTINS = frozenset(
    {"eval", "exec", "compile", "__import__", "globals", "locals", "vars", "breakpoint", "input", "help"}
)  # fmt: skip
"""Builtins refused as bare names."""

ATTRIBUTE_BUILTINS = frozenset({"getattr", "setattr", "delattr", "hasattr"})
"""Allowed only with a literal, non-dunder attribute name."""

ALLOWED_DUNDERS = frozenset(
    {"__name__", "__doc__", "__version__", "__init__", "__len__", "__str__", "__repr__", "__qualname__", "__main__"}
)
"""Dunder attributes/names that carry no escape path; every other `__x__` is refused."""

BLOCKED_ATTRIBUTES = frozenset(
    {"f_globals", "f_locals", "f_back", "f_builtins", "f_code", "gi_frame", "gi_code", "cr_frame", "ag_frame",
     "tb_frame", "tb_next", "co_code", "func_globals", "mro"}
)  # fmt: skip
"""Non-dunder attributes that expose frames, code or the class hierarchy."""

ALLOWED_PATH_PREFIXES = ("/sandbox/work/", "/sandbox/vars/", "/tmp/")  # noqa: S108  (the sandbox's private /tmp)
"""Absolute paths code may name: the workdir, the variable store and the private /tmp."""
PATH_LITERAL = re.compile(r"^(/[\w.~-]|~)|(^|[/\\])\.\.([/\\]|$)")
DUNDER = re.compile(r"^__\w+__$")

HINTS = {
    "module": "that module is not available in the sandbox; use pandas/numpy/matplotlib on files in the workdir",
    "name": "not allowed in the sandbox; work with pandas/pathlib on files in the workdir",
    "builtin": "dynamic code and introspection builtins are disabled; write the code directly",
    "dunder": "dunder/introspection attributes are disabled; use type(), isinstance() or the public API",
    "path": "only files in the workdir are reachable; use relative names such as 'sales.csv'",
    "attribute": "use a literal attribute name (obj.name) instead of a computed or dunder one",
}


@dataclass(frozen=True)
class Violation:
    """One refused construct: where, what, and a hint the LLM can act on."""

    line: int
    what: str
    category: str

    def message(self) -> str:
        return f"blocked: {self.what} (line {self.line}) — {HINTS[self.category]}"


def check(code: str) -> list[Violation]:
    """All violations in `code`; syntax errors are left to the interpreter, which reports them better."""
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError):
        return []
    checker = _Checker()
    checker.visit(tree)
    return checker.found


def explain(violations: list[Violation]) -> str:
    return "\n".join(dict.fromkeys(v.message() for v in violations))


def _blocked_module(name: str) -> bool:
    return name.split(".")[0] in BLOCKED_MODULES or name in BLOCKED_MODULES


def _blocked_name(dotted: str) -> bool:
    return dotted in BLOCKED_NAMES or dotted.startswith(BLOCKED_PREFIXES) or _blocked_module(dotted)


class _Checker(ast.NodeVisitor):
    def __init__(self) -> None:
        self.aliases: dict[str, str] = {}
        self.found: list[Violation] = []

    def _flag(self, node: ast.AST, what: str, category: str) -> None:
        self.found.append(Violation(line=getattr(node, "lineno", 0), what=what, category=category))

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            if _blocked_module(alias.name):
                self._flag(node, f"import {alias.name}", "module")
            local = alias.asname or alias.name.split(".")[0]
            self.aliases[local] = alias.name if alias.asname else alias.name.split(".")[0]

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        module = node.module or ""
        if node.level or _blocked_module(module):
            self._flag(node, f"from {'.' * node.level}{module} import ...", "module")
        for alias in node.names:
            dotted = f"{module}.{alias.name}"
            if alias.name == "*":
                if module in ("os", "sys", "shutil", "pathlib"):
                    self._flag(node, f"from {module} import *", "name")
                continue
            if _blocked_name(dotted) or _blocked_module(dotted) or DUNDER.match(alias.name):
                self._flag(node, dotted, "name")
            self.aliases[alias.asname or alias.name] = dotted

    def _dotted(self, node: ast.expr) -> str | None:
        """Resolve `a.b.c` through import aliases to a full dotted path, or None if not name-rooted."""
        parts: list[str] = []
        while isinstance(node, ast.Attribute):
            parts.append(node.attr)
            node = node.value
        if isinstance(node, ast.Name) and node.id in self.aliases:
            return ".".join([self.aliases[node.id], *reversed(parts)])
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in self.aliases:
            return ".".join([self.aliases[node.func.id], *reversed(parts)])  # Path("x").symlink_to
        return None

    def visit_Attribute(self, node: ast.Attribute) -> None:
        dunder = DUNDER.match(node.attr) and node.attr not in ALLOWED_DUNDERS
        if dunder or node.attr in BLOCKED_ATTRIBUTES or node.attr in ("symlink_to", "hardlink_to"):
            self._flag(node, f".{node.attr}", "dunder")
        dotted = self._dotted(node)
        if dotted and _blocked_name(dotted):
            self._flag(node, dotted, "name")
        self.generic_visit(node)

    def visit_Name(self, node: ast.Name) -> None:
        if node.id in BLOCKED_BUILTINS and node.id not in self.aliases:
            self._flag(node, f"{node.id}()", "builtin")
        elif DUNDER.match(node.id) and node.id not in ALLOWED_DUNDERS:
            self._flag(node, node.id, "dunder")
        elif node.id in self.aliases and _blocked_name(self.aliases[node.id]):
            self._flag(node, self.aliases[node.id], "name")

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        if isinstance(func, ast.Name) and func.id in ATTRIBUTE_BUILTINS and len(node.args) >= 2:
            attr = node.args[1]
            if not (isinstance(attr, ast.Constant) and isinstance(attr.value, str)):
                self._flag(node, f"{func.id}() with a computed name", "attribute")
        for arg in [*node.args, *(kw.value for kw in node.keywords)]:
            text = _literal_text(arg)
            if text is not None and PATH_LITERAL.search(text) and not text.startswith(ALLOWED_PATH_PREFIXES):
                self._flag(arg, f"path {text[:80]!r}", "path")
        self.generic_visit(node)

    def visit_Constant(self, node: ast.Constant) -> None:
        if isinstance(node.value, str) and DUNDER.match(node.value) and node.value not in ALLOWED_DUNDERS:
            self._flag(node, f"string {node.value!r}", "dunder")


def _literal_text(node: ast.expr) -> str | None:
    """The text of a string literal, or the literal start of an f-string."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr) and node.values:
        first = node.values[0]
        if isinstance(first, ast.Constant) and isinstance(first.value, str):
            return first.value
    return None
