"""OpenAI-compatible endpoints, so existing chat clients and SDKs use the agent as a model.

GET /v1/models, GET /v1/models/{id} and POST /v1/chat/completions (JSON, or SSE `chat.completion.chunk` events
ending with `data: [DONE]`). Authorization: `Bearer <API key or access token>`. Agent models run a real turn via
`start_turn` (recorded, traced, cancellable); `llm-*` models are plain chat through the provider chain.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import AsyncIterator
from functools import partial
from typing import Any

from anyio import to_thread
from fastapi import APIRouter, Request, Response, status
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessageChunk
from sse_starlette import EventSourceResponse, ServerSentEvent

from backend.api.deps import ChatLLMDep, KeyOrTokenRepoDep, KeyOrTokenUser, OptionalAgentDep, ServicesDep
from backend.api.openai_errors import NO_RETRY, OpenAIError, error_body
from backend.api.openai_progress import Transcript
from backend.api.openai_schemas import (
    AssistantMessage,
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionRequest,
    Choice,
    ChunkChoice,
    ChunkDelta,
    ErrorResponse,
    FinishReason,
    ModelCard,
    ModelList,
    Usage,
)
from backend.api.openai_service import (
    ClientChat,
    ModelChoice,
    catalogue,
    langchain_messages,
    named_thread,
    prompt_text,
    read_messages,
    resolve_conversation,
    sampling_kwargs,
    usage_counts,
)
from backend.api.routes.chat import SSE_PING_SECONDS
from backend.api.run_manager import RunManager
from backend.api.turns import Turn, start_turn
from backend.llm.errors import short_error
from backend.llm.tool_calls import text_of

log = logging.getLogger(__name__)

router = APIRouter(prefix="/v1", tags=["openai"])
CONVERSATION_HEADER = "X-Conversation-ID"
DONE = "[DONE]"
STARTED = int(time.time())
"""`created` of every listed model: they exist since this server started."""

_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorResponse, "description": text} for code, text in (
        (400, "malformed request or messages the models cannot take"),
        (401, "missing, unknown or revoked API key / token"),
        (403, "account disabled"),
        (404, "no such model, or a file or conversation that is not yours"),
        (429, "too many requests or runs in flight"),
        (502, "the agent run or the model failed"),
        (503, "the agent service is unavailable"),
    )
}
_STREAM_DOC: dict[int | str, dict[str, Any]] = {200: {
    "description": "The completion as JSON, or SSE `data: <chat.completion.chunk>` lines ending with `data: [DONE]` "
                   "when `stream` is true.",
    "content": {"text/event-stream": {"schema": {"type": "string"}}},
}}


def _card(choice: ModelChoice) -> ModelCard:
    return ModelCard(id=choice.id, created=STARTED, owned_by=choice.owned_by)


def _choose(model: str, llm: BaseChatModel | None) -> ModelChoice:
    choice = catalogue(llm=llm).get(model)
    if choice is None:
        raise OpenAIError(status.HTTP_404_NOT_FOUND, f"The model '{model}' does not exist; see GET /v1/models",
                          code="model_not_found", param="model")
    return choice


@router.get("/models", response_model=ModelList, responses=_ERRORS)
def list_models(user: KeyOrTokenUser, llm: ChatLLMDep) -> ModelList:
    return ModelList(data=[_card(choice) for choice in catalogue(llm=llm).values()])


@router.get("/models/{model_id}", response_model=ModelCard, responses=_ERRORS)
def get_model(model_id: str, user: KeyOrTokenUser, llm: ChatLLMDep) -> ModelCard:
    return _card(_choose(model_id, llm))


@router.post("/chat/completions", response_model=ChatCompletion, responses={**_STREAM_DOC, **_ERRORS})
async def chat_completions(
    body: ChatCompletionRequest,
    request: Request,
    response: Response,
    repo: KeyOrTokenRepoDep,
    services: ServicesDep,
    agent: OptionalAgentDep,
    llm: ChatLLMDep,
) -> ChatCompletion | Response:
    choice = _choose(body.model, llm)
    chat = read_messages(body, for_agent=choice.llm is None)
    if choice.llm is not None:
        return await _pass_through(choice, chat, body)
    if agent is None:
        raise OpenAIError(status.HTTP_503_SERVICE_UNAVAILABLE, services.agent_error or "agent unavailable",
                          code="agent_unavailable")
    limit = services.settings.max_message_chars
    if len(chat.question) > limit:
        raise OpenAIError(status.HTTP_400_BAD_REQUEST, f"the last user message is longer than {limit} characters",
                          code="message_too_long", param="messages")
    named = named_thread(body, request.headers)
    services.runs.check_capacity(repo.user_id)  # before a new thread's conversation is created for nothing
    conversation_id = await to_thread.run_sync(partial(
        resolve_conversation, repo, named=named, end_user=body.user or "", model=body.model, chat=chat))
    turn = await start_turn(repo=repo, services=services, agent=agent, message=chat.question,
                            conversation_id=conversation_id, strategy=choice.strategy, file_ids=chat.file_ids)
    log.info("v1 completion: model %s, run %s, conversation %s", body.model, turn.run.run_id, conversation_id,
             extra={"run_id": turn.run.run_id, "end_user": body.user})
    base_url = services.settings.backend_url or str(request.base_url)  # links must work from the client's side
    transcript = Transcript(mode=services.settings.openai_compat_progress, base_url=base_url)
    headers = {CONVERSATION_HEADER: conversation_id}
    if body.stream:
        stream = _agent_sse(turn, transcript, body=body, chat=chat, runs=services.runs)
        return EventSourceResponse(stream, ping=SSE_PING_SECONDS, headers=headers)
    async for event in turn.run.events():
        transcript.feed(event)
    if turn.run.status != "done":
        raise OpenAIError(status.HTTP_502_BAD_GATEWAY, _failure(turn, transcript), code=f"run_{turn.run.status}",
                          headers={**NO_RETRY, **headers})
    response.headers.update(headers)
    content = transcript.content()
    usage = usage_counts(prompt=prompt_text(chat), completion=content, agent_tokens=transcript.agent_tokens)
    return ChatCompletion(id=f"chatcmpl-{turn.run.run_id}", created=int(time.time()), model=body.model,
                          choices=[Choice(message=AssistantMessage(content=content), finish_reason="stop")],
                          usage=Usage(**usage), conversation_id=conversation_id, run_id=turn.run.run_id)


def _failure(turn: Turn, transcript: Transcript) -> str:
    why = transcript.error or f"the run ended {turn.run.status}"
    return f"the agent run {turn.run.run_id} failed: {why}"


class _Chunks:
    """Builds the stream's chunks: one id and timestamp, `usage` present only when the client asked for it."""

    def __init__(self, *, completion_id: str, body: ChatCompletionRequest, extra: dict[str, str]) -> None:
        self.base: dict[str, Any] = {"id": completion_id, "created": int(time.time()), "model": body.model, **extra}
        self.with_usage = bool(body.stream_options and body.stream_options.include_usage)

    def _event(self, chunk: ChatCompletionChunk) -> ServerSentEvent:
        return ServerSentEvent(data=chunk.model_dump_json(exclude=None if self.with_usage else {"usage"}))

    def delta(self, content: str | None = None, *, first: bool = False,
              finish: FinishReason | None = None) -> ServerSentEvent:
        delta = ChunkDelta(role="assistant" if first else None, content=content)
        return self._event(ChatCompletionChunk(**self.base, choices=[ChunkChoice(delta=delta, finish_reason=finish)]))

    def ending(self, usage: dict[str, int], finish: FinishReason = "stop") -> list[ServerSentEvent]:
        events = [self.delta(finish=finish)]
        if self.with_usage:
            events.append(self._event(ChatCompletionChunk(**self.base, choices=[], usage=Usage(**usage))))
        return [*events, ServerSentEvent(data=DONE)]

    @staticmethod
    def failure(message: str, *, code: str) -> list[ServerSentEvent]:
        """OpenAI SDKs raise `APIError` on an `error` object inside a stream."""
        body = error_body(message, status_code=status.HTTP_502_BAD_GATEWAY, code=code)
        return [ServerSentEvent(data=ErrorResponse.model_validate(body).model_dump_json()), ServerSentEvent(data=DONE)]


