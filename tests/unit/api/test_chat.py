"""POST /api/chat as JSON and as SSE, stop, failures, limits, artifacts and per-user isolation."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from typing import Any

import pytest
from fastapi.testclient import TestClient

from backend.core.settings import Settings

PNG = b"\x89PNG\r\n\x1a\n" + b"\x01" * 32


def _sse_events(text: str) -> list[tuple[str, Any]]:
    events = []
    for block in text.replace("\r\n", "\n").split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line and not line.startswith(":"))
        if "event" in fields:
            events.append((fields["event"], json.loads(fields["data"])))
    return events


def test_chat_returns_answer_steps_and_a_new_conversation(client: TestClient, alice: dict[str, str]) -> None:
    response = client.post("/api/chat", headers=alice, json={"message": "mean of score?"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "done"
    assert body["answer"] == "The mean is 2.5."
    steps = [(s["step"], s["node"], s["tool"], s["status"]) for s in body["steps"]]
    assert steps == [(1, "act", "python_coder", "done")]
    assert body["steps"][0]["detail"]["events"][0]["type"] == "tool_call"
    conversation = client.get(f"/api/conversations/{body['conversation_id']}", headers=alice).json()
    assert [(m["role"], m["content"]) for m in conversation["messages"]] == [
        ("user", "mean of score?"), ("assistant", "The mean is 2.5.")]


def test_chat_continues_an_existing_conversation(client: TestClient, alice: dict[str, str]) -> None:
    first = client.post("/api/chat", headers=alice, json={"message": "one"}).json()
    second = client.post("/api/chat", headers=alice,
                         json={"message": "two", "conversation_id": first["conversation_id"]}).json()
    assert second["conversation_id"] == first["conversation_id"]
    messages = client.get(f"/api/conversations/{first['conversation_id']}", headers=alice).json()["messages"]
    assert [m["content"] for m in messages] == ["one", "The mean is 2.5.", "two", "The mean is 2.5."]


@pytest.mark.parametrize("how", ["query", "body", "accept"])
def test_chat_streams_events_as_sse(client: TestClient, alice: dict[str, str], how: str) -> None:
    params = {"stream": "true"} if how == "query" else {}
    body: dict[str, Any] = {"message": "hi", **({"stream": True} if how == "body" else {})}
    headers = {**alice, **({"Accept": "text/event-stream"} if how == "accept" else {})}
    response = client.post("/api/chat", headers=headers, params=params, json=body)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    events = _sse_events(response.text)
    kinds = [kind for kind, _ in events]
    assert kinds[0] == "conversation"
    assert kinds[-2:] == ["final_answer", "done"]
    assert "token" in kinds and "step_started" in kinds and "step_finished" in kinds
    assert events[-1][1]["status"] == "done"


def test_uploaded_files_reach_the_agent_by_name_and_stay_attached(
    client: TestClient, alice: dict[str, str], agent: Any, settings: Settings
) -> None:
    file_id = client.post("/api/upload", headers=alice,
                          files=[("files", ("s.csv", b"a,b\n1,2\n"))]).json()["files"][0]["id"]
    first = client.post("/api/chat", headers=alice, json={"message": "look", "files": [file_id]}).json()
    client.post("/api/chat", headers=alice, json={"message": "again", "conversation_id": first["conversation_id"]})
    for call in agent.calls:
        assert call["files"] == {"s.csv": settings.uploads_dir / call["user_id"] / f"{file_id}.csv"}


def test_another_users_conversation_or_file_is_404(
    client: TestClient, alice: dict[str, str], bob: dict[str, str], agent: Any
) -> None:
    conversation_id = client.post("/api/chat", headers=alice, json={"message": "mine"}).json()["conversation_id"]
    file_id = client.post("/api/upload", headers=alice,
                          files=[("files", ("s.csv", b"a,b\n1,2\n"))]).json()["files"][0]["id"]
    other = {"message": "x", "conversation_id": conversation_id}
    assert client.post("/api/chat", headers=bob, json=other).status_code == 404
    assert client.post("/api/chat", headers=bob, json={"message": "x", "files": [file_id]}).status_code == 404
    assert len(agent.calls) == 1


@pytest.mark.parametrize("body", [{"message": ""}, {}, {"message": "x", "files": "abc"},
                                  {"message": "x", "conversation_id": "../etc"}])
def test_invalid_chat_requests_are_422(client: TestClient, alice: dict[str, str], body: dict[str, Any]) -> None:
    assert client.post("/api/chat", headers=alice, json=body).status_code == 422


def test_malformed_json_is_422(client: TestClient, alice: dict[str, str]) -> None:
    headers = {**alice, "Content-Type": "application/json"}
    assert client.post("/api/chat", headers=headers, content=b'{"message": ').status_code == 422


def test_message_over_the_configured_limit_is_422(settings: Settings, app_factory: Any) -> None:
    client = app_factory(settings.model_copy(update={"max_message_chars": 10}))
    client.post("/api/auth/register", json={"username": "alice", "password": "correct horse battery"})
    token = client.post("/api/auth/login", json={"username": "alice", "password": "correct horse battery"}).json()
    headers = {"Authorization": f"Bearer {token['access_token']}"}
    assert client.post("/api/chat", headers=headers, json={"message": "x" * 11}).status_code == 422


def test_agent_crash_becomes_a_failed_run_not_a_500(client: TestClient, alice: dict[str, str], agent: Any) -> None:
    agent.fail_with = RuntimeError("model fell over")
    body = client.post("/api/chat", headers=alice, json={"message": "hi"}).json()
    assert body["status"] == "failed"
    assert "model fell over" in body["error"]
    assert body["steps"][0]["status"] == "failed"


def test_agent_error_event_is_streamed_and_recorded(client: TestClient, alice: dict[str, str], agent: Any) -> None:
    agent.error_event = "the turn exceeded its budget"
    response = client.post("/api/chat", headers=alice, params={"stream": "true"}, json={"message": "hi"})
    events = _sse_events(response.text)
    assert [k for k, _ in events].count("error") == 1
    assert events[-1][1]["status"] == "failed"
    run = client.get(f"/api/runs/{events[-1][1]['run_id']}", headers=alice).json()
    assert run["error"] == "the turn exceeded its budget"


def test_chat_without_an_agent_is_503(app: Any, client: TestClient, alice: dict[str, str]) -> None:
    from backend.api.deps import get_agent

    del app.dependency_overrides[get_agent]
    assert client.post("/api/chat", headers=alice, json={"message": "hi"}).status_code == 503


def _chat_in_background(client: TestClient, headers: dict[str, str], results: list[Any]) -> threading.Thread:
    thread = threading.Thread(target=lambda: results.append(client.post("/api/chat", headers=headers,
                                                                        json={"message": "slow"})))
    thread.start()
    return thread


def _wait_for_running_run(client: TestClient, headers: dict[str, str]) -> str:
    for _ in range(200):
        conversations = client.get("/api/conversations", headers=headers).json()
        if conversations:
            runs = client.get(f"/api/conversations/{conversations[0]['id']}", headers=headers).json()["runs"]
            if runs:
                return str(runs[0]["id"])
        time.sleep(0.02)
    raise AssertionError("the run never started")


def test_stop_cancels_a_running_chat(client: TestClient, alice: dict[str, str], agent: Any) -> None:
    agent.hold = asyncio.Event()  # never set: the run waits until stopped
    results: list[Any] = []
    thread = _chat_in_background(client, alice, results)
    run_id = _wait_for_running_run(client, alice)
    response = client.post(f"/api/chat/{run_id}/stop", headers=alice)
    thread.join(timeout=10)
    assert response.json() == {"run_id": run_id, "stopped": True}
    assert results[0].json()["status"] == "cancelled"
    assert agent.cancelled == [run_id]
    assert client.get(f"/api/runs/{run_id}", headers=alice).json()["status"] == "cancelled"


def test_another_user_cannot_stop_a_run(
    client: TestClient, alice: dict[str, str], bob: dict[str, str]
) -> None:
    run_id = client.post("/api/chat", headers=alice, json={"message": "hi"}).json()["run_id"]
    assert client.post(f"/api/chat/{run_id}/stop", headers=bob).status_code == 404
    assert client.post(f"/api/chat/{run_id}/stop", headers=alice).json()["stopped"] is False


def test_too_many_runs_in_flight_is_429(settings: Settings, app_factory: Any, agent: Any) -> None:
    client = app_factory(settings.model_copy(update={"max_concurrent_runs": 1}))
    client.post("/api/auth/register", json={"username": "alice", "password": "correct horse battery"})
    token = client.post("/api/auth/login", json={"username": "alice", "password": "correct horse battery"}).json()
    headers = {"Authorization": f"Bearer {token['access_token']}"}
    agent.hold = asyncio.Event()
    results: list[Any] = []
    thread = _chat_in_background(client, headers, results)
    run_id = _wait_for_running_run(client, headers)
    assert client.post("/api/chat", headers=headers, json={"message": "second"}).status_code == 429
    client.post(f"/api/chat/{run_id}/stop", headers=headers)
    thread.join(timeout=10)


def test_figures_become_downloadable_artifacts(
    client: TestClient, alice: dict[str, str], bob: dict[str, str], agent: Any
) -> None:
    agent.figure = PNG
    body = client.post("/api/chat", headers=alice, json={"message": "plot it"}).json()
    (figure,) = body["figures"]
    assert figure["name"] == "plot.png" and figure["available"] is True
    download = client.get(figure["url"], headers=alice)
    assert download.status_code == 200
    assert download.content == PNG
    assert download.headers["x-content-type-options"] == "nosniff"
    assert client.get(figure["url"], headers=bob).status_code == 404
    conversation = client.get(f"/api/conversations/{body['conversation_id']}", headers=alice).json()
    assert [f["id"] for f in conversation["figures"]] == [figure["id"]]


def test_streamed_figure_events_carry_the_download_url(client: TestClient, alice: dict[str, str], agent: Any) -> None:
    agent.figure = PNG
    response = client.post("/api/chat", headers=alice, params={"stream": "true"}, json={"message": "plot"})
    (figure,) = [data for kind, data in _sse_events(response.text) if kind == "figure"]
    assert figure["url"] == f"/api/artifacts/{figure['artifact_id']}"
    assert client.get(figure["url"], headers=alice).content == PNG
