"""Text out of uploaded documents (PDF per page, TXT/MD, CSV/JSON descriptions) and into chunks.

Every way a document can be unusable ends in a `DocumentError` subclass whose message a user can act on.
"""

from __future__ import annotations

import csv
import io
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from langchain_text_splitters import RecursiveCharacterTextSplitter

log = logging.getLogger(__name__)

CHARS_PER_PAGE_EQUIVALENT = 3000
"""Characters that count as one page against `rag_max_pages`: the whole limit for text files (which have no
pages) and a cap on a PDF's total text (a few pages stuffed with text would otherwise evade the page limit)."""
TABLE_PREVIEW_ROWS = 20
"""Rows of a CSV/TSV shown in its description (the coder reads the full table, RAG only needs its shape)."""
JSON_PREVIEW_CHARS = 6000
SNIFF_BYTES = 8192
TABLE_SUFFIXES = frozenset({".csv", ".tsv"})
PDF_MAGIC = b"%PDF-"
UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
SUPPORTED = "PDF, TXT/MD, CSV/TSV, JSON"

Kind = Literal["pdf", "text", "table", "json"]
PageProgress = Callable[[int, int], None]


class DocumentError(ValueError):
    """A document that cannot be ingested; the message says why and what to do."""


class UnsupportedDocumentError(DocumentError):
    pass


class EncryptedDocumentError(DocumentError):
    pass


class CorruptDocumentError(DocumentError):
    pass


class EmptyDocumentError(DocumentError):
    pass


class DocumentTooLargeError(DocumentError):
    pass


class TextEncodingError(DocumentError):
    pass


@dataclass
class ExtractedDocument:
    """Text per page (`page` None for page-less kinds) plus warnings about pages that were skipped."""

    kind: Kind
    pages: list[tuple[int | None, str]]
    page_count: int
    warnings: list[str] = field(default_factory=list)


def detect_kind(path: Path) -> Kind:
    """From the bytes first (a PDF named .txt is still a PDF), then the extension."""
    with path.open("rb") as fh:
        head = fh.read(SNIFF_BYTES)
    if head.lstrip()[:5] == PDF_MAGIC:
        return "pdf"
    suffix = path.suffix.lower()
    if suffix == ".pdf":
        raise CorruptDocumentError(f"{path.name} is named .pdf but is not a PDF file (no %PDF header)")
    if suffix in TABLE_SUFFIXES:
        return "table"
    if suffix == ".json":
        return "json"
    if b"\x00" in head and not head.startswith(UTF16_BOMS):
        raise UnsupportedDocumentError(f"{path.name} is a binary file; supported: {SUPPORTED}")
    return "text"  # any other extension: accepted if it decodes as text (see decode_text)


def decode_text(data: bytes, *, name: str) -> str:
    """UTF-8 (BOM allowed) or UTF-16 with a BOM; anything else is refused rather than guessed."""
    if data.startswith(UTF16_BOMS):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError as exc:
            raise TextEncodingError(f"{name}: invalid UTF-16 text at byte {exc.start}") from exc
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise TextEncodingError(
            f"{name} is not UTF-8 text (invalid byte 0x{data[exc.start]:02x} at offset {exc.start}); "
            "re-save it as UTF-8"
        ) from exc


def extract(path: Path, *, name: str, max_pages: int, on_page: PageProgress | None = None) -> ExtractedDocument:
    """Extract a document's text; raises `DocumentError` for anything that cannot be used at all."""
    if not path.is_file():
        raise DocumentError(f"{name}: file not found")
    if path.stat().st_size == 0:
        raise EmptyDocumentError(f"{name} is empty (0 bytes)")
    kind = detect_kind(path)
    if kind == "pdf":
        return _extract_pdf(path, name=name, max_pages=max_pages, on_page=on_page)
    text = decode_text(path.read_bytes(), name=name)
    if len(text) > max_pages * CHARS_PER_PAGE_EQUIVALENT:
        raise DocumentTooLargeError(
            f"{name} has {len(text):,} characters, over the limit of {max_pages * CHARS_PER_PAGE_EQUIVALENT:,} "
            f"(APP_RAG_MAX_PAGES={max_pages} x {CHARS_PER_PAGE_EQUIVALENT} characters)"
        )
    if kind == "table":
        text = describe_table(text, name=name)
    elif kind == "json":
        text = describe_json(text, name=name)
    if not text.strip():
        raise EmptyDocumentError(f"{name} contains no text")
    if on_page:
        on_page(1, 1)
    return ExtractedDocument(kind=kind, pages=[(None, text)], page_count=1)


