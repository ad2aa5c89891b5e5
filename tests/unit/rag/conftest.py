"""Fixtures for RAG unit tests: small generated PDFs."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
from fpdf import FPDF


def write_pdf(path: Path, pages: Sequence[str]) -> Path:
    """A PDF with one page per string (an empty string gives a page without text)."""
    pdf = FPDF()
    pdf.set_font("Helvetica", size=11)
    for text in pages:
        pdf.add_page()
        if text:
            pdf.multi_cell(0, 6, text)
    pdf.output(str(path))
    return path


@pytest.fixture
def make_pdf(tmp_path: Path) -> Callable[..., Path]:
    def make(pages: Sequence[str], name: str = "doc.pdf") -> Path:
        return write_pdf(tmp_path / name, pages)

    return make
