"""RAG end to end on real Chroma with the real embedder: ingest, query, cite, delete, isolate users."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from pypdf import PdfWriter

from backend.core.settings import Settings
from backend.storage.extract import EncryptedDocumentError
from backend.storage.ingest import delete_document, ingest_document
from backend.storage.vectors import get_rag_store
from backend.tools.rag import search

MakePdf = Callable[..., Path]
WriteText = Callable[[str, str], Path]

PAGES = [
    "The lighthouse keeper recorded every storm in a leather logbook during the winter of 1887.",
    "Quarterly revenue grew twelve percent, driven mainly by exports of machine parts to Norway.",
    "Honey bees tell their sisters where flowers are by performing a waggle dance inside the hive.",
]


def ingest_pages(settings: Settings, make_pdf: MakePdf, *, user: str = "alice", file_id: str = "f1") -> None:
    ingest_document(settings=settings, user_id=user, file_id=file_id, path=make_pdf(PAGES), name="facts.pdf")


def test_ingest_reports_pages_and_chunks(rag_settings: Settings, make_pdf: MakePdf) -> None:
    report = ingest_document(
        settings=rag_settings, user_id="alice", file_id="f1", path=make_pdf(PAGES), name="facts.pdf"
    )
    assert (report.kind, report.pages_total, report.pages_ingested, report.chunks) == ("pdf", 3, 3, 3)
    assert not report.partial


def test_query_returns_the_page_with_a_citation(rag_settings: Settings, make_pdf: MakePdf) -> None:
    ingest_pages(rag_settings, make_pdf)
    hits = search(settings=rag_settings, user_id="alice", query="How did revenue change last quarter?", k=2)
    assert hits[0].citation == "[facts.pdf p.2]"
    assert hits[0].chunk_id == "f1:000001"
    assert "twelve percent" in hits[0].text


def test_real_embedder_finds_a_paraphrase_without_shared_words(rag_settings: Settings, make_pdf: MakePdf) -> None:
    ingest_pages(rag_settings, make_pdf)
    hits = search(settings=rag_settings, user_id="alice", query="insect communication", k=1, mode="vector")
    assert hits[0].page == 3


def test_hybrid_hit_records_both_ranks(rag_settings: Settings, make_pdf: MakePdf) -> None:
    ingest_pages(rag_settings, make_pdf)
    top = search(settings=rag_settings, user_id="alice", query="lighthouse storm logbook", k=1)[0]
    assert (top.page, top.vector_rank, top.bm25_rank) == (1, 1, 1)


def test_deleted_document_is_gone_from_search_and_index(rag_settings: Settings, make_pdf: MakePdf) -> None:
    ingest_pages(rag_settings, make_pdf)
    assert delete_document(settings=rag_settings, user_id="alice", file_id="f1") == 3
    assert search(settings=rag_settings, user_id="alice", query="revenue") == []
    assert get_rag_store(settings=rag_settings).index.count(user_id="alice") == 0


def test_deleting_an_unknown_document_removes_nothing(rag_settings: Settings) -> None:
    assert delete_document(settings=rag_settings, user_id="alice", file_id="never-uploaded") == 0


def test_another_user_cannot_retrieve_the_documents(rag_settings: Settings, make_pdf: MakePdf) -> None:
    ingest_pages(rag_settings, make_pdf, user="alice")
    assert search(settings=rag_settings, user_id="bob", query="revenue exports Norway") == []
    assert search(settings=rag_settings, user_id="bob", query="revenue", file_ids=["f1"]) == []
    assert delete_document(settings=rag_settings, user_id="bob", file_id="f1") == 0
    assert search(settings=rag_settings, user_id="alice", query="revenue exports Norway")


def test_each_user_searches_only_their_own_documents(
    rag_settings: Settings, make_pdf: MakePdf, write_text: WriteText
) -> None:
    ingest_pages(rag_settings, make_pdf, user="alice")
    path = write_text("bob.md", "Bob's notes: the staging server password rotates monthly.")
    ingest_document(settings=rag_settings, user_id="bob", file_id="b1", path=path, name="bob.md")
    for user, files in (("alice", {"f1"}), ("bob", {"b1"})):
        hits = search(settings=rag_settings, user_id=user, query="server revenue bees lighthouse", k=10)
        assert {h.file_id for h in hits} == files


def test_file_filter_limits_results_to_those_documents(
    rag_settings: Settings, make_pdf: MakePdf, write_text: WriteText
) -> None:
    ingest_pages(rag_settings, make_pdf)
    path = write_text("more.md", "Revenue projections for next year are cautious.")
    ingest_document(settings=rag_settings, user_id="alice", file_id="f2", path=path, name="more.md")
    hits = search(settings=rag_settings, user_id="alice", query="revenue", file_ids=["f2"], k=5)
    assert [h.citation for h in hits] == ["[more.md]"]


def test_reingesting_a_file_replaces_its_vectors(
    rag_settings: Settings, make_pdf: MakePdf, write_text: WriteText
) -> None:
    ingest_pages(rag_settings, make_pdf)
    path = write_text("v2.md", "A single replacement paragraph about tides.")
    ingest_document(settings=rag_settings, user_id="alice", file_id="f1", path=path, name="v2.md")
    assert get_rag_store(settings=rag_settings).index.count(user_id="alice") == 1
    assert {h.file_name for h in search(settings=rag_settings, user_id="alice", query="revenue tides", k=5)} == {
        "v2.md"
    }


def test_progress_covers_every_page_then_every_chunk(rag_settings: Settings, make_pdf: MakePdf) -> None:
    events: list[tuple[str, int, int]] = []
    ingest_document(
        settings=rag_settings,
        user_id="alice",
        file_id="f1",
        path=make_pdf(PAGES),
        name="facts.pdf",
        progress=lambda stage, done, total: events.append((stage, done, total)),
    )
    assert events == [("extract", 1, 3), ("extract", 2, 3), ("extract", 3, 3), ("embed", 3, 3)]


def test_unreadable_document_leaves_no_record(rag_settings: Settings, make_pdf: MakePdf, tmp_path: Path) -> None:
    writer = PdfWriter(clone_from=make_pdf(PAGES))
    writer.encrypt(user_password="secret", algorithm="RC4-128")
    path = tmp_path / "locked.pdf"
    writer.write(path)
    with pytest.raises(EncryptedDocumentError):
        ingest_document(settings=rag_settings, user_id="alice", file_id="x", path=path, name="locked.pdf")
    assert get_rag_store(settings=rag_settings).record.documents(user_id="alice") == []


def test_search_rejects_an_empty_query(rag_settings: Settings) -> None:
    with pytest.raises(ValueError, match="empty"):
        search(settings=rag_settings, user_id="alice", query="   ")
