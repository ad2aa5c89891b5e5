"""Structured logging: JSON lines to a rotating file, readable console text, request/run ids and redaction.

`configure_logging(settings)` is called once by the app and by the CLI (again is harmless: it replaces its own
handlers). Every record, whichever handler takes it, carries `request_id` and `run_id` from context variables
and has secrets (Bearer tokens, JWTs, API keys, passwords, the configured secret values) masked.
Prompts and model replies go through `log_llm_exchange`, which logs at DEBUG only.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import sys
import threading
import time
from collections.abc import Iterable, Sequence
from contextvars import ContextVar, Token
from datetime import UTC, datetime
from logging.handlers import RotatingFileHandler
from pathlib import Path
from typing import IO, Any

from backend.core.settings import Settings

LOG_FILE_NAME = "server.jsonl"
LOG_FILE_MAX_BYTES = 10 * 1024 * 1024
"""Size at which the JSON log file is rotated."""
LOG_FILE_BACKUPS = 5
"""Rotated files kept (server.jsonl.1 … .5): at most ~60 MB of logs."""
FILE_RETRY_SECONDS = 60.0
"""After a write error (disk full) the file handler pauses this long before trying again."""
MAX_LOGGED_EXCHANGE_CHARS = 8000
"""Longest prompt or reply text written by `log_llm_exchange` (DEBUG only)."""
MIN_SECRET_CHARS = 6
"""Configured secret values shorter than this are not masked verbatim (too many false hits)."""
REDACTED = "[REDACTED]"
QUIET_LOGGERS = ("httpx", "httpcore", "urllib3", "chromadb", "multipart", "sentence_transformers", "filelock")
"""Chatty third-party loggers held at WARNING unless the level is DEBUG."""
UVICORN_LOGGERS = ("uvicorn", "uvicorn.error")
"""Sent through our handlers (one log stream); uvicorn's own access log is replaced by ours."""
CONSOLE_FORMAT = "%(asctime)s %(levelname)-7s %(name)s%(ids)s: %(message)s"
EXCHANGE_LOGGER = "backend.llm.exchange"

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)
run_id_var: ContextVar[str | None] = ContextVar("run_id", default=None)

