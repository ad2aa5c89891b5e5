"""The official `openai` SDK as the client of the real server's /v1 (uvicorn subprocess, real sandbox, demo model).

Lists models, asks a non-streamed and a streamed question about an uploaded CSV in one client thread (the second
turn reuses a variable the first computed), chats with a pass-through model, and checks the errors the SDK raises.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from tests.integration.api.conftest import upload_csv

FIRST = "What is the average revenue by region?"
FOLLOW_UP = "Which region has the highest average revenue?"
SDK_TIMEOUT = 300.0


@pytest.fixture
def api_key(client: httpx.Client) -> Iterator[dict[str, Any]]:
    created = client.post("/api/auth/api-keys", json={"name": "sdk-test"})
    assert created.status_code == 201, created.text
    yield created.json()


@pytest.fixture
def sdk(server: dict[str, str], api_key: dict[str, Any]) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=f"{server['url']}/v1", api_key=api_key["key"], max_retries=0,
                       timeout=SDK_TIMEOUT) as client:
        yield client


def test_models_list_the_agents_and_the_provider(sdk: openai.OpenAI) -> None:
    ids = [model.id for model in sdk.models.list()]
    assert ids == ["agent-auto", "agent-react", "agent-plan-execute", "llm-fake"]
    assert sdk.models.retrieve("agent-react").owned_by == "analysis-server"


def test_two_turns_of_one_thread_share_the_conversation_and_its_state(
    sdk: openai.OpenAI, client: httpx.Client
) -> None:
    file_id = upload_csv(client)
    first = sdk.chat.completions.create(model="agent-auto", messages=[{"role": "user", "content": FIRST}],
                                        metadata={"file_ids": file_id}, user="analyst-1")
    assert first.object == "chat.completion" and first.choices[0].finish_reason == "stop"
    answer = first.choices[0].message.content or ""
    assert "147" in answer  # East: (143.2 + 150.8) / 2, computed by pandas in the sandbox
    assert first.usage is not None and first.usage.total_tokens > 0
    conversation_id = (first.model_extra or {})["conversation_id"]

    history: list[Any] = [{"role": "user", "content": FIRST}, {"role": "assistant", "content": answer},
                          {"role": "user", "content": FOLLOW_UP}]
    stream = sdk.chat.completions.create(model="agent-auto", messages=history, stream=True, user="analyst-1",
                                         stream_options={"include_usage": True})
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert "Highest: East (147.00)" in text  # reuses `avg_revenue_by_region` from the first turn
    assert "✓ `python_coder`" in text  # progress (the default `summary`)
    assert chunks[-1].choices == [] and chunks[-1].usage is not None and chunks[-1].usage.total_tokens > 0
    assert [c for c in chunks if c.choices][-1].choices[0].finish_reason == "stop"
    assert {(c.model_extra or {}).get("conversation_id") for c in chunks} == {conversation_id}

    conversation = client.get(f"/api/conversations/{conversation_id}").json()
    assert [(m["role"], m["content"]) for m in conversation["messages"]][::2] == [("user", FIRST),
                                                                                 ("user", FOLLOW_UP)]
    assert [run["status"] for run in conversation["runs"]] == ["done", "done"]


def test_a_pass_through_model_chats_without_the_agent(sdk: openai.OpenAI) -> None:
    reply = sdk.chat.completions.create(model="llm-fake", messages=[{"role": "user", "content": "hello there"}],
                                        temperature=0.2, max_tokens=64)
    assert reply.choices[0].message.content == "(demo model) You asked: hello there"


def test_errors_raise_the_sdks_exception_classes(sdk: openai.OpenAI, server: dict[str, str],
                                                 client: httpx.Client, api_key: dict[str, Any]) -> None:
    with pytest.raises(openai.NotFoundError) as missing:
        sdk.chat.completions.create(model="gpt-nothing", messages=[{"role": "user", "content": "hi"}])
    assert missing.value.code == "model_not_found"
    with pytest.raises(openai.BadRequestError):
        sdk.chat.completions.create(model="agent-auto", messages=[{"role": "system", "content": "no question"}])
    assert client.delete(f"/api/auth/api-keys/{api_key['id']}").status_code == 204
    with pytest.raises(openai.AuthenticationError) as revoked:
        sdk.models.list()
    assert "revoked" in revoked.value.message
