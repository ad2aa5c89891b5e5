"""Embedder selection: the packaged local model by default, Ollama when configured, and Chroma's adapter."""

from __future__ import annotations

import httpx
import respx
from chromadb.utils.embedding_functions import known_embedding_functions
from langchain_ollama import OllamaEmbeddings

from backend.core.settings import Settings
from backend.llm.embeddings import (
    ADAPTER_NAME,
    ChromaEmbeddingAdapter,
    embedder_id,
    get_embeddings,
    local_model_dir,
)
from backend.storage.vectors import collection_name


def ollama_settings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={
            "embedding_provider": "ollama",
            "ollama_host": "http://ollama.test:11434",
            "ollama_embedding_model": "nomic-embed-text",
        }
    )


def test_packaged_model_is_found_inside_the_installed_wheel() -> None:
    model_dir = local_model_dir()
    assert "site-packages" in model_dir.parts
    assert (model_dir / "model.safetensors").is_file()
    assert (model_dir / "tokenizer.json").is_file()


def test_ollama_provider_uses_the_configured_host_and_model(settings: Settings) -> None:
    embeddings = get_embeddings(settings=ollama_settings(settings))
    assert isinstance(embeddings, OllamaEmbeddings)
    assert (embeddings.base_url, embeddings.model) == ("http://ollama.test:11434", "nomic-embed-text")


@respx.mock
def test_ollama_embeddings_come_from_the_ollama_server(settings: Settings) -> None:
    route = respx.post("http://ollama.test:11434/api/embed").mock(
        return_value=httpx.Response(200, json={"model": "nomic-embed-text", "embeddings": [[0.6, 0.8]]})
    )
    vector = get_embeddings(settings=ollama_settings(settings)).embed_query("hello")
    assert vector == [0.6, 0.8]
    assert route.called


def test_each_embedder_gets_its_own_collections(settings: Settings) -> None:
    local, ollama = embedder_id(settings=settings), embedder_id(settings=ollama_settings(settings))
    assert (local, ollama) == ("local:all-MiniLM-L6-v2", "ollama:nomic-embed-text")
    assert collection_name(user_id="u", embedder=local) != collection_name(user_id="u", embedder=ollama)


def test_collection_names_fit_chromas_rules_whatever_the_user_id() -> None:
    name = collection_name(user_id="../../weird id/ü", embedder="local:x")
    assert name.startswith("u-") and name.replace("-", "").isalnum() and 3 <= len(name) <= 63


def test_adapter_is_registered_and_rebuilds_from_its_config(settings: Settings) -> None:
    adapter = ChromaEmbeddingAdapter.for_settings(settings=settings)
    assert known_embedding_functions[ADAPTER_NAME] is ChromaEmbeddingAdapter
    assert ChromaEmbeddingAdapter.build_from_config(adapter.get_config()).get_config() == adapter.get_config()
    assert not adapter.is_legacy()
