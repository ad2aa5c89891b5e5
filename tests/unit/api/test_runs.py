"""POST /api/v1/run-task and GET /api/runs/{id}: status, output and the step trace, per user."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient


def test_run_task_returns_status_output_and_trace(client: TestClient, alice: dict[str, str], agent: Any) -> None:
    response = client.post("/api/v1/run-task", headers=alice,
                           json={"goal": "sum 1..4", "context": "use python", "tools": ["python_coder"]})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "done"
    assert body["output"] == "The mean is 2.5."
    assert [(t["node"], t["tool"], t["output"]) for t in body["trace"]] == [("act", "python_coder", "2.5")]
    message = agent.calls[0]["message"]
    assert message.startswith("sum 1..4") and "use python" in message and "python_coder" in message


def test_stored_trace_matches_the_run_task_answer(client: TestClient, alice: dict[str, str]) -> None:
    body = client.post("/api/v1/run-task", headers=alice, json={"goal": "sum"}).json()
    run = client.get(f"/api/runs/{body['run_id']}", headers=alice).json()
    assert run["kind"] == "task"
    assert run["status"] == body["status"]
    assert run["trace"] == body["trace"]
    assert run["finished_at"] is not None


def test_failed_task_reports_failed_with_the_error(client: TestClient, alice: dict[str, str], agent: Any) -> None:
    agent.fail_with = ValueError("bad plan")
    body = client.post("/api/v1/run-task", headers=alice, json={"goal": "sum"}).json()
    assert body["status"] == "failed"
    assert "bad plan" in body["error"]


def test_run_task_with_missing_goal_is_422(client: TestClient, alice: dict[str, str]) -> None:
    assert client.post("/api/v1/run-task", headers=alice, json={"context": "x"}).status_code == 422


def test_another_users_run_is_404(client: TestClient, alice: dict[str, str], bob: dict[str, str]) -> None:
    run_id = client.post("/api/v1/run-task", headers=alice, json={"goal": "sum"}).json()["run_id"]
    assert client.get(f"/api/runs/{run_id}", headers=bob).status_code == 404


def test_run_task_requires_a_token(client: TestClient) -> None:
    assert client.post("/api/v1/run-task", json={"goal": "sum"}).status_code == 401
