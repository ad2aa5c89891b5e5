"""What happens to an upload after it is stored: parse once for metadata, index documents for RAG, forget on delete.

The inspection and RAG rooms are imported lazily so uploads keep working (with less metadata) if either is missing.
All methods block (pandas, pypdf, the embedder): call them from a worker thread.
"""

from __future__ import annotations

import importlib
import logging
from pathlib import Path
from typing import Any

from backend.core.settings import Settings
from backend.storage.uploads import UnsupportedFileTypeError

log = logging.getLogger(__name__)

RAG_MODULES = ("backend.storage.ingest", "backend.storage.vectors")
"""Where `ingest_document` / `delete_document` live (first found wins)."""
INSPECT_MODULE = "backend.storage.inspect"


def _optional(module_name: str) -> Any | None:
    try:
        return importlib.import_module(module_name)
    except ImportError as exc:
        log.warning("%s unavailable: %s", module_name, exc)
        return None


class DocumentIndex:
    def __init__(self, *, settings: Settings) -> None:
        self.settings = settings

    def describe(self, path: Path, *, name: str) -> dict[str, Any]:
        """Rows, columns, dtypes, pages… as JSON; a file that does not parse as its type is refused (415)."""
        inspect = _optional(INSPECT_MODULE)
        if inspect is None:
            return {"described": False}
        try:
            description = inspect.describe_file(path, name=name)
        except Exception as exc:  # the parser saying no means the content is not what the name claims
            raise UnsupportedFileTypeError(f"{name} could not be read: {exc}") from exc
        return {"described": True, **description.model_dump(mode="json")}

    def _rag(self, function: str) -> Any | None:
        for module_name in RAG_MODULES:
            module = _optional(module_name)
            if module is not None and hasattr(module, function):
                return getattr(module, function)
        return None

    def index(self, *, user_id: str, file_id: str, path: Path, name: str) -> dict[str, Any]:
        """Index a document for retrieval; failures are reported in the result, the upload itself stands."""
        ingest = self._rag("ingest_document")
        if ingest is None:
            return {"indexed": False, "error": "retrieval (RAG) is unavailable"}
        try:
            report = ingest(settings=self.settings, user_id=user_id, file_id=file_id, path=path, name=name)
        except Exception as exc:
            log.warning("indexing %s failed: %s", name, exc)
            return {"indexed": False, "error": f"{type(exc).__name__}: {exc}"[:500]}
        return {
            "indexed": True,
            "chunks": getattr(report, "chunks", None),
            "pages": getattr(report, "pages_ingested", None),
            "warnings": list(getattr(report, "warnings", []))[:20],
        }

    def forget(self, *, user_id: str, file_id: str) -> None:
        """Remove a document's chunks; logged, not raised, so a delete always completes."""
        delete = self._rag("delete_document")
        if delete is None:
            return
        try:
            delete(settings=self.settings, user_id=user_id, file_id=file_id)
        except Exception as exc:
            log.warning("removing RAG chunks of %s failed: %s", file_id, exc)
