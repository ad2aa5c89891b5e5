"""The Chroma vector index (PersistentClient under data/chroma, or HttpClient by URL), one collection per user.

Chroma is an index, not the record: chunk text lives in `documents.ChunkRecord` and every vector hit is
resolved against it. One process owns the persistent client; `get_rag_store` hands out the shared one.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from langchain_core.embeddings import Embeddings

from backend.core.settings import Settings
from backend.llm.embeddings import ChromaEmbeddingAdapter, embedder_id
from backend.storage.documents import CHUNKS_DB_NAME, ChunkRecord, ChunkRow

log = logging.getLogger(__name__)

COLLECTION_PREFIX = "u-"
"""Every collection we own starts with this; reindex leaves any other collection alone."""
EMBED_BATCH_CHUNKS = 64
"""Chunks embedded per step of an ingest, so progress is reported while a long document is embedded."""
OWNER_LOCK_NAME = ".owner.lock"
"""flock-ed by the one process that owns a persistent index; a second process gets a clear error."""
HTTPS_DEFAULT_PORT = 443
HTTP_DEFAULT_PORT = 8000

EmbedProgress = Callable[[int, int], None]


class VectorIndexError(RuntimeError):
    """Chroma could not be opened or written; the message names the path or URL."""


def collection_name(*, user_id: str, embedder: str) -> str:
    """Hashes keep names inside Chroma's charset rules whatever the ids look like, and separate embedders."""
    user_part = hashlib.sha256(user_id.encode()).hexdigest()[:24]
    embedder_part = hashlib.sha256(embedder.encode()).hexdigest()[:8]
    return f"{COLLECTION_PREFIX}{user_part}-{embedder_part}"


_owner_locks: dict[str, list[int]] = {}  # chroma dir -> [fd, users in this process]
_owner_lock_guard = threading.Lock()


