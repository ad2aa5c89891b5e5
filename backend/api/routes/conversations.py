"""Conversations: list, read back (messages, steps, figures), rename, delete."""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Query, status

from backend.api.deps import RepoDep, ServicesDep
from backend.api.schemas import ConversationDetail, ConversationOut, MessageOut, RenameRequest, RunSummary, StepOut
from backend.api.views import artifact_out
from backend.ops.purge import purge_conversation
from backend.storage.repositories import OwnedRepository

log = logging.getLogger(__name__)

PAGE_LIMIT = 200
MAX_OFFSET = 1_000_000

router = APIRouter(prefix="/api/conversations", tags=["conversations"])
_NOT_FOUND: dict[int | str, dict[str, str]] = {404: {"description": "no such conversation (or not yours)"}}


@router.get("", response_model=list[ConversationOut])
def list_conversations(repo: RepoDep, limit: Annotated[int, Query(ge=1, le=PAGE_LIMIT)] = 50,
                       offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0) -> list[ConversationOut]:
    return [ConversationOut.model_validate(c) for c in repo.list_conversations(limit=limit, offset=offset)]


def conversation_detail(repo: OwnedRepository, conversation_id: str) -> ConversationDetail:
    conversation = repo.get_conversation(conversation_id)
    artifacts = [artifact_out(a) for a in repo.conversation_artifacts(conversation_id)]
    return ConversationDetail(
        id=conversation.id,
        title=conversation.title,
        created_at=conversation.created_at,
        updated_at=conversation.updated_at,
        messages=[MessageOut.model_validate(m) for m in conversation.messages],
        runs=[RunSummary(id=r.id, status=r.status, strategy=r.strategy,
                         steps=[StepOut.model_validate(s) for s in r.steps]) for r in conversation.runs],
        figures=[a for a in artifacts if a.kind == "figure"],
        files=[a for a in artifacts if a.kind == "file"],
    )


@router.get("/{conversation_id}", response_model=ConversationDetail, responses=_NOT_FOUND)
def get_conversation(conversation_id: str, repo: RepoDep) -> ConversationDetail:
    return conversation_detail(repo, conversation_id)


@router.patch("/{conversation_id}", response_model=ConversationOut, responses=_NOT_FOUND)
def rename_conversation(conversation_id: str, body: RenameRequest, repo: RepoDep) -> ConversationOut:
    return ConversationOut.model_validate(repo.rename_conversation(conversation_id, title=body.title))


@router.delete("/{conversation_id}", status_code=status.HTTP_204_NO_CONTENT, responses=_NOT_FOUND)
async def delete_conversation(conversation_id: str, repo: RepoDep, services: ServicesDep) -> None:
    """Also stops its runs and removes its artifacts, scratch files, variables and agent checkpoints."""
    await purge_conversation(settings=services.settings, sessions=services.sessions, user_id=repo.user_id,
                             conversation_id=conversation_id, runs=services.runs, sandbox=services.sandbox,
                             checkpointer=getattr(services.agent, "checkpointer", None))
