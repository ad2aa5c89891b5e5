"""FastAPI dependencies as `Annotated` aliases; routes declare what they need and tests override these functions."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import OAuth2PasswordBearer
from langchain_core.language_models import BaseChatModel
from sqlalchemy.orm import Session

from backend.api.run_manager import Agent, RunManager
from backend.api.services import AppServices
from backend.core.security import InvalidTokenError, decode_token, hash_api_key, is_api_key
from backend.core.settings import Settings
from backend.storage.file_index import DocumentIndex
from backend.storage.models import User
from backend.storage.repositories import OwnedRepository, UserRepository, use_api_key

LOGIN_URL = "/api/auth/login"
_BEARER = {"WWW-Authenticate": "Bearer"}

oauth2_scheme = OAuth2PasswordBearer(tokenUrl=LOGIN_URL, auto_error=False)


def get_services(request: Request) -> AppServices:
    services: AppServices = request.app.state.services
    return services


ServicesDep = Annotated[AppServices, Depends(get_services)]


def get_app_settings(services: ServicesDep) -> Settings:
    return services.settings


SettingsDep = Annotated[Settings, Depends(get_app_settings)]


def get_session(services: ServicesDep) -> Iterator[Session]:
    with services.sessions() as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]
TokenDep = Annotated[str | None, Depends(oauth2_scheme)]


def get_current_user(session: SessionDep, settings: SettingsDep, token: TokenDep) -> User:
    """The user named by a valid access token: 401 for a missing/bad/expired token, 403 for a disabled account."""
    if not token:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "not authenticated", headers=_BEARER)
    try:
        claims = decode_token(token, kind="access", settings=settings)
    except InvalidTokenError as exc:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, f"invalid token: {exc}", headers=_BEARER) from exc
    user = UserRepository(session).get(claims.subject)
    if user is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "invalid token: unknown user", headers=_BEARER)
    if not user.is_active:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "account disabled")
    return user


CurrentUser = Annotated[User, Depends(get_current_user)]


def get_key_or_token_user(session: SessionDep, settings: SettingsDep, token: TokenDep) -> User:
    """For OpenAI-compatible clients: a per-user API key (`ask-…`) or an access token; 401 for a missing, unknown
    or revoked key. Keys are accepted only where this dependency is used, so a key cannot mint more keys."""
    if token and is_api_key(token):
        key = use_api_key(session, hash_api_key(token))
        user = UserRepository(session).get(key.user_id) if key is not None else None
        if user is None:
            raise HTTPException(status.HTTP_401_UNAUTHORIZED, "invalid API key (unknown or revoked)", headers=_BEARER)
        if not user.is_active:
            raise HTTPException(status.HTTP_403_FORBIDDEN, "account disabled")
        return user
    return get_current_user(session, settings, token)


KeyOrTokenUser = Annotated[User, Depends(get_key_or_token_user)]


def get_key_or_token_repo(session: SessionDep, user: KeyOrTokenUser) -> OwnedRepository:
    return OwnedRepository(session, user_id=user.id)


KeyOrTokenRepoDep = Annotated[OwnedRepository, Depends(get_key_or_token_repo)]


def get_repo(session: SessionDep, user: CurrentUser) -> OwnedRepository:
    """The only way routes reach user data: every query in it is scoped to the signed-in user."""
    return OwnedRepository(session, user_id=user.id)


RepoDep = Annotated[OwnedRepository, Depends(get_repo)]


def get_agent(services: ServicesDep) -> Agent:
    if services.agent is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, services.agent_error or "agent unavailable")
    return services.agent


AgentDep = Annotated[Agent, Depends(get_agent)]


def get_runs(services: ServicesDep) -> RunManager:
    return services.runs


RunsDep = Annotated[RunManager, Depends(get_runs)]


def get_documents(services: ServicesDep) -> DocumentIndex:
    return services.documents


DocumentsDep = Annotated[DocumentIndex, Depends(get_documents)]


def get_optional_agent(services: ServicesDep) -> Agent | None:
    """The agent when it started; for routes that also serve without it (the model pass-through)."""
    return services.agent


OptionalAgentDep = Annotated[Agent | None, Depends(get_optional_agent)]


def get_chat_llm(agent: OptionalAgentDep) -> BaseChatModel | None:
    """The provider chain the agent already holds (the one `llm/` built); never a second set of model clients."""
    llm = getattr(agent, "llm", None)
    return llm if isinstance(llm, BaseChatModel) else None


ChatLLMDep = Annotated[BaseChatModel | None, Depends(get_chat_llm)]
