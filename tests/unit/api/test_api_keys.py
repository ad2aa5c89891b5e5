"""API keys: create (secret shown once, stored hashed), list, revoke; keys authenticate /v1 only."""

from __future__ import annotations

import hashlib
from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select

from backend.storage.models import ApiKey, User


def _create(client: TestClient, headers: dict[str, str], name: str = "open-webui") -> dict[str, Any]:
    response = client.post("/api/auth/api-keys", headers=headers, json={"name": name})
    assert response.status_code == 201, response.text
    return dict(response.json())


def _key_auth(created: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {created['key']}"}


def test_create_returns_the_secret_once_and_list_never_shows_it(client: TestClient, alice: dict[str, str]) -> None:
    created = _create(client, alice)
    assert created["key"].startswith("ask-") and len(created["key"]) > 40
    assert created["key"].startswith(created["prefix"]) and created["prefix"] != created["key"]
    assert created["name"] == "open-webui" and created["revoked"] is False and created["last_used_at"] is None
    listed = client.get("/api/auth/api-keys", headers=alice).json()
    assert [k["id"] for k in listed] == [created["id"]]
    assert set(listed[0]) == {"id", "name", "prefix", "created_at", "last_used_at", "revoked"}
    assert created["key"] not in str(listed)


def test_keys_are_stored_as_sha256_only(app: FastAPI, client: TestClient, alice: dict[str, str]) -> None:
    created = _create(client, alice)
    with app.state.services.sessions() as session:
        row = session.scalars(select(ApiKey)).one()
    assert row.key_hash == hashlib.sha256(created["key"].encode()).hexdigest()
    assert created["key"] not in (row.prefix, row.key_hash, row.name)


def test_a_key_authenticates_v1_and_records_its_use(client: TestClient, alice: dict[str, str]) -> None:
    created = _create(client, alice)
    response = client.get("/v1/models", headers=_key_auth(created))
    assert response.status_code == 200, response.text
    (listed,) = client.get("/api/auth/api-keys", headers=alice).json()
    assert listed["last_used_at"] is not None


def test_a_revoked_key_is_401_in_openai_shape(client: TestClient, alice: dict[str, str]) -> None:
    created = _create(client, alice)
    assert client.delete(f"/api/auth/api-keys/{created['id']}", headers=alice).status_code == 204
    assert client.delete(f"/api/auth/api-keys/{created['id']}", headers=alice).status_code == 204  # idempotent
    (listed,) = client.get("/api/auth/api-keys", headers=alice).json()
    assert listed["revoked"] is True
    response = client.get("/v1/models", headers=_key_auth(created))
    assert response.status_code == 401
    error = response.json()["error"]
    assert error["type"] == "authentication_error" and error["code"] == "invalid_api_key"
    assert "revoked" in error["message"]


def test_missing_or_unknown_keys_are_401_in_openai_shape(client: TestClient) -> None:
    for headers in ({}, {"Authorization": "Bearer ask-not-a-real-key"}, {"Authorization": "Bearer garbage"}):
        response = client.get("/v1/models", headers=headers)
        assert response.status_code == 401
        assert set(response.json()["error"]) == {"message", "type", "param", "code"}


def test_a_key_cannot_manage_keys_or_reach_the_rest_of_the_api(client: TestClient, alice: dict[str, str]) -> None:
    key = _key_auth(_create(client, alice))
    assert client.post("/api/auth/api-keys", headers=key, json={"name": "more"}).status_code == 401
    assert client.get("/api/auth/api-keys", headers=key).status_code == 401
    assert client.get("/api/conversations", headers=key).status_code == 401


def test_keys_are_per_user(client: TestClient, alice: dict[str, str], bob: dict[str, str]) -> None:
    created = _create(client, alice)
    assert client.get("/api/auth/api-keys", headers=bob).json() == []
    assert client.delete(f"/api/auth/api-keys/{created['id']}", headers=bob).status_code == 404
    assert client.get("/v1/models", headers=_key_auth(created)).status_code == 200


def test_a_disabled_users_key_is_refused(app: FastAPI, client: TestClient, alice: dict[str, str]) -> None:
    key = _key_auth(_create(client, alice))
    with app.state.services.sessions() as session:
        session.scalars(select(User)).one().is_active = False
        session.commit()
    response = client.get("/v1/models", headers=key)
    assert response.status_code == 403
    assert response.json()["error"]["type"] == "permission_error"


def test_key_names_are_validated(client: TestClient, alice: dict[str, str]) -> None:
    assert client.post("/api/auth/api-keys", headers=alice, json={"name": ""}).status_code == 422
    assert client.post("/api/auth/api-keys", headers=alice, json={}).status_code == 422


def test_active_keys_per_user_are_capped(client: TestClient, alice: dict[str, str], monkeypatch: Any) -> None:
    monkeypatch.setattr("backend.storage.repositories.MAX_ACTIVE_API_KEYS", 2)
    first = _create(client, alice, "one")
    _create(client, alice, "two")
    assert client.post("/api/auth/api-keys", headers=alice, json={"name": "three"}).status_code == 409
    client.delete(f"/api/auth/api-keys/{first['id']}", headers=alice)
    _create(client, alice, "three")
