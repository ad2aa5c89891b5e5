"""Web search through Tavily (`tavily-python`), and the `web_search` tool built on it.

Without a key, or when Tavily cannot be reached, the tool says "web search unavailable: …" and why;
it never invents results. Successful answers are cached briefly per query.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx
from langchain_core.runnables import RunnableConfig

from backend.core.settings import Settings
from backend.tools.registry import ToolUnavailableError, tool_context

log = logging.getLogger(__name__)

__all__ = ["web_search"]  # what tool auto-discovery registers

TAVILY_BASE_URL = "https://api.tavily.com"
TIMEOUT_SECONDS = 15.0
"""Per request; a search slower than this is reported unavailable rather than stalling the agent."""
DEFAULT_MAX_RESULTS = 5
MAX_RESULTS_LIMIT = 10
MAX_QUERY_CHARS = 400
"""Tavily rejects longer queries."""
SNIPPET_CHARS = 500
CACHE_TTL_SECONDS = 300.0
CACHE_MAX_ENTRIES = 256
UNAVAILABLE = "web search unavailable"


class WebSearchUnavailableError(RuntimeError):
    """No key, no network, a rejected key or a Tavily error: the message is the observation to show."""


@dataclass(frozen=True)
class WebResult:
    title: str
    url: str
    snippet: str


@dataclass(frozen=True)
class WebSearchResult:
    query: str
    results: list[WebResult] = field(default_factory=list)
    answer: str | None = None


class TtlCache:
    """A small LRU whose entries expire; the clock is injectable so tests need not sleep."""

    def __init__(self, *, ttl: float, max_entries: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl, self.max_entries, self.clock = ttl, max_entries, clock
        self._items: OrderedDict[tuple[str, int, bool], tuple[float, WebSearchResult]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple[str, int, bool]) -> WebSearchResult | None:
        with self._lock:
            item = self._items.get(key)
            if item is None:
                return None
            if self.clock() - item[0] > self.ttl:
                del self._items[key]
                return None
            self._items.move_to_end(key)
            return item[1]

    def put(self, key: tuple[str, int, bool], value: WebSearchResult) -> None:
        with self._lock:
            self._items[key] = (self.clock(), value)
            self._items.move_to_end(key)
            while len(self._items) > self.max_entries:
                self._items.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


CACHE = TtlCache(ttl=CACHE_TTL_SECONDS, max_entries=CACHE_MAX_ENTRIES)


async def search_web(
    *,
    settings: Settings,
    query: str,
    max_results: int = DEFAULT_MAX_RESULTS,
    include_answer: bool = True,
    cache: TtlCache = CACHE,
) -> WebSearchResult:
    """Tavily search; raises `WebSearchUnavailableError` with a readable reason on every failure."""
    query = " ".join(query.split())
    if not query:
        raise ValueError("the web search query is empty")
    if len(query) > MAX_QUERY_CHARS:
        raise ValueError(f"the web search query is {len(query)} characters; Tavily accepts at most {MAX_QUERY_CHARS}")
    max_results = max(1, min(max_results, MAX_RESULTS_LIMIT))
    if settings.tavily_api_key is None or not settings.tavily_api_key.get_secret_value().strip():
        # Never fall through to tavily-python's keyless mode: no key means no web search, said plainly.
        raise WebSearchUnavailableError(f"{UNAVAILABLE}: no Tavily API key is configured (set APP_TAVILY_API_KEY)")
    key = (query.lower(), max_results, include_answer)
    cached = cache.get(key)
    if cached is not None:
        return cached
    result = await _call_tavily(
        api_key=settings.tavily_api_key.get_secret_value().strip(),
        query=query,
        max_results=max_results,
        include_answer=include_answer,
    )
    cache.put(key, result)
    return result


async def _call_tavily(*, api_key: str, query: str, max_results: int, include_answer: bool) -> WebSearchResult:
    from tavily import AsyncTavilyClient
    from tavily.errors import (
        BadRequestError,
        ForbiddenError,
        InvalidAPIKeyError,
        UsageLimitExceededError,
    )
    from tavily.errors import TimeoutError as TavilyTimeoutError

    async with httpx.AsyncClient(base_url=TAVILY_BASE_URL, timeout=TIMEOUT_SECONDS) as http:
        client = AsyncTavilyClient(api_key=api_key, client=http)
        try:
            raw = await client.search(
                query, max_results=max_results, include_answer=include_answer, timeout=TIMEOUT_SECONDS
            )
        except InvalidAPIKeyError as exc:
            raise WebSearchUnavailableError(f"{UNAVAILABLE}: Tavily rejected the API key (401)") from exc
        except ForbiddenError as exc:
            raise WebSearchUnavailableError(f"{UNAVAILABLE}: Tavily refused the request (403): {exc}") from exc
        except UsageLimitExceededError as exc:
            raise WebSearchUnavailableError(f"{UNAVAILABLE}: Tavily usage limit reached (429): {exc}") from exc
        except BadRequestError as exc:
            raise WebSearchUnavailableError(f"{UNAVAILABLE}: Tavily rejected the query (400): {exc}") from exc
        except (TavilyTimeoutError, httpx.TimeoutException) as exc:
            message = f"{UNAVAILABLE}: Tavily did not answer within {TIMEOUT_SECONDS:g} s"
            raise WebSearchUnavailableError(message) from exc
        except httpx.HTTPStatusError as exc:
            status = exc.response.status_code
            raise WebSearchUnavailableError(f"{UNAVAILABLE}: Tavily returned HTTP {status}") from exc
        except (httpx.HTTPError, OSError) as exc:
            raise WebSearchUnavailableError(f"{UNAVAILABLE}: no network connection to Tavily ({exc})") from exc
        except ValueError as exc:  # a 200 whose body is not JSON
            raise WebSearchUnavailableError(f"{UNAVAILABLE}: Tavily sent an unreadable response ({exc})") from exc
    return _parse(query, raw)


def _parse(query: str, raw: object) -> WebSearchResult:
    if not isinstance(raw, dict):
        raise WebSearchUnavailableError(f"{UNAVAILABLE}: Tavily sent an unexpected response")
    results = []
    for item in raw.get("results") or []:
        if not isinstance(item, dict) or not item.get("url"):
            continue
        snippet = " ".join(str(item.get("content") or "").split())
        if len(snippet) > SNIPPET_CHARS:
            snippet = snippet[: SNIPPET_CHARS - 1] + "…"
        results.append(WebResult(title=str(item.get("title") or item["url"]), url=str(item["url"]), snippet=snippet))
    answer = raw.get("answer")
    return WebSearchResult(query=query, results=results, answer=str(answer).strip() if answer else None)


def format_web_results(result: WebSearchResult) -> str:
    """Results as the LLM reads them: an optional summary answer, then numbered title / URL / snippet."""
    if not result.results and not result.answer:
        return f"Web search found no results for {result.query!r}."
    lines = [f"Web results for {result.query!r} (cite the URLs you use):"]
    if result.answer:
        lines.append(f"Summary answer (from Tavily): {result.answer}")
    for number, item in enumerate(result.results, start=1):
        lines.append(f"\n[{number}] {item.title}\n{item.url}\n{item.snippet}")
    return "\n".join(lines)


async def web_search(query: str, config: RunnableConfig) -> str:
    """Search the web for current or general information that is not in the user's files.

    Args:
        query: A short search query (under 400 characters).
    """
    settings = tool_context(config).settings
    if settings is None:
        raise ToolUnavailableError("web_search has no settings in its run context")
    try:
        return format_web_results(await search_web(settings=settings, query=query))
    except WebSearchUnavailableError as exc:
        log.info("%s", exc)
        return str(exc)