_SENSITIVE_WORDS = ("key", "secret", "passw", "pwd", "credential", "authorization", "cookie", "token")
"""Cheap first pass (substrings of the lowercased text): only text with one is searched for `name=value` secrets."""
_SENSITIVE_KEY = re.compile(
    r"api[_-]?key|apikey|secret|passw(?:or)?d|pwd|credential|authorization|cookie|private[_-]?key|token$",
    re.IGNORECASE,
)
"""A key naming a secret (`max_tokens` is not one: only keys ending in `token` are)."""
_ASSIGNMENT = re.compile(
    r"""(?<![\w.-])(?P<key>["']?[A-Za-z_][\w.-]{0,63}["']?)(?P<sep>\s*[=:]\s*)(?!//)"""
    r"""(?P<value>"(?:\\.|[^"\\])*"|'(?:\\.|[^'\\])*'|(?:(?:bearer|basic|token)\s+)?[^\s"'&,;)}\]]+)""",
    re.IGNORECASE,
)
"""`password=x`, `api_key: x`, `"token": "x"`, `Authorization: Bearer x` (query strings, JSON, headers, reprs)."""
_PATTERNS: tuple[tuple[tuple[str, ...], re.Pattern[str], str], ...] = (
    # (triggers: substrings of the lowercased text, at least one needed; pattern; replacement)
    (("bearer", "basic"), re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{8,}"), rf"\1 {REDACTED}"),
    (("eyj",), re.compile(r"\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*"), REDACTED),  # JWT
    (("sk-", "pk-", "rk-"), re.compile(r"\b(?:sk|pk|rk)-[A-Za-z0-9_-]{16,}"), REDACTED),  # OpenAI-style keys
    (("tvly-",), re.compile(r"\btvly-[A-Za-z0-9_-]{10,}"), REDACTED),  # Tavily keys
    (("gh", "github_pat"), re.compile(r"\b(?:gh[pousr]|github_pat)_[A-Za-z0-9_]{20,}"), REDACTED),
    (("akia",), re.compile(r"\bAKIA[0-9A-Z]{16}\b"), REDACTED),  # AWS access key ids
    (("://",), re.compile(r"(://[^/\s:@]+:)[^@\s/]+@"), rf"\1{REDACTED}@"),  # passwords in URLs
)
_known_secrets: tuple[str, ...] = ()
_state_lock = threading.Lock()
_warned_dirs: set[str] = set()
_installed_factory = False


# --- context --------------------------------------------------------------------------------
def bind_request(request_id: str | None) -> Token[str | None]:
    """Tag every record logged in this context (and tasks started from it) with `request_id`."""
    return request_id_var.set(request_id)


def bind_run(run_id: str | None) -> Token[str | None]:
    """Tag every record logged in this context with `run_id`; tasks created afterwards inherit it."""
    return run_id_var.set(run_id)


def current_ids() -> dict[str, str | None]:
    return {"request_id": request_id_var.get(), "run_id": run_id_var.get()}


# --- redaction ------------------------------------------------------------------------------
def redact(text: str) -> str:
    """`text` with tokens, keys, passwords and the configured secret values masked."""
    for secret in _known_secrets:
        if secret in text:
            text = text.replace(secret, REDACTED)
    lowered = text.lower()
    for triggers, pattern, replacement in _PATTERNS:
        if any(trigger in lowered for trigger in triggers):
            text = pattern.sub(replacement, text)
    if any(word in lowered for word in _SENSITIVE_WORDS):
        text = _ASSIGNMENT.sub(_mask_assignment, text)
    return text


def _mask_assignment(match: re.Match[str]) -> str:
    key, value = match["key"], match["value"]
    if not _SENSITIVE_KEY.search(key.strip("\"'")) or REDACTED[:-1] in value:
        return match[0]
    quote = value[0] if value[:1] in ("'", '"') else ""
    return f"{key}{match['sep']}{quote}{REDACTED}{quote}"


def set_known_secrets(values: Iterable[str | None]) -> None:
    """Secret values to mask verbatim wherever they appear (configured keys, the JWT signing key)."""
    global _known_secrets
    _known_secrets = tuple(sorted({v for v in values if v and len(v) >= MIN_SECRET_CHARS}, key=len, reverse=True))


def _settings_secrets(settings: Settings) -> list[str | None]:
    values: list[str | None] = []
    secrets: tuple[Any, ...] = (settings.jwt_secret, settings.openai_api_key, settings.tavily_api_key,
                                settings.admin_password, settings.metrics_token)
    for secret in secrets:  # SecretStr normally; a plain str when a test built settings with model_copy
        values.append(secret.get_secret_value() if hasattr(secret, "get_secret_value") else secret)
    return values


def _make_record_factory(base: Any) -> Any:
    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record: logging.LogRecord = base(*args, **kwargs)
        record._request_id = request_id_var.get()  # private names: `extra={"run_id": ...}` must stay legal
        record._run_id = run_id_var.get()
        try:
            message = record.getMessage()
        except Exception:  # a bad format/args pair: leave it for logging's own error report
            return record
        cleaned = redact(message)
        if cleaned != message:  # only then are msg/args merged (formatters like uvicorn's read args)
            record.msg, record.args = cleaned, None
        return record

    factory._ops_factory = True  # type: ignore[attr-defined]
    return factory


def _install_record_factory() -> None:
    """Ids and redaction at record creation, so every handler (ours, uvicorn's, pytest's) sees them."""
    global _installed_factory
    with _state_lock:
        current = logging.getLogRecordFactory()
        if _installed_factory and getattr(current, "_ops_factory", False):
            return
        logging.setLogRecordFactory(_make_record_factory(current))
        _installed_factory = True


# --- formatting -----------------------------------------------------------------------------
def record_id(record: logging.LogRecord, key: str) -> str | None:
    """The record's request/run id: an explicit `extra=` value wins over the context variable."""
    value = record.__dict__.get(key) or record.__dict__.get(f"_{key}")
    return str(value) if value else None


_STANDARD_ATTRS = frozenset(vars(logging.makeLogRecord({}))) | {
    "message", "asctime", "request_id", "run_id", "ids", "color_message",  # the last: uvicorn's ANSI copy of msg
}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, msg, request_id, run_id, exc and any `extra=` fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
            "request_id": record_id(record, "request_id"),
            "run_id": record_id(record, "run_id"),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD_ATTRS and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exc"] = record.exc_text
        return redact(json.dumps(entry, default=str, ensure_ascii=False))


class ConsoleFormatter(logging.Formatter):
    """`time LEVEL logger [req=… run=…]: message`, ids only when set."""

    def __init__(self) -> None:
        super().__init__(CONSOLE_FORMAT, datefmt="%H:%M:%S")

    def format(self, record: logging.LogRecord) -> str:
        ids = [f"{key[:3]}={value[:12]}" for key in ("request_id", "run_id") if (value := record_id(record, key))]
        record.ids = f" [{' '.join(ids)}]" if ids else ""
        return redact(super().format(record))


# --- handlers -------------------------------------------------------------------------------
class ConsoleHandler(logging.StreamHandler):
    """Writes to whatever `sys.stderr` is now (test runners swap it), never to a stale stream."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self) -> IO[str]:
        return sys.stderr

    @stream.setter
    def stream(self, _value: IO[str]) -> None:
        pass


class SafeRotatingFileHandler(RotatingFileHandler):
    """A rotating file that survives a full or vanished disk: it warns once on stderr and pauses, never raises."""

    def __init__(self, path: Path) -> None:
        super().__init__(path, maxBytes=LOG_FILE_MAX_BYTES, backupCount=LOG_FILE_BACKUPS, encoding="utf-8")
        self._paused_until = 0.0

    def emit(self, record: logging.LogRecord) -> None:
        if time.monotonic() < self._paused_until:
            return
        super().emit(record)

    def shouldRollover(self, record: logging.LogRecord) -> int:
        """Rotate once the file has reached its size (the stdlib formats every record twice to be exact)."""
        if self.stream is None:
            self.stream = self._open()
        return int(self.maxBytes > 0 and self.stream.tell() >= self.maxBytes)

    def handleError(self, record: logging.LogRecord) -> None:
        error = sys.exc_info()[1]
        if not isinstance(error, OSError):
            super().handleError(record)
            return
        if not self._paused_until:
            print(f"warning: cannot write log file {self.baseFilename} ({error.strerror or error}); "
                  f"file logging paused, retrying every {FILE_RETRY_SECONDS:g} s", file=sys.stderr)
        self._paused_until = time.monotonic() + FILE_RETRY_SECONDS
        if self.stream is not None:
            with contextlib.suppress(OSError):
                self.stream.close()
            self.stream = None  # reopened on the next emit


def _open_file_handler(logs_dir: Path) -> tuple[logging.Handler | None, str]:
    try:
        logs_dir.mkdir(parents=True, exist_ok=True)
        return SafeRotatingFileHandler(logs_dir / LOG_FILE_NAME), ""
    except OSError as exc:
        return None, f"{exc.strerror or exc}"


# --- set-up ---------------------------------------------------------------------------------
def configure_logging(settings: Settings, *, console: bool = True, log_file: bool = True) -> Path | None:
    """Install our handlers on the root logger at `settings.log_level`; returns the JSON log file (or None).

    An unwritable log directory leaves console logging only, with one warning per directory.
    """
    set_known_secrets(_settings_secrets(settings))
    _install_record_factory()
    level = logging.getLevelName(settings.log_level)
    root = logging.getLogger()
    for handler in [h for h in root.handlers if getattr(h, "_ops_handler", False)]:
        root.removeHandler(handler)
        handler.close()
    handlers: list[logging.Handler] = []
    if console:
        console_handler = ConsoleHandler()
        console_handler.setFormatter(ConsoleFormatter())
        handlers.append(console_handler)
    path: Path | None = None
    problem = ""
    if log_file:
        file_handler, problem = _open_file_handler(settings.logs_dir)
        if file_handler is not None:
            file_handler.setFormatter(JsonFormatter())
            handlers.append(file_handler)
            path = settings.logs_dir / LOG_FILE_NAME
    for handler in handlers:
        handler._ops_handler = True  # type: ignore[attr-defined]
        handler.setLevel(level)
        root.addHandler(handler)
    root.setLevel(level)
    quiet = logging.DEBUG if level == logging.DEBUG else logging.WARNING
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(quiet)
    for name in UVICORN_LOGGERS:
        uvicorn_logger = logging.getLogger(name)
        uvicorn_logger.handlers.clear()
        uvicorn_logger.propagate = True
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)
    if problem:
        key = str(settings.logs_dir)
        if key not in _warned_dirs:
            _warned_dirs.add(key)
            logging.getLogger(__name__).warning(
                "log directory %s is not writable (%s); logging to the console only", settings.logs_dir, problem
            )
    return path


# --- prompts and replies --------------------------------------------------------------------
def _clip(text: str) -> str:
    return text if len(text) <= MAX_LOGGED_EXCHANGE_CHARS else text[:MAX_LOGGED_EXCHANGE_CHARS] + "…[clipped]"


def _message_text(message: Any) -> str:
    content = getattr(message, "content", message)
    role = getattr(message, "type", "")
    text = content if isinstance(content, str) else json.dumps(content, default=str, ensure_ascii=False)
    return f"{role}: {text}" if role else text


def log_llm_exchange(*, provider: str, prompt: Sequence[Any], reply: Any) -> None:
    """Log a model call's prompt and reply at DEBUG (never above); nothing is formatted unless DEBUG is on."""
    logger = logging.getLogger(EXCHANGE_LOGGER)
    if not logger.isEnabledFor(logging.DEBUG):
        return
    prompt_text = _clip("\n".join(_message_text(m) for m in prompt))
    reply_text = _clip(_message_text(reply))
    logger.debug("llm exchange with %s\n--- prompt ---\n%s\n--- reply ---\n%s", provider, prompt_text, reply_text,
                 extra={"provider": provider})


def configure_cli_logging() -> None:
    """Logging for `python -m backend …`: like the server's; console only when the settings do not load
    (the command itself then reports the bad setting)."""
    from pydantic import ValidationError

    try:
        settings = Settings()
    except ValidationError:
        configure_logging(Settings.model_construct(), log_file=False)
        return
    configure_logging(settings)
