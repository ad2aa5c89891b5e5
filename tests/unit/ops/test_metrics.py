"""Metrics: a scripted turn moves the run and LLM figures; failover, tokens, sandbox and RAG hooks; GET /metrics."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from langchain_core.messages import AIMessage, HumanMessage
from pydantic import SecretStr

from backend.agents.service import AgentService
from backend.core import metrics
from backend.core.metrics import instrument_rag, instrument_sandbox_run, value
from backend.core.settings import Settings
from backend.llm.failover import FailoverChatModel, ProviderEntry
from backend.llm.fake import ScriptedChatModel
from backend.llm.health import HealthRegistry
from backend.sandbox.result import SandboxResult
from backend.tools.registry import ToolRegistry
from backend.tools.safe_math import evaluate, format_number

Login = Callable[..., dict[str, str]]


def calculator(expression: str) -> str:
    """Evaluate arithmetic.

    Args:
        expression: The expression to evaluate.
    """
    return format_number(evaluate(expression))


def chain(*links: tuple[str, ScriptedChatModel]) -> FailoverChatModel:
    return FailoverChatModel(entries=[ProviderEntry(name, model) for name, model in links],
                             registry=HealthRegistry(), max_retries=0)


def snapshot(*samples: tuple[str, dict[str, str]]) -> list[float]:
    return [value(name, **labels) for name, labels in samples]


async def test_a_scripted_turn_moves_run_and_llm_metrics(settings: Settings) -> None:
    scripted = ScriptedChatModel(replies=[
        AIMessage(content="", tool_calls=[{"name": "calculator", "args": {"expression": "6*7"}, "id": "c1"}]),
        "It is 42.",
    ])
    agent = AgentService(settings=settings, llm=chain(("scripted-a", scripted)), tools=ToolRegistry([calculator]))
    watched = (
        ("llm_calls_total", {"provider": "scripted-a", "outcome": "ok"}),
        ("agent_runs_total", {"strategy": "react", "status": "done"}),
        ("agent_run_duration_seconds_count", {"strategy": "react"}),
    )
    before = snapshot(*watched)
    events = [e async for e in agent.run(run_id="r1", conversation_id="c1", user_id="u1", message="compute 6*7",
                                         strategy="react")]
    assert events[-1].type == "final_answer"
    after = snapshot(*watched)
    assert after[0] - before[0] == 2  # the tool call, then the answer
    assert after[1] - before[1] == 1
    assert after[2] - before[2] == 1
    assert value("agent_runs_in_flight") == 0


async def test_a_failed_turn_is_counted_with_its_status(settings: Settings) -> None:
    agent = AgentService(settings=settings, llm=chain(("scripted-b", ScriptedChatModel(replies=[]))),
                         tools=ToolRegistry([calculator]))
    before = value("agent_runs_total", strategy="react", status="failed")
    events = [e async for e in agent.run(run_id="r2", conversation_id="c2", user_id="u1", message="compute 1+1",
                                         strategy="react")]
    assert events[-1].type == "error"
    assert value("agent_runs_total", strategy="react", status="failed") - before == 1


def test_failover_is_counted_for_the_provider_passed_over() -> None:
    def broken(_messages: list[Any]) -> str:
        raise ValueError("model exploded")

    model = chain(("flaky-x", ScriptedChatModel(replies=[broken])), ("backup-x", ScriptedChatModel(replies=["ok"])))
    before = snapshot(("llm_failovers_total", {"provider": "flaky-x", "reason": "error"}),
                      ("llm_calls_total", {"provider": "flaky-x", "outcome": "error"}),
                      ("llm_calls_total", {"provider": "backup-x", "outcome": "ok"}))
    assert model.invoke([HumanMessage(content="hi")]).content == "ok"
    after = snapshot(("llm_failovers_total", {"provider": "flaky-x", "reason": "error"}),
                     ("llm_calls_total", {"provider": "flaky-x", "outcome": "error"}),
                     ("llm_calls_total", {"provider": "backup-x", "outcome": "ok"}))
    assert [a - b for a, b in zip(after, before, strict=True)] == [1, 1, 1]


def test_reported_token_usage_is_added_per_provider() -> None:
    reply = AIMessage(content="fine", usage_metadata={"input_tokens": 30, "output_tokens": 7, "total_tokens": 37})
    model = chain(("usage-y", ScriptedChatModel(replies=[reply])))
    model.invoke([HumanMessage(content="hi")])
    assert value("llm_tokens_total", provider="usage-y", kind="prompt") == 30
    assert value("llm_tokens_total", provider="usage-y", kind="completion") == 7


async def test_sandbox_runs_are_counted_by_outcome_and_kills_by_reason() -> None:
    results = iter([SandboxResult(ok=True), SandboxResult(ok=False, killed_reason="timeout"),
                    SandboxResult(ok=False, error_type="PolicyViolation", killed_reason="blocked")])

    @instrument_sandbox_run
    async def run(*, session_id: str, code: str) -> SandboxResult:
        return next(results)

    before = snapshot(("sandbox_runs_total", {"outcome": "ok"}), ("sandbox_runs_total", {"outcome": "timeout"}),
                      ("sandbox_runs_total", {"outcome": "blocked"}), ("sandbox_kills_total", {"reason": "timeout"}))
    for _ in range(3):
        await run(session_id="s", code="pass")
    after = snapshot(("sandbox_runs_total", {"outcome": "ok"}), ("sandbox_runs_total", {"outcome": "timeout"}),
                     ("sandbox_runs_total", {"outcome": "blocked"}), ("sandbox_kills_total", {"reason": "timeout"}))
    assert [a - b for a, b in zip(after, before, strict=True)] == [1, 1, 1, 1]


def test_rag_latency_is_observed_by_outcome() -> None:
    @instrument_rag("query")
    def search(*, query: str) -> list[str]:
        if not query:
            raise ValueError("the search query is empty")
        return ["hit"]

    before = snapshot(("rag_duration_seconds_count", {"operation": "query", "outcome": "ok"}),
                      ("rag_duration_seconds_count", {"operation": "query", "outcome": "error"}))
    search(query="revenue")
    with pytest.raises(ValueError, match="empty"):
        search(query="")
    after = snapshot(("rag_duration_seconds_count", {"operation": "query", "outcome": "ok"}),
                     ("rag_duration_seconds_count", {"operation": "query", "outcome": "error"}))
    assert [a - b for a, b in zip(after, before, strict=True)] == [1, 1]


# --- HTTP -------------------------------------------------------------------------------------
def test_requests_are_counted_by_route_template_not_raw_path(
    ops_settings: Settings, app_factory: Callable[[Settings], TestClient], login: Login
) -> None:
    client = app_factory(ops_settings)
    auth = login(client, "alice")
    template = {"method": "GET", "route": "/api/conversations/{conversation_id}", "status": "404"}
    before = value("http_requests_total", **template)
    for missing in ("a1", "b2", "c3"):
        assert client.get(f"/api/conversations/{missing}", headers=auth).status_code == 404
    assert value("http_requests_total", **template) - before == 3
    assert value("http_requests_total", method="GET", route="/api/conversations/a1", status="404") == 0


def test_admins_read_metrics_in_prometheus_text_format(
    ops_settings: Settings, app_factory: Callable[[Settings], TestClient], login: Login
) -> None:
    client = app_factory(ops_settings)
    admin = login(client, ops_settings.admin_username, register=False)
    client.get("/api/auth/me", headers=admin)
    response = client.get("/metrics", headers=admin)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert 'analysis_http_requests_total{method="GET",route="/api/auth/me",status="200"}' in response.text
    assert "# TYPE analysis_agent_run_duration_seconds histogram" in response.text


def test_metrics_refuse_anonymous_and_non_admin_callers(
    ops_settings: Settings, app_factory: Callable[[Settings], TestClient], login: Login
) -> None:
    client = app_factory(ops_settings)
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers=login(client, "mallory")).status_code == 403


def test_the_scrape_token_opens_metrics_without_an_account(
    ops_settings: Settings, app_factory: Callable[[Settings], TestClient], login: Login
) -> None:
    client = app_factory(ops_settings.model_copy(update={"metrics_token": SecretStr("scrape-" + "s" * 30)}))
    assert client.get("/metrics", headers={"Authorization": "Bearer scrape-" + "s" * 30}).status_code == 200
    assert client.get("/metrics", headers={"Authorization": "Bearer scrape-wrong"}).status_code == 401


def test_metrics_can_be_disabled(
    ops_settings: Settings, app_factory: Callable[[Settings], TestClient], login: Login
) -> None:
    client = app_factory(ops_settings.model_copy(update={"metrics_enabled": False}))
    response = client.get("/metrics", headers=login(client, ops_settings.admin_username, register=False))
    assert response.status_code == 404
    assert response.json()["detail"] == "metrics are disabled"


def test_render_returns_the_registry_in_text_format() -> None:
    body, content_type = metrics.render()
    assert b"analysis_llm_calls_total" in body or b"analysis_llm_calls" in body
    assert content_type.startswith("text/plain")


def test_the_running_app_measures_its_event_loop_lag(
    ops_settings: Settings, app_factory: Callable[[Settings], TestClient], login: Login
) -> None:
    client = app_factory(ops_settings)
    admin = login(client, ops_settings.admin_username, register=False)
    before = value("event_loop_lag_seconds_count")
    time.sleep(0.3)  # the app's loop runs in the TestClient's thread; its heartbeat ticks every 50 ms meanwhile
    assert value("event_loop_lag_seconds_count") - before >= 3
    assert "# TYPE analysis_event_loop_lag_seconds histogram" in client.get("/metrics", headers=admin).text
