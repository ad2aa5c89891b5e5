"""Typed errors of the LLM layer and the transient/permanent classification that drives retries."""

from __future__ import annotations

from collections.abc import Mapping

TRANSIENT_STATUS_CODES = frozenset({408, 409, 425, 429})
"""HTTP statuses below 500 that mean "try again later" rather than "your request is wrong"."""


class LLMError(Exception):
    """Base of every error raised on purpose by `backend.llm`."""


class ModelFileError(LLMError):
    """The embedded GGUF cannot be assembled or loaded; the message names the file or part and the fix."""


class MissingPartError(ModelFileError):
    """A part package of a packaged model is not installed or its part file is missing."""


class ChecksumMismatchError(ModelFileError):
    """An assembled model file has the wrong size or SHA-256."""


class ProviderConfigError(LLMError):
    """A provider is unknown or misconfigured; the message names the setting to change."""


class ProviderUnavailableError(LLMError):
    """A provider cannot serve right now (server unreachable, model missing, breaker open)."""


class ModelRequestsForbiddenError(LLMError):
    """A real model was requested while `backend.llm.guard.ALLOW_MODEL_REQUESTS` is False (unit tests)."""


class StreamInterruptedError(LLMError):
    """A provider failed after part of a streamed reply was already delivered; the turn must be retried whole."""

    def __init__(self, provider: str, error: BaseException, partial_text: str) -> None:
        self.provider = provider
        self.error = error
        self.partial_text = partial_text
        super().__init__(
            f"provider {provider!r} failed mid-stream after {len(partial_text)} chars "
            f"({type(error).__name__}: {error}); the partial reply was discarded, retry the turn"
        )


class ProvidersExhaustedError(LLMError):
    """Every provider in the chain failed or was skipped; `errors` maps provider name to its last error."""

    def __init__(self, errors: Mapping[str, str]) -> None:
        self.errors = dict(errors)
        detail = "; ".join(f"{name}: {error}" for name, error in self.errors.items()) or "no providers configured"
        super().__init__(f"all LLM providers failed ({detail})")


def status_code_of(exc: BaseException) -> int | None:
    """The HTTP status carried by an httpx/openai/ollama error, if any."""
    for holder in (exc, getattr(exc, "response", None)):
        code = getattr(holder, "status_code", None)
        if isinstance(code, int) and code > 0:
            return code
    return None


def is_transient(exc: BaseException) -> bool:
    """Whether retrying the same request on the same provider may succeed.

    Timeouts, dropped connections, 429 and 5xx are transient; 4xx bad requests, auth errors,
    unknown models and our own typed errors are not (retrying them only burns time).
    langchain-core's `ModelError` family (raised by langchain-openai) carries the answer itself.
    """
    import httpx  # local: keep `import backend.llm.errors` light
    from langchain_core.exceptions import ModelError

    if isinstance(exc, LLMError):
        return False
    if isinstance(exc, ModelError):
        return exc.is_retryable
    code = status_code_of(exc)
    if code is not None:
        return code >= 500 or code in TRANSIENT_STATUS_CODES
    if isinstance(exc, TimeoutError | ConnectionError | httpx.TransportError):
        return True
    module = type(exc).__module__
    if module.startswith("openai"):  # raw SDK errors (the SDK wraps httpx2 transport failures in these)
        import openai

        return isinstance(exc, openai.APITimeoutError | openai.APIConnectionError)
    if module.startswith("httpx2"):
        import httpx2

        return isinstance(exc, httpx2.TransportError)
    return False


def short_error(exc: BaseException, *, limit: int = 300) -> str:
    """One line describing an error, for health reports and one-line CLI messages."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    line = f"{type(exc).__name__}: {text}" if not isinstance(exc, LLMError) else text
    return line if len(line) <= limit else line[: limit - 1] + "…"