def _extract_pdf(path: Path, *, name: str, max_pages: int, on_page: PageProgress | None) -> ExtractedDocument:
    from pypdf import PdfReader
    from pypdf.errors import DependencyError, FileNotDecryptedError, PdfReadError, PyPdfError

    try:
        reader = PdfReader(path)
        if reader.is_encrypted:
            try:
                opened = reader.decrypt("")
            except (DependencyError, NotImplementedError) as exc:
                raise EncryptedDocumentError(f"{name} is encrypted with an unsupported scheme ({exc})") from exc
            if not opened:
                raise EncryptedDocumentError(f"{name} is password-protected; upload an unencrypted copy")
        total = len(reader.pages)
    except DocumentError:
        raise
    except FileNotDecryptedError as exc:
        raise EncryptedDocumentError(f"{name} is password-protected; upload an unencrypted copy") from exc
    except (PdfReadError, PyPdfError, ValueError, KeyError, TypeError, OSError) as exc:
        raise CorruptDocumentError(f"{name} is not a readable PDF ({type(exc).__name__}: {exc})") from exc
    if total == 0:
        raise EmptyDocumentError(f"{name} has no pages")
    if total > max_pages:
        raise DocumentTooLargeError(f"{name} has {total} pages, over the limit of {max_pages} (APP_RAG_MAX_PAGES)")

    pages: list[tuple[int | None, str]] = []
    failed: list[str] = []
    blank: list[int] = []
    chars, max_chars = 0, max_pages * CHARS_PER_PAGE_EQUIVALENT
    for number in range(1, total + 1):
        try:
            text = reader.pages[number - 1].extract_text() or ""
        except Exception as exc:  # a damaged page must not sink the document: it is reported instead
            log.warning("%s: page %d unreadable: %s", name, number, exc)
            failed.append(f"{number} ({type(exc).__name__})")
            text = ""
        else:
            if text.strip():
                pages.append((number, text))
            else:
                blank.append(number)
            chars += len(text)
            if chars > max_chars:  # a few pages stuffed with text cost as much to embed as thousands
                raise DocumentTooLargeError(
                    f"{name} has over {max_chars:,} characters of text by page {number} "
                    f"(limit: APP_RAG_MAX_PAGES={max_pages} x {CHARS_PER_PAGE_EQUIVALENT} characters)"
                )
        if on_page:
            on_page(number, total)
    if not pages:
        reason = "unreadable" if failed else "without extractable text (scanned images need OCR, not supported)"
        raise EmptyDocumentError(f"{name}: all {total} pages are {reason}")
    warnings = []
    if failed:
        warnings.append(f"{len(failed)} of {total} pages could not be read and were skipped: {', '.join(failed)}")
    if blank:
        warnings.append(f"{len(blank)} of {total} pages have no extractable text: {_ranges(blank)}")
    return ExtractedDocument(kind="pdf", pages=pages, page_count=total, warnings=warnings)


def describe_table(text: str, *, name: str) -> str:
    """A CSV/TSV as RAG sees it: shape, header and the first rows (numbers belong to the coder, not RAG)."""
    try:
        dialect: type[csv.Dialect] | csv.Dialect = csv.Sniffer().sniff(text[:SNIFF_BYTES], delimiters=",;\t|")
    except csv.Error:
        dialect = csv.excel_tab if name.lower().endswith(".tsv") else csv.excel
    rows = list(csv.reader(io.StringIO(text), dialect))
    rows = [r for r in rows if any(cell.strip() for cell in r)]
    if not rows:
        raise EmptyDocumentError(f"{name} has no rows")
    header, body = rows[0], rows[1:]
    lines = [
        f"Table {name}: {len(body)} rows x {len(header)} columns.",
        f"Columns: {', '.join(header)}",
        f"First {min(len(body), TABLE_PREVIEW_ROWS)} rows:",
    ]
    lines += [", ".join(f"{h}={v}" for h, v in zip(header, row, strict=False)) for row in body[:TABLE_PREVIEW_ROWS]]
    return "\n".join(lines)


def describe_json(text: str, *, name: str) -> str:
    """A JSON file as RAG sees it: its top-level shape and a pretty-printed prefix."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CorruptDocumentError(f"{name} is not valid JSON (line {exc.lineno}: {exc.msg})") from exc
    if isinstance(data, dict):
        shape = f"object with keys: {', '.join(map(str, list(data)[:50]))}"
    elif isinstance(data, list):
        shape = f"array of {len(data)} items"
    else:
        shape = f"single {type(data).__name__} value"
    pretty = json.dumps(data, indent=1, ensure_ascii=False, default=str)
    cut = " (truncated)" if len(pretty) > JSON_PREVIEW_CHARS else ""
    return f"JSON document {name}: {shape}.\nContent{cut}:\n{pretty[:JSON_PREVIEW_CHARS]}"


def make_splitter(*, chunk_size: int, chunk_overlap: int) -> RecursiveCharacterTextSplitter:
    if chunk_overlap >= chunk_size:
        raise ValueError(
            f"APP_RAG_CHUNK_OVERLAP ({chunk_overlap}) must be smaller than APP_RAG_CHUNK_SIZE ({chunk_size})"
        )
    return RecursiveCharacterTextSplitter(chunk_size=chunk_size, chunk_overlap=chunk_overlap)


def chunk_pages(
    pages: list[tuple[int | None, str]], *, chunk_size: int, chunk_overlap: int
) -> list[tuple[int | None, str]]:
    """Chunks never span pages, so every chunk cites exactly one page."""
    splitter = make_splitter(chunk_size=chunk_size, chunk_overlap=chunk_overlap)
    chunks: list[tuple[int | None, str]] = []
    for page, text in pages:
        chunks.extend((page, piece) for piece in splitter.split_text(text) if piece.strip())
    return chunks


def _ranges(numbers: list[int]) -> str:
    """[1, 2, 3, 7] -> '1-3, 7': keeps warnings short for long documents."""
    parts: list[str] = []
    start = prev = numbers[0]
    for n in [*numbers[1:], None]:
        if n is not None and n == prev + 1:
            prev = n
            continue
        parts.append(str(start) if start == prev else f"{start}-{prev}")
        if n is not None:
            start = prev = n
    return ", ".join(parts)
