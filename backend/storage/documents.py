"""The record of every ingested chunk (SQLite at data/chunks.db): the source of truth Chroma is rebuilt from.

Self-contained on purpose (plain sqlite3, its own file): the vector index and the app database can each
be lost or migrated without touching this record.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

CHUNKS_DB_NAME = "chunks.db"
SCHEMA_VERSION = 1
BUSY_TIMEOUT_SECONDS = 30.0

Status = Literal["pending", "indexed", "deleting"]
PENDING: Status = "pending"
"""Chunks written, vectors not (yet) confirmed: invisible to search, healed by `reindex`."""
INDEXED: Status = "indexed"
DELETING: Status = "deleting"
"""Delete started: invisible to search even if removing its vectors fails half-way."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS documents (
    user_id TEXT NOT NULL,
    file_id TEXT NOT NULL,
    name TEXT NOT NULL,
    kind TEXT NOT NULL,
    pages INTEGER NOT NULL,
    chunks INTEGER NOT NULL,
    status TEXT NOT NULL,
    warnings TEXT NOT NULL DEFAULT '[]',
    created_at REAL NOT NULL,
    PRIMARY KEY (user_id, file_id)
);
CREATE TABLE IF NOT EXISTS chunks (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    chunk_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    file_id TEXT NOT NULL,
    page INTEGER,
    ordinal INTEGER NOT NULL,
    text TEXT NOT NULL,
    UNIQUE (user_id, chunk_id),
    FOREIGN KEY (user_id, file_id) REFERENCES documents (user_id, file_id) ON DELETE CASCADE
);
CREATE INDEX IF NOT EXISTS chunks_by_file ON chunks (user_id, file_id);
CREATE TABLE IF NOT EXISTS generations (
    user_id TEXT PRIMARY KEY,
    generation INTEGER NOT NULL
);
"""


@dataclass(frozen=True)
class ChunkRow:
    """One chunk as stored: `page` is 1-based for PDFs and None for documents without pages."""

    chunk_id: str
    user_id: str
    file_id: str
    file_name: str
    page: int | None
    ordinal: int
    text: str


@dataclass(frozen=True)
class DocumentRow:
    user_id: str
    file_id: str
    name: str
    kind: str
    pages: int
    chunks: int
    status: Status
    created_at: float
    warnings: list[str] = field(default_factory=list)


def chunk_id_for(file_id: str, ordinal: int) -> str:
    return f"{file_id}:{ordinal:06d}"


class ChunkRecord:
    """Thread-safe access to chunks.db; every call opens a short connection (SQLite in WAL mode)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._ready = False
        self._init_lock = threading.Lock()

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        self._ensure_schema()
        conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_SECONDS)
        try:
            conn.execute("PRAGMA foreign_keys = ON")
            with conn:  # one transaction: commit on success, roll back on any exception
                yield conn
        finally:
            conn.close()

    def _ensure_schema(self) -> None:
        with self._init_lock:
            if self._ready:
                return
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_SECONDS)
            try:
                conn.execute("PRAGMA journal_mode = WAL")
                conn.executescript(_SCHEMA)
                conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
                conn.commit()
            finally:
                conn.close()
            self._ready = True

    @staticmethod
    def _bump(conn: sqlite3.Connection, user_id: str) -> None:
        conn.execute(
            "INSERT INTO generations (user_id, generation) VALUES (?, 1) "
            "ON CONFLICT (user_id) DO UPDATE SET generation = generation + 1",
            (user_id,),
        )

    # --- writes -----------------------------------------------------------------------
    def begin_document(
        self,
        *,
        user_id: str,
        file_id: str,
        name: str,
        kind: str,
        pages: int,
        chunks: Sequence[tuple[int | None, str]],
        warnings: Sequence[str] = (),
    ) -> list[ChunkRow]:
        """Replace the document's chunks with `chunks` ((page, text) pairs), status pending, in one transaction."""
        rows = [
            ChunkRow(chunk_id_for(file_id, i), user_id, file_id, name, page, i, text)
            for i, (page, text) in enumerate(chunks)
        ]
        with self._connect() as conn:
            conn.execute("DELETE FROM documents WHERE user_id = ? AND file_id = ?", (user_id, file_id))
            conn.execute(
                "INSERT INTO documents (user_id, file_id, name, kind, pages, chunks, status, warnings, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (user_id, file_id, name, kind, pages, len(rows), PENDING, json.dumps(list(warnings)), time.time()),
            )
            conn.executemany(
                "INSERT INTO chunks (chunk_id, user_id, file_id, page, ordinal, text) VALUES (?, ?, ?, ?, ?, ?)",
                [(r.chunk_id, r.user_id, r.file_id, r.page, r.ordinal, r.text) for r in rows],
            )
            self._bump(conn, user_id)
        return rows

    def set_status(self, *, user_id: str, file_id: str, status: Status) -> bool:
        with self._connect() as conn:
            cur = conn.execute(
                "UPDATE documents SET status = ? WHERE user_id = ? AND file_id = ?", (status, user_id, file_id)
            )
            self._bump(conn, user_id)
            return cur.rowcount > 0

    def delete_document(self, *, user_id: str, file_id: str) -> int:
        """Remove the document and its chunks; returns how many chunks it had (0 if unknown)."""
        with self._connect() as conn:
            (count,) = conn.execute(
                "SELECT COUNT(*) FROM chunks WHERE user_id = ? AND file_id = ?", (user_id, file_id)
            ).fetchone()
            conn.execute("DELETE FROM documents WHERE user_id = ? AND file_id = ?", (user_id, file_id))
            self._bump(conn, user_id)
        return int(count)

    # --- reads ------------------------------------------------------------------------
    def get_document(self, *, user_id: str, file_id: str) -> DocumentRow | None:
        docs = self._documents("WHERE user_id = ? AND file_id = ?", (user_id, file_id))
        return docs[0] if docs else None

    def documents(self, *, user_id: str | None = None, status: Status | None = None) -> list[DocumentRow]:
        clauses, params = [], []
        if user_id is not None:
            clauses.append("user_id = ?")
            params.append(user_id)
        if status is not None:
            clauses.append("status = ?")
            params.append(status)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        return self._documents(where, tuple(params))

    def _documents(self, where: str, params: tuple[str, ...]) -> list[DocumentRow]:
        with self._connect() as conn:
            rows = conn.execute(
                "SELECT user_id, file_id, name, kind, pages, chunks, status, created_at, warnings "  # noqa: S608
                f"FROM documents {where} ORDER BY created_at",
                params,
            ).fetchall()
        return [
            DocumentRow(
                user_id=row[0],
                file_id=row[1],
                name=row[2],
                kind=row[3],
                pages=row[4],
                chunks=row[5],
                status=row[6],
                created_at=row[7],
                warnings=json.loads(row[8]),
            )
            for row in rows
        ]

    def users(self) -> list[str]:
        with self._connect() as conn:
            return [row[0] for row in conn.execute("SELECT DISTINCT user_id FROM documents ORDER BY user_id")]

    def chunks(
        self, *, user_id: str, file_ids: Sequence[str] | None = None, statuses: Sequence[Status] = (INDEXED,)
    ) -> list[ChunkRow]:
        """The user's chunks in documents with one of `statuses`, in document then ordinal order."""
        sql = (
            "SELECT c.chunk_id, c.user_id, c.file_id, d.name, c.page, c.ordinal, c.text FROM chunks c "  # noqa: S608
            "JOIN documents d ON d.user_id = c.user_id AND d.file_id = c.file_id "
            f"WHERE c.user_id = ? AND d.status IN ({','.join('?' * len(statuses))})"
        )
        params: list[str] = [user_id, *statuses]
        if file_ids is not None:
            sql += f" AND c.file_id IN ({','.join('?' * len(file_ids))})"
            params.extend(file_ids)
        with self._connect() as conn:
            rows = conn.execute(sql + " ORDER BY c.seq", params).fetchall()
        return [ChunkRow(*row) for row in rows]

    def chunks_by_id(self, *, user_id: str, chunk_ids: Sequence[str]) -> dict[str, ChunkRow]:
        """Indexed chunks among `chunk_ids`: vector hits are resolved here, so stale vectors never surface."""
        if not chunk_ids:
            return {}
        sql = (
            "SELECT c.chunk_id, c.user_id, c.file_id, d.name, c.page, c.ordinal, c.text FROM chunks c "  # noqa: S608
            "JOIN documents d ON d.user_id = c.user_id AND d.file_id = c.file_id "
            f"WHERE c.user_id = ? AND d.status = ? AND c.chunk_id IN ({','.join('?' * len(chunk_ids))})"
        )
        with self._connect() as conn:
            rows = conn.execute(sql, [user_id, INDEXED, *chunk_ids]).fetchall()
        return {row[0]: ChunkRow(*row) for row in rows}

    def generation(self, *, user_id: str) -> int:
        """Changes on every write for the user: caches keyed on it can never serve stale chunks."""
        with self._connect() as conn:
            row = conn.execute("SELECT generation FROM generations WHERE user_id = ?", (user_id,)).fetchone()
        return int(row[0]) if row else 0