async def _agent_sse(turn: Turn, transcript: Transcript, *, body: ChatCompletionRequest, chat: ClientChat,
                     runs: RunManager) -> AsyncIterator[ServerSentEvent]:
    """Relay the run as chunks; if the client goes away first, the run is cancelled."""
    chunks = _Chunks(completion_id=f"chatcmpl-{turn.run.run_id}", body=body,
                     extra={"conversation_id": turn.run.log.conversation_id or "", "run_id": turn.run.run_id})
    sent: list[str] = []
    try:
        yield chunks.delta("", first=True)
        async for event in turn.run.events():
            for piece in transcript.feed(event):
                sent.append(piece)
                yield chunks.delta(piece)
        if turn.run.status != "done":
            for failure in chunks.failure(_failure(turn, transcript), code=f"run_{turn.run.status}"):
                yield failure
            return
        for piece in transcript.closing():
            sent.append(piece)
            yield chunks.delta(piece)
        usage = usage_counts(prompt=prompt_text(chat), completion="".join(sent), agent_tokens=transcript.agent_tokens)
        for ending in chunks.ending(usage):
            yield ending
    finally:
        runs.cancel_nowait(turn.run.run_id)  # no-op once the run has ended


# --- pass-through chat -----------------------------------------------------------------------
def _finish_reason(message: AIMessage | BaseMessageChunk) -> FinishReason:
    reason = message.response_metadata.get("finish_reason") or message.response_metadata.get("done_reason")
    return "length" if reason == "length" else "stop"


