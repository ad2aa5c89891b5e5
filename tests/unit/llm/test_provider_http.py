"""Retry classification over real client libraries, with respx faking Ollama's /api/chat and OpenAI's API."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx
from langchain_core.tools import tool

from backend.core.settings import Settings
from backend.llm.errors import ProvidersExhaustedError
from backend.llm.factory import build_provider
from backend.llm.failover import FailoverChatModel, ProviderEntry
from backend.llm.health import HealthRegistry

OLLAMA = "http://ollama.test:11434"
OPENAI = "http://openai.test/v1"


class FakeOpenAIServer:
    """Answers the OpenAI SDK's requests in order. openai>=3 talks through `httpx2`, which respx cannot see,
    so its transport is patched the same way respx patches httpx's."""

    def __init__(self) -> None:
        self.script: list[Any] = []
        self.requests: list[Any] = []

    def handle(self, request: Any) -> Any:
        import httpx2

        self.requests.append(request)
        step = self.script.pop(0) if len(self.script) > 1 else self.script[0]
        if isinstance(step, BaseException):
            raise step
        status, body = step
        return httpx2.Response(status, json=body, request=request)

    def body(self, index: int) -> dict[str, Any]:
        return json.loads(self.requests[index].content)


@pytest.fixture
def openai_server(monkeypatch: pytest.MonkeyPatch) -> FakeOpenAIServer:
    import httpx2

    server = FakeOpenAIServer()
    monkeypatch.setattr(httpx2.HTTPTransport, "handle_request", lambda transport, request: server.handle(request))
    return server


