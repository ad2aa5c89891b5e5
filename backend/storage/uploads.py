"""Storing uploads safely: size-limited copy, content sniffing, filename sanitising and an xlsx zip-bomb check."""

from __future__ import annotations

import hashlib
import re
import unicodedata
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Literal

from defusedxml import DefusedXmlException
from defusedxml import ElementTree as SafeET

MAX_FILENAME_CHARS = 120
"""Longest stored display name; longer names are cut, keeping the extension."""
MAX_EXTENSION_CHARS = 12
DEFAULT_FILENAME = "file"
SNIFF_BYTES = 64 * 1024
"""Bytes read from the start of a file to decide what it really is."""
COPY_CHUNK_BYTES = 1024 * 1024
PDF_HEADER_WINDOW = 1024
"""PDF readers accept `%PDF-` anywhere in the first KiB."""
XLSX_MAX_ENTRIES = 10_000
"""Zip entries an xlsx may have."""
XLSX_MAX_UNCOMPRESSED_BYTES = 1024 * 1024 * 1024
"""Total declared inflated size of an xlsx (zipfile never inflates an entry past its declared size)."""
XLSX_MAX_RATIO = 200
"""Compression ratio above which an entry is treated as a zip bomb (real sheets compress ~10-30x)."""
XLSX_RATIO_MIN_BYTES = 1024 * 1024
"""Entries smaller than this inflated are not ratio-checked (tiny XML parts compress extremely well)."""
XLSX_CONTENT_TYPES_MAX_BYTES = 1024 * 1024
TEXT_CONTROL_RATIO = 0.01
"""Share of control bytes above which a would-be text file is called binary."""
WINDOWS_RESERVED = frozenset(
    {"CON", "PRN", "AUX", "NUL", *(f"COM{i}" for i in range(1, 10)), *(f"LPT{i}" for i in range(1, 10))}
)

FileKind = Literal["csv", "tsv", "json", "jsonl", "xlsx", "parquet", "pdf", "txt", "md"]
Family = Literal["text", "pdf", "zip", "parquet", "binary"]

KIND_BY_EXTENSION: dict[str, FileKind] = {
    ".csv": "csv", ".tsv": "tsv", ".tab": "tsv", ".json": "json", ".jsonl": "jsonl", ".ndjson": "jsonl",
    ".xlsx": "xlsx", ".parquet": "parquet", ".pq": "parquet", ".pdf": "pdf", ".txt": "txt", ".md": "md",
    ".markdown": "md",
}
FAMILY: dict[FileKind, Family] = {
    "csv": "text", "tsv": "text", "json": "text", "jsonl": "text", "txt": "text", "md": "text",
    "xlsx": "zip", "parquet": "parquet", "pdf": "pdf",
}
MEDIA_TYPES: dict[FileKind, str] = {
    "csv": "text/csv", "tsv": "text/tab-separated-values", "json": "application/json",
    "jsonl": "application/x-ndjson", "txt": "text/plain", "md": "text/markdown", "pdf": "application/pdf",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "parquet": "application/vnd.apache.parquet",
}
DOCUMENT_KINDS: frozenset[FileKind] = frozenset({"pdf", "txt", "md"})
"""Kinds indexed for retrieval (RAG)."""
XLSX_MAIN_CONTENT_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"

_UNSAFE_CHARS = re.compile(r"[^\w.\- ()\[\]+,@=]")
_SPACES = re.compile(r"\s+")


class UploadError(ValueError):
    """An upload was refused; the message says why in terms the user can act on."""


class UploadTooLargeError(UploadError):
    """The file is over the byte limit."""


class UnsupportedFileTypeError(UploadError):
    """The file type is not supported, or its content is not what its name claims."""


@dataclass(frozen=True)
class StoredUpload:
    file_id: str
    name: str
    stored_name: str
    path: Path
    kind: FileKind
    media_type: str
    size_bytes: int
    sha256: str


def sanitize_filename(name: str) -> str:
    """A display name that is safe anywhere: no directories, controls, leading dots, reserved names or huge length."""
    text = unicodedata.normalize("NFKC", name).replace("\\", "/").rsplit("/", 1)[-1]
    text = "".join(ch for ch in text if not unicodedata.category(ch).startswith("C"))
    text = _UNSAFE_CHARS.sub("_", _SPACES.sub(" ", text)).lstrip(" .-").rstrip(" .")
    stem, dot, ext = text.rpartition(".")
    if not dot or not stem or len(ext) > MAX_EXTENSION_CHARS:
        stem, dot, ext = text, "", ""
    if stem.split(".")[0].upper() in WINDOWS_RESERVED:
        stem = f"_{stem}"
    stem = stem[: MAX_FILENAME_CHARS - len(dot) - len(ext)].rstrip(" .")
    return f"{stem}{dot}{ext}" if stem else DEFAULT_FILENAME


def kind_for_name(name: str) -> FileKind:
    suffix = Path(name).suffix.lower()
    kind = KIND_BY_EXTENSION.get(suffix)
    if kind is None:
        supported = ", ".join(sorted(KIND_BY_EXTENSION))
        raise UnsupportedFileTypeError(f"unsupported file type {suffix or '(none)'!r}; supported: {supported}")
    return kind


