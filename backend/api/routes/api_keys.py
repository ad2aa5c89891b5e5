"""Per-user API keys for OpenAI-compatible clients: create (the secret is shown once), list, revoke.

Managing keys needs a signed-in user (an access token): a key itself cannot mint or revoke keys.
"""

from __future__ import annotations

from fastapi import APIRouter, status

from backend.api.deps import RepoDep
from backend.api.schemas import ApiKeyCreate, ApiKeyCreated, ApiKeyOut
from backend.core.security import new_api_key

router = APIRouter(prefix="/api/auth/api-keys", tags=["auth"])


@router.post("", response_model=ApiKeyCreated, status_code=status.HTTP_201_CREATED,
             responses={409: {"description": "too many active keys"}})
def create_api_key(body: ApiKeyCreate, repo: RepoDep) -> ApiKeyCreated:
    """Use the returned `key` as `Authorization: Bearer <key>` (or an OpenAI client's API key) on /v1."""
    made = new_api_key()
    row = repo.add_api_key(name=body.name, prefix=made.prefix, key_hash=made.digest)
    return ApiKeyCreated(**ApiKeyOut.model_validate(row).model_dump(), key=made.secret)


@router.get("", response_model=list[ApiKeyOut])
def list_api_keys(repo: RepoDep) -> list[ApiKeyOut]:
    return [ApiKeyOut.model_validate(key) for key in repo.list_api_keys()]


@router.delete("/{key_id}", status_code=status.HTTP_204_NO_CONTENT,
               responses={404: {"description": "no such key (or not yours)"}})
def revoke_api_key(key_id: str, repo: RepoDep) -> None:
    """Takes effect at once; revoking an already revoked key is a no-op."""
    repo.revoke_api_key(key_id)
