"""POST /api/chat (JSON result, or SSE with stream=true / Accept: text/event-stream) and POST /api/chat/{id}/stop."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Annotated, Any

from anyio import to_thread
from fastapi import APIRouter, HTTPException, Query, Request, status
from fastapi.responses import Response
from sse_starlette import EventSourceResponse, ServerSentEvent

from backend.api.deps import AgentDep, RepoDep, RunsDep, ServicesDep
from backend.api.responses import unprocessable
from backend.api.run_manager import RunManager
from backend.api.schemas import ChatRequest, ChatResponse, StepOut, StopResponse
from backend.api.turns import Turn, start_turn
from backend.api.views import artifact_out
from backend.storage.repositories import OwnedRepository

SSE_PING_SECONDS = 15
EVENT_STREAM = "text/event-stream"

router = APIRouter(prefix="/api/chat", tags=["chat"])
SSE_EVENT_SCHEMA = {
    "type": "object",
    "required": ["event", "data"],
    "properties": {
        "event": {"type": "string", "description": "`conversation`, a run event type (run_started, step_started, "
                  "step_finished, token, figure, file, final_answer, error, ...) or `done`."},
        "data": {"type": "string", "contentMediaType": "application/json", "description": "The event as JSON."},
        "id": {"type": "string"},
    },
}
_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"content": {EVENT_STREAM: {"schema": SSE_EVENT_SCHEMA}},
          "description": "The result as JSON, or the run's events as SSE (event = type, data = the event JSON)."},
    404: {"description": "conversation or file id not found (or not yours)"},
    429: {"description": "too many runs in flight"},
    503: {"description": "the agent service is unavailable"},
    **unprocessable("malformed body, or a message longer than APP_MAX_MESSAGE_CHARS"),
}


@router.post("", response_model=ChatResponse, responses=_RESPONSES)
async def chat(
    body: ChatRequest,
    request: Request,
    repo: RepoDep,
    services: ServicesDep,
    agent: AgentDep,
    stream: Annotated[bool, Query(description="Stream events as SSE.")] = False,
) -> ChatResponse | Response:
    if len(body.message) > services.settings.max_message_chars:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT,
                            f"message is longer than {services.settings.max_message_chars} characters")
    turn = await start_turn(repo=repo, services=services, agent=agent, message=body.message,
                            conversation_id=body.conversation_id, strategy=body.strategy, file_ids=body.files)
    if stream or body.stream or EVENT_STREAM in request.headers.get("accept", ""):
        return EventSourceResponse(_sse(turn, services.runs), ping=SSE_PING_SECONDS)
    async for _event in turn.run.events():
        pass
    return await to_thread.run_sync(_result, repo, turn)


async def _sse(turn: Turn, runs: RunManager) -> AsyncIterator[ServerSentEvent]:
    """Relay the run's events; if the client goes away first, the run is cancelled."""
    ids = {"run_id": turn.run.run_id, "conversation_id": turn.conversation_id}
    try:
        yield ServerSentEvent(event="conversation", data=json.dumps(ids))
        seq = 0
        async for event in turn.run.events():
            seq += 1
            yield ServerSentEvent(id=str(seq), event=event.type, data=event.model_dump_json())
        yield ServerSentEvent(event="done", data=json.dumps({**ids, "status": turn.run.status}))
    finally:
        runs.cancel_nowait(turn.run.run_id)  # no-op once the run has ended


def _result(repo: OwnedRepository, turn: Turn) -> ChatResponse:
    run = repo.get_fresh_run(turn.run.run_id)
    artifacts = [artifact_out(a) for a in repo.run_artifacts(run.id)]
    return ChatResponse(
        run_id=run.id,
        conversation_id=turn.conversation_id,
        status=run.status,
        answer=run.output,
        error=run.error,
        steps=[StepOut.model_validate(step) for step in run.steps],
        figures=[a for a in artifacts if a.kind == "figure"],
        files=[a for a in artifacts if a.kind == "file"],
    )


@router.post("/{run_id}/stop", response_model=StopResponse, responses={404: {"description": "no such run"}})
async def stop(run_id: str, repo: RepoDep, runs: RunsDep) -> StopResponse:
    await to_thread.run_sync(repo.get_run, run_id)
    return StopResponse(run_id=run_id, stopped=await runs.cancel(run_id))
