"""The `rag_search` tool as the agents call it: through the registry with a per-run context."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from backend.core.settings import Settings
from backend.storage.vectors import close_rag_store
from backend.tools.rag import rag_search
from backend.tools.registry import ToolContext, ToolRegistry


@pytest.fixture
def registry(settings: Settings) -> Iterator[ToolRegistry]:
    yield ToolRegistry([rag_search])
    close_rag_store(settings=settings)


def test_schema_shows_only_the_query_to_the_llm(registry: ToolRegistry) -> None:
    params = registry.schemas()[0]["function"]["parameters"]
    assert list(params["properties"]) == ["query"]


async def test_without_a_user_the_tool_reports_itself_unavailable(registry: ToolRegistry, settings: Settings) -> None:
    outcome = await registry.invoke("rag_search", {"query": "q"}, context=ToolContext(settings=settings))
    assert not outcome.ok
    assert outcome.error == "unavailable: rag_search needs a signed-in user"


async def test_user_without_documents_is_told_to_upload_one(registry: ToolRegistry, settings: Settings) -> None:
    context = ToolContext(settings=settings, user_id="u1")
    outcome = await registry.invoke("rag_search", {"query": "revenue"}, context=context)
    assert outcome.ok
    assert outcome.output.startswith("No documents are indexed for this user yet")
