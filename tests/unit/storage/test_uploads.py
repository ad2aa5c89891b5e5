"""Upload safety: filename sanitising (property-tested), content sniffing, size limits and the xlsx zip-bomb check."""

from __future__ import annotations

import hashlib
import io
import zipfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from openpyxl import Workbook

from backend.storage.uploads import (
    MAX_FILENAME_CHARS,
    UnsupportedFileTypeError,
    UploadError,
    UploadTooLargeError,
    check_xlsx,
    sanitize_filename,
    sniff_family,
    store_upload,
)

SAFE_NAME = st.from_regex(r"[A-Za-z0-9]{1,10}( [A-Za-z0-9_-]{1,10}){0,3}\.(csv|xlsx|pdf|md)", fullmatch=True)


@given(st.text(max_size=400))
@settings(max_examples=500)
def test_sanitised_names_are_plain_file_names(name: str) -> None:
    clean = sanitize_filename(name)
    assert clean
    assert len(clean) <= MAX_FILENAME_CHARS
    assert "/" not in clean and "\\" not in clean and "\x00" not in clean
    assert not clean.startswith((".", "-", " "))
    assert not clean.endswith((".", " "))
    assert all(ch.isprintable() for ch in clean)
    assert clean not in {".", ".."}


@given(st.text(max_size=400))
@settings(max_examples=500)
def test_sanitising_is_idempotent(name: str) -> None:
    once = sanitize_filename(name)
    assert sanitize_filename(once) == once


@given(st.lists(st.sampled_from(["..", ".", "etc", "/", "\\", "\x00", "x"]), max_size=30), SAFE_NAME)
def test_any_directory_prefix_is_dropped(prefix: list[str], base: str) -> None:
    assert sanitize_filename("".join(prefix) + "/" + base) == sanitize_filename(base)


@given(SAFE_NAME)
def test_ordinary_names_are_kept(name: str) -> None:
    assert sanitize_filename(name) == name


@given(st.integers(min_value=MAX_FILENAME_CHARS, max_value=5000), st.sampled_from([".csv", ".xlsx", ".parquet"]))
def test_long_names_keep_their_extension(length: int, extension: str) -> None:
    clean = sanitize_filename("a" * length + extension)
    assert clean.endswith(extension)
    assert len(clean) == MAX_FILENAME_CHARS


@pytest.mark.parametrize(("name", "expected"), [
    ("CON.csv", "_CON.csv"), ("nul.txt", "_nul.txt"), ("..", "file"), ("", "file"), ("a\x00b.csv", "ab.csv"),
    ("résumé données.csv", "résumé données.csv"), ("／etc／passwd.csv", "passwd.csv"), ("a<b>c|d?.csv", "a_b_c_d_.csv"),
])
def test_examples(name: str, expected: str) -> None:
    assert sanitize_filename(name) == expected


@pytest.mark.parametrize(("head", "family"), [
    (b"%PDF-1.7\n", "pdf"), (b"PK\x03\x04rest", "zip"), (b"a,b\n1,2\n", "text"), (b"\x89PNG\r\n\x1a\n\x00", "binary"),
    ("name,ville\nzoë,Zürich\n".encode(), "text"), ("caf\xe9,1\n".encode("latin-1"), "text"),
    (b"PK\x03\x04\x14\x00a.pdf%PDF-1.7\n", "zip"),  # a zip carrying a stored PDF is a zip, not a PDF
])
def test_sniffing_looks_at_content(head: bytes, family: str) -> None:
    assert sniff_family(head, head[-4:]) == family


def test_parquet_needs_magic_at_both_ends() -> None:
    assert sniff_family(b"PAR1\x15\x00", b"PAR1") == "parquet"
    assert sniff_family(b"PAR1\x15\x00", b"\x00\x00\x00\x00") == "binary"


def _store(tmp_path: Path, name: str, data: bytes, max_bytes: int = 1024 * 1024) -> Path:
    return store_upload(io.BytesIO(data), original_name=name, file_id="f1", dest_dir=tmp_path, max_bytes=max_bytes).path


def test_store_writes_under_the_id_and_hashes(tmp_path: Path) -> None:
    stored = store_upload(io.BytesIO(b"a,b\n"), original_name="../x.csv", file_id="f1", dest_dir=tmp_path,
                          max_bytes=100)
    assert stored.path == tmp_path / "f1.csv"
    assert stored.name == "x.csv"
    assert stored.sha256 == hashlib.sha256(b"a,b\n").hexdigest()
    assert stored.path.read_bytes() == b"a,b\n"


def test_store_over_the_limit_leaves_nothing(tmp_path: Path) -> None:
    with pytest.raises(UploadTooLargeError):
        _store(tmp_path, "big.csv", b"x" * 2000, max_bytes=1000)
    assert list(tmp_path.iterdir()) == []


def test_store_of_a_lying_file_leaves_nothing(tmp_path: Path) -> None:
    with pytest.raises(UnsupportedFileTypeError):
        _store(tmp_path, "table.csv", b"\x89PNG\r\n\x1a\n\x00\x00")
    assert list(tmp_path.iterdir()) == []


def test_empty_files_are_refused(tmp_path: Path) -> None:
    with pytest.raises(UploadError):
        _store(tmp_path, "empty.csv", b"")


def _zip(entries: dict[str, bytes], compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def test_a_real_workbook_passes(tmp_path: Path) -> None:
    book = Workbook()
    path = tmp_path / "ok.xlsx"
    book.save(path)
    check_xlsx(path)


@pytest.mark.parametrize(("entries", "reason"), [
    ({"[Content_Types].xml": b"<Types/>", "xl/workbook.xml": b"<w/>", "xl/s.xml": b"\x00" * (40 << 20)}, "zip bomb"),
    ({"a.txt": b"hello"}, "not an Excel workbook"),
    ({"[Content_Types].xml": b"<Types/>", "xl/workbook.xml": b"<w/>"}, "not an Excel .xlsx workbook"),
    ({"[Content_Types].xml": b'<!DOCTYPE x [<!ENTITY a "aaaa">]><Types>&a;</Types>', "xl/workbook.xml": b"<w/>"},
     "not a readable xlsx"),
])
def test_bad_workbooks_are_refused_without_inflating(tmp_path: Path, entries: dict[str, bytes], reason: str) -> None:
    path = tmp_path / "bad.xlsx"
    path.write_bytes(_zip(entries))
    with pytest.raises(UnsupportedFileTypeError, match=reason):
        check_xlsx(path)


def test_too_many_entries_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import backend.storage.uploads as uploads

    monkeypatch.setattr(uploads, "XLSX_MAX_ENTRIES", 3)
    path = tmp_path / "many.xlsx"
    path.write_bytes(_zip({f"f{i}": b"x" for i in range(5)}))
    with pytest.raises(UnsupportedFileTypeError, match="entries"):
        check_xlsx(path)
