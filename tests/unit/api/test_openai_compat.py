"""/v1 (OpenAI-compatible): models, completion and chunk shapes, conversation mapping, files, errors, pass-through."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from backend.api.deps import get_optional_agent
from backend.core.settings import Settings
from backend.llm.factory import get_chat_model
from backend.llm.health import HealthRegistry

PNG = b"\x89PNG\r\n\x1a\n" + b"\x01" * 32
AGENT_MODELS = ["agent-auto", "agent-react", "agent-plan-execute"]


@pytest.fixture(autouse=True)
def _provider_chain(agent: Any, settings: Settings) -> None:
    """The agent holds the real chain over the `fake` provider, as AgentService does."""
    agent.llm = get_chat_model(settings=settings, registry=HealthRegistry())


@pytest.fixture
def key(client: TestClient, alice: dict[str, str]) -> dict[str, str]:
    secret = client.post("/api/auth/api-keys", headers=alice, json={"name": "tests"}).json()["key"]
    return {"Authorization": f"Bearer {secret}"}


def _complete(client: TestClient, headers: dict[str, str], messages: list[dict[str, Any]], **extra: Any) -> Any:
    return client.post("/v1/chat/completions", headers=headers,
                       json={"model": extra.pop("model", "agent-auto"), "messages": messages, **extra})


def _chunks(text: str) -> list[Any]:
    data = [line.removeprefix("data:").strip() for line in text.replace("\r\n", "\n").split("\n")
            if line.startswith("data:")]
    assert data[-1] == "[DONE]"
    return [json.loads(item) for item in data[:-1]]


def _streamed_text(chunks: list[Any]) -> str:
    return "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])


def _user(text: str) -> dict[str, str]:
    return {"role": "user", "content": text}


# --- models ------------------------------------------------------------------------------------------
def test_models_lists_the_agent_strategies_and_each_provider(client: TestClient, key: dict[str, str]) -> None:
    body = client.get("/v1/models", headers=key).json()
    assert body["object"] == "list"
    assert [m["id"] for m in body["data"]] == [*AGENT_MODELS, "llm-fake"]
    assert all(m["object"] == "model" and isinstance(m["created"], int) and m["owned_by"] for m in body["data"])
    assert client.get("/v1/models/agent-react", headers=key).json()["id"] == "agent-react"


def test_an_access_token_works_as_well_as_a_key(client: TestClient, alice: dict[str, str]) -> None:
    assert client.get("/v1/models", headers=alice).status_code == 200


def test_unknown_model_is_404_in_openai_shape(client: TestClient, key: dict[str, str]) -> None:
    for response in (client.get("/v1/models/gpt-9", headers=key), _complete(client, key, [_user("hi")], model="gpt-9")):
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "model_not_found"
        assert response.json()["error"]["param"] == "model"


# --- completions -------------------------------------------------------------------------------------
@pytest.mark.parametrize(("model", "strategy"), [("agent-auto", None), ("agent-react", "react"),
                                                 ("agent-plan-execute", "plan_execute")])
def test_completion_has_openai_shape_and_runs_the_agent(
    client: TestClient, key: dict[str, str], agent: Any, model: str, strategy: str | None
) -> None:
    response = _complete(client, key, [{"role": "system", "content": "be brief"}, _user("mean of score?")],
                         model=model, temperature=0.2, max_tokens=50, user="u1")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["object"] == "chat.completion" and body["id"].startswith("chatcmpl-") and body["model"] == model
    (choice,) = body["choices"]
    assert choice["index"] == 0 and choice["finish_reason"] == "stop"
    assert choice["message"] == {"role": "assistant", "content": "The mean is 2.5.", "refusal": None}
    usage = body["usage"]
    assert usage["prompt_tokens"] > 0 and usage["completion_tokens"] > 0
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert response.headers["X-Conversation-ID"] == body["conversation_id"]
    (call,) = agent.calls
    assert (call["message"], call["strategy"], call["conversation_id"]) == ("mean of score?", strategy,
                                                                            body["conversation_id"])


def test_stream_sends_chunks_and_done(client: TestClient, key: dict[str, str]) -> None:
    response = _complete(client, key, [_user("mean?")], stream=True)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    chunks = _chunks(response.text)
    assert response.headers["X-Conversation-ID"] == chunks[0]["conversation_id"]
    assert all(c["object"] == "chat.completion.chunk" and c["id"] == chunks[0]["id"] for c in chunks)
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    assert all("usage" not in c for c in chunks)
    assert _streamed_text(chunks).rstrip().endswith("\n\nThe mean is 2.5.")  # the fake agent's tokens end in " "


def test_stream_reports_usage_last_when_asked(client: TestClient, key: dict[str, str]) -> None:
    chunks = _chunks(_complete(client, key, [_user("mean?")], stream=True,
                               stream_options={"include_usage": True}).text)
    *body, last = chunks
    assert last["choices"] == [] and last["usage"]["total_tokens"] > 0
    assert all(c["usage"] is None for c in body)


@pytest.mark.parametrize(("mode", "shown", "hidden"), [
    ("summary", "- ✓ `python_coder`", "▶"),
    ("full", "- ▶ step 1 · act · `python_coder`", None),
])
def test_stream_shows_agent_steps_per_setting(
    settings: Settings, app_factory: Any, mode: str, shown: str, hidden: str | None
) -> None:
    client = app_factory(settings.model_copy(update={"openai_compat_progress": mode}))
    from tests.unit.conftest import register_and_login

    text = _streamed_text(_chunks(_complete(client, register_and_login(client), [_user("mean?")], stream=True).text))
    assert shown in text
    assert hidden is None or hidden not in text
    assert text.rstrip().endswith("\n\nThe mean is 2.5.")


def test_progress_none_streams_only_the_answer(settings: Settings, app_factory: Any) -> None:
    client = app_factory(settings.model_copy(update={"openai_compat_progress": "none"}))
    from tests.unit.conftest import register_and_login

    chunks = _chunks(_complete(client, register_and_login(client), [_user("mean?")], stream=True).text)
    assert _streamed_text(chunks).rstrip() == "The mean is 2.5."


def test_figures_become_markdown_links_the_key_can_fetch(client: TestClient, key: dict[str, str], agent: Any) -> None:
    agent.figure = PNG
    content = _complete(client, key, [_user("plot it")]).json()["choices"][0]["message"]["content"]
    assert content.startswith("The mean is 2.5.\n\n![plot.png](http://testserver/api/artifacts/")
    url = content.rsplit("(", 1)[1].rstrip(")")
    assert client.get(url, headers=key).content == PNG
    streamed = _streamed_text(_chunks(_complete(client, key, [_user("plot again")], stream=True).text))
    assert "![plot.png](http://testserver/api/artifacts/" in streamed


def test_a_failed_run_is_502_without_retry_and_an_error_chunk_when_streaming(
    client: TestClient, key: dict[str, str], agent: Any
) -> None:
    agent.error_event = "the turn exceeded its budget"
    response = _complete(client, key, [_user("hi")])
    assert response.status_code == 502
    assert response.headers["x-should-retry"] == "false"
    assert "the turn exceeded its budget" in response.json()["error"]["message"]
    chunks = _chunks(_complete(client, key, [_user("hi")], stream=True).text)
    assert chunks[-1]["error"]["code"] == "run_failed"


def test_no_agent_is_503_in_openai_shape(app: FastAPI, client: TestClient, key: dict[str, str]) -> None:
    app.dependency_overrides[get_optional_agent] = lambda: None
    response = _complete(client, key, [_user("hi")])
    assert response.status_code == 503 and response.json()["error"]["code"] == "agent_unavailable"


# --- conversation mapping ----------------------------------------------------------------------------
def test_a_growing_history_stays_in_one_conversation(client: TestClient, key: dict[str, str], agent: Any,
                                                     alice: dict[str, str]) -> None:
    history: list[dict[str, Any]] = [{"role": "system", "content": "be brief"}, _user("load the data")]
    first = _complete(client, key, history).json()
    history += [{"role": "assistant", "content": first["choices"][0]["message"]["content"]}, _user("and the mean?")]
    second = _complete(client, key, history).json()
    assert second["conversation_id"] == first["conversation_id"]
    assert [c["message"] for c in agent.calls] == ["load the data", "and the mean?"]
    messages = client.get(f"/api/conversations/{first['conversation_id']}", headers=alice).json()["messages"]
    assert [m["content"] for m in messages] == ["load the data", "The mean is 2.5.", "and the mean?",
                                                "The mean is 2.5."]


def test_threads_that_begin_differently_get_different_conversations(client: TestClient, key: dict[str, str],
                                                                      bob: dict[str, str]) -> None:
    base = _complete(client, key, [_user("hello")]).json()["conversation_id"]
    assert _complete(client, key, [_user("hello")]).json()["conversation_id"] == base
    others = {
        _complete(client, key, [_user("bonjour")]).json()["conversation_id"],
        _complete(client, key, [{"role": "system", "content": "x"}, _user("hello")]).json()["conversation_id"],
        _complete(client, key, [_user("hello")], model="agent-react").json()["conversation_id"],
        _complete(client, key, [_user("hello")], user="someone-else").json()["conversation_id"],
        _complete(client, bob, [_user("hello")]).json()["conversation_id"],
    }
    assert len(others) == 5 and base not in others


def test_a_named_conversation_is_continued(client: TestClient, key: dict[str, str], alice: dict[str, str],
                                           bob: dict[str, str]) -> None:
    existing = client.post("/api/chat", headers=alice, json={"message": "start in the UI"}).json()["conversation_id"]
    reply = _complete(client, key, [_user("continue")], metadata={"conversation_id": existing}).json()
    assert reply["conversation_id"] == existing
    # someone else's id is not theirs to continue: it only names a thread of bob's own
    theirs = _complete(client, bob, [_user("sneak")], metadata={"conversation_id": existing}).json()
    assert theirs["conversation_id"] != existing
    assert len(client.get(f"/api/conversations/{existing}", headers=alice).json()["messages"]) == 4


def test_a_client_thread_header_maps_to_a_stable_conversation(client: TestClient, key: dict[str, str]) -> None:
    thread = {**key, "X-Conversation-ID": "0b6c5e0e-6f7d-4f5e-9d1e-2f4c1a7b9c3d"}
    first = _complete(client, thread, [_user("one")]).json()["conversation_id"]
    second = _complete(client, thread, [_user("a different start")]).json()["conversation_id"]
    webui = _complete(client, {**key, "X-OpenWebUI-Chat-Id": "0b6c5e0e-6f7d-4f5e-9d1e-2f4c1a7b9c3d"},
                      [_user("three")]).json()["conversation_id"]
    assert first == second == webui
    bad = _complete(client, {**key, "X-Conversation-ID": "../../etc"}, [_user("x")])
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "x-conversation-id"


# --- files -------------------------------------------------------------------------------------------
def test_uploaded_files_reach_the_agent(client: TestClient, key: dict[str, str], alice: dict[str, str],
                                        agent: Any, settings: Settings) -> None:
    file_id = client.post("/api/upload", headers=alice,
                          files=[("files", ("s.csv", b"a,b\n1,2\n"))]).json()["files"][0]["id"]
    as_part = [{"type": "text", "text": "mean of b?"}, {"type": "file", "file": {"file_id": file_id}}]
    assert _complete(client, key, [{"role": "user", "content": as_part}]).status_code == 200
    assert _complete(client, key, [_user("again")], metadata={"file_ids": file_id}).status_code == 200
    expected = {"s.csv": settings.uploads_dir / agent.calls[0]["user_id"] / f"{file_id}.csv"}
    assert [c["files"] for c in agent.calls] == [expected, expected]
    assert agent.calls[0]["message"] == "mean of b?"


def test_someone_elses_file_is_404_in_openai_shape(client: TestClient, key: dict[str, str],
                                                    bob: dict[str, str]) -> None:
    file_id = client.post("/api/upload", headers=bob, files=[("files", ("s.csv", b"a\n1\n"))]).json()["files"][0]["id"]
    response = _complete(client, key, [_user("x")], metadata={"file_ids": [file_id]})
    assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"


# --- bad input ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("body", [
    {"model": "agent-auto", "messages": []},
    {"model": "agent-auto"},
    {"messages": [_user("hi")]},
    {"model": "agent-auto", "messages": "hi"},
    {"model": "agent-auto", "messages": [{"role": "user", "content": 5}]},
    {"model": "agent-auto", "messages": [{"role": "wizard", "content": "hi"}]},
    {"model": "agent-auto", "messages": [{"content": "hi"}]},
    {"model": "agent-auto", "messages": [{"role": "system", "content": "only a system prompt"}]},
    {"model": "agent-auto", "messages": [_user("hi"), {"role": "assistant", "content": "prefill"}]},
    {"model": "agent-auto", "messages": [_user("   ")]},
    {"model": "agent-auto", "messages": [{"role": "tool", "content": "42", "tool_call_id": "c1"}, _user("hi")]},
    {"model": "agent-auto", "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}]},
    {"model": "agent-auto", "messages": [{"role": "user", "content": [{"type": "file", "file": {"file_data": "x"}}]}]},
    {"model": "agent-auto", "messages": [_user("hi")], "temperature": 7},
    {"model": "agent-auto", "messages": [_user("hi")], "stream": "maybe"},
    {"model": "agent-auto", "messages": [_user("hi")], "metadata": {"conversation_id": "../x"}},
])
def test_malformed_requests_are_400_in_openai_shape(
    client: TestClient, key: dict[str, str], agent: Any, body: dict[str, Any]
) -> None:
    response = client.post("/v1/chat/completions", headers=key, json=body)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error" and error["message"] and set(error) >= {"code", "param"}
    assert agent.calls == []


def test_unparsable_json_is_400_and_the_rest_of_the_api_keeps_422(client: TestClient, key: dict[str, str],
                                                                   alice: dict[str, str]) -> None:
    headers = {**key, "Content-Type": "application/json"}
    response = client.post("/v1/chat/completions", headers=headers, content=b'{"model": ')
    assert response.status_code == 400 and "error" in response.json()
    unchanged = client.post("/api/chat", headers=alice, json={})
    assert unchanged.status_code == 422 and "detail" in unchanged.json()


def test_unknown_v1_paths_and_methods_use_openai_shape(client: TestClient, key: dict[str, str]) -> None:
    assert client.get("/v1/embeddings", headers=key).json()["error"]["code"] == "not_found"
    assert client.get("/v1/chat/completions", headers=key).json()["error"]["code"] == "method_not_allowed"
    assert "detail" in client.get("/api/nothing-here").json()


def test_too_long_a_message_is_400(settings: Settings, app_factory: Any) -> None:
    client = app_factory(settings.model_copy(update={"max_message_chars": 10}))
    from tests.unit.conftest import register_and_login

    response = _complete(client, register_and_login(client), [_user("x" * 11)])
    assert response.status_code == 400 and response.json()["error"]["code"] == "message_too_long"


def test_rate_limit_is_429_in_openai_shape(settings: Settings, app_factory: Any) -> None:
    client = app_factory(settings.model_copy(update={"rate_limit_per_minute": 1}))
    headers = {"Authorization": "Bearer ask-whatever"}
    client.get("/v1/models", headers=headers)
    response = client.get("/v1/models", headers=headers)
    assert response.status_code == 429 and response.json()["error"]["type"] == "rate_limit_error"
    assert response.headers["Retry-After"]


# --- pass-through ------------------------------------------------------------------------------------
def test_llm_models_chat_without_the_agent(client: TestClient, key: dict[str, str], agent: Any,
                                           alice: dict[str, str]) -> None:
    messages = [{"role": "system", "content": "be nice"}, _user("first"), {"role": "assistant", "content": "ok"},
                _user("hi there")]
    body = _complete(client, key, messages, model="llm-fake", temperature=0.3, max_tokens=20).json()
    assert body["choices"][0]["message"]["content"] == "(scripted fake model) You said: hi there"
    assert body["usage"]["total_tokens"] > 0
    chunks = _chunks(_complete(client, key, messages, model="llm-fake", stream=True,
                               stream_options={"include_usage": True}).text)
    assert _streamed_text(chunks) == "(scripted fake model) You said: hi there"
    assert chunks[-1]["usage"]["completion_tokens"] > 0
    assert agent.calls == [] and client.get("/api/conversations", headers=alice).json() == []


def test_a_failing_provider_is_502_not_500(client: TestClient, key: dict[str, str], agent: Any) -> None:
    class Broken:
        async def ainvoke(self, *args: Any, **kwargs: Any) -> Any:
            raise RuntimeError("provider down")

    agent.llm = agent.llm.model_copy(update={"entries": [type(agent.llm.entries[0])("fake", Broken())],
                                             "max_retries": 0})
    response = _complete(client, key, [_user("hi")], model="llm-fake")
    assert response.status_code == 502 and response.json()["error"]["code"] == "model_error"
    assert response.headers["x-should-retry"] == "false"


def test_too_many_runs_is_429_in_openai_shape_and_creates_nothing(settings: Settings, app_factory: Any,
                                                                  agent: Any) -> None:
    import asyncio
    import threading
    import time

    from tests.unit.conftest import register_and_login

    client = app_factory(settings.model_copy(update={"max_concurrent_runs": 1}))
    headers = register_and_login(client)
    agent.hold = asyncio.Event()  # never set: the first run waits until stopped
    thread = threading.Thread(target=lambda: _complete(client, headers, [_user("slow")]))
    thread.start()
    for _ in range(200):
        if agent.holding:
            break
        time.sleep(0.02)
    response = _complete(client, headers, [_user("another thread")])
    assert response.status_code == 429 and response.json()["error"]["type"] == "rate_limit_error"
    assert len(client.get("/api/conversations", headers=headers).json()) == 1
    assert client.post(f"/api/chat/{agent.holding[0]}/stop", headers=headers).json()["stopped"] is True
    thread.join(timeout=10)
