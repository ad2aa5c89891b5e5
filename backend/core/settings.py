"""The one settings class: every tunable of the server, read from `APP_*` env vars and `.env`.

Nothing else in the project reads the environment; rooms receive a `Settings` instance.
"""

from __future__ import annotations

import secrets
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parents[2]

KNOWN_PROVIDERS = ("auto", "llamacpp", "ollama", "openai", "fake")
WEAK_SECRETS = frozenset(
    {"", "secret", "changeme", "change-me", "changethis", "password", "jwt-secret", "default", "test"}
)
MIN_SECRET_LENGTH = 32
JWT_SECRET_FILE = "jwt_secret"  # noqa: S105 - a file name, not a secret


class Settings(BaseSettings):
    """Server configuration. Field docstrings are the documentation of each `APP_*` variable."""

    model_config = SettingsConfigDict(
        env_prefix="APP_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        use_attribute_docstrings=True,
    )

    # --- server -------------------------------------------------------------------------
    host: str = "127.0.0.1"
    """Interface the backend binds to."""
    port: int = Field(default=8000, ge=1, le=65535)
    """Backend port."""
    frontend_port: int = Field(default=8080, ge=1, le=65535)
    """Port `run_frontend.py` serves the UI on."""
    backend_url: str = ""
    """URL the UI uses to reach the backend; empty means http://{host}:{port}."""
    cors_origins: list[str] = Field(default_factory=lambda: ["*"])
    """Origins allowed to call the API from a browser."""
    data_dir: Path = PROJECT_ROOT / "data"
    """Runtime state: database, uploads, scratch, vectors, models, logs."""
    database_url: str = ""
    """SQLAlchemy URL; empty means SQLite at {data_dir}/app.db."""
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    """Level for console and file logs; prompts and replies are logged only at DEBUG."""

    # --- auth ---------------------------------------------------------------------------
    jwt_secret: SecretStr | None = None
    """HMAC key for tokens; unset means one is generated and kept in {data_dir}/jwt_secret."""
    jwt_algorithm: Literal["HS256", "HS384", "HS512"] = "HS256"
    """The only algorithm tokens are signed and accepted with."""
    jwt_audience: str = "analysis-server"
    """Audience claim required in every token."""
    access_token_minutes: int = Field(default=15, ge=1)
    """Lifetime of an access token (LibreChat uses 15 min)."""
    refresh_token_days: int = Field(default=7, ge=1)
    """Lifetime of a refresh token."""
    admin_username: str = ""
    """First-run admin, created at start-up if both it and admin_password are set."""
    admin_password: SecretStr | None = None
    """Password of the first-run admin; never defaulted."""
    allow_registration: bool = True
    """Whether POST /api/auth/register is open."""

    # --- llm ----------------------------------------------------------------------------
    llm_providers: Annotated[list[str], NoDecode] = Field(default_factory=lambda: ["auto"])
    """Ordered failover chain, e.g. `ollama,llamacpp`; `auto` = Ollama when reachable, else embedded."""
    embedded_model: Literal["qwen2.5-coder-1.5b", "qwen2.5-coder-0.5b"] = "qwen2.5-coder-1.5b"
    """Packaged GGUF the llamacpp provider loads."""
    llm_threads: int = Field(default=2, ge=1)
    """CPU threads for llama.cpp."""
    llm_context_tokens: int = Field(default=8192, ge=512)
    """Context window for the embedded model."""
    llm_max_tokens: int = Field(default=1024, ge=1)
    """Default cap on generated tokens per call."""
    llm_temperature: float = Field(default=0.1, ge=0.0, le=2.0)
    """Sampling temperature for agent calls."""
    ollama_host: str = Field(
        default="http://127.0.0.1:11434",
        validation_alias=AliasChoices("APP_OLLAMA_HOST", "OLLAMA_HOST"),
    )
    """Ollama server URL (also read from OLLAMA_HOST)."""
    ollama_model: str = "qwen2.5-coder:1.5b"
    """Model tag used with Ollama."""
    openai_base_url: str = ""
    """Base URL of an OpenAI-compatible server (vLLM, llama.cpp server, LM Studio, OpenAI)."""
    openai_api_key: SecretStr | None = None
    """Key for the OpenAI-compatible server."""
    openai_model: str = "gpt-4o-mini"
    """Model name sent to the OpenAI-compatible server."""
    llm_timeout_seconds: float = Field(default=120.0, gt=0)
    """Per-call timeout for remote providers."""
    llm_max_retries: int = Field(default=2, ge=0)
    """Retries on transient errors (timeouts, 429, 5xx) before failing over."""
    breaker_failure_threshold: int = Field(default=3, ge=1)
    """Consecutive failures that open a provider's circuit breaker."""
    breaker_cooldown_seconds: float = Field(default=30.0, gt=0)
    """Time an open breaker waits before a half-open trial call."""
    provider_rate_per_minute: float = Field(default=600.0, gt=0)
    """Token-bucket rate limit per provider (calls per minute)."""

    # --- sandbox / coder ----------------------------------------------------------------
    code_timeout_seconds: float = Field(default=30.0, gt=0)
    """Wall-clock limit per code run (smolagents uses 30 s)."""
    code_memory_mb: int = Field(default=2048, ge=256)
    """Address-space cap for sandboxed code."""
    code_max_output_chars: int = Field(default=20_000, ge=1000)
    """stdout/stderr kept per run; the rest is cut with a marker."""
    sandbox_pool_size: int = Field(default=2, ge=0)
    """Pre-started warm interpreters."""
    sandbox_idle_seconds: float = Field(default=900.0, gt=0)
    """Idle time after which a session's worker is recycled."""
    coder_max_executions: int = Field(default=5, ge=1)
    """Code executions per coder call (first run plus fixes)."""
    coder_max_verifications: int = Field(default=3, ge=0)
    """Verification rounds per coder call."""
    coder_verify_mode: Literal["llm", "auto", "rules"] = "auto"
    """`llm`: the model judges every clean run; `auto`: only output that is not a plain answer; `rules`: never."""

    # --- agents -------------------------------------------------------------------------
    agent_max_iterations: int = Field(default=6, ge=1)
    """ReAct reason/act iterations before the final-answer node is forced."""
    agent_max_plan_steps: int = Field(default=6, ge=1)
    """Steps a plan may have."""
    agent_turn_seconds: float = Field(default=600.0, gt=0)
    """Wall-clock budget per agent turn."""
    agent_history_turns: int = Field(default=6, ge=0)
    """Recent turns given verbatim; older ones are summarised."""
    agent_context_tokens: int = Field(default=6000, ge=1000)
    """Token budget for assembled context (history, notepad, variables)."""
    agent_phrase_results: bool = False
    """Rephrase a data question's computed result in prose with one more LLM call (+5-20 s on CPU); off: the
    coder's labelled output is the answer."""
    max_message_chars: int = Field(default=20_000, ge=1)
    """Longest chat message accepted."""
    openai_compat_progress: Literal["full", "summary", "none"] = "summary"
    """Agent steps in streamed `/v1/chat/completions` answers: `full` = each step with its tool call, code and
    output; `summary` = the plan and one line per tool step; `none` = only the answer."""
    tool_plugin_paths: list[str] = Field(default_factory=list)
    """Modules or folders whose functions are auto-discovered as tools."""
    checkpoint_url: str = ""
    """Agent checkpoint store; empty = SQLite at {data_dir}/checkpoints.db, `postgresql://...` = Postgres."""

    # --- files / rag / web --------------------------------------------------------------
    max_upload_mb: int = Field(default=100, ge=1)
    """Largest upload accepted, per file."""
    rag_chunk_size: int = Field(default=1000, ge=100)
    """Characters per chunk (Open WebUI uses 1000/100)."""
    rag_chunk_overlap: int = Field(default=100, ge=0)
    """Overlap between chunks."""
    rag_top_k: int = Field(default=4, ge=1)
    """Chunks returned per retrieval."""
    rag_max_pages: int = Field(default=2000, ge=1)
    """Largest document (pages) ingested."""
    chroma_url: str = ""
    """Chroma server URL; empty means a PersistentClient under {data_dir}/chroma."""
    embedding_provider: Literal["local", "ollama"] = "local"
    """`local` = packaged all-MiniLM-L6-v2; `ollama` = OllamaEmbeddings."""
    ollama_embedding_model: str = "nomic-embed-text"
    """Embedding model used with Ollama."""
    tavily_api_key: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("APP_TAVILY_API_KEY", "TAVILY_API_KEY")
    )
    """Tavily key (also read from TAVILY_API_KEY); without it web search reports itself unavailable."""

    # --- operations ---------------------------------------------------------------------
    rate_limit_per_minute: int = Field(default=120, ge=1)
    """API requests per user per minute."""
    max_concurrent_runs: int = Field(default=3, ge=1)
    """Agent runs in flight per user."""
    metrics_enabled: bool = True
    """Expose GET /metrics (admin only)."""
    metrics_token: SecretStr | None = None
    """Static bearer token a Prometheus scraper may send for GET /metrics (admins can always read it)."""
    retention_days: int = Field(default=30, ge=1)
    """Age after which scratch files, artifacts and runs are cleaned."""
    scratch_max_mb: int = Field(default=0, ge=0)
    """Cap on all session scratch dirs; above it the least recently active idle ones go first (0 = no cap)."""
    artifacts_max_mb: int = Field(default=0, ge=0)
    """Cap on stored run artifacts; above it the oldest ones go first (0 = no cap)."""
    cleanup_interval_minutes: float = Field(default=60.0, ge=0)
    """How often the server applies the retention policy (0 = only `python -m backend cleanup`)."""
    min_free_disk_mb: int = Field(default=1024, ge=0)
    """Free space under data_dir below which `doctor` fails and the server logs a warning."""
    gc_freeze_startup: bool = True
    """Freeze the start-up heap out of full garbage collections (each one otherwise froze the loop ~90 ms)."""
    loop_block_warn_ms: int = Field(default=250, ge=0)
    """Log a warning, with the loop thread's stack, when the event loop is blocked this long (0 = no watchdog)."""

    @field_validator("llm_providers", mode="before")
    @classmethod
    def _split_providers(cls, value: object) -> object:
        if isinstance(value, str):  # `ollama,llamacpp` or a JSON list (NoDecode: env values arrive raw)
            chars = "[]\"' "
            return [p.strip(chars) for p in value.split(",") if p.strip(chars)]
        return value

    @field_validator("llm_providers")
    @classmethod
    def _known_providers(cls, value: list[str]) -> list[str]:
        unknown = [p for p in value if p not in KNOWN_PROVIDERS]
        if unknown:
            raise ValueError(f"unknown provider(s) {unknown}; choose from {', '.join(KNOWN_PROVIDERS)}")
        if not value:
            raise ValueError("at least one provider is required")
        return value

    @field_validator("jwt_secret")
    @classmethod
    def _strong_secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return None
        raw = value.get_secret_value()
        if raw.lower() in WEAK_SECRETS or len(raw) < MIN_SECRET_LENGTH:
            raise ValueError(f"APP_JWT_SECRET is a well-known or short value; use >= {MIN_SECRET_LENGTH} random chars")
        return value

    # --- derived paths ------------------------------------------------------------------
    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'app.db'}"

    @property
    def resolved_backend_url(self) -> str:
        return self.backend_url or f"http://{self.host}:{self.port}"

    @property
    def models_dir(self) -> Path:
        return self.data_dir / "models"

    @property
    def uploads_dir(self) -> Path:
        return self.data_dir / "uploads"

    @property
    def sessions_dir(self) -> Path:
        return self.data_dir / "sessions"

    @property
    def chroma_dir(self) -> Path:
        return self.data_dir / "chroma"

    @property
    def logs_dir(self) -> Path:
        return self.data_dir / "logs"

    @property
    def checkpoint_db(self) -> Path:
        return self.data_dir / "checkpoints.db"

    def jwt_key(self) -> str:
        """The signing key: configured, or generated once and persisted so restarts keep sessions valid."""
        if self.jwt_secret is not None:
            return self.jwt_secret.get_secret_value()
        path = self.data_dir / JWT_SECRET_FILE
        if path.exists():
            return path.read_text().strip()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        key = secrets.token_urlsafe(48)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(key)
        tmp.chmod(0o600)
        tmp.replace(path)
        return key


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Process-wide settings; tests build their own `Settings(...)` instead."""
    return Settings()
