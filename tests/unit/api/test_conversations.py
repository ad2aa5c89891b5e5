"""Conversations: list, read back, rename, delete (with its artifacts and scratch), and per-user isolation."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from backend.core.settings import Settings

PNG = b"\x89PNG\r\n\x1a\n" + b"\x02" * 16


def _chat(client: TestClient, headers: dict[str, str], message: str = "hello") -> dict[str, Any]:
    response = client.post("/api/chat", headers=headers, json={"message": message})
    assert response.status_code == 200, response.text
    return dict(response.json())


def test_list_shows_own_conversations_newest_first(
    client: TestClient, alice: dict[str, str], bob: dict[str, str]
) -> None:
    first = _chat(client, alice, "first question")
    second = _chat(client, alice, "second question")
    _chat(client, bob, "bob's question")
    listed = client.get("/api/conversations", headers=alice).json()
    assert [c["id"] for c in listed] == [second["conversation_id"], first["conversation_id"]]
    assert [c["title"] for c in listed] == ["second question", "first question"]


def test_list_paginates(client: TestClient, alice: dict[str, str]) -> None:
    for n in range(3):
        _chat(client, alice, f"q{n}")
    page = client.get("/api/conversations", headers=alice, params={"limit": 2, "offset": 2}).json()
    assert [c["title"] for c in page] == ["q0"]


def test_get_returns_messages_runs_with_steps_and_figures(
    client: TestClient, alice: dict[str, str], agent: Any
) -> None:
    agent.figure = PNG
    chat = _chat(client, alice)
    detail = client.get(f"/api/conversations/{chat['conversation_id']}", headers=alice).json()
    assert [m["role"] for m in detail["messages"]] == ["user", "assistant"]
    assert all(m["run_id"] == chat["run_id"] for m in detail["messages"])
    (run,) = detail["runs"]
    assert run["id"] == chat["run_id"] and run["status"] == "done"
    assert run["steps"][0]["output"] == "2.5"
    assert [f["name"] for f in detail["figures"]] == ["plot.png"]


def test_rename_changes_the_title(client: TestClient, alice: dict[str, str]) -> None:
    conversation_id = _chat(client, alice)["conversation_id"]
    response = client.patch(f"/api/conversations/{conversation_id}", headers=alice, json={"title": "Scores"})
    assert response.status_code == 200
    assert client.get(f"/api/conversations/{conversation_id}", headers=alice).json()["title"] == "Scores"


@pytest.mark.parametrize("body", [{"title": ""}, {"title": "x" * 201}, {}])
def test_rename_with_invalid_title_is_422(client: TestClient, alice: dict[str, str], body: dict[str, str]) -> None:
    conversation_id = _chat(client, alice)["conversation_id"]
    assert client.patch(f"/api/conversations/{conversation_id}", headers=alice, json=body).status_code == 422


def test_delete_removes_messages_runs_artifacts_and_scratch(
    client: TestClient, alice: dict[str, str], agent: Any, settings: Settings
) -> None:
    agent.figure = PNG
    chat = _chat(client, alice)
    figure_url = chat["figures"][0]["url"]
    scratch = settings.sessions_dir / chat["conversation_id"]
    assert scratch.exists()
    assert client.delete(f"/api/conversations/{chat['conversation_id']}", headers=alice).status_code == 204
    assert client.get(f"/api/conversations/{chat['conversation_id']}", headers=alice).status_code == 404
    assert client.get(f"/api/runs/{chat['run_id']}", headers=alice).status_code == 404
    assert client.get(figure_url, headers=alice).status_code == 404
    assert not scratch.exists()
    assert list((settings.data_dir / "artifacts").rglob("*.png")) == []


@pytest.mark.parametrize(("method", "json"), [("get", None), ("patch", {"title": "mine now"}), ("delete", None)])
def test_another_users_conversation_is_404(
    client: TestClient, alice: dict[str, str], bob: dict[str, str], method: str, json: dict[str, str] | None
) -> None:
    conversation_id = _chat(client, alice)["conversation_id"]
    response = client.request(method, f"/api/conversations/{conversation_id}", headers=bob, json=json)
    assert response.status_code == 404
    assert client.get(f"/api/conversations/{conversation_id}", headers=alice).json()["title"] == "hello"


def test_unknown_conversation_is_404(client: TestClient, alice: dict[str, str]) -> None:
    assert client.get("/api/conversations/doesnotexist", headers=alice).status_code == 404
