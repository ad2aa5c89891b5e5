"""Per-session variable store: the catalog of values saved by the sandbox (Parquet/NPY/JSON/PNG, no pickle)."""

from __future__ import annotations

import json
import os
import re
import secrets
import stat
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError, field_validator

CATALOG_FILE = "catalog.json"
DEFAULT_SANDBOX_PATH = "/sandbox/vars"
"""Where the store directory is mounted inside the sandbox (load snippets use this path)."""
MAX_CATALOG_BYTES = 4 * 1024 * 1024
"""The sandbox can write in this directory; a catalog larger than this is ignored, not parsed."""
NAME_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,99}$")
EXTENSIONS = {"dataframe": ".parquet", "series": ".parquet", "ndarray": ".npy", "json": ".json", "figure": ".png"}
VariableKind = Literal["dataframe", "series", "ndarray", "json", "figure"]


class VariableMeta(BaseModel):
    """One saved variable: what it is, where its file is, and how to load it again."""

    name: str
    kind: VariableKind
    file: str
    type: str = ""
    shape: str | None = None
    columns: list[str] = Field(default_factory=list)
    dtypes: list[str] = Field(default_factory=list)
    dtype: str | None = None
    updated_at: str = ""

    @field_validator("name")
    @classmethod
    def _identifier(cls, value: str) -> str:
        if not NAME_PATTERN.match(value):
            raise ValueError(f"not a variable name: {value!r}")
        return value

    def model_post_init(self, __context: Any) -> None:
        expected = self.name + EXTENSIONS[self.kind]
        if self.file != expected:
            raise ValueError(f"file for {self.name} must be {expected!r}, got {self.file!r}")

    def load_snippet(self, *, sandbox_path: str = DEFAULT_SANDBOX_PATH) -> str:
        path = f"{sandbox_path}/{self.file}"
        if self.kind == "dataframe":
            return f"{self.name} = pd.read_parquet({path!r})"
        if self.kind == "series":
            return f"{self.name} = pd.read_parquet({path!r}).iloc[:, 0]"
        if self.kind == "ndarray":
            return f"{self.name} = np.load({path!r}, allow_pickle=False)"
        if self.kind == "json":
            return f"{self.name} = json.load(open({path!r}))"
        return f"# figure saved as {path} (image; view it, it is not reloaded as a Figure)"


def _is_regular_file(path: Path) -> bool:
    try:
        return stat.S_ISREG(path.lstat().st_mode)
    except OSError:
        return False


class VariableStore:
    """Reads and updates `root/catalog.json`; the sandbox child writes the data files themselves."""

    def __init__(self, *, root: Path, sandbox_path: str = DEFAULT_SANDBOX_PATH) -> None:
        self.root = root
        self.sandbox_path = sandbox_path

    @property
    def catalog_path(self) -> Path:
        return self.root / CATALOG_FILE

    def catalog(self) -> list[VariableMeta]:
        """Valid entries whose file exists; a damaged catalog reads as empty rather than failing a turn."""
        try:
            fd = os.open(self.catalog_path, os.O_RDONLY | os.O_NOFOLLOW)
        except OSError:
            return []
        with os.fdopen(fd, "rb") as fh:
            data = fh.read(MAX_CATALOG_BYTES + 1)
        if len(data) > MAX_CATALOG_BYTES:
            return []
        try:
            raw = json.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            return []
        entries = []
        for item in raw.get("variables", []) if isinstance(raw, dict) else []:
            try:
                meta = VariableMeta.model_validate(item)
            except (ValidationError, ValueError):
                continue
            if _is_regular_file(self.file_path(meta)):
                entries.append(meta)
        return entries

    def get(self, name: str) -> VariableMeta | None:
        return next((meta for meta in self.catalog() if meta.name == name), None)

    def file_path(self, meta: VariableMeta) -> Path:
        """Path of the data file (a plain name checked by VariableMeta; never a symlink when served)."""
        return self.root / meta.file

    def update(self, *, saved: Iterable[dict[str, Any]], deleted: Iterable[str] = ()) -> list[VariableMeta]:
        """Merge what a run saved (as reported by the child) and drop deleted names; returns the catalog."""
        current = {meta.name: meta for meta in self.catalog()}
        now = datetime.now(UTC).isoformat(timespec="seconds")
        for item in saved:
            if "error" in item:
                continue
            try:
                meta = VariableMeta.model_validate({**item, "updated_at": now})
            except (ValidationError, ValueError):
                continue
            old = current.get(meta.name)
            if old is not None and old.file != meta.file:
                self.file_path(old).unlink(missing_ok=True)
            current[meta.name] = meta
        for name in deleted:
            old = current.pop(name, None)
            if old is not None:
                self.file_path(old).unlink(missing_ok=True)
        self._write(list(current.values()))
        return list(current.values())

    def clear(self) -> None:
        for meta in self.catalog():
            self.file_path(meta).unlink(missing_ok=True)
        self.catalog_path.unlink(missing_ok=True)

    def _write(self, entries: list[VariableMeta]) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = self.root / f".{CATALOG_FILE}.{secrets.token_hex(8)}.tmp"
        payload = json.dumps({"variables": [meta.model_dump() for meta in entries]}, indent=1).encode("utf-8")
        # O_EXCL|O_NOFOLLOW: the sandbox can write in this directory, so never follow a planted symlink.
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(payload)
            tmp.replace(self.catalog_path)
        except BaseException:  # disk full: the old catalog stays whole, no temp file is left behind
            tmp.unlink(missing_ok=True)
            raise

    def render(self, max_chars: int = 2000) -> str:
        """Prompt text: what is already in memory and how to reload it; cut to `max_chars`."""
        entries = self.catalog()
        if not entries:
            return ""
        lines = ["Variables already in memory (restored automatically; reload snippets if needed):"]
        for meta in entries:
            detail = f"{meta.type or meta.kind}"
            if meta.shape:
                detail += f" shape {meta.shape}"
            if meta.columns:
                types = meta.dtypes or [""] * len(meta.columns)
                shown = ", ".join(f"{c}:{t}" for c, t in zip(meta.columns, types, strict=False))
                detail += f" columns [{shown}]"
            if meta.dtype:
                detail += f" dtype {meta.dtype}"
            lines.append(f"- {meta.name}: {detail} | {meta.load_snippet(sandbox_path=self.sandbox_path)}")
        text = "\n".join(lines)
        if len(text) <= max_chars:
            return text
        marker = "\n... (more variables not shown)"
        return text[: max(0, max_chars - len(marker))] + marker
