"""Request and response bodies of the HTTP API (the OpenAPI schema is generated from these)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

USERNAME_PATTERN = r"^[A-Za-z0-9_.\-]{3,64}$"
MIN_PASSWORD_CHARS = 8
MAX_PASSWORD_CHARS = 256
"""Upper bound keeps argon2 work per request bounded."""
MAX_TOKEN_CHARS = 4096
MAX_MESSAGE_CHARS = 200_000
"""Hard schema cap; the configured `max_message_chars` (smaller) is checked in the route."""
MAX_FILES_PER_CHAT = 20
MAX_TITLE_CHARS = 200
ID_PATTERN = r"^[A-Za-z0-9_\-]{1,64}$"

RunStatus = Literal["running", "done", "failed", "cancelled"]


class _Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


# --- auth --------------------------------------------------------------------------------
class Credentials(BaseModel):
    username: str = Field(pattern=USERNAME_PATTERN, description="3-64 letters, digits, `_`, `.` or `-`.")
    password: str = Field(min_length=MIN_PASSWORD_CHARS, max_length=MAX_PASSWORD_CHARS)


class LoginRequest(BaseModel):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=MAX_PASSWORD_CHARS)


class RefreshRequest(BaseModel):
    refresh_token: str = Field(min_length=1, max_length=MAX_TOKEN_CHARS)


class TokenResponse(BaseModel):
    access_token: str
    refresh_token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105 - the OAuth2 token type, not a secret
    expires_in: int = Field(description="Seconds until the access token expires.")


class UserOut(_Out):
    id: str
    username: str
    is_admin: bool
    created_at: datetime


class ApiKeyCreate(BaseModel):
    name: str = Field(min_length=1, max_length=100, description="What the key is for, e.g. `open-webui`.")


class ApiKeyOut(_Out):
    id: str
    name: str
    prefix: str = Field(description="The key's first characters, to tell keys apart.")
    created_at: datetime
    last_used_at: datetime | None
    revoked: bool


class ApiKeyCreated(ApiKeyOut):
    key: str = Field(description="The secret: shown only in this response, store it now.")


# --- files / artifacts ---------------------------------------------------------------------
class FileOut(_Out):
    id: str
    name: str = Field(description="Sanitised original file name.")
    kind: str
    media_type: str
    size_bytes: int
    sha256: str
    meta: dict[str, Any] = Field(description="Rows, columns, dtypes, pages… and RAG indexing status.")
    created_at: datetime


class UploadResponse(BaseModel):
    files: list[FileOut]


class ArtifactOut(_Out):
    id: str
    kind: Literal["figure", "file"]
    name: str
    run_id: str | None
    url: str
    available: bool = Field(description="False when the agent reported the artifact but its file was not found.")


# --- runs ------------------------------------------------------------------------------------
class StepOut(_Out):
    step: int
    node: str
    tool: str | None
    status: str
    input: str
    output: str
    error: str | None
    duration_ms: float
    tokens: int
    detail: dict[str, Any]


class RunOut(_Out):
    id: str
    conversation_id: str | None
    kind: str
    status: RunStatus
    strategy: str | None
    input: str
    output: str | None
    error: str | None
    created_at: datetime
    finished_at: datetime | None
    plan: dict[str, Any] | None = None
    trace: list[StepOut]


class TaskRequest(BaseModel):
    goal: str = Field(min_length=1, max_length=MAX_MESSAGE_CHARS)
    context: str | None = Field(default=None, max_length=MAX_MESSAGE_CHARS)
    tools: list[str] | None = Field(default=None, max_length=32, description="Tools the agent may use (hint).")


class TaskResponse(BaseModel):
    run_id: str
    status: RunStatus
    output: str | None
    error: str | None
    trace: list[StepOut]


# --- chat --------------------------------------------------------------------------------------
class ChatRequest(BaseModel):
    message: str = Field(min_length=1, max_length=MAX_MESSAGE_CHARS)
    conversation_id: str | None = Field(default=None, pattern=ID_PATTERN)
    strategy: str | None = Field(default=None, pattern=r"^[a-z_\-]{1,32}$", description="e.g. auto, react, plan.")
    files: list[str] = Field(default_factory=list, max_length=MAX_FILES_PER_CHAT, description="Uploaded file ids.")
    stream: bool = Field(default=False, description="Stream events as SSE (same as Accept: text/event-stream).")


class ChatResponse(BaseModel):
    run_id: str
    conversation_id: str
    status: RunStatus
    answer: str | None
    error: str | None
    steps: list[StepOut]
    figures: list[ArtifactOut]
    files: list[ArtifactOut]


class StopResponse(BaseModel):
    run_id: str
    stopped: bool = Field(description="True if the run was in flight and has been cancelled.")


# --- conversations -------------------------------------------------------------------------------
class ConversationOut(_Out):
    id: str
    title: str
    created_at: datetime
    updated_at: datetime


class MessageOut(_Out):
    id: str
    role: str
    content: str
    run_id: str | None
    created_at: datetime


class RunSummary(_Out):
    id: str
    status: RunStatus
    strategy: str | None
    steps: list[StepOut]


class ConversationDetail(ConversationOut):
    messages: list[MessageOut]
    runs: list[RunSummary]
    figures: list[ArtifactOut]
    files: list[ArtifactOut]


class RenameRequest(BaseModel):
    title: str = Field(min_length=1, max_length=MAX_TITLE_CHARS)


# --- health ----------------------------------------------------------------------------------------
class HealthOut(BaseModel):
    status: Literal["ok", "degraded"]
    version: str
    providers: list[dict[str, Any]] | str = Field(description="Provider chain with health figures, or 'unavailable'.")
    model: dict[str, Any] | str = Field(description="Embedded model file status, or 'unavailable'.")
    sandbox: dict[str, Any] | str = Field(description="Isolation layers in use, or 'unavailable'.")
    agent: str = Field(description="'ready' or why chat is unavailable.")
