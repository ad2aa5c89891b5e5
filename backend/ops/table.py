"""Plain-text tables for the admin CLI (fixed-width columns, no dependencies)."""

from __future__ import annotations

from collections.abc import Sequence

MAX_CELL_CHARS = 90
"""Longer cells (except in the last column, which is never cut) are cut in the middle so both ends show."""


def _cell(value: object, *, last: bool = False) -> str:
    text = " ".join(str(value).split())
    if last or len(text) <= MAX_CELL_CHARS:
        return text
    half = (MAX_CELL_CHARS - 1) // 2
    return f"{text[:half]}…{text[-half:]}"


def format_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    last = len(headers) - 1
    cells = [[_cell(v, last=i == last) for i, v in enumerate(row)] for row in [headers, *rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = ["  ".join(text.ljust(width) for text, width in zip(row, widths, strict=True)).rstrip() for row in cells]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


def human_bytes(count: int) -> str:
    size = float(count)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GB"
