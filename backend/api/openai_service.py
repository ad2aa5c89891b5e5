"""The OpenAI-compatible layer apart from HTTP: the model catalogue, reading a client's messages, and mapping a
client's thread onto one of our conversations.

Chat clients resend the whole history every turn. The agent already keeps that history (and the variables and
notepad) in its own state, so only the last user message becomes a new turn, in the conversation the thread
maps to: the one the client names (`metadata.conversation_id` or a header), else one derived from who asks, with
which model, and how the thread began — stable while the history grows, and stored as the conversation's id, so
the mapping survives restarts without a table of its own.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage

from backend.agents.runtime import CHARS_PER_TOKEN
from backend.api.openai_errors import OpenAIError
from backend.api.openai_schemas import ChatCompletionRequest, ChatMessage, FilePart, ImagePart, TextPart
from backend.api.schemas import ID_PATTERN, MAX_FILES_PER_CHAT
from backend.llm.failover import FailoverChatModel
from backend.storage.repositories import NotFoundError, OwnedRepository

AGENT_MODELS: dict[str, str | None] = {"agent-auto": None, "agent-react": "react", "agent-plan-execute": "plan_execute"}
"""Model id → agent strategy (None lets the router choose)."""
LLM_PREFIX = "llm-"
"""Pass-through models: `llm-<provider>` is one link of the provider chain, plain chat without tools."""
OWNER = "analysis-server"
SAMPLING_PROVIDERS = frozenset({"llamacpp", "openai", "fake"})
"""Providers whose models take `temperature`/`max_tokens` per call (Ollama's client refuses unknown arguments)."""
THREAD_HEADERS = ("x-conversation-id", "x-openwebui-chat-id")
"""Headers naming the client's thread (Open WebUI sends its chat id when user-info forwarding is on)."""
THREAD_ID = re.compile(ID_PATTERN)
CONVERSATION_ID_CHARS = 32
SYSTEM_ROLES = ("system", "developer")
BAD_REQUEST = 400


@dataclass(frozen=True)
class ModelChoice:
    id: str
    owned_by: str
    strategy: str | None = None
    llm: BaseChatModel | None = None
    """Set for pass-through models; agent models run a turn instead."""
    provider: str = ""


@dataclass(frozen=True)
class ClientChat:
    turns: list[tuple[str, str]]
    """(system | user | assistant, text), in order."""
    question: str
    """Text of the last user message: the new turn."""
    file_ids: list[str]


def catalogue(*, llm: BaseChatModel | None) -> dict[str, ModelChoice]:
    """Agent strategies, then one pass-through model per provider of the chain the agent holds."""
    models = {name: ModelChoice(id=name, owned_by=OWNER, strategy=strategy) for name, strategy in AGENT_MODELS.items()}
    for provider, model in provider_models(llm).items():
        name = LLM_PREFIX + provider
        models[name] = ModelChoice(id=name, owned_by=provider, llm=model, provider=provider)
    return models


def provider_models(llm: BaseChatModel | None) -> dict[str, BaseChatModel]:
    """Each link as a one-link copy of the chain: retries, breaker and health figures still apply."""
    if llm is None:
        return {}
    if isinstance(llm, FailoverChatModel):
        return {entry.name: llm.model_copy(update={"entries": [entry]}) for entry in llm.entries}
    return {"default": llm}


def _refuse(message: str, *, param: str, code: str = "invalid_value") -> OpenAIError:
    return OpenAIError(BAD_REQUEST, message, param=param, code=code)


def _text_and_files(message: ChatMessage, index: int) -> tuple[str, list[str]]:
    if message.content is None or isinstance(message.content, str):
        return message.content or "", []
    texts, files = [], []
    for n, part in enumerate(message.content):
        param = f"messages.{index}.content.{n}"
        if isinstance(part, TextPart):
            texts.append(part.text)
        elif isinstance(part, FilePart):
            if part.file.file_id is None:
                raise _refuse("inline file data is not supported: upload the file through POST /api/upload and "
                              "pass its id as file.file_id", param=param, code="unsupported_content")
            files.append(part.file.file_id)
        elif isinstance(part, ImagePart):
            raise _refuse("image input is not supported: upload files through POST /api/upload and pass their ids",
                          param=param, code="unsupported_content")
    return "\n".join(texts), files


def read_messages(body: ChatCompletionRequest, *, for_agent: bool) -> ClientChat:
    """The client's messages checked and flattened; OpenAIError (400) for anything the models cannot take."""
    turns: list[tuple[str, str]] = []
    last_files: list[str] = []
    for index, message in enumerate(body.messages):
        if message.role not in (*SYSTEM_ROLES, "user", "assistant"):
            raise _refuse(f"role {message.role!r} is not supported: these models call no client-side tools",
                          param=f"messages.{index}.role")
        text, files = _text_and_files(message, index)
        if message.role == "user":
            last_files = files
        turns.append(("system" if message.role in SYSTEM_ROLES else message.role, text))
    users = [text for role, text in turns if role == "user"]
    if not users:
        raise _refuse("messages must contain at least one user message", param="messages")
    if for_agent and turns[-1][0] != "user":
        raise _refuse("the last message must be the user's: the agent answers a new user turn", param="messages")
    question = users[-1].strip()
    if not question:
        raise _refuse("the last user message has no text", param=f"messages.{len(turns) - 1}.content")
    extra = body.metadata.file_ids if body.metadata else []
    file_ids = list(dict.fromkeys([*last_files, *extra]))
    if len(file_ids) > MAX_FILES_PER_CHAT:
        raise _refuse(f"at most {MAX_FILES_PER_CHAT} files per message", param="metadata.file_ids")
    return ClientChat(turns=turns, question=question, file_ids=file_ids)


def _digest(*parts: str) -> str:
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()[:CONVERSATION_ID_CHARS]


def thread_conversation_id(*, user_id: str, end_user: str, model: str, chat: ClientChat) -> str:
    """Same id for every resend of a growing history: it depends only on how the thread began."""
    first_system = next((text for role, text in chat.turns if role == "system"), "")
    first_user = next(text for role, text in chat.turns if role == "user")
    return _digest("history", user_id, end_user, model, first_system, first_user)


def named_thread(body: ChatCompletionRequest, headers: Mapping[str, str]) -> str | None:
    """The thread id the client gave: `metadata.conversation_id`, else a thread header (checked like an id)."""
    if body.metadata and body.metadata.conversation_id:
        return body.metadata.conversation_id
    for header in THREAD_HEADERS:
        value = headers.get(header, "").strip()
        if value:
            if not THREAD_ID.fullmatch(value):
                raise _refuse(f"header {header} must be 1-64 letters, digits, '-' or '_'", param=header)
            return value
    return None


def resolve_conversation(
    repo: OwnedRepository, *, named: str | None, end_user: str, model: str, chat: ClientChat
) -> str:
    """Our conversation for this thread, created on first use. A named id that is one of the user's conversations
    is used as is; any other name maps to a conversation derived from it (so client-chosen ids work too)."""
    if named:
        try:
            return repo.get_conversation(named).id
        except NotFoundError:
            conversation_id = _digest("named", repo.user_id, end_user, named)
    else:
        conversation_id = thread_conversation_id(user_id=repo.user_id, end_user=end_user, model=model, chat=chat)
    return repo.ensure_conversation(conversation_id, title=chat.question).id


def langchain_messages(chat: ClientChat) -> list[BaseMessage]:
    kinds: dict[str, type[BaseMessage]] = {"system": SystemMessage, "user": HumanMessage, "assistant": AIMessage}
    return [kinds[role](content=text) for role, text in chat.turns]


def sampling_kwargs(choice: ModelChoice, body: ChatCompletionRequest) -> dict[str, Any]:
    """Per-call sampling for providers that take it; others keep the configured values."""
    if choice.provider not in SAMPLING_PROVIDERS:
        return {}
    kwargs: dict[str, Any] = {}
    if body.temperature is not None:
        kwargs["temperature"] = body.temperature
    if (limit := body.max_completion_tokens or body.max_tokens) is not None:
        kwargs["max_tokens"] = limit
    return kwargs


def estimate_tokens(text: str) -> int:
    return math.ceil(len(text) / CHARS_PER_TOKEN)


def prompt_text(chat: ClientChat) -> str:
    return "\n".join(text for _, text in chat.turns)


def usage_counts(*, prompt: str, completion: str, reported: Mapping[str, Any] | None = None,
                 agent_tokens: int = 0) -> dict[str, int]:
    """Provider-reported counts when there are some; else estimates, where an agent turn's prompt side also
    covers the tokens its own LLM calls consumed (from the run's steps)."""
    if reported and reported.get("input_tokens") is not None and reported.get("output_tokens") is not None:
        prompt_tokens, completion_tokens = int(reported["input_tokens"]), int(reported["output_tokens"])
    else:
        completion_tokens = estimate_tokens(completion)
        prompt_tokens = max(estimate_tokens(prompt), agent_tokens - completion_tokens)
    return {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens}
