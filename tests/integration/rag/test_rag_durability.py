"""The record and the index stay consistent across crashes, failures and process restarts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from langchain_core.embeddings import Embeddings

from backend.core.settings import PROJECT_ROOT, Settings
from backend.storage.documents import PENDING
from backend.storage.ingest import IndexingError, delete_document, ingest_document, reindex
from backend.storage.vectors import build_rag_store, close_rag_store, get_rag_store
from backend.tools.rag import search

WriteText = Callable[[str, str], Path]
SUBPROCESS_TIMEOUT = 300

SEARCH_SCRIPT = """
import json, sys
from pathlib import Path
from backend.core.settings import Settings
from backend.tools.rag import search
settings = Settings(_env_file=None, data_dir=Path(sys.argv[1]), jwt_secret="x" * 48)
hits = search(settings=settings, user_id=sys.argv[2], query=sys.argv[3], k=1, mode="vector")
print(json.dumps([[h.file_name, h.page, h.text] for h in hits]))
"""

OPEN_SCRIPT = """
import sys
from pathlib import Path
from backend.core.settings import Settings
from backend.storage.vectors import VectorIndexError, get_rag_store
try:
    get_rag_store(settings=Settings(_env_file=None, data_dir=Path(sys.argv[1]), jwt_secret="x" * 48))
except VectorIndexError as exc:
    print(exc)
    sys.exit(3)
"""


def run_python(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=SUBPROCESS_TIMEOUT,
        env={**os.environ, **(env or {})},
        check=False,
    )


class FailingEmbeddings(Embeddings):
    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        raise ConnectionError("embedding server went away")

    def embed_query(self, text: str) -> list[float]:
        raise ConnectionError("embedding server went away")


def test_committed_chunks_are_found_by_a_fresh_process(rag_settings: Settings, write_text: WriteText) -> None:
    path = write_text("tides.md", "Spring tides happen when the sun and moon align.")
    ingest_document(settings=rag_settings, user_id="alice", file_id="t1", path=path, name="tides.md")
    close_rag_store(settings=rag_settings)
    done = run_python("-c", SEARCH_SCRIPT, str(rag_settings.data_dir), "alice", "when are tides strongest")
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == [
        ["tides.md", None, "Spring tides happen when the sun and moon align."]
    ]


def test_a_second_process_is_refused_while_the_index_is_owned(rag_settings: Settings) -> None:
    get_rag_store(settings=rag_settings)
    done = run_python("-c", OPEN_SCRIPT, str(rag_settings.data_dir))
    assert done.returncode == 3, done.stderr[-2000:]
    assert f"in use by another process (pid {os.getpid()})" in done.stdout


def test_failed_embedding_keeps_neither_record_nor_vectors(rag_settings: Settings, write_text: WriteText) -> None:
    store = build_rag_store(settings=rag_settings, embeddings=FailingEmbeddings())
    try:
        path = write_text("a.md", "some text")
        with pytest.raises(IndexingError, match=r"nothing was kept .*embedding server went away"):
            ingest_document(settings=rag_settings, user_id="alice", file_id="a", path=path, name="a.md", store=store)
        assert store.record.documents(user_id="alice") == []
        assert store.index.count(user_id="alice") == 0
    finally:
        store.close()


def test_interrupted_ingest_stays_hidden_until_reindex_heals_it(rag_settings: Settings, write_text: WriteText) -> None:
    path = write_text("a.md", "Glaciers carve U-shaped valleys.")
    ingest_document(settings=rag_settings, user_id="alice", file_id="a", path=path, name="a.md")
    store = get_rag_store(settings=rag_settings)
    store.record.set_status(user_id="alice", file_id="a", status=PENDING)  # as if killed before "indexed"
    assert search(settings=rag_settings, user_id="alice", query="glaciers valleys") == []
    report = reindex(settings=rag_settings)
    assert (report.healed, report.documents, report.chunks, report.errors) == (1, 1, 1, [])
    assert [h.file_id for h in search(settings=rag_settings, user_id="alice", query="glaciers valleys")] == ["a"]


def test_vectors_left_without_a_record_never_surface_and_reindex_drops_them(
    rag_settings: Settings, write_text: WriteText
) -> None:
    path = write_text("a.md", "Volcanoes vent magma.")
    ingest_document(settings=rag_settings, user_id="alice", file_id="a", path=path, name="a.md")
    store = get_rag_store(settings=rag_settings)
    store.record.delete_document(user_id="alice", file_id="a")  # as if killed after the record, before Chroma
    assert search(settings=rag_settings, user_id="alice", query="volcano magma", mode="vector") == []
    assert reindex(settings=rag_settings).dropped_collections == 1
    assert store.index.count(user_id="alice") == 0


def test_reindex_command_rebuilds_a_lost_index(rag_settings: Settings, write_text: WriteText) -> None:
    path = write_text("a.md", "Comets have icy nuclei.")
    ingest_document(settings=rag_settings, user_id="alice", file_id="a", path=path, name="a.md")
    get_rag_store(settings=rag_settings).index.drop_user(user_id="alice")  # the index is lost, the record is not
    close_rag_store(settings=rag_settings)
    env = {"APP_DATA_DIR": str(rag_settings.data_dir), "APP_JWT_SECRET": "x" * 48}
    done = run_python("-m", "backend", "reindex", env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "done: 1 users, 1 documents, 1 chunks" in done.stdout
    hits = search(settings=rag_settings, user_id="alice", query="what are comets made of", mode="vector")
    assert [h.file_id for h in hits] == ["a"]


def test_delete_completes_when_the_index_cannot_be_reached(
    rag_settings: Settings, write_text: WriteText, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_text("a.md", "Meteors burn up in the mesosphere.")
    ingest_document(settings=rag_settings, user_id="alice", file_id="a", path=path, name="a.md")
    store = get_rag_store(settings=rag_settings)

    def unreachable(**_: object) -> None:
        raise ConnectionError("chroma server down")

    monkeypatch.setattr(store.index, "delete_file", unreachable)
    assert delete_document(settings=rag_settings, user_id="alice", file_id="a") == 1
    monkeypatch.undo()
    assert store.index.count(user_id="alice") == 1  # the vector is still there ...
    assert search(settings=rag_settings, user_id="alice", query="meteors mesosphere", mode="vector") == []  # ... unseen