@pytest.fixture(autouse=True)
def allow_model_requests(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests build real providers; respx answers instead of a server."""
    monkeypatch.setattr("backend.llm.guard.ALLOW_MODEL_REQUESTS", True)


@pytest.fixture
def http_settings(tmp_path: Path) -> Settings:
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        data_dir=tmp_path,
        ollama_host=OLLAMA,
        ollama_model="qwen2.5-coder:1.5b",
        openai_base_url=OPENAI,
        openai_model="test-model",
        llm_timeout_seconds=5,
    )


def chain_of(name: str, settings: Settings, *, max_retries: int = 2) -> FailoverChatModel:
    return FailoverChatModel(
        entries=[ProviderEntry(name, build_provider(name, settings=settings))],
        registry=HealthRegistry(),
        max_retries=max_retries,
        sleep=lambda _: None,
    )


def ollama_stream(*pieces: str, tool_calls: list[dict[str, Any]] | None = None) -> httpx.Response:
    lines = [
        {"model": "m", "created_at": "2026-01-01T00:00:00Z", "done": False,
         "message": {"role": "assistant", "content": p}}
        for p in pieces
    ]
    last: dict[str, Any] = {"role": "assistant", "content": ""}
    if tool_calls:
        last["tool_calls"] = tool_calls
    lines.append({
        "model": "m", "created_at": "2026-01-01T00:00:00Z", "message": last, "done": True, "done_reason": "stop",
        "total_duration": 1, "load_duration": 1, "prompt_eval_count": 3, "prompt_eval_duration": 1,
        "eval_count": len(pieces), "eval_duration": 1,
    })
    body = "\n".join(json.dumps(line) for line in lines) + "\n"
    return httpx.Response(200, content=body.encode(), headers={"content-type": "application/x-ndjson"})


def openai_reply(text: str) -> tuple[int, dict[str, Any]]:
    return 200, {
        "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "test-model",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5},
    }


@respx.mock
def test_ollama_reply_is_read_from_the_chat_protocol(http_settings: Settings) -> None:
    route = respx.post(f"{OLLAMA}/api/chat").mock(return_value=ollama_stream("Hel", "lo"))
    assert chain_of("ollama", http_settings).invoke("hi").content == "Hello"
    sent = json.loads(route.calls[0].request.content)
    assert sent["model"] == "qwen2.5-coder:1.5b"
    assert sent["messages"][-1] == {"role": "user", "content": "hi"}


@respx.mock
@pytest.mark.parametrize("status", [500, 503, 429])
def test_ollama_server_errors_and_429_are_retried(http_settings: Settings, status: int) -> None:
    route = respx.post(f"{OLLAMA}/api/chat").mock(
        side_effect=[httpx.Response(status, json={"error": "busy"}), ollama_stream("ok")]
    )
    assert chain_of("ollama", http_settings).invoke("hi").content == "ok"
    assert route.call_count == 2


@respx.mock
def test_ollama_bad_request_is_not_retried(http_settings: Settings) -> None:
    route = respx.post(f"{OLLAMA}/api/chat").mock(return_value=httpx.Response(400, json={"error": "bad"}))
    with pytest.raises(ProvidersExhaustedError, match="ollama"):
        chain_of("ollama", http_settings).invoke("hi")
    assert route.call_count == 1


@respx.mock
def test_ollama_unknown_model_is_not_retried(http_settings: Settings) -> None:
    route = respx.post(f"{OLLAMA}/api/chat").mock(
        return_value=httpx.Response(404, json={"error": "model 'qwen2.5-coder:1.5b' not found"})
    )
    with pytest.raises(ProvidersExhaustedError, match="not found"):
        chain_of("ollama", http_settings).invoke("hi")
    assert route.call_count == 1


@respx.mock
def test_ollama_timeout_is_retried_until_the_budget_is_spent(http_settings: Settings) -> None:
    route = respx.post(f"{OLLAMA}/api/chat").mock(side_effect=httpx.ReadTimeout("slow"))
    with pytest.raises(ProvidersExhaustedError):
        chain_of("ollama", http_settings, max_retries=2).invoke("hi")
    assert route.call_count == 3


@respx.mock
def test_ollama_connection_refused_is_retried(http_settings: Settings) -> None:
    route = respx.post(f"{OLLAMA}/api/chat").mock(side_effect=[httpx.ConnectError("refused"), ollama_stream("up")])
    assert chain_of("ollama", http_settings).invoke("hi").content == "up"
    assert route.call_count == 2


@respx.mock
def test_ollama_streams_several_chunks_through_the_chain(http_settings: Settings) -> None:
    respx.post(f"{OLLAMA}/api/chat").mock(return_value=ollama_stream("a", "b", "c"))
    texts = [chunk.text for chunk in chain_of("ollama", http_settings).stream("hi") if chunk.text]
    assert texts == ["a", "b", "c"]


@respx.mock
def test_ollama_tool_calls_come_back_through_bind_tools(http_settings: Settings) -> None:
    @tool
    def add(a: int, b: int) -> int:
        """Add two integers."""
        return a + b

    route = respx.post(f"{OLLAMA}/api/chat").mock(
        return_value=ollama_stream(tool_calls=[{"function": {"name": "add", "arguments": {"a": 2, "b": 3}}}])
    )
    reply = chain_of("ollama", http_settings).bind_tools([add]).invoke("2+3?")
    assert [(c["name"], c["args"]) for c in reply.tool_calls] == [("add", {"a": 2, "b": 3})]  # type: ignore[attr-defined]
    assert json.loads(route.calls[0].request.content)["tools"][0]["function"]["name"] == "add"


def test_openai_compatible_reply_is_read(http_settings: Settings, openai_server: FakeOpenAIServer) -> None:
    openai_server.script = [openai_reply("hello")]
    assert chain_of("openai", http_settings).invoke("hi").content == "hello"
    assert str(openai_server.requests[0].url) == f"{OPENAI}/chat/completions"
    assert openai_server.body(0)["model"] == "test-model"


@pytest.mark.parametrize("status", [500, 502, 429])
def test_openai_server_errors_and_429_are_retried(
    http_settings: Settings, openai_server: FakeOpenAIServer, status: int
) -> None:
    openai_server.script = [(status, {"error": {"message": "busy"}}), openai_reply("ok")]
    assert chain_of("openai", http_settings).invoke("hi").content == "ok"
    assert len(openai_server.requests) == 2


@pytest.mark.parametrize("status", [400, 401, 404, 422])
def test_openai_client_errors_are_not_retried(
    http_settings: Settings, openai_server: FakeOpenAIServer, status: int
) -> None:
    openai_server.script = [(status, {"error": {"message": "nope"}})]
    with pytest.raises(ProvidersExhaustedError, match="openai"):
        chain_of("openai", http_settings).invoke("hi")
    assert len(openai_server.requests) == 1


def test_openai_timeout_is_retried(http_settings: Settings, openai_server: FakeOpenAIServer) -> None:
    import httpx2

    openai_server.script = [httpx2.ReadTimeout("slow"), openai_reply("ok")]
    assert chain_of("openai", http_settings).invoke("hi").content == "ok"
    assert len(openai_server.requests) == 2


@respx.mock
def test_failing_ollama_fails_over_to_openai(http_settings: Settings, openai_server: FakeOpenAIServer) -> None:
    respx.post(f"{OLLAMA}/api/chat").mock(return_value=httpx.Response(503, json={"error": "down"}))
    openai_server.script = [openai_reply("from openai")]
    model = FailoverChatModel(
        entries=[ProviderEntry(n, build_provider(n, settings=http_settings)) for n in ("ollama", "openai")],
        registry=HealthRegistry(),
        max_retries=1,
        sleep=lambda _: None,
    )
    reply = model.invoke("hi")
    assert (reply.content, reply.response_metadata["llm_provider"]) == ("from openai", "openai")
    assert model.registry.report()[0]["last_error"].startswith("ResponseError")