def _acquire_owner_lock(chroma_dir: Path) -> None:
    key = str(chroma_dir.resolve())
    with _owner_lock_guard:
        if key in _owner_locks:
            _owner_locks[key][1] += 1
            return
        fd = os.open(chroma_dir / OWNER_LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise VectorIndexError(
                f"the Chroma index at {chroma_dir} is in use by another process (pid {owner}); stop it first, "
                "or run a Chroma server and set APP_CHROMA_URL so several processes can share it"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        _owner_locks[key] = [fd, 1]


def _release_owner_lock(chroma_dir: Path) -> None:
    key = str(chroma_dir.resolve())
    with _owner_lock_guard:
        entry = _owner_locks.get(key)
        if entry is None:
            return
        entry[1] -= 1
        if entry[1] <= 0:
            del _owner_locks[key]
            os.close(entry[0])  # closing the descriptor releases the flock


def make_client(*, settings: Settings) -> Any:
    """HttpClient when `chroma_url` is set, else a PersistentClient in `chroma_dir` owned by this process."""
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    chroma_settings = ChromaSettings(anonymized_telemetry=False)
    if settings.chroma_url:
        url = urlparse(settings.chroma_url)
        ssl = url.scheme == "https"
        port = url.port or (HTTPS_DEFAULT_PORT if ssl else HTTP_DEFAULT_PORT)
        try:
            return chromadb.HttpClient(host=url.hostname or "localhost", port=port, ssl=ssl, settings=chroma_settings)
        except Exception as exc:
            raise VectorIndexError(f"cannot reach the Chroma server at {settings.chroma_url}: {exc}") from exc
    settings.chroma_dir.mkdir(parents=True, exist_ok=True)
    _acquire_owner_lock(settings.chroma_dir)
    try:
        return chromadb.PersistentClient(path=str(settings.chroma_dir), settings=chroma_settings)
    except Exception as exc:
        _release_owner_lock(settings.chroma_dir)
        raise VectorIndexError(f"cannot open the Chroma index at {settings.chroma_dir}: {exc}") from exc


class VectorIndex:
    """Per-user collections of chunk vectors; ids are chunk ids, metadata carries file id and page."""

    def __init__(self, *, client: Any, embedding_function: ChromaEmbeddingAdapter, embedder: str) -> None:
        self.client = client
        self.embedding_function = embedding_function
        self.embedder = embedder

    def _collection(self, user_id: str, *, create: bool) -> Any | None:
        name = collection_name(user_id=user_id, embedder=self.embedder)
        if create:
            return self.client.get_or_create_collection(
                name=name,
                embedding_function=self.embedding_function,
                configuration={"hnsw": {"space": "cosine"}},
                metadata={"user_id": user_id, "embedder": self.embedder},
            )
        from chromadb.errors import NotFoundError

        try:
            return self.client.get_collection(name=name, embedding_function=self.embedding_function)
        except NotFoundError:  # only "no such collection": an unreachable server must not look like "no data"
            return None

    def upsert(self, *, user_id: str, rows: Sequence[ChunkRow], embeddings: Sequence[Sequence[float]]) -> None:
        collection = self._collection(user_id, create=True)
        assert collection is not None
        batch = max(1, int(self.client.get_max_batch_size()))
        for start in range(0, len(rows), batch):
            part = rows[start : start + batch]
            collection.upsert(
                ids=[r.chunk_id for r in part],
                embeddings=[list(e) for e in embeddings[start : start + batch]],
                metadatas=[_metadata(r) for r in part],
            )

    def query(
        self, *, user_id: str, embedding: Sequence[float], n: int, file_ids: Sequence[str] | None = None
    ) -> list[tuple[str, float]]:
        """(chunk id, cosine distance) nearest first; empty when the user has no collection yet."""
        collection = self._collection(user_id, create=False)
        if collection is None:
            return []
        where: dict[str, Any] | None = None
        if file_ids is not None:
            if not file_ids:
                return []
            where = {"file_id": {"$in": list(file_ids)}}
        result = collection.query(query_embeddings=[list(embedding)], n_results=n, where=where, include=["distances"])
        ids = result["ids"][0] if result["ids"] else []
        distances = (result.get("distances") or [[]])[0] or [0.0] * len(ids)
        return list(zip(ids, (float(d) for d in distances), strict=False))

    def delete_file(self, *, user_id: str, file_id: str) -> None:
        collection = self._collection(user_id, create=False)
        if collection is not None:
            collection.delete(where={"file_id": file_id})

    def drop_user(self, *, user_id: str) -> None:
        from chromadb.errors import NotFoundError

        try:
            self.client.delete_collection(name=collection_name(user_id=user_id, embedder=self.embedder))
        except NotFoundError:
            log.debug("drop_user(%s): no collection to drop", user_id)

    def count(self, *, user_id: str) -> int:
        collection = self._collection(user_id, create=False)
        return int(collection.count()) if collection is not None else 0

    def owned_collections(self) -> list[str]:
        """Names of the collections this server created for the current embedder."""
        suffix = collection_name(user_id="", embedder=self.embedder).rsplit("-", 1)[1]
        return [
            c.name
            for c in self.client.list_collections()
            if c.name.startswith(COLLECTION_PREFIX) and c.name.endswith(f"-{suffix}")
        ]

    def drop_collection(self, name: str) -> None:
        self.client.delete_collection(name=name)


def _metadata(row: ChunkRow) -> dict[str, str | int]:
    meta: dict[str, str | int] = {"file_id": row.file_id, "ordinal": row.ordinal}
    if row.page is not None:
        meta["page"] = row.page
    return meta


@dataclass
class RagStore:
    """What ingest and search need, built once per data dir: the chunk record, the index and the embedder."""

    record: ChunkRecord
    index: VectorIndex
    chroma_dir: Path | None = None
    """Set for a persistent index: the directory whose owner lock this store holds until `close`."""

    def close(self) -> None:
        """Release the Chroma client (and the directory lock) so another process may open the index."""
        close = getattr(self.index.client, "close", None)
        if close is not None:
            close()
        if self.chroma_dir is not None:
            _release_owner_lock(self.chroma_dir)
            self.chroma_dir = None

    @property
    def embeddings(self) -> Embeddings:
        return self.index.embedding_function.embeddings

    def embed_rows(self, rows: Sequence[ChunkRow], *, progress: EmbedProgress | None = None) -> list[list[float]]:
        vectors: list[list[float]] = []
        for start in range(0, len(rows), EMBED_BATCH_CHUNKS):
            vectors.extend(self.embeddings.embed_documents([r.text for r in rows[start : start + EMBED_BATCH_CHUNKS]]))
            if progress:
                progress(len(vectors), len(rows))
        return vectors


_stores: dict[tuple[str, str, str], RagStore] = {}
_stores_lock = threading.Lock()


def build_rag_store(*, settings: Settings, embeddings: Embeddings | None = None) -> RagStore:
    """A fresh store; `embeddings` overrides the configured embedder (tests, benchmarks)."""
    return RagStore(
        record=ChunkRecord(Path(settings.data_dir) / CHUNKS_DB_NAME),
        index=VectorIndex(
            client=make_client(settings=settings),
            embedding_function=ChromaEmbeddingAdapter.for_settings(settings=settings, embeddings=embeddings),
            embedder=embedder_id(settings=settings),
        ),
        chroma_dir=None if settings.chroma_url else settings.chroma_dir,
    )


def _store_key(settings: Settings) -> tuple[str, str, str]:
    return (str(Path(settings.data_dir).resolve()), settings.chroma_url, embedder_id(settings=settings))


def get_rag_store(*, settings: Settings) -> RagStore:
    """The process-wide store for this data dir, Chroma location and embedder: repeated calls are free."""
    key = _store_key(settings)
    with _stores_lock:
        store = _stores.get(key)
        if store is None:
            store = _stores[key] = build_rag_store(settings=settings)
        return store


def close_rag_store(*, settings: Settings) -> None:
    """Close and forget the shared store for these settings (server shutdown, tests that hand the index over)."""
    key = _store_key(settings)
    with _stores_lock:
        store = _stores.pop(key, None)
    if store is not None:
        store.close()
