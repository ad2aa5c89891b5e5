"""Text extraction: what each document kind yields, and a typed error for each way a document is unusable."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from pypdf import PageObject, PdfWriter

from backend.storage.extract import (
    CHARS_PER_PAGE_EQUIVALENT,
    CorruptDocumentError,
    DocumentTooLargeError,
    EmptyDocumentError,
    EncryptedDocumentError,
    TextEncodingError,
    UnsupportedDocumentError,
    extract,
)

MakePdf = Callable[..., Path]


def test_pdf_text_is_extracted_per_page_with_one_based_numbers(make_pdf: MakePdf) -> None:
    path = make_pdf(["first page about owls", "second page about rivers"])
    doc = extract(path, name="doc.pdf", max_pages=10)
    assert doc.kind == "pdf"
    assert [page for page, _ in doc.pages] == [1, 2]
    assert "owls" in doc.pages[0][1] and "rivers" in doc.pages[1][1]
    assert doc.warnings == []


def test_pages_without_text_are_skipped_and_reported(make_pdf: MakePdf) -> None:
    path = make_pdf(["words here", "", "", "more words"])
    doc = extract(path, name="doc.pdf", max_pages=10)
    assert [page for page, _ in doc.pages] == [1, 4]
    assert doc.page_count == 4
    assert doc.warnings == ["2 of 4 pages have no extractable text: 2-3"]


def test_a_page_that_fails_to_parse_is_skipped_and_reported(make_pdf: MakePdf, monkeypatch: pytest.MonkeyPatch) -> None:
    real = PageObject.extract_text

    def flaky(self: PageObject, *args: object, **kwargs: object) -> str:
        text = real(self, *args, **kwargs)  # type: ignore[arg-type]
        if "damaged" in text:
            raise KeyError("/Contents")
        return text

    monkeypatch.setattr(PageObject, "extract_text", flaky)
    doc = extract(make_pdf(["fine", "damaged", "fine too"]), name="doc.pdf", max_pages=10)
    assert [page for page, _ in doc.pages] == [1, 3]
    assert doc.warnings == ["1 of 3 pages could not be read and were skipped: 2 (KeyError)"]


def test_pdf_with_only_blank_pages_is_empty(tmp_path: Path) -> None:
    writer = PdfWriter()
    writer.add_blank_page(200, 200)
    writer.add_blank_page(200, 200)
    path = tmp_path / "blank.pdf"
    writer.write(path)
    with pytest.raises(EmptyDocumentError, match="all 2 pages are without extractable text"):
        extract(path, name="blank.pdf", max_pages=10)


def test_password_protected_pdf_is_refused(make_pdf: MakePdf, tmp_path: Path) -> None:
    writer = PdfWriter(clone_from=make_pdf(["confidential"]))
    writer.encrypt(user_password="pw", algorithm="RC4-128")
    path = tmp_path / "locked.pdf"
    writer.write(path)
    with pytest.raises(EncryptedDocumentError, match="password-protected"):
        extract(path, name="locked.pdf", max_pages=10)


def test_pdf_encrypted_with_an_empty_user_password_is_read(make_pdf: MakePdf, tmp_path: Path) -> None:
    writer = PdfWriter(clone_from=make_pdf(["readable despite encryption"]))
    writer.encrypt(user_password="", owner_password="owner", algorithm="RC4-128")
    path = tmp_path / "owner-only.pdf"
    writer.write(path)
    doc = extract(path, name="owner-only.pdf", max_pages=10)
    assert "readable despite encryption" in doc.pages[0][1]


def test_truncated_pdf_is_corrupt(make_pdf: MakePdf, tmp_path: Path) -> None:
    data = make_pdf(["some text"]).read_bytes()
    path = tmp_path / "broken.pdf"
    path.write_bytes(data[:60])
    with pytest.raises(CorruptDocumentError, match="not a readable PDF"):
        extract(path, name="broken.pdf", max_pages=10)


def test_file_named_pdf_without_pdf_header_is_corrupt(tmp_path: Path) -> None:
    path = tmp_path / "fake.pdf"
    path.write_text("just text pretending")
    with pytest.raises(CorruptDocumentError, match="not a PDF"):
        extract(path, name="fake.pdf", max_pages=10)


def test_pdf_over_the_page_limit_is_refused(make_pdf: MakePdf) -> None:
    path = make_pdf(["p"] * 4)
    with pytest.raises(DocumentTooLargeError, match="4 pages, over the limit of 3"):
        extract(path, name="doc.pdf", max_pages=3)


def test_text_over_the_character_limit_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "big.txt"
    path.write_text("x" * (2 * CHARS_PER_PAGE_EQUIVALENT + 1))
    with pytest.raises(DocumentTooLargeError, match="APP_RAG_MAX_PAGES=2"):
        extract(path, name="big.txt", max_pages=2)


def test_latin1_text_is_refused_with_the_offending_byte(tmp_path: Path) -> None:
    path = tmp_path / "latin1.txt"
    path.write_bytes("café au lait".encode("latin-1"))
    with pytest.raises(TextEncodingError, match=r"not UTF-8 text \(invalid byte 0xe9 at offset 3\)"):
        extract(path, name="latin1.txt", max_pages=10)


def test_utf16_text_with_bom_is_decoded(tmp_path: Path) -> None:
    path = tmp_path / "wide.txt"
    path.write_bytes("naïve résumé".encode("utf-16"))
    doc = extract(path, name="wide.txt", max_pages=10)
    assert doc.pages == [(None, "naïve résumé")]


def test_binary_file_is_unsupported(tmp_path: Path) -> None:
    path = tmp_path / "image.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    with pytest.raises(UnsupportedDocumentError, match="binary"):
        extract(path, name="image.png", max_pages=10)


def test_zero_byte_file_is_empty(tmp_path: Path) -> None:
    path = tmp_path / "empty.md"
    path.touch()
    with pytest.raises(EmptyDocumentError, match="0 bytes"):
        extract(path, name="empty.md", max_pages=10)


def test_whitespace_only_text_is_empty(tmp_path: Path) -> None:
    path = tmp_path / "blank.md"
    path.write_text("  \n\n\t ")
    with pytest.raises(EmptyDocumentError):
        extract(path, name="blank.md", max_pages=10)


def test_pdf_bytes_are_detected_whatever_the_extension(make_pdf: MakePdf, tmp_path: Path) -> None:
    path = tmp_path / "report.txt"
    path.write_bytes(make_pdf(["hidden pdf"]).read_bytes())
    assert extract(path, name="report.txt", max_pages=10).kind == "pdf"


def test_csv_is_described_by_shape_header_and_first_rows(tmp_path: Path) -> None:
    path = tmp_path / "people.csv"
    path.write_text("name,age\nAda,36\nAlan,41\n")
    doc = extract(path, name="people.csv", max_pages=10)
    text = doc.pages[0][1]
    assert doc.kind == "table"
    assert "2 rows x 2 columns" in text
    assert "Columns: name, age" in text
    assert "name=Ada, age=36" in text


def test_invalid_json_is_corrupt_with_line_number(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text('{"a": 1,\n "b": }')
    with pytest.raises(CorruptDocumentError, match="line 2"):
        extract(path, name="bad.json", max_pages=10)


def test_json_is_described_by_its_top_level_keys(tmp_path: Path) -> None:
    path = tmp_path / "cfg.json"
    path.write_text('{"threshold": 0.5, "labels": ["a", "b"]}')
    text = extract(path, name="cfg.json", max_pages=10).pages[0][1]
    assert "object with keys: threshold, labels" in text
    assert '"threshold": 0.5' in text


def test_progress_reports_every_pdf_page(make_pdf: MakePdf) -> None:
    seen: list[tuple[int, int]] = []
    extract(make_pdf(["a", "b", "c"]), name="doc.pdf", max_pages=10, on_page=lambda d, t: seen.append((d, t)))
    assert seen == [(1, 3), (2, 3), (3, 3)]


def test_pdf_whose_pages_hold_too_much_text_is_refused(make_pdf: MakePdf) -> None:
    dense = "lorem ipsum " * (CHARS_PER_PAGE_EQUIVALENT // 12 + 10)  # a little over one page's worth, on one page
    with pytest.raises(DocumentTooLargeError, match="by page 2"):
        extract(make_pdf([dense, dense]), name="dense.pdf", max_pages=2)
