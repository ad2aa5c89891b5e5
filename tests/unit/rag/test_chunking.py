"""Chunking: settings-sized pieces that never cross a page boundary."""

from __future__ import annotations

import pytest

from backend.storage.extract import chunk_pages


def test_every_chunk_keeps_the_page_it_came_from() -> None:
    pages: list[tuple[int | None, str]] = [(1, "alpha " * 100), (2, "beta " * 100)]
    chunks = chunk_pages(pages, chunk_size=200, chunk_overlap=20)
    assert {page for page, _ in chunks} == {1, 2}
    assert all(("alpha" in text) != ("beta" in text) for _, text in chunks)


def test_chunks_respect_the_configured_size() -> None:
    chunks = chunk_pages([(None, "word " * 1000)], chunk_size=300, chunk_overlap=30)
    assert len(chunks) > 10
    assert max(len(text) for _, text in chunks) <= 300


def test_consecutive_chunks_overlap() -> None:
    text = " ".join(f"w{i}" for i in range(400))
    chunks = chunk_pages([(None, text)], chunk_size=200, chunk_overlap=50)
    first, second = chunks[0][1], chunks[1][1]
    assert first.split()[-1] in second.split()


def test_short_page_is_a_single_chunk() -> None:
    assert chunk_pages([(3, "one short page")], chunk_size=1000, chunk_overlap=100) == [(3, "one short page")]


def test_overlap_not_smaller_than_size_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="APP_RAG_CHUNK_OVERLAP"):
        chunk_pages([(1, "text")], chunk_size=100, chunk_overlap=100)
