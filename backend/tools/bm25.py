"""Keyword ranking for RAG: BM25 (rank-bm25) over a user's chunks, cached until their documents change."""

from __future__ import annotations

import math
import re
import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import numpy as np
from rank_bm25 import BM25Okapi

from backend.storage.documents import ChunkRecord, ChunkRow

CACHED_USERS = 32
"""BM25 indexes kept in memory (one per user); the least recently searched is dropped first."""
MIN_TOKEN_CHARS = 2
_STOPWORD_TEXT = (
    "a an and are as at be but by for from has have he her his i in is it its of on or she that the their them "
    "they this to was were what when where which who why will with you your how do does did not no than then "
    "there these those into about can could would should may might been being"
)
STOPWORDS = frozenset(_STOPWORD_TEXT.split())
_TOKEN = re.compile(r"\w+", re.UNICODE)


def tokenize(text: str) -> list[str]:
    """Lower-cased word tokens without stopwords; numbers are kept (years, ids and amounts matter here)."""
    return [t for t in _TOKEN.findall(text.lower()) if len(t) >= MIN_TOKEN_CHARS and t not in STOPWORDS]


class _PostingsBM25(BM25Okapi):
    """BM25Okapi with Lucene's idf and postings lists.

    rank-bm25's idf goes negative for words in more than half the chunks, which inverts the ranking on
    the small corpora a user typically has; Lucene's log(1 + (N - n + 0.5) / (n + 0.5)) never does.
    Postings make a query touch only the chunks containing its words instead of every chunk.
    """

    def __init__(self, corpus: list[list[str]]) -> None:
        super().__init__(corpus)
        postings: dict[str, tuple[list[int], list[int]]] = {}
        doc_freqs: list[dict[str, int]] = self.doc_freqs
        for index, freqs in enumerate(doc_freqs):
            for word, tf in freqs.items():
                docs, tfs = postings.setdefault(word, ([], []))
                docs.append(index)
                tfs.append(tf)
        self.postings = {
            word: (np.asarray(docs, dtype=np.int64), np.asarray(tfs, dtype=np.float64))
            for word, (docs, tfs) in postings.items()
        }
        self.doc_len_array = np.asarray(self.doc_len, dtype=np.float64)
        self.doc_freqs: list[dict[str, int]] = []  # per-chunk dicts are the bulk of the memory; postings replace them

    def _calc_idf(self, nd: dict[str, int]) -> None:
        for word, freq in nd.items():
            self.idf[word] = math.log(1.0 + (self.corpus_size - freq + 0.5) / (freq + 0.5))
        self.average_idf = sum(self.idf.values()) / max(1, len(self.idf))

    def get_scores(self, query: list[str]) -> Any:
        scores = np.zeros(self.corpus_size)
        for word in set(query):
            hit = self.postings.get(word)
            if hit is None:
                continue
            docs, tf = hit
            norm = self.k1 * (1 - self.b + self.b * self.doc_len_array[docs] / self.avgdl)
            scores[docs] += self.idf[word] * tf * (self.k1 + 1) / (tf + norm)
        return scores


class Bm25Index:
    """Immutable BM25 over a fixed list of chunks."""

    def __init__(self, rows: Sequence[ChunkRow]) -> None:
        self.rows = list(rows)
        tokens = [tokenize(f"{r.file_name} {r.text}") for r in self.rows]
        self._bm25 = _PostingsBM25(tokens) if self.rows and any(tokens) else None

    def top(self, query: str, *, n: int, file_ids: Sequence[str] | None = None) -> list[tuple[ChunkRow, float]]:
        """Up to `n` chunks that share at least one word with `query`, best first."""
        words = tokenize(query)
        if self._bm25 is None or not words:
            return []
        scores = self._bm25.get_scores(words)
        if file_ids is not None:
            allowed = set(file_ids)
            mask = np.array([r.file_id in allowed for r in self.rows], dtype=bool)
            scores = np.where(mask, scores, 0.0)
        matched = int(np.count_nonzero(scores > 0))
        if matched == 0:
            return []
        take = min(n, matched)
        best = np.argpartition(-scores, take - 1)[:take]
        best = best[np.argsort(-scores[best], kind="stable")]
        return [(self.rows[i], float(scores[i])) for i in best]


_cache: OrderedDict[tuple[str, str], tuple[int, Bm25Index]] = OrderedDict()
_cache_lock = threading.Lock()


def bm25_for_user(record: ChunkRecord, *, user_id: str) -> Bm25Index:
    """The user's BM25 index over indexed chunks, rebuilt only when their chunk generation has moved."""
    key = (str(record.path), user_id)
    generation = record.generation(user_id=user_id)
    with _cache_lock:
        cached = _cache.get(key)
        if cached is not None and cached[0] == generation:
            _cache.move_to_end(key)
            return cached[1]
    index = Bm25Index(record.chunks(user_id=user_id))
    with _cache_lock:
        _cache[key] = (generation, index)
        _cache.move_to_end(key)
        while len(_cache) > CACHED_USERS:
            _cache.popitem(last=False)
    return index
