"""Provider factory: chain resolution (`auto`), the real-model guard, configuration errors, health report."""

from __future__ import annotations

import httpx
import pytest
import respx
from langchain_ollama import ChatOllama

from backend.core.settings import Settings
from backend.llm.errors import ModelRequestsForbiddenError, ProviderConfigError, ProviderUnavailableError
from backend.llm.factory import build_provider, check_chain, get_chat_model, resolve_chain
from backend.llm.failover import FailoverChatModel
from backend.llm.fake import ScriptedChatModel
from backend.llm.health import HealthRegistry, provider_report

OLLAMA = "http://ollama.test:11434"


@pytest.fixture
def chain_settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"ollama_host": OLLAMA})


def test_fake_provider_is_a_bare_scripted_model_that_echoes(settings: Settings) -> None:
    model = get_chat_model(settings=settings, provider="fake")
    assert isinstance(model, ScriptedChatModel)
    assert model.invoke("ping").content == "(scripted fake model) You said: ping"


def test_configured_chain_wraps_its_providers_in_failover(settings: Settings) -> None:
    model = get_chat_model(settings=settings, registry=HealthRegistry())
    assert isinstance(model, FailoverChatModel)
    assert model.provider_names == ["fake"]
    assert model.invoke("hello").content.endswith("You said: hello")


@pytest.mark.parametrize("name", ["llamacpp", "ollama", "openai"])
def test_real_providers_are_refused_while_model_requests_are_forbidden(settings: Settings, name: str) -> None:
    with pytest.raises(ModelRequestsForbiddenError, match="ALLOW_MODEL_REQUESTS"):
        build_provider(name, settings=settings)


def test_unknown_provider_names_the_setting(settings: Settings) -> None:
    with pytest.raises(ProviderConfigError, match="unknown LLM provider 'gpt' in APP_LLM_PROVIDERS"):
        resolve_chain(["fake", "gpt"], settings=settings)


@respx.mock
def test_auto_prefers_ollama_when_it_answers_and_keeps_embedded_as_backup(chain_settings: Settings) -> None:
    respx.get(f"{OLLAMA}/api/tags").mock(return_value=httpx.Response(200, json={"models": []}))
    assert resolve_chain(["auto"], settings=chain_settings) == ["ollama", "llamacpp"]


@respx.mock
def test_auto_is_the_embedded_model_when_ollama_is_unreachable(chain_settings: Settings) -> None:
    respx.get(f"{OLLAMA}/api/tags").mock(side_effect=httpx.ConnectError("refused"))
    assert resolve_chain(["auto"], settings=chain_settings) == ["llamacpp"]


@respx.mock
def test_auto_treats_an_error_status_as_unreachable(chain_settings: Settings) -> None:
    respx.get(f"{OLLAMA}/api/tags").mock(return_value=httpx.Response(502))
    assert resolve_chain(["auto"], settings=chain_settings) == ["llamacpp"]


@respx.mock
def test_chain_drops_duplicate_providers_keeping_first_position(chain_settings: Settings) -> None:
    respx.get(f"{OLLAMA}/api/tags").mock(return_value=httpx.Response(200, json={"models": []}))
    assert resolve_chain(["llamacpp", "auto", "fake"], settings=chain_settings) == ["llamacpp", "ollama", "fake"]


def test_openai_without_url_or_key_is_a_config_error(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("backend.llm.guard.ALLOW_MODEL_REQUESTS", True)
    with pytest.raises(ProviderConfigError, match="APP_OPENAI_BASE_URL"):
        build_provider("openai", settings=settings)


def test_ollama_provider_points_at_the_configured_host(
    chain_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("backend.llm.guard.ALLOW_MODEL_REQUESTS", True)
    model = build_provider("ollama", settings=chain_settings)
    assert isinstance(model, ChatOllama)
    assert (model.base_url, model.model, model.num_ctx) == (OLLAMA, chain_settings.ollama_model, 8192)


def test_built_chain_is_listed_in_the_health_report(settings: Settings) -> None:
    registry = HealthRegistry()
    get_chat_model(settings=settings.model_copy(update={"llm_providers": ["fake"]}), registry=registry)
    assert [(row["name"], row["position"], row["calls"]) for row in registry.report()] == [("fake", 0, 0)]


def test_default_chain_feeds_the_process_health_report(settings: Settings) -> None:
    get_chat_model(settings=settings).invoke("x")
    row = next(r for r in provider_report() if r["name"] == "fake")
    assert row["calls"] >= 1 and row["position"] == 0


@respx.mock
def test_check_chain_fails_with_every_reason_when_nothing_can_serve(chain_settings: Settings) -> None:
    respx.get(f"{OLLAMA}/api/tags").mock(side_effect=httpx.ConnectError("refused"))
    with pytest.raises(ProviderUnavailableError) as info:
        check_chain(settings=chain_settings.model_copy(update={"llm_providers": ["ollama", "llamacpp"]}))
    message = str(info.value)
    assert f"APP_OLLAMA_HOST={OLLAMA}" in message
    assert "python -m backend.llm.model_files assemble --model qwen2.5-coder-1.5b" in message


@respx.mock
def test_check_chain_passes_when_one_provider_can_serve(chain_settings: Settings) -> None:
    respx.get(f"{OLLAMA}/api/tags").mock(side_effect=httpx.ConnectError("refused"))
    names = check_chain(settings=chain_settings.model_copy(update={"llm_providers": ["ollama", "fake"]}))
    assert names == ["ollama", "fake"]
