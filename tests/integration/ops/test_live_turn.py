"""A whole turn through the real app, agent graph, coder tool and sandbox (scripted model): metrics, one request id
in every log line of the turn, and deleting the conversation removes its scratch, variables and checkpoints."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from langchain_core.messages import AIMessage, BaseMessage, SystemMessage, ToolMessage

import backend.llm.factory as factory
from backend.api.app import create_app
from backend.core.metrics import value
from backend.core.settings import Settings
from backend.llm.failover import FailoverChatModel, ProviderEntry
from backend.llm.fake import ScriptedChatModel
from backend.llm.health import HealthRegistry
from backend.ops.checkpoints import list_threads

PASSWORD = "correct horse battery"
CODER_PROMPT_START = "You are a data analyst who answers questions by writing Python"


def brain(messages: list[BaseMessage]) -> AIMessage:
    """The scripted model: the coder gets code, the agent calls the coder once and then answers."""
    first = messages[0]
    if isinstance(first, SystemMessage) and str(first.content).startswith(CODER_PROMPT_START):
        return AIMessage(content="```python\ntotal = 6 * 7\nprint('total', total)\n```")
    if any(isinstance(m, ToolMessage) for m in messages):
        return AIMessage(content="The total is 42.")
    return AIMessage(content="", tool_calls=[{"name": "python_coder", "args": {"question": "compute 6*7"},
                                              "id": "call-1"}])


@pytest.fixture
def live_settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"sandbox_pool_size": 0, "coder_verify_mode": "rules", "log_level": "DEBUG",
                                       "cleanup_interval_minutes": 0})


@pytest.fixture
def client(live_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    scripted = ScriptedChatModel(replies=[brain], cycle=True)
    chain = FailoverChatModel(entries=[ProviderEntry("scripted-live", scripted)], registry=HealthRegistry())
    monkeypatch.setattr(factory, "get_chat_model", lambda **kwargs: chain)
    with TestClient(create_app(live_settings)) as test_client:
        yield test_client


def signed_in(client: TestClient) -> dict[str, str]:
    client.post("/api/auth/register", json={"username": "alice", "password": PASSWORD})
    token = client.post("/api/auth/login", json={"username": "alice", "password": PASSWORD}).json()["access_token"]
    return {"Authorization": f"Bearer {token}"}


def turn_lines(settings: Settings, request_id: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    for handler in logging.getLogger().handlers:
        handler.flush()
    lines = [json.loads(line) for line in (settings.logs_dir / "server.jsonl").read_text().splitlines()]
    return [line for line in lines if line.get("request_id") == request_id], lines


def test_a_coder_turn_is_measured_and_logged_under_one_request_id(live_settings: Settings,
                                                                  client: TestClient) -> None:
    auth = signed_in(client)
    watched = {
        "sandbox": ("sandbox_runs_total", {"outcome": "ok"}),
        "llm": ("llm_calls_total", {"provider": "scripted-live", "outcome": "ok"}),
        "runs": ("agent_runs_total", {"strategy": "react", "status": "done"}),
        "http": ("http_requests_total", {"method": "POST", "route": "/api/chat", "status": "200"}),
    }
    before = {key: value(name, **labels) for key, (name, labels) in watched.items()}
    response = client.post("/api/chat", json={"message": "what is 6 times 7?", "strategy": "react"},
                           headers={**auth, "X-Request-ID": "live-turn-1"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "done" and "42" in body["answer"]
    delta = {key: value(name, **labels) - before[key] for key, (name, labels) in watched.items()}
    assert delta["sandbox"] == 1 and delta["runs"] == 1 and delta["http"] == 1
    assert delta["llm"] >= 3  # agent → coder → agent

    turn, lines = turn_lines(live_settings, "live-turn-1")
    loggers = {line["logger"] for line in turn}
    assert {"backend.access", "backend.llm.exchange", "backend.sandbox.runs"} <= loggers
    in_run = [line for line in turn if line["logger"] != "backend.access"]
    assert {line["run_id"] for line in in_run} == {body["run_id"]}
    run_lines = [line for line in lines if line.get("run_id") == body["run_id"]]
    assert {line["request_id"] for line in run_lines} == {"live-turn-1"}


def test_deleting_the_conversation_removes_scratch_variables_and_checkpoints(live_settings: Settings,
                                                                             client: TestClient) -> None:
    import asyncio

    auth = signed_in(client)
    body = client.post("/api/chat", json={"message": "what is 6 times 7?", "strategy": "react"},
                       headers=auth).json()
    conversation_id = body["conversation_id"]
    session_dir = live_settings.sessions_dir / conversation_id
    assert (session_dir / "vars").is_dir()
    assert conversation_id in asyncio.run(list_threads(settings=live_settings))
    assert client.delete(f"/api/conversations/{conversation_id}", headers=auth).status_code == 204
    assert not session_dir.exists()
    assert conversation_id not in asyncio.run(list_threads(settings=live_settings))
