"""The FastAPI application factory (also the uvicorn factory used by run_backend.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from backend import __version__
from backend.api.errors import BodyLimitMiddleware, RequestIdMiddleware, install_error_handlers
from backend.api.middleware import OperationsMiddleware
from backend.api.openai_errors import install_openai_error_handlers
from backend.api.routes import api_keys, auth, chat, conversations, files, health, metrics, openai_compat, runs
from backend.api.services import start_services, stop_services
from backend.core.logging import configure_logging
from backend.core.settings import Settings, get_settings
from backend.ops.heap import freeze_startup_heap, thaw_heap
from backend.ops.loop_watch import LoopWatch
from backend.ops.scheduler import start_housekeeping

API_TITLE = "Analysis server"
UPLOAD_PATH = "/api/upload"
UPLOAD_REQUEST_FACTOR = 4
"""One upload request may carry this many times the per-file limit in total (many files at once)."""
MULTIPART_OVERHEAD_BYTES = 1024 * 1024
BODY_LIMIT_RESPONSE: dict[int | str, dict[str, Any]] = {
    413: {"description": "Request body larger than the limit (4 MB; uploads: APP_MAX_UPLOAD_MB per file)."}
}
"""Documented on every operation: `BodyLimitMiddleware` guards every path."""


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app; database, sandbox and agent are created in the lifespan, once per app."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        configure_logging(settings)
        app.state.services = await start_services(settings)
        start_housekeeping(app.state.services)
        if settings.gc_freeze_startup:
            freeze_startup_heap()
        # Watched from here on: start-up imports hold the loop for a while (no request is served before they end).
        app.state.loop_watch = LoopWatch(block_warn_seconds=settings.loop_block_warn_ms / 1000)
        app.state.loop_watch.start()
        try:
            yield
        finally:
            await app.state.loop_watch.stop()
            await stop_services(app.state.services)
            thaw_heap()

    app = FastAPI(title=API_TITLE, version=__version__, lifespan=lifespan, responses=BODY_LIMIT_RESPONSE)
    app.state.settings = settings
    install_error_handlers(app)
    install_openai_error_handlers(app)  # wraps the handlers above: OpenAI's error shape under /v1 only
    upload_limit = settings.max_upload_mb * 1024 * 1024 * UPLOAD_REQUEST_FACTOR + MULTIPART_OVERHEAD_BYTES
    app.add_middleware(BodyLimitMiddleware, limits={UPLOAD_PATH: upload_limit})
    app.add_middleware(OperationsMiddleware, settings=settings)  # inside CORS, so a 429 is readable by browsers
    app.add_middleware(
        CORSMiddleware,
        allow_origins=settings.cors_origins,
        allow_methods=["*"],
        allow_headers=["*"],
        expose_headers=["X-Request-ID", "Retry-After"],
    )
    app.add_middleware(RequestIdMiddleware)  # outermost: CORS preflights and 429s get its headers too
    for module in (health, auth, api_keys, chat, files, conversations, runs, metrics, openai_compat):
        app.include_router(module.router)
    return app
