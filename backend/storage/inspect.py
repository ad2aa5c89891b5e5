"""File metadata for prompts: exact column names, dtypes, shape and a few rows, so generated code never guesses.

Work is bounded: tables larger than `FULL_READ_BYTES` are sampled (first `SAMPLE_ROWS` rows) and their row count
is estimated from a newline count over at most `COUNT_BYTES_LIMIT` bytes; text previews are capped in characters.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

FULL_READ_BYTES = 20 * 1024 * 1024
"""Tables up to this size are read whole: exact row count and column statistics."""
SAMPLE_ROWS = 10_000
"""Rows read from larger tables for dtypes and statistics."""
COUNT_BYTES_LIMIT = 512 * 1024 * 1024
"""Bytes scanned to estimate the row count of a large delimited file."""
SNIFF_BYTES = 64 * 1024
"""Bytes read to detect encoding and delimiter."""
TEXT_PREVIEW_CHARS = 600
"""Characters of a text/PDF/JSON file shown in the prompt."""
PDF_PREVIEW_PAGES = 2
"""Pages whose text is extracted for the preview."""
CELL_CHARS = 24
"""Longest cell text shown in head rows and examples."""
MAX_PROMPT_COLUMNS = 40
"""Columns described in detail; the rest are listed by name only."""
MAX_EXAMPLES = 3
"""Example values shown for a text column with many distinct values."""
MAX_CATEGORIES = 8
"""A text column with at most this many distinct values has them all listed (exact spelling matters)."""
DELIMITERS = ",;\t|"

Kind = Literal["table", "pdf", "text", "json", "unknown"]
TABLE_SUFFIXES = {".csv": "csv", ".tsv": "tsv", ".tab": "tsv", ".xlsx": "excel", ".xlsm": "excel", ".xls": "excel",
                  ".parquet": "parquet", ".pq": "parquet", ".jsonl": "jsonl", ".ndjson": "jsonl"}
TEXT_SUFFIXES = {".txt", ".md", ".log", ".rst", ".xml", ".html", ".yaml", ".yml", ".ini", ".cfg", ".py", ".sql"}


class FileInspectionError(ValueError):
    """The file does not exist or cannot be read as its type claims."""


class ColumnInfo(BaseModel):
    name: str
    dtype: str
    missing: int = 0
    minimum: str | None = None
    maximum: str | None = None
    unique: int | None = None
    examples: list[str] = Field(default_factory=list)


class FileDescription(BaseModel):
    """What code generation needs to know about one file; `as_prompt()` renders it compactly."""

    name: str
    kind: Kind
    format: str
    size_bytes: int
    rows: int | None = None
    rows_exact: bool = True
    columns: list[ColumnInfo] = Field(default_factory=list)
    head: str = ""
    load_hint: str = ""
    sheets: list[str] = Field(default_factory=list)
    pages: int | None = None
    preview: str = ""
    note: str = ""

    def as_prompt(self, *, max_chars: int = 3000) -> str:
        """Compact text for an LLM prompt: load line, shape, exact column names with dtypes and ranges, head rows."""
        lines = [f"File `{self.name}` ({self.format}, {_size(self.size_bytes)})"]
        if self.kind == "table":
            rows = "?" if self.rows is None else (f"{self.rows}" if self.rows_exact else f"~{self.rows}")
            lines[0] += f": {rows} rows x {len(self.columns)} columns"
            if self.load_hint:
                lines.append(f"Load: {self.load_hint}")
            if self.sheets and len(self.sheets) > 1:
                lines.append(f"Sheets: {', '.join(self.sheets)} (first sheet described)")
            lines.append("Columns (exact names, dtype):")
            for col in self.columns[:MAX_PROMPT_COLUMNS]:
                lines.append(f"- {col.name!r} {col.dtype}{_column_detail(col)}")
            if len(self.columns) > MAX_PROMPT_COLUMNS:
                rest = ", ".join(repr(c.name) for c in self.columns[MAX_PROMPT_COLUMNS:])
                lines.append(f"- more columns: {rest}")
            if self.head:
                lines.append("First rows:")
                lines.append(self.head)
        else:
            if self.pages is not None:
                lines[0] += f": {self.pages} pages"
            if self.load_hint:
                lines.append(f"Load: {self.load_hint}")
            if self.preview:
                lines.append("Start of content:")
                lines.append(self.preview)
        if self.note:
            lines.append(f"Note: {self.note}")
        text = "\n".join(lines)
        return text if len(text) <= max_chars else text[: max_chars - 4] + "\n..."


def describe_file(path: Path, *, max_rows: int = 5, name: str | None = None) -> FileDescription:
    """Describe `path` (shown as `name`, default its file name) with bounded work; raises FileInspectionError."""
    path = Path(path)
    if not path.is_file():
        raise FileInspectionError(f"no such file: {path.name}")
    shown = name or path.name
    size = path.stat().st_size
    suffix = path.suffix.lower()
    fmt = TABLE_SUFFIXES.get(suffix)
    try:
        if fmt in ("csv", "tsv"):
            return _describe_delimited(path, shown, size, max_rows, fmt)
        if fmt == "excel":
            return _describe_excel(path, shown, size, max_rows)
        if fmt == "parquet":
            return _describe_parquet(path, shown, size, max_rows)
        if fmt == "jsonl":
            return _describe_json_lines(path, shown, size, max_rows)
        if suffix == ".json":
            return _describe_json(path, shown, size, max_rows)
        if suffix == ".pdf":
            return _describe_pdf(path, shown, size)
        if suffix in TEXT_SUFFIXES or _looks_textual(path):
            return _describe_text(path, shown, size)
    except FileInspectionError:
        raise
    except Exception as exc:  # a corrupt upload must give a typed error, not a crash
        raise FileInspectionError(f"cannot read {shown} as {fmt or suffix.lstrip('.') or 'file'}: {exc}") from exc
    return FileDescription(name=shown, kind="unknown", format=suffix.lstrip(".") or "binary", size_bytes=size,
                           note="binary file of unknown type")


# --- tables -----------------------------------------------------------------------------------------------------


def _describe_delimited(path: Path, name: str, size: int, max_rows: int, fmt: str) -> FileDescription:
    import pandas as pd

    raw = _read_prefix(path, SNIFF_BYTES)
    encoding = _encoding(raw)
    sample = raw.decode(encoding, errors="replace")
    sep = "\t" if fmt == "tsv" else _delimiter(sample)
    full = size <= FULL_READ_BYTES
    frame = pd.read_csv(path, sep=sep, encoding=encoding, nrows=None if full else SAMPLE_ROWS, low_memory=False)
    args = [repr(name)] + ([f"sep={sep!r}"] if sep != "," else [])
    if encoding not in ("utf-8", "utf-8-sig"):  # pandas strips a UTF-8 BOM by itself
        args.append(f"encoding={encoding!r}")
    rows, exact = (len(frame), True) if full else (_estimate_rows(path), False)
    note = "" if full else f"statistics from the first {SAMPLE_ROWS} rows"
    return _table(name, fmt.upper(), size, frame, max_rows, rows, exact, f"pd.read_csv({', '.join(args)})", note)


def _describe_excel(path: Path, name: str, size: int, max_rows: int) -> FileDescription:
    import pandas as pd
    from openpyxl import load_workbook

    book = load_workbook(path, read_only=True, data_only=True)
    try:
        sheets = list(book.sheetnames)
        first = book[sheets[0]]
        total = (first.max_row - 1) if first.max_row else None
    finally:
        book.close()
    frame = pd.read_excel(path, sheet_name=0, nrows=SAMPLE_ROWS)
    exact = total is None or total <= SAMPLE_ROWS
    rows = len(frame) if exact else total
    note = "" if exact else f"statistics from the first {SAMPLE_ROWS} rows"
    desc = _table(name, "Excel", size, frame, max_rows, rows, exact, f"pd.read_excel({name!r})", note)
    desc.sheets = sheets
    return desc


def _describe_parquet(path: Path, name: str, size: int, max_rows: int) -> FileDescription:
    import pyarrow as pa
    import pyarrow.parquet as pq

    pfile = pq.ParquetFile(path)
    total = pfile.metadata.num_rows
    batches = pfile.iter_batches(batch_size=SAMPLE_ROWS)
    first = next(batches, None)
    frame = (first if first is not None else pa.table({n: [] for n in pfile.schema_arrow.names})).to_pandas()
    note = "" if total <= SAMPLE_ROWS else f"statistics from the first {SAMPLE_ROWS} rows"
    return _table(name, "Parquet", size, frame, max_rows, total, True, f"pd.read_parquet({name!r})", note)


def _describe_json_lines(path: Path, name: str, size: int, max_rows: int) -> FileDescription:
    import pandas as pd

    full = size <= FULL_READ_BYTES
    frame = pd.read_json(path, lines=True, nrows=None if full else SAMPLE_ROWS)
    rows, exact = (len(frame), True) if full else (_estimate_rows(path), False)
    hint = f"pd.read_json({name!r}, lines=True)"
    return _table(name, "JSON Lines", size, frame, max_rows, rows, exact, hint, "")


def _describe_json(path: Path, name: str, size: int, max_rows: int) -> FileDescription:
    import pandas as pd

    if size <= FULL_READ_BYTES:
        data = json.loads(path.read_text(encoding="utf-8", errors="replace"))
        records = data if isinstance(data, list) else None
        if records and all(isinstance(r, dict) for r in records[:100]):
            frame = pd.DataFrame.from_records(records)
            return _table(name, "JSON", size, frame, max_rows, len(frame), True, f"pd.read_json({name!r})", "")
        preview = _json_outline(data)
    else:
        preview = _read_prefix(path, TEXT_PREVIEW_CHARS).decode("utf-8", errors="replace")
    hint = f"json.load(open({name!r}))"
    return FileDescription(name=name, kind="json", format="JSON", size_bytes=size, load_hint=hint,
                           preview=preview[:TEXT_PREVIEW_CHARS])


def _table(name: str, fmt: str, size: int, frame: Any, max_rows: int, rows: int | None, exact: bool, hint: str,
           note: str) -> FileDescription:
    columns = [_column(str(col), frame[col]) for col in frame.columns[: MAX_PROMPT_COLUMNS * 4]]
    if len(frame.columns) > len(columns):
        columns += [ColumnInfo(name=str(c), dtype=str(frame[c].dtype)) for c in frame.columns[len(columns):]]
    return FileDescription(name=name, kind="table", format=fmt, size_bytes=size, rows=rows, rows_exact=exact,
                           columns=columns, head=_head(frame, max_rows), load_hint=hint, note=note)


def _column(name: str, series: Any) -> ColumnInfo:
    import pandas as pd

    info = ColumnInfo(name=name, dtype=str(series.dtype), missing=int(series.isna().sum()))
    values = series.dropna()
    if values.empty:
        return info
    if pd.api.types.is_bool_dtype(series):
        return info
    if pd.api.types.is_numeric_dtype(series) or pd.api.types.is_datetime64_any_dtype(series):
        info.minimum, info.maximum = _cell(values.min()), _cell(values.max())
        return info
    distinct = values.astype(str).unique()
    info.unique = len(distinct)
    shown = distinct if len(distinct) <= MAX_CATEGORIES else distinct[:MAX_EXAMPLES]
    info.examples = [_clip(v) for v in shown]
    return info


def _column_detail(col: ColumnInfo) -> str:
    parts: list[str] = []
    if col.minimum is not None:
        parts.append(f"range {col.minimum}..{col.maximum}")
    if col.examples:
        shown = ", ".join(repr(e) for e in col.examples)
        every = col.unique is not None and col.unique <= len(col.examples)
        parts.append(f"values {shown}" if every else f"{col.unique} distinct, e.g. {shown}")
    if col.missing:
        parts.append(f"{col.missing} missing")
    return f": {'; '.join(parts)}" if parts else ""


def _head(frame: Any, max_rows: int) -> str:
    if max_rows <= 0 or frame.empty:
        return ""
    shown = frame.head(max_rows).iloc[:, :MAX_PROMPT_COLUMNS]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([str(c) for c in shown.columns])
    for row in shown.itertuples(index=False):
        writer.writerow([_cell(v) for v in row])
    return buffer.getvalue().rstrip("\n")


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    if hasattr(value, "item") and not isinstance(value, str):
        try:
            item = value.item()
            return f"{item:.6g}" if isinstance(item, float) else _clip(str(item))
        except (ValueError, AttributeError):
            pass
    return _clip(str(value))


def _clip(text: str) -> str:
    text = text.replace("\n", " ")
    return text if len(text) <= CELL_CHARS else text[: CELL_CHARS - 3] + "..."


# --- documents --------------------------------------------------------------------------------------------------


def _describe_pdf(path: Path, name: str, size: int) -> FileDescription:
    from pypdf import PdfReader

    reader = PdfReader(path)
    pages = len(reader.pages)
    text = "\n".join((reader.pages[i].extract_text() or "") for i in range(min(pages, PDF_PREVIEW_PAGES)))
    return FileDescription(name=name, kind="pdf", format="PDF", size_bytes=size, pages=pages,
                           load_hint=f"pypdf.PdfReader({name!r})", preview=text.strip()[:TEXT_PREVIEW_CHARS])


def _describe_text(path: Path, name: str, size: int) -> FileDescription:
    raw = _read_prefix(path, SNIFF_BYTES)
    encoding = _encoding(raw)
    text = raw.decode(encoding, errors="replace")
    lines = _count_newlines(path) + (0 if raw.endswith(b"\n") or not raw else 1)
    exact = size <= COUNT_BYTES_LIMIT
    return FileDescription(name=name, kind="text", format=path.suffix.lstrip(".").upper() or "text", size_bytes=size,
                           rows=lines, rows_exact=exact, load_hint=f"open({name!r}, encoding={encoding!r}).read()",
                           preview=text[:TEXT_PREVIEW_CHARS], note=f"{lines} lines")


def _json_outline(data: Any) -> str:
    if isinstance(data, dict):
        keys = ", ".join(f"{k!r}: {type(v).__name__}" for k, v in list(data.items())[:30])
        return f"object with keys {{{keys}}}"
    if isinstance(data, list):
        first = json.dumps(data[0])[:TEXT_PREVIEW_CHARS] if data else ""
        return f"list of {len(data)} items; first: {first}"
    return json.dumps(data)[:TEXT_PREVIEW_CHARS]


# --- helpers ----------------------------------------------------------------------------------------------------


def _read_prefix(path: Path, limit: int) -> bytes:
    with path.open("rb") as handle:
        return handle.read(limit)


def _encoding(raw: bytes) -> str:
    if raw.startswith(b"\xef\xbb\xbf"):
        return "utf-8-sig"
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(raw) - 4:  # not just a multibyte char cut at the sample's end
            return "latin-1"
    return "utf-8"


def _delimiter(sample: str) -> str:
    try:
        return csv.Sniffer().sniff(sample[:8192], delimiters=DELIMITERS).delimiter
    except csv.Error:
        return ","


def _count_newlines(path: Path) -> int:
    count, seen, cr = 0, 0, 0
    with path.open("rb") as handle:
        while seen < COUNT_BYTES_LIMIT and (chunk := handle.read(1 << 20)):
            count += chunk.count(b"\n")
            cr += chunk.count(b"\r")
            seen += len(chunk)
    return count if count else cr  # old-Mac files end lines with CR only


def _estimate_rows(path: Path) -> int:
    counted = _count_newlines(path)
    size = path.stat().st_size
    if size > COUNT_BYTES_LIMIT:
        counted = int(counted * size / COUNT_BYTES_LIMIT)
    return max(counted - 1, 0)


def _looks_textual(path: Path) -> bool:
    raw = _read_prefix(path, 4096)
    if b"\x00" in raw:
        return False
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _size(n: int) -> str:
    if n < 1024:
        return f"{n} B"
    value = n / 1024
    for unit in ("KB", "MB"):
        if value < 1024:
            return f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GB"
