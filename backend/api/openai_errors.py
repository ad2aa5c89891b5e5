"""Errors on `/v1` in OpenAI's shape, `{"error": {"message", "type", "param", "code"}}`.

OpenAI SDKs pick their exception class from the status and read the message from this body. The handlers wrap
the app's existing ones and answer differently only under `/v1`: the rest of the API keeps `{"detail": …}`
(and 422 for malformed bodies), and the catch-all still logs and counts unexpected errors.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from fastapi import FastAPI, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from backend.api.errors import DOMAIN_ERROR_STATUS, REQUEST_ID_HEADER, request_id

V1_PREFIX = "/v1"
NO_RETRY = {"x-should-retry": "false"}
"""OpenAI SDKs retry 5xx answers; a failed agent turn must not be re-run (and re-recorded) behind the user's back."""

Handler = Callable[[Request, Any], Awaitable[Response] | Response]

_TYPES = {
    status.HTTP_401_UNAUTHORIZED: ("authentication_error", "invalid_api_key"),
    status.HTTP_403_FORBIDDEN: ("permission_error", "permission_denied"),
    status.HTTP_404_NOT_FOUND: ("invalid_request_error", "not_found"),
    status.HTTP_405_METHOD_NOT_ALLOWED: ("invalid_request_error", "method_not_allowed"),
    status.HTTP_409_CONFLICT: ("invalid_request_error", "conflict"),
    status.HTTP_429_TOO_MANY_REQUESTS: ("rate_limit_error", "rate_limit_exceeded"),
}


class OpenAIError(Exception):
    """A refusal on `/v1` with OpenAI's error fields; raised by the compatibility layer only."""

    def __init__(self, status_code: int, message: str, *, code: str | None = None, param: str | None = None,
                 error_type: str | None = None, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        default_type, default_code = error_kind(status_code)
        self.status_code, self.message, self.param = status_code, message, param
        self.code = code or default_code
        self.error_type = error_type or default_type
        self.headers = dict(headers or {})


def error_kind(status_code: int) -> tuple[str, str | None]:
    if status_code in _TYPES:
        return _TYPES[status_code]
    if status_code >= status.HTTP_500_INTERNAL_SERVER_ERROR:
        return "server_error", None
    return "invalid_request_error", None


def error_body(message: str, *, status_code: int, code: str | None = None, param: str | None = None,
               error_type: str | None = None) -> dict[str, Any]:
    default_type, default_code = error_kind(status_code)
    return {"error": {"message": message, "type": error_type or default_type, "param": param,
                      "code": code or default_code}}


def error_response(error: OpenAIError) -> JSONResponse:
    body = error_body(error.message, status_code=error.status_code, code=error.code, param=error.param,
                      error_type=error.error_type)
    return JSONResponse(body, status_code=error.status_code, headers=error.headers)


def is_v1(path: str) -> bool:
    return path == V1_PREFIX or path.startswith(V1_PREFIX + "/")


def _validation_error(exc: RequestValidationError) -> OpenAIError:
    """FastAPI's 422 becomes OpenAI's 400, naming the first offending field."""
    errors = list(exc.errors())
    if not errors:
        return OpenAIError(status.HTTP_400_BAD_REQUEST, "invalid request", code="invalid_value")
    first = errors[0]
    loc = [str(part) for part in first.get("loc", ()) if part != "body"]
    param = ".".join(loc) or None
    more = f" (and {len(errors) - 1} more problems)" if len(errors) > 1 else ""
    message = f"{param}: {first.get('msg', 'invalid')}{more}" if param else f"{first.get('msg', 'invalid')}{more}"
    return OpenAIError(status.HTTP_400_BAD_REQUEST, message, code=str(first.get("type", "invalid_value")),
                       param=param)


def _as_openai(exc: Exception) -> OpenAIError:
    if isinstance(exc, OpenAIError):
        return exc
    if isinstance(exc, RequestValidationError):
        return _validation_error(exc)
    if isinstance(exc, StarletteHTTPException):
        return OpenAIError(exc.status_code, str(exc.detail), headers=exc.headers)
    return OpenAIError(status.HTTP_400_BAD_REQUEST, str(exc))


def _scoped(previous: Handler | None, *, status_code: int | None = None) -> Handler:
    """`previous` outside /v1; OpenAI's shape inside (`status_code` for typed domain errors)."""

    async def handle(request: Request, exc: Exception) -> Response:
        if not is_v1(request.url.path):
            if previous is None:
                raise exc
            outcome = previous(request, exc)
            return await outcome if isinstance(outcome, Awaitable) else outcome
        return error_response(OpenAIError(status_code, str(exc)) if status_code is not None else _as_openai(exc))

    return handle


def _scoped_unexpected(previous: Handler | None) -> Handler:
    """The catch-all still logs and counts; under /v1 its answer is reshaped."""

    async def handle(request: Request, exc: Exception) -> Response:
        if previous is None:
            raise exc
        outcome = previous(request, exc)
        response = await outcome if isinstance(outcome, Awaitable) else outcome
        if not is_v1(request.url.path):
            return response
        rid = request_id(request)
        body = error_body(f"internal server error (request {rid})", status_code=response.status_code)
        return JSONResponse(body, status_code=response.status_code, headers={REQUEST_ID_HEADER: rid, **NO_RETRY})

    return handle


def install_openai_error_handlers(app: FastAPI) -> None:
    """Wrap the handlers `install_error_handlers` set up (call it after that)."""

    async def openai_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, OpenAIError)
        return error_response(exc)

    app.add_exception_handler(OpenAIError, openai_error)
    handlers = app.exception_handlers
    wrapped: list[tuple[type[Exception], int | None]] = [(RequestValidationError, None),
                                                          (StarletteHTTPException, None), *DOMAIN_ERROR_STATUS]
    for kind, code in wrapped:
        app.add_exception_handler(kind, _scoped(handlers.get(kind), status_code=code))
    app.add_exception_handler(Exception, _scoped_unexpected(handlers.get(Exception)))
