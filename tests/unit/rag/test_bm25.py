"""BM25 keyword ranking over a user's chunks."""

from __future__ import annotations

from pathlib import Path

from backend.storage.documents import INDEXED, ChunkRecord, ChunkRow
from backend.tools.bm25 import Bm25Index, bm25_for_user, tokenize


def rows(*texts: str, file_id: str = "f") -> list[ChunkRow]:
    return [ChunkRow(f"{file_id}:{i}", "u", file_id, "doc.txt", None, i, t) for i, t in enumerate(texts)]


def test_tokens_are_lowercased_words_without_stopwords() -> None:
    assert tokenize("The Revenue of ACME in 2023, and its growth!") == ["revenue", "acme", "2023", "growth"]


def test_chunk_containing_the_rare_query_word_ranks_first() -> None:
    index = Bm25Index(rows("cats sleep all day", "the zeppelin flew over the city", "cats chase mice"))
    top = index.top("zeppelin city", n=3)
    assert top[0][0].text == "the zeppelin flew over the city"


def test_more_occurrences_rank_higher() -> None:
    index = Bm25Index(rows("budget meeting notes", "budget budget budget overview", "lunch menu"))
    assert [r.ordinal for r, _ in index.top("budget", n=3)] == [1, 0]


def test_chunks_sharing_no_word_are_not_returned() -> None:
    index = Bm25Index(rows("apples and pears", "bananas"))
    assert index.top("submarine", n=5) == []


def test_a_single_chunk_corpus_still_scores_positively() -> None:
    top = Bm25Index(rows("only one chunk mentions glaciers")).top("glaciers", n=1)
    assert len(top) == 1 and top[0][1] > 0


def test_a_query_of_only_stopwords_matches_nothing() -> None:
    assert Bm25Index(rows("the cat is on the mat")).top("the is on", n=5) == []


def test_file_filter_excludes_other_documents() -> None:
    index = Bm25Index(rows("quarterly revenue table", file_id="a") + rows("revenue forecast", file_id="b"))
    assert {r.file_id for r, _ in index.top("revenue", n=5, file_ids=["b"])} == {"b"}


def test_file_name_words_are_searchable() -> None:
    row = ChunkRow("f:0", "u", "f", "handbook-onboarding.pdf", 1, 0, "welcome to the team")
    assert Bm25Index([row]).top("onboarding", n=1)[0][0] is row


def test_cached_index_is_rebuilt_after_the_users_documents_change(tmp_path: Path) -> None:
    record = ChunkRecord(tmp_path / "chunks.db")
    record.begin_document(user_id="u", file_id="a", name="a.txt", kind="text", pages=1, chunks=[(None, "old words")])
    record.set_status(user_id="u", file_id="a", status=INDEXED)
    assert bm25_for_user(record, user_id="u").top("fresh", n=1) == []
    record.begin_document(user_id="u", file_id="b", name="b.txt", kind="text", pages=1, chunks=[(None, "fresh words")])
    record.set_status(user_id="u", file_id="b", status=INDEXED)
    assert [r.file_id for r, _ in bm25_for_user(record, user_id="u").top("fresh", n=1)] == ["b"]
