"""Per-session notepad (JSON lines: what was asked, what was found) and descriptively named saved code files."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from pydantic import BaseModel, Field, ValidationError

NOTEPAD_FILE = "notepad.jsonl"
CODE_DIR = "code"
MAX_FIELD_CHARS = 4000
"""Longest question/finding kept per entry; longer text is cut (the notepad is prompt context)."""
MAX_TITLE_CHARS = 60
MAX_CODE_CHARS = 200_000
SESSION_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$")


class NoteEntry(BaseModel):
    """One agent turn worth remembering in this conversation."""

    question: str
    finding: str
    variables: list[str] = Field(default_factory=list)
    code_files: list[str] = Field(default_factory=list)
    created_at: str = ""


class Notepad:
    """Append-only JSON-lines file; unreadable lines are skipped so one bad write never loses the rest."""

    def __init__(self, *, path: Path) -> None:
        self.path = path

    def add(
        self,
        *,
        question: str,
        finding: str,
        variables: Sequence[str] = (),
        code_files: Sequence[str] = (),
    ) -> NoteEntry:
        if not question.strip() and not finding.strip():
            raise ValueError("a notepad entry needs a question or a finding")
        entry = NoteEntry(
            question=question[:MAX_FIELD_CHARS],
            finding=finding[:MAX_FIELD_CHARS],
            variables=list(variables),
            code_files=list(code_files),
            created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        )
        self.path.parent.mkdir(parents=True, exist_ok=True)
        line = entry.model_dump_json() + "\n"
        # One write() of an O_APPEND file: concurrent turns cannot interleave halves of lines.
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW, 0o644)
        try:
            os.write(fd, line.encode("utf-8"))
        finally:
            os.close(fd)
        return entry

    def entries(self) -> list[NoteEntry]:
        if not self.path.is_file():
            return []
        found = []
        for line in self.path.read_text(encoding="utf-8", errors="replace").splitlines():
            if not line.strip():
                continue
            try:
                found.append(NoteEntry.model_validate(json.loads(line)))
            except (json.JSONDecodeError, ValidationError):
                continue
        return found

    def render(self, max_chars: int = 2000) -> str:
        """Prompt text with the most recent entries that fit in `max_chars` (oldest dropped first)."""
        blocks: list[str] = []
        used = 0
        header = "Notepad (earlier findings in this conversation):"
        for entry in reversed(self.entries()):
            block = f"- Q: {entry.question}\n  Found: {entry.finding}"
            if entry.variables:
                block += f"\n  Variables: {', '.join(entry.variables)}"
            if entry.code_files:
                block += f"\n  Code: {', '.join(entry.code_files)}"
            if used + len(block) + 1 + len(header) > max_chars:
                if not blocks:
                    blocks.append(block[: max(0, max_chars - len(header) - 1)])
                break
            blocks.append(block)
            used += len(block) + 1
        if not blocks:
            return ""
        return "\n".join([header, *reversed(blocks)])


def slugify(title: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "_", title.lower()).strip("_")[:MAX_TITLE_CHARS].strip("_")
    return slug or "analysis"


def save_code(session_id: str, code: str, *, title: str, sessions_dir: Path) -> Path:
    """Save code under `sessions_dir/<id>/code/NNN_<title_slug>.py` and return the path."""
    if not SESSION_ID_PATTERN.match(session_id):
        raise ValueError(f"bad session id {session_id!r}")
    if len(code) > MAX_CODE_CHARS:
        raise ValueError(f"code is longer than {MAX_CODE_CHARS} characters")
    directory = sessions_dir / session_id / CODE_DIR
    directory.mkdir(parents=True, exist_ok=True)
    slug = slugify(title)
    number = len(list(directory.glob("*.py"))) + 1
    while True:
        path = directory / f"{number:03d}_{slug}.py"
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            number += 1
            continue
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            heading = " ".join(title.split())[:200]
            fh.write(f"# {heading}\n{code}" if heading else code)
        return path
