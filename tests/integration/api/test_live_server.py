"""The real server (uvicorn in a subprocess, real SQLite, real sandbox, scripted demo model on the `fake` provider).

Signs in as the first-run admin from settings, uploads a CSV, streams a chat over SSE, reads the conversation
back, and checks that closing the stream mid-run cancels the run.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import httpx

from tests.integration.api.conftest import upload_csv as _upload_csv


def _events(lines: Iterator[str]) -> Iterator[tuple[str, dict[str, Any]]]:
    event, data = "message", []
    for line in lines:
        if line.startswith("event:"):
            event = line.removeprefix("event:").strip()
        elif line.startswith("data:"):
            data.append(line.removeprefix("data:").strip())
        elif not line and data:
            yield event, json.loads("\n".join(data))
            event, data = "message", []


def test_health_reports_the_live_parts(client: httpx.Client) -> None:
    health = client.get("/api/health").json()
    assert health["agent"] == "ready"
    assert [p["name"] for p in health["providers"]] == ["fake"]
    assert isinstance(health["sandbox"], dict)


def test_upload_stream_a_chat_and_read_the_conversation_back(client: httpx.Client) -> None:
    file_id = _upload_csv(client)
    body = {"message": "What is the average revenue by region?", "files": [file_id]}
    with client.stream("POST", "/api/chat", json=body, headers={"Accept": "text/event-stream"}) as reply:
        assert reply.status_code == 200
        assert reply.headers["content-type"].startswith("text/event-stream")
        events = list(_events(reply.iter_lines()))
    kinds = [kind for kind, _ in events]
    assert kinds[0] == "conversation" and kinds[-1] == "done"
    assert "run_started" in kinds and "step_started" in kinds and "final_answer" in kinds
    done = events[-1][1]
    assert done["status"] == "done"
    answer = next(data["text"] for kind, data in events if kind == "final_answer")

    conversation = client.get(f"/api/conversations/{done['conversation_id']}").json()
    assert [(m["role"], m["content"]) for m in conversation["messages"]] == [
        ("user", body["message"]), ("assistant", answer)]
    (run,) = conversation["runs"]
    assert run["id"] == done["run_id"] and run["status"] == "done"
    assert len(run["steps"]) >= 1


def test_the_streamed_answer_was_computed_in_the_sandbox(client: httpx.Client) -> None:
    file_id = _upload_csv(client)
    body = {"message": "What is the average revenue by region?", "files": [file_id], "stream": True}
    with client.stream("POST", "/api/chat", json=body) as reply:
        events = list(_events(reply.iter_lines()))
    answer = next(data["text"] for kind, data in events if kind == "final_answer")
    assert "code" in [kind for kind, _ in events]
    assert "147" in answer  # East: (143.2 + 150.8) / 2, computed by pandas in the sandbox


def test_closing_the_stream_cancels_the_run(client: httpx.Client) -> None:
    file_id = _upload_csv(client)
    body = {"message": "Run a slow simulation on the revenue", "files": [file_id], "stream": True}
    run_id, saw_code = None, False
    with client.stream("POST", "/api/chat", json=body) as reply:
        for kind, data in _events(reply.iter_lines()):
            if kind == "conversation":
                run_id = data["run_id"]
            if kind == "code":  # the minute-long program is about to run in the sandbox: hang up now
                saw_code = True
                break
    assert run_id is not None
    assert saw_code, "the demo run ended before running its long program"
    deadline = time.monotonic() + 30
    status = ""
    while time.monotonic() < deadline:
        status = client.get(f"/api/runs/{run_id}").json()["status"]
        if status != "running":
            break
        time.sleep(0.2)
    assert status == "cancelled"
