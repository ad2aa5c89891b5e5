"""Hybrid retrieval over one user's documents (BM25 + vectors, reciprocal-rank fusion) and the `rag_search` tool.

Every hit carries its file, page and chunk id, so answers can cite `[report.pdf p.3]`. Searches are scoped
to the user's own collection and chunk record: no query can reach another user's documents.
Ingestion and deletion live in `backend.storage.ingest` (`ingest_document`, `delete_document`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from langchain_core.runnables import RunnableConfig

from backend.core.metrics import instrument_rag
from backend.core.settings import Settings
from backend.storage.documents import INDEXED, ChunkRow
from backend.storage.vectors import RagStore, get_rag_store
from backend.tools.bm25 import bm25_for_user
from backend.tools.registry import ToolUnavailableError, tool_context

log = logging.getLogger(__name__)

__all__ = ["rag_search"]  # what tool auto-discovery registers; `search` & co. are imported by name

RRF_K = 60
"""Reciprocal-rank-fusion constant from Cormack et al. (2009); dampens the weight of the very top ranks."""
CANDIDATES_PER_K = 4
MIN_CANDIDATES = 20
"""Each ranker proposes max(k * CANDIDATES_PER_K, MIN_CANDIDATES) chunks before fusion."""
MAX_K = 50
MAX_QUERY_CHARS = 2000
"""Longer queries are cut: the embedder sees 256 tokens anyway and BM25 gains nothing from an essay."""
TOOL_HIT_CHARS = 700
"""Characters of each passage shown to the LLM by `rag_search` (a 4-8k context must hold several)."""

Mode = Literal["hybrid", "vector", "bm25"]


@dataclass(frozen=True)
class Hit:
    chunk_id: str
    file_id: str
    file_name: str
    page: int | None
    text: str
    score: float
    """Fused RRF score (higher is better); comparable only within one search."""
    vector_rank: int | None = None
    bm25_rank: int | None = None

    @property
    def citation(self) -> str:
        return citation(self.file_name, self.page)


def citation(file_name: str, page: int | None) -> str:
    """`[report.pdf p.3]`, or `[notes.md]` for documents without pages."""
    return f"[{file_name} p.{page}]" if page is not None else f"[{file_name}]"


def rrf_fuse(rankings: Sequence[Sequence[str]], *, k: int = RRF_K) -> list[tuple[str, float]]:
    """Reciprocal-rank fusion: score(d) = sum over rankings of 1 / (k + rank), rank starting at 1.

    Ties keep the order in which ids were first seen, so the result is deterministic.
    """
    scores: dict[str, float] = {}
    for ranking in rankings:
        for rank, item in enumerate(ranking, start=1):
            scores[item] = scores.get(item, 0.0) + 1.0 / (k + rank)
    return sorted(scores.items(), key=lambda pair: -pair[1])


@instrument_rag("query")
def search(
    *,
    settings: Settings,
    user_id: str,
    query: str,
    k: int | None = None,
    file_ids: Sequence[str] | None = None,
    mode: Mode = "hybrid",
    store: RagStore | None = None,
) -> list[Hit]:
    """The `k` (default `rag_top_k`) best chunks of this user's indexed documents for `query`.

    `file_ids` restricts the search to those documents. Blocking (embedding, Chroma): call from a thread
    when on an event loop. If the vector side fails in hybrid mode, BM25 results are still returned.
    """
    user_id = str(user_id)
    query = query.strip()[:MAX_QUERY_CHARS]
    if not query:
        raise ValueError("the search query is empty")
    k = settings.rag_top_k if k is None else k
    if not 1 <= k <= MAX_K:
        raise ValueError(f"k must be between 1 and {MAX_K}, got {k}")
    store = store or get_rag_store(settings=settings)
    ids = [str(f) for f in file_ids] if file_ids is not None else None
    n = max(k * CANDIDATES_PER_K, MIN_CANDIDATES)

    rows: dict[str, ChunkRow] = {}
    keyword: list[str] = []
    if mode in ("hybrid", "bm25"):
        for row, _score in bm25_for_user(store.record, user_id=user_id).top(query, n=n, file_ids=ids):
            rows[row.chunk_id] = row
            keyword.append(row.chunk_id)
    semantic: list[str] = []
    if mode in ("hybrid", "vector"):
        try:
            semantic = _vector_ids(store, user_id=user_id, query=query, n=n, file_ids=ids, known=rows)
        except Exception as exc:
            if mode == "vector":
                raise
            log.warning("vector search failed for user %s, using keywords only: %s", user_id, exc)

    vector_rank = {cid: i for i, cid in enumerate(semantic, start=1)}
    bm25_rank = {cid: i for i, cid in enumerate(keyword, start=1)}
    hits = []
    for chunk_id, score in rrf_fuse([semantic, keyword])[:k]:
        row = rows[chunk_id]
        hits.append(
            Hit(
                chunk_id=chunk_id,
                file_id=row.file_id,
                file_name=row.file_name,
                page=row.page,
                text=row.text,
                score=score,
                vector_rank=vector_rank.get(chunk_id),
                bm25_rank=bm25_rank.get(chunk_id),
            )
        )
    return hits


def _vector_ids(
    store: RagStore, *, user_id: str, query: str, n: int, file_ids: list[str] | None, known: dict[str, ChunkRow]
) -> list[str]:
    """Nearest chunk ids, keeping only chunks the record says are indexed (stale vectors never surface)."""
    embedding = store.embeddings.embed_query(query)
    pairs = store.index.query(user_id=user_id, embedding=embedding, n=n, file_ids=file_ids)
    missing = [cid for cid, _ in pairs if cid not in known]
    known.update(store.record.chunks_by_id(user_id=user_id, chunk_ids=missing))
    return [cid for cid, _ in pairs if cid in known]


def format_hits(hits: Sequence[Hit], *, query: str, max_chars: int = TOOL_HIT_CHARS) -> str:
    """Passages as the LLM reads them, each headed by the citation it should copy into its answer."""
    if not hits:
        return f"No passages in the uploaded documents match {query!r}."
    head = f"{len(hits)} passages from the uploaded documents for {query!r}"
    lines = [f"{head}; cite them as shown, e.g. {hits[0].citation}."]
    for number, hit in enumerate(hits, start=1):
        text = " ".join(hit.text.split())
        if len(text) > max_chars:
            text = text[: max_chars - 1] + "…"
        lines.append(f"\n[{number}] {hit.citation} (chunk {hit.chunk_id})\n{text}")
    return "\n".join(lines)


async def rag_search(query: str, config: RunnableConfig) -> str:
    """Search the user's uploaded documents (PDF, text, markdown) for passages relevant to a question.

    Use this for facts stated in the user's documents; cite the returned [file p.N] markers in the answer.

    Args:
        query: What to look for, in plain words (a question or key phrases).
    """
    context = tool_context(config)
    if context.settings is None:
        raise ToolUnavailableError("rag_search has no settings in its run context")
    if not context.user_id:
        raise ToolUnavailableError("rag_search needs a signed-in user")
    settings, user_id = context.settings, context.user_id

    def run() -> str:
        store = get_rag_store(settings=settings)
        if not store.record.documents(user_id=user_id, status=INDEXED):
            return "No documents are indexed for this user yet: upload a PDF or text file to search it."
        return format_hits(search(settings=settings, user_id=user_id, query=query, store=store), query=query)

    return await asyncio.to_thread(run)
