"""Fixtures for RAG integration tests: real Chroma on a temp dir, the real embedder, generated PDFs."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest
from fpdf import FPDF

from backend.core.settings import Settings
from backend.storage.vectors import close_rag_store


@pytest.fixture
def rag_settings(settings: Settings) -> Iterator[Settings]:
    """Settings whose shared RAG store is closed afterwards (releasing the index for other processes)."""
    yield settings
    close_rag_store(settings=settings)


@pytest.fixture
def make_pdf(tmp_path: Path) -> Callable[..., Path]:
    def make(pages: Sequence[str], name: str = "doc.pdf") -> Path:
        pdf = FPDF()
        pdf.set_font("Helvetica", size=11)
        for text in pages:
            pdf.add_page()
            pdf.multi_cell(0, 6, text)
        path = tmp_path / name
        pdf.output(str(path))
        return path

    return make


@pytest.fixture
def write_text(tmp_path: Path) -> Callable[[str, str], Path]:
    def write(name: str, text: str) -> Path:
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        return path

    return write
