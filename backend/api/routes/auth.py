"""Accounts and tokens: register, login (OAuth2 password form or JSON), refresh, me."""

from __future__ import annotations

from typing import Annotated, Any

from anyio import to_thread
from fastapi import APIRouter, Depends, HTTPException, Request, status
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from backend.api.deps import CurrentUser, ServicesDep, SessionDep, SettingsDep
from backend.api.schemas import Credentials, LoginRequest, RefreshRequest, TokenResponse, UserOut
from backend.core.security import InvalidTokenError, create_token_pair, decode_token, hash_password, verify_password
from backend.storage.models import User
from backend.storage.repositories import UserRepository

FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
MAX_LOGIN_FORM_FIELDS = 8
MAX_ERROR_CHARS = 200

router = APIRouter(prefix="/api/auth", tags=["auth"])
_BAD_LOGIN = HTTPException(status.HTTP_401_UNAUTHORIZED, "wrong username or password",
                           headers={"WWW-Authenticate": "Bearer"})


def _invalid(message: str, value: Any = None) -> RequestValidationError:
    return RequestValidationError([{"type": "value_error", "loc": ("body",), "msg": message, "input": value}])


async def read_login(request: Request) -> LoginRequest:
    """Credentials from an OAuth2 password form (Swagger's Authorize button) or a JSON body; 422 otherwise."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    try:
        if content_type == "application/json":
            data: Any = await request.json()
        elif content_type in FORM_TYPES:
            form = await request.form(max_files=0, max_fields=MAX_LOGIN_FORM_FIELDS)
            data = {key: value for key, value in form.items() if isinstance(value, str)}
        else:
            raise _invalid("send credentials as JSON or as an OAuth2 password form", content_type)
        return LoginRequest.model_validate(data)
    except ValidationError as exc:  # (a ValueError too: handled first)
        raise RequestValidationError(exc.errors(include_url=False, include_context=False)) from exc
    except (ValueError, RecursionError) as exc:  # not JSON, not UTF-8, nested too deep, an over-long number
        raise _invalid(f"malformed JSON: {type(exc).__name__}: {exc}"[:MAX_ERROR_CHARS]) from exc
    except HTTPException as exc:  # starlette's own 400 for a malformed multipart body
        raise _invalid(f"malformed form: {exc.detail}") from exc


LOGIN_BODY = {
    "required": True,
    "content": {
        "application/json": {"schema": LoginRequest.model_json_schema()},
        "application/x-www-form-urlencoded": {"schema": {**LoginRequest.model_json_schema(), "properties": {
            **LoginRequest.model_json_schema()["properties"],
            "grant_type": {"type": "string", "pattern": "^password$"},
            "scope": {"type": "string", "maxLength": 200},
        }}},
    },
}


@router.post("/register", response_model=UserOut, status_code=status.HTTP_201_CREATED,
             responses={403: {"description": "registration closed"}, 409: {"description": "username taken"}})
async def register(body: Credentials, services: ServicesDep) -> UserOut:
    if not services.settings.allow_registration:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "registration is closed")
    hashed = await to_thread.run_sync(hash_password, body.password, limiter=services.hashing)

    def add() -> UserOut:
        with services.sessions() as session:
            return UserOut.model_validate(UserRepository(session).add(username=body.username, password_hash=hashed))

    return await to_thread.run_sync(add)


@router.post("/login", response_model=TokenResponse, openapi_extra={"requestBody": LOGIN_BODY},
             responses={401: {"description": "wrong username or password"},
                        422: {"description": "malformed body, or neither JSON nor an OAuth2 password form"}})
async def login(credentials: Annotated[LoginRequest, Depends(read_login)], services: ServicesDep) -> TokenResponse:
    """Unknown users cost the same argon2 work as known ones, so response time does not reveal who exists.

    Hashing runs on a small dedicated pool (`services.hashing`): a login burst queues there instead of
    taking every core from the event loop.
    """

    def find() -> User | None:
        with services.sessions() as session:
            return UserRepository(session).by_username(credentials.username)

    user = await to_thread.run_sync(find)
    stored = user.password_hash if user else None
    if not await to_thread.run_sync(verify_password, credentials.password, stored, limiter=services.hashing):
        raise _BAD_LOGIN
    assert user is not None  # verify_password is False without a stored hash
    if not user.is_active:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "account disabled")
    pair = create_token_pair(subject=user.id, settings=services.settings)
    return TokenResponse(access_token=pair.access_token, refresh_token=pair.refresh_token, expires_in=pair.expires_in)


@router.post("/refresh", response_model=TokenResponse, responses={401: {"description": "invalid refresh token"}})
def refresh(body: RefreshRequest, session: SessionDep, settings: SettingsDep) -> TokenResponse:
    try:
        claims = decode_token(body.refresh_token, kind="refresh", settings=settings)
    except InvalidTokenError as exc:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, f"invalid refresh token: {exc}") from exc
    user = UserRepository(session).get(claims.subject)
    if user is None or not user.is_active:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "invalid refresh token: unknown or disabled user")
    pair = create_token_pair(subject=user.id, settings=settings)
    return TokenResponse(access_token=pair.access_token, refresh_token=pair.refresh_token, expires_in=pair.expires_in)


@router.get("/me", response_model=UserOut, responses={401: {"description": "not authenticated"}})
def me(user: CurrentUser) -> UserOut:
    return UserOut.model_validate(user)
