"""Execution core: POST /api/v1/run-task (goal → status, output, trace), stored traces, artifact downloads."""

from __future__ import annotations

from pathlib import Path

from anyio import to_thread
from fastapi import APIRouter, HTTPException, status
from fastapi.responses import FileResponse

from backend.api.deps import AgentDep, KeyOrTokenRepoDep, RepoDep, ServicesDep
from backend.api.schemas import RunOut, TaskRequest, TaskResponse
from backend.api.turns import start_turn
from backend.api.views import run_out

router = APIRouter(prefix="/api", tags=["runs"])


def task_message(body: TaskRequest) -> str:
    """The goal as the agent's message; context and a tool allow-list travel with it as plain text."""
    parts = [body.goal]
    if body.context:
        parts.append(f"Context:\n{body.context}")
    if body.tools:
        parts.append(f"Use only these tools: {', '.join(body.tools)}")
    return "\n\n".join(parts)


@router.post("/v1/run-task", response_model=TaskResponse,
             responses={429: {"description": "too many runs in flight"}, 503: {"description": "agent unavailable"}})
async def run_task(body: TaskRequest, repo: RepoDep, services: ServicesDep, agent: AgentDep) -> TaskResponse:
    """Runs to completion and returns the final output with the step-by-step trace (also kept under /api/runs/{id})."""
    turn = await start_turn(repo=repo, services=services, agent=agent, message=task_message(body),
                            conversation_id=None, strategy=None, file_ids=(), kind="task")
    async for _event in turn.run.events():
        pass
    run = run_out(await to_thread.run_sync(repo.get_fresh_run, turn.run.run_id))
    return TaskResponse(run_id=run.id, status=run.status, output=run.output, error=run.error, trace=run.trace)


@router.get("/runs/{run_id}", response_model=RunOut, responses={404: {"description": "no such run (or not yours)"}})
def get_run(run_id: str, repo: RepoDep) -> RunOut:
    return run_out(repo.get_run(run_id))


@router.get("/artifacts/{artifact_id}", response_class=FileResponse,
            responses={404: {"description": "no such artifact (or not yours), or its file is gone"}})
def get_artifact(artifact_id: str, repo: KeyOrTokenRepoDep) -> FileResponse:
    """Figures (png/svg) and generated files (csv/xlsx/…) produced by runs; an API key may fetch them too (the
    /v1 answers link here)."""
    artifact = repo.get_artifact(artifact_id)
    if artifact.path is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"artifact {artifact_id} has no stored file")
    path = Path(artifact.path)
    if not path.is_file():
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"artifact {artifact_id} file is gone")
    return FileResponse(path, filename=artifact.name)