async def _pass_through(
    choice: ModelChoice, chat: ClientChat, body: ChatCompletionRequest
) -> ChatCompletion | Response:
    assert choice.llm is not None
    messages, kwargs = langchain_messages(chat), sampling_kwargs(choice, body)
    completion_id = f"chatcmpl-{uuid.uuid4().hex}"
    if body.stream:
        stream = _pass_through_sse(choice, chat, body, completion_id=completion_id, kwargs=kwargs)
        return EventSourceResponse(stream, ping=SSE_PING_SECONDS)
    try:
        reply = await choice.llm.ainvoke(messages, **kwargs)
    except Exception as exc:
        log.warning("pass-through model %s failed: %s", choice.id, exc)
        raise OpenAIError(status.HTTP_502_BAD_GATEWAY, f"the model {choice.id} failed: {short_error(exc)}",
                          code="model_error", headers=NO_RETRY) from exc
    content = text_of(reply.content) if isinstance(reply, AIMessage) else str(reply.content)
    reported = reply.usage_metadata if isinstance(reply, AIMessage) else None
    usage = usage_counts(prompt=prompt_text(chat), completion=content, reported=dict(reported or {}))
    return ChatCompletion(id=completion_id, created=int(time.time()), model=body.model, usage=Usage(**usage),
                          choices=[Choice(message=AssistantMessage(content=content),
                                          finish_reason=_finish_reason(reply))])


async def _pass_through_sse(choice: ModelChoice, chat: ClientChat, body: ChatCompletionRequest, *,
                            completion_id: str, kwargs: dict[str, Any]) -> AsyncIterator[ServerSentEvent]:
    assert choice.llm is not None
    chunks = _Chunks(completion_id=completion_id, body=body, extra={})
    merged: BaseMessageChunk | None = None
    yield chunks.delta("", first=True)
    try:
        async for piece in choice.llm.astream(langchain_messages(chat), **kwargs):
            merged = piece if merged is None else merged + piece
            text = text_of(piece.content)
            if text:
                yield chunks.delta(text)
    except Exception as exc:
        log.warning("pass-through model %s failed mid-stream: %s", choice.id, exc)
        for failure in chunks.failure(f"the model {choice.id} failed: {short_error(exc)}", code="model_error"):
            yield failure
        return
    reported = merged.usage_metadata if isinstance(merged, AIMessageChunk) else None
    content = text_of(merged.content) if merged is not None else ""
    usage = usage_counts(prompt=prompt_text(chat), completion=content, reported=dict(reported or {}))
    for ending in chunks.ending(usage, finish=_finish_reason(merged) if merged is not None else "stop"):
        yield ending
