"""The chunk record: the durable source the vector index is rebuilt from."""

from __future__ import annotations

from pathlib import Path

import pytest

from backend.storage.documents import DELETING, INDEXED, PENDING, ChunkRecord


@pytest.fixture
def record(tmp_path: Path) -> ChunkRecord:
    return ChunkRecord(tmp_path / "chunks.db")


def add(record: ChunkRecord, *, user: str = "u", file: str = "f", texts: tuple[str, ...] = ("a", "b")) -> None:
    record.begin_document(
        user_id=user,
        file_id=file,
        name=f"{file}.pdf",
        kind="pdf",
        pages=2,
        chunks=[(i + 1, t) for i, t in enumerate(texts)],
    )


def test_new_document_is_pending_and_invisible_to_search(record: ChunkRecord) -> None:
    add(record)
    assert record.get_document(user_id="u", file_id="f").status == PENDING  # type: ignore[union-attr]
    assert record.chunks(user_id="u") == []


def test_indexed_document_chunks_are_listed_in_order_with_pages(record: ChunkRecord) -> None:
    add(record)
    record.set_status(user_id="u", file_id="f", status=INDEXED)
    chunks = record.chunks(user_id="u")
    assert [(c.chunk_id, c.page, c.text, c.file_name) for c in chunks] == [
        ("f:000000", 1, "a", "f.pdf"),
        ("f:000001", 2, "b", "f.pdf"),
    ]


def test_reingesting_a_file_replaces_its_chunks(record: ChunkRecord) -> None:
    add(record, texts=("a", "b", "c"))
    add(record, texts=("z",))
    record.set_status(user_id="u", file_id="f", status=INDEXED)
    assert [c.text for c in record.chunks(user_id="u")] == ["z"]


def test_delete_removes_document_and_chunks_and_counts_them(record: ChunkRecord) -> None:
    add(record)
    assert record.delete_document(user_id="u", file_id="f") == 2
    assert record.get_document(user_id="u", file_id="f") is None
    assert record.chunks(user_id="u", statuses=(PENDING, INDEXED, DELETING)) == []


def test_chunks_of_another_user_are_never_listed(record: ChunkRecord) -> None:
    add(record, user="alice", file="f")
    record.set_status(user_id="alice", file_id="f", status=INDEXED)
    assert record.chunks(user_id="bob") == []
    assert record.chunks_by_id(user_id="bob", chunk_ids=["f:000000"]) == {}


def test_chunks_by_id_skips_documents_being_deleted(record: ChunkRecord) -> None:
    add(record)
    record.set_status(user_id="u", file_id="f", status=DELETING)
    assert record.chunks_by_id(user_id="u", chunk_ids=["f:000000"]) == {}


def test_every_write_moves_the_users_generation(record: ChunkRecord) -> None:
    seen = [record.generation(user_id="u")]
    add(record)
    seen.append(record.generation(user_id="u"))
    record.set_status(user_id="u", file_id="f", status=INDEXED)
    seen.append(record.generation(user_id="u"))
    record.delete_document(user_id="u", file_id="f")
    seen.append(record.generation(user_id="u"))
    assert seen == sorted(set(seen))


def test_record_survives_reopening(record: ChunkRecord, tmp_path: Path) -> None:
    add(record)
    reopened = ChunkRecord(tmp_path / "chunks.db")
    assert reopened.get_document(user_id="u", file_id="f").chunks == 2  # type: ignore[union-attr]
