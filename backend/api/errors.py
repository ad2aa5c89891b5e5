"""Error mapping: typed domain errors become 4xx JSON; anything unexpected becomes a JSON 500 with a request id."""

from __future__ import annotations

import logging
import uuid

from fastapi import FastAPI, HTTPException, Request, status
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
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
JSON_CONTENT_TYPE = "application/json"
MAX_REQUEST_ID_CHARS = 64
MAX_ECHOED_INPUT_CHARS = 200
"""A 422 shows at most this much of the offending value: it is a hint, and it is sent before authentication."""
MAX_ECHOED_INT = 10**15
"""Larger integers are echoed as clipped text (a 5 000-digit number is not worth sending back)."""
MAX_REPORTED_ERRORS = 20
"""Validation problems listed per 422 (a list of 10 000 bad items needs no 10 000-entry answer)."""
DEFAULT_BODY_LIMIT_BYTES = 4 * 1024 * 1024
"""Largest request body outside /api/upload: a chat message is at most 20 000 characters, a login a few bytes."""

DOMAIN_ERROR_STATUS: tuple[tuple[type[Exception], int], ...] = (
    (NotFoundError, status.HTTP_404_NOT_FOUND),
    (ConflictError, status.HTTP_409_CONFLICT),
    (UploadTooLargeError, status.HTTP_413_CONTENT_TOO_LARGE),
    (UnsupportedFileTypeError, status.HTTP_415_UNSUPPORTED_MEDIA_TYPE),
    (UploadError, status.HTTP_422_UNPROCESSABLE_CONTENT),
    (TooManyRunsError, status.HTTP_429_TOO_MANY_REQUESTS),
)
"""Typed errors from below the API and the status each one answers with."""


def request_id(request: Request) -> str:
    return str(request.scope.get("state", {}).get("request_id", ""))


async def _domain_error(request: Request, exc: Exception) -> JSONResponse:
    code = next(code for kind, code in DOMAIN_ERROR_STATUS if isinstance(exc, kind))
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
    """Starlette answers an unparsable form or JSON body with 400; the API promises 422 for malformed bodies."""
    assert isinstance(exc, StarletteHTTPException)
    content_type = request.headers.get("content-type", "")
    if exc.status_code == status.HTTP_400_BAD_REQUEST and content_type.startswith(FORM_CONTENT_TYPES):
        detail = f"malformed form: {exc.detail}"
        return JSONResponse({"detail": detail}, status_code=status.HTTP_422_UNPROCESSABLE_CONTENT)
    if exc.status_code == status.HTTP_400_BAD_REQUEST and content_type.startswith(JSON_CONTENT_TYPE):
        issue = {"type": "json_invalid", "loc": ["body"], "msg": f"malformed JSON body (is it UTF-8?): {exc.detail}"}
        return JSONResponse({"detail": [issue]}, status_code=status.HTTP_422_UNPROCESSABLE_CONTENT)
    return await http_exception_handler(request, exc)


def safe_echo(value: object) -> str | int | bool | None:
    """The offending value as something JSON can always carry, clipped: lone surrogates, NaN or a megabyte
    string would otherwise break (or bloat) the error response itself."""
    if value is None or (isinstance(value, bool | int) and abs(int(value)) < MAX_ECHOED_INT):
        return value
    text = value if isinstance(value, str) else repr(value)
    text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text if len(text) <= MAX_ECHOED_INPUT_CHARS else text[:MAX_ECHOED_INPUT_CHARS] + "…"


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    """FastAPI's 422 shape (`detail`: list of loc/msg/type/input), with every echoed value made safe."""
    assert isinstance(exc, RequestValidationError)
    errors = list(exc.errors())
    detail = [
        {"type": str(e.get("type", "")), "loc": [p if isinstance(p, int) else safe_echo(p) for p in e.get("loc", ())],
         "msg": safe_echo(str(e.get("msg", ""))), "input": safe_echo(e.get("input"))}
        for e in errors[:MAX_REPORTED_ERRORS]
    ]
    if len(errors) > MAX_REPORTED_ERRORS:
        detail.append({"type": "too_many_errors", "loc": [], "input": None,
                       "msg": f"{len(errors) - MAX_REPORTED_ERRORS} more problems not listed"})
    return JSONResponse({"detail": detail}, status_code=status.HTTP_422_UNPROCESSABLE_CONTENT)


def install_error_handlers(app: FastAPI) -> None:
    app.state.unexpected_errors = 0
    """Counted so tests can prove known bad inputs never reach the catch-all."""
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    for kind, _code in DOMAIN_ERROR_STATUS:
        app.add_exception_handler(kind, _domain_error)
    app.add_exception_handler(Exception, _unexpected_error)


SECURITY_HEADERS = {"X-Content-Type-Options": "nosniff"}
"""Set on every response: a browser must never second-guess a declared type (an uploaded file or a run's artifact
served as text/csv must not be sniffed into HTML and run as script)."""


class RequestIdMiddleware:
    """Tags each request with an id (the client's X-Request-ID if sane) and echoes it on the response, together with
    `SECURITY_HEADERS`. Outermost, so CORS preflights and 429s get both."""

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
                headers = MutableHeaders(scope=message)
                headers[REQUEST_ID_HEADER] = rid
                headers.update(SECURITY_HEADERS)
            await send(message)

        await self.app(scope, receive, send_with_id)


class BodyLimitMiddleware:
    """Refuses bodies over a per-path limit (`default` elsewhere): at once from Content-Length, or as soon as the
    stream exceeds it, so an oversized body is never read into memory."""

    def __init__(self, app: ASGIApp, *, limits: dict[str, int], default: int = DEFAULT_BODY_LIMIT_BYTES) -> None:
        self.app = app
        self.limits = limits
        self.default = default

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        limit = self.limits.get(scope.get("path", ""), self.default) if scope["type"] == "http" else None
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
