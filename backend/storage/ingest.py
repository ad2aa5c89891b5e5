"""Document ingestion for RAG: extract, chunk, record, embed, index; delete; rebuild the index from the record.

Blocking work (pypdf, the embedder): the API runs these in a worker thread, never on the event loop.
Write order keeps the record and the index consistent: chunks are recorded `pending` (invisible to
search), vectors are written, then the document is marked `indexed`. A failure in between removes
both; a crash in between leaves a pending record that `reindex` heals.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from backend.core.metrics import instrument_rag
from backend.core.settings import Settings
from backend.storage.documents import DELETING, INDEXED, PENDING
from backend.storage.extract import (
    CorruptDocumentError,
    DocumentError,
    DocumentTooLargeError,
    EmptyDocumentError,
    EncryptedDocumentError,
    TextEncodingError,
    UnsupportedDocumentError,
    chunk_pages,
    extract,
)
from backend.storage.vectors import RagStore, collection_name, get_rag_store

log = logging.getLogger(__name__)

__all__ = [
    "CorruptDocumentError",
    "DocumentError",
    "DocumentTooLargeError",
    "EmptyDocumentError",
    "EncryptedDocumentError",
    "IndexingError",
    "IngestReport",
    "ReindexReport",
    "TextEncodingError",
    "UnsupportedDocumentError",
    "delete_document",
    "ingest_document",
    "reindex",
]

Progress = Callable[[str, int, int], None]
"""progress(stage, done, total) with stage "extract" (pages) or "embed" (chunks)."""


class IndexingError(RuntimeError):
    """The document was readable but embedding or indexing failed; nothing of it was kept."""


@dataclass
class IngestReport:
    file_id: str
    name: str
    kind: str
    pages_total: int
    pages_ingested: int
    chunks: int
    warnings: list[str] = field(default_factory=list)

    @property
    def partial(self) -> bool:
        """True when some pages were skipped (unreadable or without text); `warnings` says which."""
        return bool(self.warnings)


@dataclass
class ReindexReport:
    users: int = 0
    documents: int = 0
    chunks: int = 0
    healed: int = 0
    """Documents that were pending (interrupted ingest) and are now indexed."""
    dropped_collections: int = 0
    errors: list[str] = field(default_factory=list)


@instrument_rag("ingest")
def ingest_document(
    *,
    settings: Settings,
    user_id: str,
    file_id: str,
    path: Path,
    name: str,
    progress: Progress | None = None,
    store: RagStore | None = None,
) -> IngestReport:
    """Index one document for one user (re-ingesting the same file id replaces it).

    Raises a `DocumentError` subclass for unusable input and `IndexingError` if embedding fails.
    """
    user_id, file_id = str(user_id), str(file_id)
    store = store or get_rag_store(settings=settings)
    on_page = (lambda done, total: progress("extract", done, total)) if progress else None
    doc = extract(Path(path), name=name, max_pages=settings.rag_max_pages, on_page=on_page)
    pieces = chunk_pages(doc.pages, chunk_size=settings.rag_chunk_size, chunk_overlap=settings.rag_chunk_overlap)
    if not pieces:
        raise EmptyDocumentError(f"{name} contains no text to index")

    rows = store.record.begin_document(
        user_id=user_id,
        file_id=file_id,
        name=name,
        kind=doc.kind,
        pages=doc.page_count,
        chunks=pieces,
        warnings=doc.warnings,
    )
    try:
        store.index.delete_file(user_id=user_id, file_id=file_id)  # a re-ingest must not leave old chunk ids
        on_embed = (lambda done, total: progress("embed", done, total)) if progress else None
        vectors = store.embed_rows(rows, progress=on_embed)
        store.index.upsert(user_id=user_id, rows=rows, embeddings=vectors)
        store.record.set_status(user_id=user_id, file_id=file_id, status=INDEXED)
    except Exception as exc:
        _roll_back(store, user_id=user_id, file_id=file_id)
        raise IndexingError(f"{name}: indexing failed, nothing was kept ({type(exc).__name__}: {exc})") from exc

    pages_ingested = len({page for page, _ in doc.pages}) if doc.kind == "pdf" else 1
    log.info("ingested %s for user %s: %d pages, %d chunks", name, user_id, pages_ingested, len(rows))
    return IngestReport(
        file_id=file_id,
        name=name,
        kind=doc.kind,
        pages_total=doc.page_count,
        pages_ingested=pages_ingested,
        chunks=len(rows),
        warnings=doc.warnings,
    )


def _roll_back(store: RagStore, *, user_id: str, file_id: str) -> None:
    try:
        store.index.delete_file(user_id=user_id, file_id=file_id)
    except Exception as exc:  # the record is still removed below, so stray vectors can never surface
        log.warning("could not remove vectors of %s after a failed ingest: %s", file_id, exc)
    store.record.delete_document(user_id=user_id, file_id=file_id)


def delete_document(*, settings: Settings, user_id: str, file_id: str, store: RagStore | None = None) -> int:
    """Remove a document's chunks from the record and the index; returns how many chunks were removed."""
    user_id, file_id = str(user_id), str(file_id)
    store = store or get_rag_store(settings=settings)
    if store.record.get_document(user_id=user_id, file_id=file_id) is None:
        return 0
    store.record.set_status(user_id=user_id, file_id=file_id, status=DELETING)  # hidden from search from now on
    try:
        store.index.delete_file(user_id=user_id, file_id=file_id)
    except Exception as exc:  # vectors without a record never surface; `reindex` drops them later
        log.warning("vectors of %s stay in the index until reindex: %s", file_id, exc)
    return store.record.delete_document(user_id=user_id, file_id=file_id)


def reindex(
    *,
    settings: Settings,
    user_id: str | None = None,
    progress: Callable[[str], None] | None = None,
    store: RagStore | None = None,
) -> ReindexReport:
    """Rebuild Chroma from the chunk record: drop each user's collection, re-embed every chunk, mark indexed.

    Also finishes interrupted deletes and drops collections of users who have no documents left.
    """
    store = store or get_rag_store(settings=settings)
    report = ReindexReport()
    say = progress or (lambda _msg: None)
    for doc in store.record.documents(status=DELETING):
        if user_id is None or doc.user_id == user_id:
            store.record.delete_document(user_id=doc.user_id, file_id=doc.file_id)
    users = [user_id] if user_id is not None else store.record.users()
    if user_id is None:  # collections of users with no documents left are orphans
        wanted = {collection_name(user_id=u, embedder=store.index.embedder) for u in users}
        for name in store.index.owned_collections():
            if name not in wanted:
                store.index.drop_collection(name)
                report.dropped_collections += 1
    for uid in users:
        docs = store.record.documents(user_id=uid)
        store.index.drop_user(user_id=uid)
        report.users += 1
        for doc in docs:
            rows = store.record.chunks(user_id=uid, file_ids=[doc.file_id], statuses=(PENDING, INDEXED))
            try:
                vectors = store.embed_rows(rows)
                store.index.upsert(user_id=uid, rows=rows, embeddings=vectors)
            except Exception as exc:
                report.errors.append(f"user {uid} file {doc.file_id} ({doc.name}): {type(exc).__name__}: {exc}")
                continue
            if doc.status == PENDING:
                report.healed += 1
            store.record.set_status(user_id=uid, file_id=doc.file_id, status=INDEXED)
            report.documents += 1
            report.chunks += len(rows)
            say(f"user {uid}: {doc.name} ({len(rows)} chunks)")
    return report
