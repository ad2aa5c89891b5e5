"""`python -m backend doctor`: check model file, providers, sandbox layers, disk, database schema and Chroma.

Prints one table row per check (ok / warn / FAIL) and exits 1 when anything failed. Checks only read; the
one exception is a probe file written and removed to prove the data and log directories are writable.
"""

from __future__ import annotations

import argparse
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from backend.core.settings import Settings

Status = Literal["ok", "warn", "FAIL"]
MB = 1024 * 1024
DISK_WARN_FACTOR = 2
"""Below this many times `min_free_disk_mb` free, the disk check warns."""


@dataclass(frozen=True)
class Check:
    name: str
    status: Status
    detail: str


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--skip", action="append", default=[], metavar="CHECK",
                        help="skip a check by name (repeatable), e.g. --skip providers")


def main(args: argparse.Namespace) -> int:
    from backend.ops.cli_support import cli_settings
    from backend.ops.table import format_table

    settings = cli_settings()
    checks = run_checks(settings, skip=set(args.skip))
    print(format_table(("CHECK", "STATUS", "DETAIL"), [(c.name, c.status, c.detail) for c in checks]))
    failed = sum(c.status == "FAIL" for c in checks)
    warned = sum(c.status == "warn" for c in checks)
    print(f"\n{len(checks) - failed - warned} ok, {warned} warning(s), {failed} failure(s)")
    return 1 if failed else 0


def run_checks(settings: Settings, *, skip: set[str] = frozenset()) -> list[Check]:  # type: ignore[assignment]
    """Every check; one that crashes is reported as a failure of that check, never as a traceback."""
    probes: list[tuple[str, Callable[[Settings], tuple[Status, str]]]] = [
        ("disk space", check_disk), ("data dir", check_data_dir), ("log dir", check_log_dir),
        ("database", check_database), ("model file", check_model), ("providers", check_providers),
        ("sandbox", check_sandbox), ("chroma", check_chroma), ("embedder", check_embedder),
        ("checkpoints", check_checkpoints),
    ]
    results = []
    for name, probe in probes:
        if name in skip or name.split()[0] in skip:
            continue
        try:
            status, detail = probe(settings)
        except Exception as exc:
            status, detail = "FAIL", f"{type(exc).__name__}: {exc}"
        results.append(Check(name, status, detail))
    return results


def check_disk(settings: Settings) -> tuple[Status, str]:
    from backend.ops.files import free_bytes

    free = free_bytes(settings.data_dir)
    need = settings.min_free_disk_mb * MB
    detail = f"{free / MB:,.0f} MB free under {settings.data_dir} (minimum {settings.min_free_disk_mb} MB)"
    if free < need:
        return "FAIL", detail + "; run `python -m backend cleanup --dry-run` or free space"
    return ("warn" if free < need * DISK_WARN_FACTOR else "ok"), detail


