"""Opening the vector index: a Chroma server by URL, or a persistent directory owned by one process."""

from __future__ import annotations

import fcntl
import os

import pytest

from backend.core.settings import Settings
from backend.storage.vectors import OWNER_LOCK_NAME, VectorIndexError, build_rag_store


def lock_is_free(settings: Settings) -> bool:
    fd = os.open(settings.chroma_dir / OWNER_LOCK_NAME, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    finally:
        os.close(fd)
    return True


def test_unreachable_chroma_server_is_a_clear_error(settings: Settings) -> None:
    remote = settings.model_copy(update={"chroma_url": "http://chroma.invalid:8123"})
    with pytest.raises(VectorIndexError, match=r"cannot reach the Chroma server at http://chroma.invalid:8123"):
        build_rag_store(settings=remote)


def test_persistent_index_holds_the_directory_lock_until_closed(settings: Settings) -> None:
    store = build_rag_store(settings=settings)
    assert not lock_is_free(settings)
    assert (settings.chroma_dir / OWNER_LOCK_NAME).read_text() == str(os.getpid())
    store.close()
    assert lock_is_free(settings)


def test_two_stores_in_one_process_share_the_lock(settings: Settings) -> None:
    first, second = build_rag_store(settings=settings), build_rag_store(settings=settings)
    first.close()
    assert not lock_is_free(settings)
    second.close()
    assert lock_is_free(settings)
