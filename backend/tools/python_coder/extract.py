"""Pull the Python program out of a model reply (fenced blocks, unclosed fences, bare code); spot looping replies."""

from __future__ import annotations

import ast
import re

FENCE = re.compile(r"```[ \t]*([\w+-]*)[^\n]*\n(.*?)(?:\n[ \t]*```|\Z)", re.DOTALL)
PYTHON_TAGS = {"", "python", "python3", "py", "ipython", "pycon"}
SHELL_LINE = re.compile(r"^\s*(?:!|%|pip install|conda install)")
REPEAT_TIMES = 3
"""Identical consecutive copies of a block that mark a reply as stuck in a loop."""
MAX_REPEAT_PERIOD = 8
"""Longest repeated block (in lines) looked for."""
MIN_REPEAT_CHARS = 12
"""Blocks shorter than this (closing brackets, blank lines) may legitimately repeat."""


def extract_code(reply: str) -> str:
    """The most plausible program in `reply`; empty string when there is none.

    Prefers the longest fenced Python block; accepts a fence left open (generation stopped early) and, with no
    fence at all, the longest suffix of the reply that parses as Python. Notebook magics and pip lines are dropped.
    """
    text = reply.replace("\r\n", "\n").strip()
    blocks = [(tag.lower(), body) for tag, body in FENCE.findall(text)]
    python = [body for tag, body in blocks if tag in PYTHON_TAGS]
    if python:
        code = max(python, key=len)
    elif blocks:
        return ""
    else:
        code = _bare_code(text)
    return _clean(code)


def syntax_error(code: str) -> str | None:
    """A one-line description of the first syntax error, or None when `code` parses."""
    try:
        ast.parse(code)
    except SyntaxError as exc:
        line = f" (line {exc.lineno})" if exc.lineno else ""
        snippet = f": {exc.text.strip()}" if exc.text else ""
        return f"SyntaxError: {exc.msg}{line}{snippet}"
    return None


def _bare_code(text: str) -> str:
    lines = text.split("\n")
    for start in range(len(lines)):
        candidate = "\n".join(lines[start:])
        if candidate.strip() and syntax_error(candidate) is None and _looks_like_code(candidate):
            return candidate
    return ""


def _looks_like_code(text: str) -> bool:
    return any(tok in text for tok in ("print(", "import ", "=", "def "))


def _clean(code: str) -> str:
    code = code.rstrip()
    if code.endswith("```"):  # closing fence glued to the last line
        code = code[:-3]
    kept = [line for line in code.split("\n") if not SHELL_LINE.match(line)]
    return "\n".join(kept).strip("\n")


def repetition_start(text: str) -> int | None:
    """Line index from which the reply only repeats itself, or None.

    Small models sometimes loop on a block of lines until the token limit (minutes on a CPU). The check looks at
    complete lines at the end of `text` for a block of 1..`MAX_REPEAT_PERIOD` lines repeated `REPEAT_TIMES` times;
    the returned index keeps the block's first occurrence.
    """
    lines = text.split("\n")[:-1]
    count = len(lines)
    for period in range(1, MAX_REPEAT_PERIOD + 1):
        span = period * REPEAT_TIMES
        if count < span:
            break
        block = lines[count - period :]
        if sum(len(line.strip()) for line in block) < MIN_REPEAT_CHARS:
            continue
        if all(lines[count - span + i] == block[i % period] for i in range(span)):
            return count - span + period
    return None
