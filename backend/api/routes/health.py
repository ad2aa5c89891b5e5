"""GET /api/health: version, provider chain health, model file and sandbox layers; cheap enough to poll under load."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from anyio import to_thread
from fastapi import APIRouter

from backend import __version__
from backend.api.deps import ServicesDep
from backend.api.schemas import HealthOut
from backend.api.services import AppServices

UNAVAILABLE = "unavailable"
CACHE_SECONDS = 2.0
"""Health figures are recomputed at most this often; polls in between are served from memory."""

router = APIRouter(prefix="/api", tags=["health"])


@router.get("/health", response_model=HealthOut)
async def health(services: ServicesDep) -> HealthOut:
    """No token needed. Served from memory; a stale report is returned at once while a fresh one is computed
    in a worker thread, so polling never waits on the probes. Parts not shipped yet read 'unavailable'."""
    cache = services.health
    if cache.report is None:
        cache.report, cache.at = await to_thread.run_sync(_collect, services), time.monotonic()
    elif time.monotonic() - cache.at > CACHE_SECONDS and (cache.refresh is None or cache.refresh.done()):
        cache.refresh = asyncio.create_task(_refresh(services))
    return cache.report


async def _refresh(services: AppServices) -> None:
    report = await to_thread.run_sync(_collect, services)
    services.health.report, services.health.at = report, time.monotonic()


def _collect(services: AppServices) -> HealthOut:
    providers = _try(lambda: _import("backend.llm.health").provider_report())
    model = _try(lambda: _import("backend.llm.model_files").model_status(settings=services.settings))
    sandbox = _try(lambda: services.sandbox.layers()) if services.sandbox is not None else UNAVAILABLE
    ok = services.agent is not None and not isinstance(providers, str)
    return HealthOut(
        status="ok" if ok else "degraded",
        version=__version__,
        providers=providers,
        model=model,
        sandbox=sandbox,
        agent="ready" if services.agent is not None else services.agent_error,
    )


def _import(name: str) -> Any:
    import importlib

    return importlib.import_module(name)


def _try(probe: Any) -> Any:
    try:
        return probe()
    except Exception as exc:  # a missing or broken room must not break the health check
        return f"{UNAVAILABLE}: {type(exc).__name__}: {exc}"[:300]