def sniff_family(head: bytes, tail: bytes) -> Family:
    """What the bytes are, regardless of the name: pdf, zip, parquet, text or binary.

    A zip is recognised before a PDF: a zip can carry `%PDF-` in its first KiB (a stored PDF entry), and
    PDF readers would accept that polyglot, but no real PDF starts with a zip header.
    """
    if head.startswith(b"PK\x03\x04"):
        return "zip"
    if b"%PDF-" in head[:PDF_HEADER_WINDOW]:
        return "pdf"
    if head.startswith(b"PAR1") and tail.endswith(b"PAR1"):
        return "parquet"
    return "text" if _looks_like_text(head) else "binary"


def _looks_like_text(head: bytes) -> bool:
    if b"\x00" in head:
        return False
    try:
        head.decode("utf-8")
        return True
    except UnicodeDecodeError as exc:
        if exc.reason == "unexpected end of data" and len(head) == SNIFF_BYTES:
            return True  # the sample was cut inside a multi-byte character
    controls = sum(1 for byte in head if byte < 32 and byte not in (9, 10, 12, 13))
    return controls <= TEXT_CONTROL_RATIO * max(len(head), 1)


def check_content(*, kind: FileKind, head: bytes, tail: bytes) -> None:
    """Refuse content that does not match the kind its name claims (UnsupportedFileTypeError)."""
    family = sniff_family(head, tail)
    expected = FAMILY[kind]
    if family != expected:
        raise UnsupportedFileTypeError(f"content looks like {family}, not {kind}")
    if kind in ("json", "jsonl"):
        start = head.lstrip(b"\xef\xbb\xbf \t\r\n")[:1]
        if start not in (b"{", b"["):
            raise UnsupportedFileTypeError(f"content is not {kind}: it must start with '{{' or '['")


def check_xlsx(path: Path) -> None:
    """Reject zip bombs and non-workbooks from the zip directory alone, before anything is inflated."""
    try:
        with zipfile.ZipFile(path) as archive:
            entries = archive.infolist()
            if len(entries) > XLSX_MAX_ENTRIES:
                raise UnsupportedFileTypeError(f"xlsx has {len(entries)} entries (limit {XLSX_MAX_ENTRIES})")
            total = 0
            for entry in entries:
                if entry.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
                    raise UnsupportedFileTypeError(f"xlsx entry {entry.filename!r} uses an unexpected compression")
                total += entry.file_size
                ratio = entry.file_size / max(entry.compress_size, 1)
                if entry.file_size > XLSX_RATIO_MIN_BYTES and ratio > XLSX_MAX_RATIO:
                    raise UnsupportedFileTypeError(f"xlsx entry {entry.filename!r} inflates {ratio:.0f}x: zip bomb")
            if total > XLSX_MAX_UNCOMPRESSED_BYTES:
                limit = XLSX_MAX_UNCOMPRESSED_BYTES
                raise UnsupportedFileTypeError(f"xlsx would inflate to {total} bytes (limit {limit})")
            names = {entry.filename for entry in entries}
            if "[Content_Types].xml" not in names or "xl/workbook.xml" not in names:
                raise UnsupportedFileTypeError("zip file is not an Excel workbook")
            info = archive.getinfo("[Content_Types].xml")
            if info.file_size > XLSX_CONTENT_TYPES_MAX_BYTES:
                raise UnsupportedFileTypeError("xlsx content-types part is implausibly large")
            root = SafeET.fromstring(archive.read(info))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, SafeET.ParseError, DefusedXmlException, KeyError, OSError) as exc:
        raise UnsupportedFileTypeError(f"not a readable xlsx file: {exc}") from exc
    types = {element.get("ContentType") for element in root.iter() if element.get("ContentType")}
    if XLSX_MAIN_CONTENT_TYPE not in types:
        raise UnsupportedFileTypeError("zip file is not an Excel .xlsx workbook (macro or other formats unsupported)")


def store_upload(source: BinaryIO, *, original_name: str, file_id: str, dest_dir: Path, max_bytes: int) -> StoredUpload:
    """Copy `source` to `dest_dir/<file_id><ext>` with a byte limit, then verify its type; on error nothing stays."""
    name = sanitize_filename(original_name)
    kind = kind_for_name(name)
    stored_name = f"{file_id}{Path(name).suffix.lower()}"
    dest_dir.mkdir(parents=True, exist_ok=True)
    partial = dest_dir / f".{file_id}.partial"
    final = dest_dir / stored_name
    try:
        size, digest = _copy_limited(source, partial, max_bytes=max_bytes)
        with partial.open("rb") as handle:
            head = handle.read(SNIFF_BYTES)
            handle.seek(max(size - 4, 0))
            tail = handle.read(4)
        check_content(kind=kind, head=head, tail=tail)
        if kind == "xlsx":
            check_xlsx(partial)
        partial.replace(final)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return StoredUpload(file_id=file_id, name=name, stored_name=stored_name, path=final, kind=kind,
                        media_type=MEDIA_TYPES[kind], size_bytes=size, sha256=digest)


def _copy_limited(source: BinaryIO, target: Path, *, max_bytes: int) -> tuple[int, str]:
    digest = hashlib.sha256()
    size = 0
    with target.open("wb") as out:
        while chunk := source.read(COPY_CHUNK_BYTES):
            size += len(chunk)
            if size > max_bytes:
                raise UploadTooLargeError(f"file is larger than the {max_bytes // (1024 * 1024)} MB limit")
            digest.update(chunk)
            out.write(chunk)
    if size == 0:
        raise UploadError("file is empty")
    return size, digest.hexdigest()
