"""The one place chat models are built: each provider from settings, and the failover chain over them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage

from backend.llm import guard
from backend.llm.errors import ProviderConfigError, ProviderUnavailableError
from backend.llm.failover import FailoverChatModel, ProviderEntry
from backend.llm.fake import ScriptedChatModel
from backend.llm.health import HealthRegistry, default_registry
from backend.llm.tool_calls import text_of

if TYPE_CHECKING:
    from backend.core.settings import Settings

PROVIDERS = ("llamacpp", "ollama", "openai", "fake")
"""Concrete providers; `auto` expands to ollama (when reachable) then llamacpp."""
AUTO_PROBE_TIMEOUT_SECONDS = 1.0
"""How long `auto` waits for Ollama's /api/tags before choosing the embedded model."""
OPENAI_PLACEHOLDER_KEY = "not-needed"
"""Key sent to OpenAI-compatible servers that need none (vLLM, llama.cpp server, LM Studio)."""


def ollama_reachable(host: str, *, timeout: float = AUTO_PROBE_TIMEOUT_SECONDS) -> bool:
    """Whether an Ollama server answers GET /api/tags at `host` within `timeout`."""
    import httpx

    try:
        return httpx.get(f"{host.rstrip('/')}/api/tags", timeout=timeout).status_code == 200
    except (httpx.HTTPError, OSError):
        return False


def resolve_chain(names: Sequence[str], *, settings: Settings) -> list[str]:
    """Concrete provider order: unknown names rejected, `auto` expanded, duplicates dropped."""
    out: list[str] = []
    for name in names:
        if name == "auto":
            expanded = ["ollama", "llamacpp"] if ollama_reachable(settings.ollama_host) else ["llamacpp"]
        elif name in PROVIDERS:
            expanded = [name]
        else:
            raise ProviderConfigError(
                f"unknown LLM provider {name!r} in APP_LLM_PROVIDERS; choose from auto, {', '.join(PROVIDERS)}"
            )
        out.extend(n for n in expanded if n not in out)
    return out


def _demo_reply(messages: list[BaseMessage]) -> AIMessage:
    last = next((m for m in reversed(messages) if isinstance(m, HumanMessage)), None)
    said = text_of(last.content) if last is not None else ""
    return AIMessage(content=f"(scripted fake model) You said: {said}")


def fake_model() -> ScriptedChatModel:
    """The `fake` provider: deterministic, offline; echoes the last user message."""
    return ScriptedChatModel(replies=[_demo_reply], cycle=True)


def build_provider(name: str, *, settings: Settings) -> BaseChatModel:
    """One provider's chat model. Real providers are refused while `guard.ALLOW_MODEL_REQUESTS` is False."""
    if name == "fake":
        return fake_model()
    if name not in PROVIDERS:
        raise ProviderConfigError(f"unknown LLM provider {name!r}; choose from auto, {', '.join(PROVIDERS)}")
    guard.check_allow_model_requests(name)
    if name == "llamacpp":
        from backend.llm.llamacpp import ChatLlamaCpp
        from backend.llm.model_files import model_path

        return ChatLlamaCpp(
            model_path=str(model_path(settings.embedded_model, models_dir=settings.models_dir)),
            n_ctx=settings.llm_context_tokens,
            n_threads=settings.llm_threads,
            max_tokens=settings.llm_max_tokens,
            temperature=settings.llm_temperature,
        )
    if name == "ollama":
        from langchain_ollama import ChatOllama

        return ChatOllama(
            model=settings.ollama_model,
            base_url=settings.ollama_host,
            temperature=settings.llm_temperature,
            num_predict=settings.llm_max_tokens,
            num_ctx=settings.llm_context_tokens,
            client_kwargs={"timeout": settings.llm_timeout_seconds},
        )
    from langchain_openai import ChatOpenAI

    if not settings.openai_base_url and settings.openai_api_key is None:
        raise ProviderConfigError("provider 'openai' needs APP_OPENAI_BASE_URL (or APP_OPENAI_API_KEY for OpenAI)")
    key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else OPENAI_PLACEHOLDER_KEY
    return ChatOpenAI(
        model=settings.openai_model,
        base_url=settings.openai_base_url or None,
        api_key=key,
        temperature=settings.llm_temperature,
        max_tokens=settings.llm_max_tokens,
        timeout=settings.llm_timeout_seconds,
        max_retries=0,  # the chain retries, with health accounting
    )


def get_chat_model(
    *, settings: Settings, provider: str | None = None, registry: HealthRegistry | None = None
) -> BaseChatModel:
    """The chat model the app uses: the failover chain over `settings.llm_providers` (or just `provider`).

    `provider="fake"` returns a bare `ScriptedChatModel`; any other explicit provider gets a one-link chain
    so retries, breaker and health figures still apply.
    """
    if provider == "fake":
        return fake_model()
    names = resolve_chain([provider] if provider else settings.llm_providers, settings=settings)
    registry = registry or default_registry()
    entries = [ProviderEntry(name, build_provider(name, settings=settings)) for name in names]
    registry.set_chain(names)
    chain = FailoverChatModel(
        entries=entries,
        registry=registry,
        max_retries=settings.llm_max_retries,
        failure_threshold=settings.breaker_failure_threshold,
        cooldown_seconds=settings.breaker_cooldown_seconds,
        rate_per_minute=settings.provider_rate_per_minute,
    )
    for name in names:
        chain._health(name)  # register every link so the health report lists it before its first call
    return chain


def check_chain(*, settings: Settings, provider: str | None = None) -> list[str]:
    """Start-up check: the resolved chain if at least one provider can serve, else one clear error.

    Problems per provider: Ollama not answering at APP_OLLAMA_HOST, embedded model file not assembled,
    OpenAI-compatible provider without APP_OPENAI_BASE_URL.
    """
    from backend.llm.model_files import file_status

    names = resolve_chain([provider] if provider else settings.llm_providers, settings=settings)
    problems: list[str] = []
    for name in names:
        if name == "ollama" and not ollama_reachable(settings.ollama_host):
            problems.append(f"ollama: no server at APP_OLLAMA_HOST={settings.ollama_host}")
        elif name == "llamacpp" and not file_status(settings.embedded_model, models_dir=settings.models_dir)["present"]:
            problems.append(
                f"llamacpp: model {settings.embedded_model} not assembled in {settings.models_dir} "
                f"(run: python -m backend.llm.model_files assemble --model {settings.embedded_model})"
            )
        elif name == "openai" and not settings.openai_base_url and settings.openai_api_key is None:
            problems.append("openai: set APP_OPENAI_BASE_URL (or APP_OPENAI_API_KEY)")
    if len(problems) == len(names):
        raise ProviderUnavailableError("no usable LLM provider: " + "; ".join(problems))
    return names
