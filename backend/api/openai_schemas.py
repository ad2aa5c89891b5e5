"""Bodies of the OpenAI-compatible API (`/v1`), in OpenAI's Chat Completions wire format.

Requests allow fields we do not use (`top_p`, `n`, `tools`, …): clients send them routinely and refusing them
would break those clients. Our own additions (`conversation_id`, `run_id`) are extra response fields, which the
official SDKs keep and expose.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from backend.api.schemas import ID_PATTERN, MAX_FILES_PER_CHAT, MAX_MESSAGE_CHARS

MAX_MESSAGES = 1000
MAX_MODEL_CHARS = 128
MAX_USER_CHARS = 256

FileId = Annotated[str, StringConstraints(pattern=ID_PATTERN)]
FinishReason = Literal["stop", "length"]


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="allow")


class TextPart(_Lenient):
    type: Literal["text"]
    text: str = Field(max_length=MAX_MESSAGE_CHARS)


class FileRef(_Lenient):
    file_id: FileId | None = Field(default=None, description="An id returned by POST /api/upload.")
    file_data: str | None = Field(default=None, description="Inline file data: not supported (upload it instead).")
    filename: str | None = None


class FilePart(_Lenient):
    type: Literal["file"]
    file: FileRef


class ImagePart(_Lenient):
    type: Literal["image_url"]
    image_url: dict[str, Any]


ContentPart = Annotated[TextPart | FilePart | ImagePart, Field(discriminator="type")]


class ChatMessage(_Lenient):
    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: Annotated[str, Field(max_length=MAX_MESSAGE_CHARS)] | list[ContentPart] | None = None
    name: str | None = Field(default=None, max_length=64)


class StreamOptions(_Lenient):
    include_usage: bool = False


class CompletionMetadata(_Lenient):
    conversation_id: str | None = Field(
        default=None, pattern=ID_PATTERN,
        description="Continue this conversation (one of yours) or the one this client thread id maps to.")
    file_ids: list[FileId] = Field(default_factory=list, max_length=MAX_FILES_PER_CHAT,
                                   description="Uploaded file ids (a list, or one comma-separated string).")

    @field_validator("file_ids", mode="before")
    @classmethod
    def _split(cls, value: object) -> object:
        """OpenAI's metadata values are strings, so clients may send `"id1,id2"`."""
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value


class ChatCompletionRequest(_Lenient):
    model: str = Field(min_length=1, max_length=MAX_MODEL_CHARS, description="An id from GET /v1/models.")
    messages: list[ChatMessage] = Field(min_length=1, max_length=MAX_MESSAGES)
    stream: bool = False
    stream_options: StreamOptions | None = None
    temperature: float | None = Field(default=None, ge=0.0, le=2.0)
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    user: str | None = Field(default=None, max_length=MAX_USER_CHARS,
                             description="End user behind a shared key: separates their conversations.")
    metadata: CompletionMetadata | None = None


class Usage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]


class AssistantMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str
    refusal: None = None


class Choice(BaseModel):
    index: int = 0
    message: AssistantMessage
    finish_reason: FinishReason
    logprobs: None = None


class ChatCompletion(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[Choice]
    usage: Usage
    conversation_id: str | None = Field(default=None, description="Our conversation this thread maps to.")
    run_id: str | None = Field(default=None, description="The agent run (trace at /api/runs/{run_id}).")


class ChunkDelta(BaseModel):
    role: Literal["assistant"] | None = None
    content: str | None = None


class ChunkChoice(BaseModel):
    index: int = 0
    delta: ChunkDelta
    finish_reason: FinishReason | None = None
    logprobs: None = None


class ChatCompletionChunk(BaseModel):
    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int
    model: str
    choices: list[ChunkChoice]
    usage: Usage | None = None
    conversation_id: str | None = None
    run_id: str | None = None


class ErrorDetail(BaseModel):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class ErrorResponse(BaseModel):
    error: ErrorDetail
