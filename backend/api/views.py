"""Turning stored rows into response bodies where it takes more than `model_validate`."""

from __future__ import annotations

from backend.api.schemas import ArtifactOut, RunOut, StepOut
from backend.storage.models import Artifact, Run
from backend.storage.run_log import ARTIFACT_URL


def artifact_out(artifact: Artifact) -> ArtifactOut:
    return ArtifactOut(
        id=artifact.id,
        kind="figure" if artifact.kind == "figure" else "file",
        name=artifact.name,
        run_id=artifact.run_id,
        url=ARTIFACT_URL.format(id=artifact.id),
        available=artifact.path is not None,
    )


def run_out(run: Run) -> RunOut:
    return RunOut(
        id=run.id,
        conversation_id=run.conversation_id,
        kind=run.kind,
        status=run.status,
        strategy=run.strategy,
        input=run.input,
        output=run.output,
        error=run.error,
        created_at=run.created_at,
        finished_at=run.finished_at,
        plan=run.detail.get("plan"),
        trace=[StepOut.model_validate(step) for step in run.steps],
    )
