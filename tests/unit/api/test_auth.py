"""Auth routes: register, login (JSON and OAuth2 form), refresh, me, and every kind of bad token."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import jwt
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from backend.api.app import create_app
from backend.core.security import create_token
from backend.core.settings import Settings

PASSWORD = "correct horse battery"
Factory = Callable[[Settings], TestClient]


def _user_id(client: TestClient, headers: dict[str, str]) -> str:
    return str(client.get("/api/auth/me", headers=headers).json()["id"])


def test_register_returns_the_new_user_without_password(client: TestClient) -> None:
    response = client.post("/api/auth/register", json={"username": "carol", "password": PASSWORD})
    assert response.status_code == 201
    body = response.json()
    assert body["username"] == "carol"
    assert "password" not in str(body).lower()


def test_register_twice_with_the_same_name_is_a_conflict(client: TestClient) -> None:
    client.post("/api/auth/register", json={"username": "carol", "password": PASSWORD})
    response = client.post("/api/auth/register", json={"username": "carol", "password": PASSWORD})
    assert response.status_code == 409


@pytest.mark.parametrize("body", [{"username": "x", "password": PASSWORD}, {"username": "carol", "password": "short"},
                                  {"username": "../etc", "password": PASSWORD}, {"username": "carol"}])
def test_register_rejects_invalid_credentials_with_422(client: TestClient, body: dict[str, str]) -> None:
    assert client.post("/api/auth/register", json=body).status_code == 422


def test_register_is_refused_when_registration_is_closed(settings: Settings, app_factory: Factory) -> None:
    client = app_factory(settings.model_copy(update={"allow_registration": False}))
    assert client.post("/api/auth/register", json={"username": "carol", "password": PASSWORD}).status_code == 403


def test_login_with_json_returns_access_and_refresh_tokens(client: TestClient, alice: dict[str, str]) -> None:
    response = client.post("/api/auth/login", json={"username": "alice", "password": PASSWORD})
    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "bearer"
    assert body["access_token"] != body["refresh_token"]
    assert body["expires_in"] == 15 * 60


def test_login_with_oauth2_password_form_works(client: TestClient, alice: dict[str, str]) -> None:
    form = {"username": "alice", "password": PASSWORD, "grant_type": "password"}
    response = client.post("/api/auth/login", data=form)
    assert response.status_code == 200
    token = response.json()["access_token"]
    assert client.get("/api/auth/me", headers={"Authorization": f"Bearer {token}"}).json()["username"] == "alice"


@pytest.mark.parametrize("username", ["alice", "nobody"])
def test_login_with_wrong_password_or_unknown_user_gives_the_same_401(
    client: TestClient, alice: dict[str, str], username: str
) -> None:
    response = client.post("/api/auth/login", json={"username": username, "password": "wrong password"})
    assert response.status_code == 401
    assert response.json()["detail"] == "wrong username or password"


@pytest.mark.parametrize(("content", "content_type"), [
    (b'{"username": "alice", "password":', "application/json"),
    (b"[1, 2]", "application/json"),
    (b"username=alice", "text/plain"),
    (b"\xff\xfe", "application/json"),
])
def test_login_with_malformed_body_is_422(client: TestClient, content: bytes, content_type: str) -> None:
    response = client.post("/api/auth/login", content=content, headers={"Content-Type": content_type})
    assert response.status_code == 422


def test_me_requires_a_token(client: TestClient) -> None:
    response = client.get("/api/auth/me")
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"


def _token_with(settings: Settings, subject: str, **changes: object) -> str:
    now = datetime.now(UTC)
    claims: dict[str, object] = {"sub": subject, "aud": settings.jwt_audience, "typ": "access", "iat": now,
                                 "exp": now + timedelta(minutes=5), "jti": "j"}
    key = str(changes.pop("key", settings.jwt_key()))
    algorithm = str(changes.pop("algorithm", "HS256"))
    claims.update(changes)
    return jwt.encode({k: v for k, v in claims.items() if v is not None}, key, algorithm=algorithm)


def _alg_none_token(settings: Settings, subject: str) -> str:
    import base64
    import json

    def part(data: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    exp = int((datetime.now(UTC) + timedelta(minutes=5)).timestamp())
    payload = {"sub": subject, "aud": settings.jwt_audience, "typ": "access", "iat": exp - 60, "exp": exp, "jti": "j"}
    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(payload)}."


@pytest.mark.parametrize("kind", ["expired", "forged", "alg_none", "wrong_audience", "no_exp", "no_sub", "refresh",
                                  "garbage", "other_algorithm"])
def test_bad_access_tokens_are_rejected_with_401(
    client: TestClient, settings: Settings, alice: dict[str, str], kind: str
) -> None:
    subject = _user_id(client, alice)
    past = datetime.now(UTC) - timedelta(hours=1)
    token = {
        "expired": lambda: create_token(subject=subject, kind="access", settings=settings, now=past),
        "forged": lambda: _token_with(settings, subject, key="k" * 48),
        "alg_none": lambda: _alg_none_token(settings, subject),
        "wrong_audience": lambda: _token_with(settings, subject, aud="someone-else"),
        "no_exp": lambda: _token_with(settings, subject, exp=None),
        "no_sub": lambda: _token_with(settings, subject, sub=None),
        "refresh": lambda: create_token(subject=subject, kind="refresh", settings=settings),
        "garbage": lambda: "not.a.token",
        "other_algorithm": lambda: _token_with(settings, subject, algorithm="HS512"),
    }[kind]()
    response = client.get("/api/auth/me", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401


def test_token_of_a_user_that_does_not_exist_is_rejected(client: TestClient, settings: Settings) -> None:
    token = create_token(subject="0" * 32, kind="access", settings=settings)
    assert client.get("/api/auth/me", headers={"Authorization": f"Bearer {token}"}).status_code == 401


def test_refresh_returns_a_working_access_token(client: TestClient, alice: dict[str, str]) -> None:
    tokens = client.post("/api/auth/login", json={"username": "alice", "password": PASSWORD}).json()
    response = client.post("/api/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert response.status_code == 200
    fresh = response.json()["access_token"]
    assert client.get("/api/auth/me", headers={"Authorization": f"Bearer {fresh}"}).json()["username"] == "alice"


def test_refresh_refuses_an_access_token(client: TestClient, alice: dict[str, str]) -> None:
    access = alice["Authorization"].removeprefix("Bearer ")
    assert client.post("/api/auth/refresh", json={"refresh_token": access}).status_code == 401


def test_first_run_admin_comes_from_settings(settings: Settings, app_factory: Factory) -> None:
    secret = SecretStr("an admin passphrase")
    configured = settings.model_copy(update={"admin_username": "root", "admin_password": secret})
    client = app_factory(configured)
    response = client.post("/api/auth/login", json={"username": "root", "password": "an admin passphrase"})
    assert response.status_code == 200
    me = client.get("/api/auth/me", headers={"Authorization": f"Bearer {response.json()['access_token']}"}).json()
    assert me["is_admin"] is True


def test_no_admin_exists_without_a_configured_password(settings: Settings, app_factory: Factory) -> None:
    client = app_factory(settings.model_copy(update={"admin_username": "root"}))
    for guess in ("admin", "password", "changeme", "root"):
        assert client.post("/api/auth/login", json={"username": "root", "password": guess}).status_code == 401


def test_create_app_uses_given_settings(settings: Settings) -> None:
    assert create_app(settings).state.settings is settings
