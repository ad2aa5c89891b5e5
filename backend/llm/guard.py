"""Switch that forbids constructing real model providers (unit tests set it False, like pydantic-ai's)."""

from __future__ import annotations

from backend.llm.errors import ModelRequestsForbiddenError

ALLOW_MODEL_REQUESTS = True
"""When False, building a llamacpp/ollama/openai provider raises; the scripted fake is always allowed."""


def check_allow_model_requests(provider: str) -> None:
    """Raise if real model requests are currently forbidden."""
    if not ALLOW_MODEL_REQUESTS:
        raise ModelRequestsForbiddenError(
            f"real LLM provider {provider!r} requested while backend.llm.guard.ALLOW_MODEL_REQUESTS is False; "
            "use backend.llm.fake.ScriptedChatModel in unit tests"
        )
