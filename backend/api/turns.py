"""Starting an agent turn: validate ids, record the user message and the run, then hand off to the RunManager."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from anyio import to_thread

from backend.api.routes.files import user_upload_dir
from backend.api.run_manager import ActiveRun, Agent, artifact_locator
from backend.api.services import AppServices
from backend.storage.models import StoredFile
from backend.storage.repositories import OwnedRepository
from backend.storage.run_log import ArtifactLocator, RunLog


@dataclass(frozen=True)
class Turn:
    run: ActiveRun
    conversation_id: str


def sandbox_files(settings_dir: Path, files: Sequence[StoredFile]) -> dict[str, Path]:
    """Name → path for the sandbox; a repeated display name gets the file id appended so none is hidden."""
    mapping: dict[str, Path] = {}
    for stored in files:
        name = stored.name
        if name in mapping:
            stem, dot, ext = name.rpartition(".")
            name = f"{stem}-{stored.id[:8]}.{ext}" if dot else f"{name}-{stored.id[:8]}"
        mapping[name] = settings_dir / stored.stored_name
    return mapping


async def start_turn(
    *,
    repo: OwnedRepository,
    services: AppServices,
    agent: Agent,
    message: str,
    conversation_id: str | None,
    strategy: str | None,
    file_ids: Sequence[str],
    kind: str = "chat",
) -> Turn:
    """Raises NotFoundError (404) for another user's conversation or file ids, TooManyRunsError (429) when busy."""
    services.runs.check_capacity(repo.user_id)

    def prepare() -> tuple[str, str, dict[str, Path], ArtifactLocator]:
        conversation = (
            repo.get_conversation(conversation_id)
            if conversation_id
            else repo.create_conversation(title=message)
        )
        files = repo.attach_files(conversation.id, file_ids)
        run = repo.create_run(conversation_id=conversation.id, kind=kind, input=message, strategy=strategy)
        repo.add_message(conversation.id, role="user", content=message, run_id=run.id)
        locate = artifact_locator(services.workdir(conversation.id))  # touches the disk: not on the event loop
        return conversation.id, run.id, sandbox_files(user_upload_dir(services.settings, repo.user_id), files), locate

    conv_id, run_id, files, locate = await to_thread.run_sync(prepare)
    run_log = RunLog(
        sessions=services.sessions,
        user_id=repo.user_id,
        run_id=run_id,
        conversation_id=conv_id,
        artifacts_dir=services.artifacts_dir(repo.user_id),
        locate_artifact=locate,
    )
    try:
        active = await services.runs.start(
            agent=agent, run_log=run_log, conversation_id=conv_id, message=message, strategy=strategy, files=files
        )
    except Exception as exc:
        error = str(exc)
        await to_thread.run_sync(lambda: run_log.finish(status="failed", error=error))
        raise
    return Turn(run=active, conversation_id=conv_id)
