"""Error mapping: typed domain errors become 4xx JSON; anything unexpected becomes a JSON 500 with a request id."""

from __future__ import annotations

import logging
import uuid

from fastapi import FastAPI, HTTPException, Request, status
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import JSONResponse, Response
from starlette.datastructures import Headers, MutableHeaders
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from backend.api.run_manager import TooManyRunsError
from backend.storage.repositories import ConflictError, NotFoundError
from backend.storage.uploads import UnsupportedFileTypeError, UploadError, UploadTooLargeError

log = logging.getLogger(__name__)

REQUEST_ID_HEADER = "X-Request-ID"
FORM_CONTENT_TYPES = ("multipart/form-data", "application/x-www-form-urlencoded")
MAX_REQUEST_ID_CHARS = 64

_STATUS: tuple[tuple[type[Exception], int], ...] = (
    (NotFoundError, status.HTTP_404_NOT_FOUND),
    (ConflictError, status.HTTP_409_CONFLICT),
    (UploadTooLargeError, status.HTTP_413_CONTENT_TOO_LARGE),
    (UnsupportedFileTypeError, status.HTTP_415_UNSUPPORTED_MEDIA_TYPE),
    (UploadError, status.HTTP_422_UNPROCESSABLE_CONTENT),
    (TooManyRunsError, status.HTTP_429_TOO_MANY_REQUESTS),
)


def request_id(request: Request) -> str:
    return str(request.scope.get("state", {}).get("request_id", ""))


async def _domain_error(request: Request, exc: Exception) -> JSONResponse:
    code = next(code for kind, code in _STATUS if isinstance(exc, kind))
    return JSONResponse({"detail": str(exc)}, status_code=code)


async def _unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    rid = request_id(request)
    request.app.state.unexpected_errors += 1
    log.error("unexpected error in %s %s (request %s)", request.method, request.url.path, rid, exc_info=exc)
    return JSONResponse(
        {"detail": "internal server error", "request_id": rid},
        status_code=status.HTTP_500_INTERNAL_SERVER_ERROR,
        headers={REQUEST_ID_HEADER: rid},
    )


async def _http_error(request: Request, exc: Exception) -> Response:
    """Starlette answers an unparsable form with 400; the API promises 422 for malformed bodies."""
    assert isinstance(exc, StarletteHTTPException)
    content_type = request.headers.get("content-type", "")
    if exc.status_code == status.HTTP_400_BAD_REQUEST and content_type.startswith(FORM_CONTENT_TYPES):
        detail = f"malformed form: {exc.detail}"
        return JSONResponse({"detail": detail}, status_code=status.HTTP_422_UNPROCESSABLE_CONTENT)
    return await http_exception_handler(request, exc)


def install_error_handlers(app: FastAPI) -> None:
    app.state.unexpected_errors = 0
    """Counted so tests can prove known bad inputs never reach the catch-all."""
    app.add_exception_handler(StarletteHTTPException, _http_error)
    for kind, _code in _STATUS:
        app.add_exception_handler(kind, _domain_error)
    app.add_exception_handler(Exception, _unexpected_error)


class RequestIdMiddleware:
    """Tags each request with an id (the client's X-Request-ID if sane) and echoes it on the response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = Headers(scope=scope).get(REQUEST_ID_HEADER, "")
        rid = given if given.isascii() and given.isprintable() and 0 < len(given) <= MAX_REQUEST_ID_CHARS else ""
        rid = rid or uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = rid

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message)[REQUEST_ID_HEADER] = rid
            await send(message)

        await self.app(scope, receive, send_with_id)


class BodyLimitMiddleware:
    """Refuses bodies over a per-path limit: at once from Content-Length, or as soon as the stream exceeds it."""

    def __init__(self, app: ASGIApp, *, limits: dict[str, int]) -> None:
        self.app = app
        self.limits = limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        limit = self.limits.get(scope.get("path", "")) if scope["type"] == "http" else None
        if limit is None:
            await self.app(scope, receive, send)
            return
        detail = f"request body is larger than {limit // (1024 * 1024)} MB"
        declared = Headers(scope=scope).get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            await JSONResponse({"detail": detail}, status_code=status.HTTP_413_CONTENT_TOO_LARGE)(scope, receive, send)
            return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > limit:
                raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, detail)
            return message

        await self.app(scope, limited_receive, send)