def _writable(directory: Path) -> str:
    """"" when a file can be created in `directory` (created if missing), else the reason."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
        probe = directory / f".doctor-{secrets.token_hex(4)}"
        probe.write_text("ok")
        probe.unlink()
    except OSError as exc:
        return exc.strerror or str(exc)
    return ""


def check_data_dir(settings: Settings) -> tuple[Status, str]:
    problem = _writable(settings.data_dir)
    return ("FAIL", f"{settings.data_dir} is not writable: {problem}") if problem else ("ok", str(settings.data_dir))


def check_log_dir(settings: Settings) -> tuple[Status, str]:
    problem = _writable(settings.logs_dir)
    if problem:
        return "warn", f"{settings.logs_dir} is not writable ({problem}): the server will log to the console only"
    return "ok", str(settings.logs_dir)


def check_database(settings: Settings) -> tuple[Status, str]:
    from sqlalchemy import create_engine, inspect, select
    from sqlalchemy.orm import Session

    from backend.storage.db import SCHEMA_VERSION
    from backend.storage.models import SchemaVersion

    url = settings.resolved_database_url
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).is_file():
        return "warn", f"no database yet at {url}; the server creates schema v{SCHEMA_VERSION} at start-up"
    engine = create_engine(url)
    try:
        with Session(engine) as session:
            if not inspect(engine).has_table(SchemaVersion.__tablename__):
                return "warn", f"{_safe_url(url)} has no schema yet; the server creates v{SCHEMA_VERSION} at start-up"
            version = session.scalar(select(SchemaVersion.version).order_by(SchemaVersion.version.desc()))
    finally:
        engine.dispose()
    if version is None or version < SCHEMA_VERSION:
        return "warn", f"schema v{version}, this server expects v{SCHEMA_VERSION}: migrated at next start-up"
    if version > SCHEMA_VERSION:
        return "FAIL", f"schema v{version} is newer than this server (v{SCHEMA_VERSION}): upgrade the server"
    return "ok", f"schema v{version} at {_safe_url(url)}"


def _safe_url(url: str) -> str:
    from backend.core.logging import redact

    return redact(url)


def check_model(settings: Settings) -> tuple[Status, str]:
    from backend.llm.model_files import model_status

    status = model_status(settings=settings)
    uses_embedded = any(p in ("auto", "llamacpp") for p in settings.llm_providers)
    if status.get("present") and status.get("verified"):
        return "ok", f"{status['model']} at {status['path']} ({status['size_bytes'] / MB:,.0f} MB, verified)"
    if status.get("present"):
        return "warn", f"{status['path']} present but not verified against its SHA-256"
    detail = (f"{status['model']} not assembled at {status['path']} "
              f"(python -m backend.llm.model_files assemble --model {status['model']})")
    return ("FAIL" if uses_embedded else "warn"), detail


def check_providers(settings: Settings) -> tuple[Status, str]:
    from backend.llm.errors import ProviderConfigError, ProviderUnavailableError
    from backend.llm.factory import check_chain

    try:
        names = check_chain(settings=settings)
    except (ProviderUnavailableError, ProviderConfigError) as exc:
        return "FAIL", str(exc)
    return "ok", "chain: " + " → ".join(names)


def check_sandbox(settings: Settings) -> tuple[Status, str]:
    from backend.sandbox.isolation import probe

    caps = probe()
    active = ", ".join(name for name, on in caps.layers.items() if on)
    if caps.mode == "bwrap":
        return "ok", f"bubblewrap; layers: {active}"
    return "warn", f"mode {caps.mode} (install bubblewrap for a read-only filesystem view); layers: {active}"


def check_chroma(settings: Settings) -> tuple[Status, str]:
    from backend.storage.vectors import VectorIndexError, build_rag_store

    try:
        store = build_rag_store(settings=settings)
    except VectorIndexError as exc:
        if "in use by another process" in str(exc):
            return "ok", f"{settings.chroma_dir} is open in the running server"
        return "FAIL", str(exc)
    try:
        collections = len(store.index.client.list_collections())
    finally:
        store.close()
    where = settings.chroma_url or str(settings.chroma_dir)
    return "ok", f"{where}: {collections} collection(s)"


def check_embedder(settings: Settings) -> tuple[Status, str]:
    if settings.embedding_provider == "ollama":
        return "ok", f"Ollama embeddings ({settings.ollama_embedding_model}) at {settings.ollama_host}"
    from backend.llm.embeddings import local_model_dir

    path = local_model_dir()
    if not path.is_dir():
        return "warn", f"packaged embedder missing at {path}: RAG falls back to keyword search"
    return "ok", f"all-MiniLM-L6-v2 at {path}"


def check_checkpoints(settings: Settings) -> tuple[Status, str]:
    from backend.ops.checkpoints import sqlite_path

    path = sqlite_path(settings)
    if path is None:
        try:
            import langgraph.checkpoint.postgres  # noqa: F401
        except ImportError:
            return "FAIL", "checkpoint_url is Postgres but langgraph-checkpoint-postgres is not installed"
        return "ok", "Postgres checkpoint store configured"
    if not path.is_file():
        return "ok", f"{path} (created at first run)"
    return "ok", f"{path} ({path.stat().st_size / MB:,.1f} MB)"
