"""RAG with real Chroma: ingest and query latency are measured, and purging a user removes their chunks and vectors."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from anyio import to_thread
from langchain_core.embeddings import Embeddings
from sqlalchemy.orm import Session, sessionmaker

from backend.core.metrics import value
from backend.core.settings import Settings
from backend.ops.purge import purge_user
from backend.storage.db import create_db_engine, init_schema, session_factory
from backend.storage.ingest import delete_document, ingest_document
from backend.storage.models import StoredFile, User
from backend.storage.vectors import RagStore, build_rag_store
from backend.tools.rag import search

DIMENSIONS = 16


class HashEmbeddings(Embeddings):
    """Deterministic word-hash vectors: enough for Chroma to store and query, no model download."""

    def _vector(self, text: str) -> list[float]:
        vector = [0.0] * DIMENSIONS
        for word in text.lower().split():
            vector[hashlib.sha256(word.encode()).digest()[0] % DIMENSIONS] += 1.0
        return vector if any(vector) else [1.0] + [0.0] * (DIMENSIONS - 1)

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [self._vector(t) for t in texts]

    def embed_query(self, text: str) -> list[float]:
        return self._vector(text)


@pytest.fixture
def store(settings: Settings) -> Iterator[RagStore]:
    rag = build_rag_store(settings=settings, embeddings=HashEmbeddings())
    yield rag
    rag.close()


@pytest.fixture
def db(settings: Settings) -> Iterator[sessionmaker[Session]]:
    engine = create_db_engine(settings.resolved_database_url)
    init_schema(engine)
    yield session_factory(engine)
    engine.dispose()


def note(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_ingest_and_query_latency_are_recorded(settings: Settings, store: RagStore, tmp_path: Path) -> None:
    before = (value("rag_duration_seconds_count", operation="ingest", outcome="ok"),
              value("rag_duration_seconds_count", operation="query", outcome="ok"),
              value("rag_ingested_chunks_total"))
    report = ingest_document(settings=settings, user_id="u1", file_id="f1", name="notes.txt", store=store,
                             path=note(tmp_path, "notes.txt", "Quarterly revenue grew by 12 percent in Europe."))
    hits = search(settings=settings, user_id="u1", query="revenue Europe", store=store)
    assert hits and hits[0].file_id == "f1"
    after = (value("rag_duration_seconds_count", operation="ingest", outcome="ok"),
             value("rag_duration_seconds_count", operation="query", outcome="ok"),
             value("rag_ingested_chunks_total"))
    assert after[0] - before[0] == 1 and after[1] - before[1] == 1
    assert after[2] - before[2] == report.chunks


async def test_purging_a_user_removes_their_chunks_and_vectors(settings: Settings, store: RagStore, db,
                                                              tmp_path: Path) -> None:
    with db() as session, session.begin():
        alice, bob = User(username="alice", password_hash="x"), User(username="bob", password_hash="x")
        session.add_all([alice, bob])
        session.flush()
        ids = {"alice": alice.id, "bob": bob.id}
        for name, user_id in ids.items():
            session.add(StoredFile(id=f"file-{name}", user_id=user_id, name="n.txt", stored_name="n.txt", kind="txt",
                                   media_type="text/plain", size_bytes=1, sha256="0" * 64))
    for name, user_id in ids.items():
        ingest_document(settings=settings, user_id=user_id, file_id=f"file-{name}", name="n.txt", store=store,
                        path=note(tmp_path, f"{name}.txt", f"{name} keeps notes about revenue and costs."))

    async def forget(file_id: str) -> bool:
        removed = await to_thread.run_sync(lambda: delete_document(settings=settings, user_id=ids["alice"],
                                                                   file_id=file_id, store=store))
        return removed > 0

    report = await purge_user(settings=settings, sessions=db, user_id=ids["alice"], forget_document=forget)
    assert report.documents == 1
    assert store.index.count(user_id=ids["alice"]) == 0
    assert store.record.documents(user_id=ids["alice"]) == []
    assert search(settings=settings, user_id=ids["alice"], query="revenue", store=store) == []
    assert store.index.count(user_id=ids["bob"]) >= 1
    assert search(settings=settings, user_id=ids["bob"], query="revenue", store=store)
