"""Tavily web search through respx HTTP fakes: results, rejected key, timeout, no network, no key, cache."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
import respx
from langchain_core.runnables import RunnableConfig
from pydantic import SecretStr

from backend.core.settings import Settings
from backend.tools.registry import ToolContext, ToolRegistry
from backend.tools.web_search import (
    TAVILY_BASE_URL,
    TtlCache,
    WebSearchUnavailableError,
    search_web,
    web_search,
)

SEARCH_URL = f"{TAVILY_BASE_URL}/search"
TAVILY_REPLY: dict[str, Any] = {
    "query": "python release",
    "answer": "Python 3.13 was released in October 2024.",
    "results": [
        {
            "title": "Python 3.13",
            "url": "https://python.org/downloads/3.13",
            "content": "The  new\nrelease.",
            "score": 0.9,
        },
        {"title": "", "url": "https://example.org/news", "content": "x" * 2000, "score": 0.5},
        {"title": "no url", "content": "dropped"},
    ],
}


@pytest.fixture
def keyed(settings: Settings) -> Settings:
    return settings.model_copy(update={"tavily_api_key": SecretStr("tvly-test-key")})


@pytest.fixture
def keyless(settings: Settings) -> Settings:
    """Explicitly without a key, even if TAVILY_API_KEY is set where the tests run."""
    return settings.model_copy(update={"tavily_api_key": None})


@pytest.fixture
def cache() -> TtlCache:
    return TtlCache(ttl=60, max_entries=8)


@respx.mock
async def test_results_carry_title_url_snippet_and_answer(keyed: Settings, cache: TtlCache) -> None:
    route = respx.post(SEARCH_URL).mock(return_value=httpx.Response(200, json=TAVILY_REPLY))
    result = await search_web(settings=keyed, query="python release", cache=cache)
    assert result.answer == "Python 3.13 was released in October 2024."
    assert [(r.title, r.url) for r in result.results] == [
        ("Python 3.13", "https://python.org/downloads/3.13"),
        ("https://example.org/news", "https://example.org/news"),
    ]
    assert result.results[0].snippet == "The new release."
    assert len(result.results[1].snippet) == 500
    sent = route.calls.last.request
    assert sent.headers["Authorization"] == "Bearer tvly-test-key"
    assert json.loads(sent.content)["query"] == "python release"


@respx.mock
async def test_rejected_key_is_reported_unavailable(keyed: Settings, cache: TtlCache) -> None:
    respx.post(SEARCH_URL).mock(return_value=httpx.Response(401, json={"detail": {"error": "Unauthorized"}}))
    with pytest.raises(
        WebSearchUnavailableError, match=r"^web search unavailable: Tavily rejected the API key \(401\)"
    ):
        await search_web(settings=keyed, query="anything", cache=cache)


@respx.mock
async def test_timeout_is_reported_unavailable(keyed: Settings, cache: TtlCache) -> None:
    respx.post(SEARCH_URL).mock(side_effect=httpx.ReadTimeout("slow"))
    with pytest.raises(WebSearchUnavailableError, match="did not answer within"):
        await search_web(settings=keyed, query="anything", cache=cache)


@respx.mock
async def test_no_network_is_reported_unavailable(keyed: Settings, cache: TtlCache) -> None:
    respx.post(SEARCH_URL).mock(side_effect=httpx.ConnectError("name resolution failed"))
    with pytest.raises(WebSearchUnavailableError, match="no network connection to Tavily"):
        await search_web(settings=keyed, query="anything", cache=cache)


@respx.mock
async def test_server_error_is_reported_with_its_status(keyed: Settings, cache: TtlCache) -> None:
    respx.post(SEARCH_URL).mock(return_value=httpx.Response(503, text="maintenance"))
    with pytest.raises(WebSearchUnavailableError, match="HTTP 503"):
        await search_web(settings=keyed, query="anything", cache=cache)


@respx.mock
async def test_without_a_key_nothing_is_sent(keyless: Settings, cache: TtlCache) -> None:
    route = respx.post(SEARCH_URL).mock(return_value=httpx.Response(200, json=TAVILY_REPLY))
    with pytest.raises(WebSearchUnavailableError, match="no Tavily API key is configured"):
        await search_web(settings=keyless, query="anything", cache=cache)
    assert not route.called


@respx.mock
async def test_repeated_query_is_served_from_cache(keyed: Settings, cache: TtlCache) -> None:
    route = respx.post(SEARCH_URL).mock(return_value=httpx.Response(200, json=TAVILY_REPLY))
    first = await search_web(settings=keyed, query="Python  release", cache=cache)
    second = await search_web(settings=keyed, query="python release", cache=cache)
    assert second == first
    assert route.call_count == 1


@respx.mock
async def test_cache_entries_expire(keyed: Settings) -> None:
    now = [0.0]
    cache = TtlCache(ttl=10, max_entries=8, clock=lambda: now[0])
    route = respx.post(SEARCH_URL).mock(return_value=httpx.Response(200, json=TAVILY_REPLY))
    await search_web(settings=keyed, query="q", cache=cache)
    now[0] = 11.0
    await search_web(settings=keyed, query="q", cache=cache)
    assert route.call_count == 2


@respx.mock
async def test_failures_are_not_cached(keyed: Settings, cache: TtlCache) -> None:
    route = respx.post(SEARCH_URL)
    route.side_effect = [httpx.Response(500), httpx.Response(200, json=TAVILY_REPLY)]
    with pytest.raises(WebSearchUnavailableError):
        await search_web(settings=keyed, query="q", cache=cache)
    assert (await search_web(settings=keyed, query="q", cache=cache)).results


async def test_overlong_query_is_refused_before_any_request(keyed: Settings, cache: TtlCache) -> None:
    with pytest.raises(ValueError, match="at most 400"):
        await search_web(settings=keyed, query="x" * 401, cache=cache)


async def test_tool_without_key_returns_an_unavailable_observation(keyless: Settings) -> None:
    registry = ToolRegistry([web_search])
    outcome = await registry.invoke("web_search", {"query": "weather"}, context=ToolContext(settings=keyless))
    assert outcome.ok
    assert outcome.output == "web search unavailable: no Tavily API key is configured (set APP_TAVILY_API_KEY)"


@respx.mock
async def test_tool_lists_numbered_results_with_urls(keyed: Settings) -> None:
    respx.post(SEARCH_URL).mock(return_value=httpx.Response(200, json=TAVILY_REPLY))
    config: RunnableConfig = {"configurable": {"tool_context": ToolContext(settings=keyed)}}
    text = await web_search("tool listing query", config)
    assert "Summary answer (from Tavily): Python 3.13 was released in October 2024." in text
    assert "[1] Python 3.13\nhttps://python.org/downloads/3.13\nThe new release." in text
