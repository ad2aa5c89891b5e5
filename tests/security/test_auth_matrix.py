"""Every route × every bad credential: 401/403/404 as appropriate, and nothing of user A's in any answer.

Routes come from the app's own OpenAPI schema; path parameters are filled with real ids of A's resources (a
conversation with a run and a figure, an uploaded file, an API key), and bodies reference A's ids where they
take one. Credentials: none, garbage, expired, forged signature, `alg=none`, an algorithm other than the pinned
one, wrong audience, a refresh token used as access, a token for an unknown user, a disabled account, a revoked
API key, A's API key where only tokens are accepted, and B's token and API key. Routes that accept API keys are
found from their dependencies, not listed by hand.
"""

from __future__ import annotations

import base64
import json
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from sqlalchemy import update

from backend.api.deps import get_key_or_token_user
from backend.core.security import create_token
from backend.core.settings import Settings
from backend.storage.models import User
from tests.hardening.inproc import PNG, hardened_settings, inprocess_app, sign_up
from tests.hardening.tally import Tally
from tests.unit.api.conftest import FakeAgent
from tests.unit.conftest import PASSWORD

pytestmark = pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")  # HS512 with a short key

MARK = "zq" + secrets.token_hex(6)
"""In every piece of text user A owns; it must never appear in a response to anyone else."""


def _schema_app() -> FastAPI:
    from backend.api.app import create_app

    return create_app(Settings(_env_file=None, data_dir=Path("/nonexistent"), jwt_secret="x" * 48))  # type: ignore[call-arg,arg-type]


_SCHEMA_APP = _schema_app()
OPERATIONS = [(method.upper(), path, op) for path, item in _SCHEMA_APP.openapi()["paths"].items()
              for method, op in item.items()]


@dataclass
class World:
    app: FastAPI
    client: TestClient
    settings: Settings
    a: dict[str, str]
    a_tokens: dict[str, Any]
    b: dict[str, str]
    b_tokens: dict[str, Any]
    ids: dict[str, str] = field(default_factory=dict)
    """Path parameter name -> A's real id."""
    secrets: list[str] = field(default_factory=list)
    """Strings of A's that no other caller may ever see."""
    keys: dict[str, str] = field(default_factory=dict)
    """API key secrets: A's active and revoked ones, B's."""
    a_state: str = ""
    extra_headers: dict[str, str] = field(default_factory=dict)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    settings = hardened_settings(tmp_path_factory.mktemp("auth") / "data", allow_registration=True)
    agent = FakeAgent(answer="The answer is 2.5.", figure=PNG, workdir=settings.sessions_dir)  # same for all
    with inprocess_app(settings, agent) as (app, client):
        a, a_tokens = sign_up(client, "alice" + MARK[-6:])
        b, b_tokens = sign_up(client, "bobby" + MARK[-6:])
        c, c_tokens = sign_up(client, "carol" + MARK[-6:])
        upload = client.post("/api/upload", headers=a,
                             files=[("files", (f"ledger-{MARK}.csv", f"k,v\n{MARK},1\n".encode(), "text/csv"))])
        assert upload.status_code == 201, upload.text
        file_id = upload.json()["files"][0]["id"]
        chat = client.post("/api/chat", headers=a, json={"message": f"question {MARK}", "files": [file_id]})
        assert chat.status_code == 200 and chat.json()["status"] == "done", chat.text
        conversation_id, run_id = chat.json()["conversation_id"], chat.json()["run_id"]
        [figure] = chat.json()["figures"]
        renamed = client.patch(f"/api/conversations/{conversation_id}", headers=a, json={"title": f"plans {MARK}"})
        assert renamed.status_code == 200, renamed.text
        keys = {}
        for name in ("active", "revoked"):
            made = client.post("/api/auth/api-keys", headers=a, json={"name": f"{name}-{MARK}"})
            assert made.status_code == 201, made.text
            keys[name] = made.json()["key"]
            key_id = made.json()["id"]
        assert client.delete(f"/api/auth/api-keys/{key_id}", headers=a).status_code == 204  # the "revoked" one
        active_key_id = client.get("/api/auth/api-keys", headers=a).json()[0]["id"]
        b_key = client.post("/api/auth/api-keys", headers=b, json={"name": "bee"})
        keys["b"] = b_key.json()["key"]
        models = client.get("/v1/models", headers=a).json()["data"]
        with app.state.services.sessions() as session, session.begin():
            session.execute(update(User).where(User.id == c_tokens["user_id"]).values(is_active=False))
        found = World(
            app=app, client=client, settings=settings, a=a, a_tokens=a_tokens, b=b, b_tokens=b_tokens,
            ids={"conversation_id": conversation_id, "run_id": run_id, "file_id": file_id,
                 "artifact_id": figure["id"], "key_id": active_key_id, "model_id": models[0]["id"]},
            secrets=[MARK, a_tokens["user_id"], keys["active"], keys["revoked"], a_tokens["access_token"],
                     a_tokens["refresh_token"], "alice" + MARK[-6:]],
            keys=keys,
        )
        found.extra_headers = {"c": c["Authorization"]}
        found.a_state = _state_of_a(found)
        yield found


def _state_of_a(world: World) -> str:
    """Everything A can read back; compared before and after the attacks."""
    client, a, ids = world.client, world.a, world.ids
    parts = [client.get(f"/api/conversations/{ids['conversation_id']}", headers=a).text,
             client.get(f"/api/runs/{ids['run_id']}", headers=a).text,
             client.get(f"/api/files/{ids['file_id']}", headers=a).text,
             client.get(f"/api/artifacts/{ids['artifact_id']}", headers=a).content.hex(),
             client.get("/api/files", headers=a).text,
             json.dumps(sorted((k["id"], k["revoked"]) for k in client.get("/api/auth/api-keys", headers=a).json()))]
    assert MARK in parts[0] and MARK in parts[2], "A's resources are not readable by A"
    return "\n".join(parts)


# --- credentials -----------------------------------------------------------------------------------
def _claims(world: World, **changes: Any) -> dict[str, Any]:
    now = datetime.now(UTC)
    claims = {"sub": world.a_tokens["user_id"], "aud": world.settings.jwt_audience, "typ": "access", "iat": now,
              "exp": now + timedelta(minutes=5), "jti": secrets.token_hex(8)}
    return {**claims, **changes}


def _unsigned(claims: dict[str, Any]) -> str:
    def part(data: dict[str, Any]) -> str:
        raw = json.dumps(data, default=lambda d: int(d.timestamp())).encode()
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}."


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


Credential = Callable[[World], dict[str, str]]
BAD_CREDENTIALS: dict[str, tuple[Credential, int]] = {
    "no_token": (lambda w: {}, 401),
    "garbage": (lambda w: _bearer("not.a.jwt"), 401),
    "basic_scheme": (lambda w: {"Authorization": "Basic YWxpY2U6cGFzc3dvcmQ="}, 401),
    "expired": (lambda w: _bearer(create_token(subject=w.a_tokens["user_id"], kind="access", settings=w.settings,
                                               now=datetime.now(UTC) - timedelta(days=1))), 401),
    "forged_signature": (lambda w: _bearer(jwt.encode(_claims(w), "k" * 48, algorithm="HS256")), 401),
    "alg_none": (lambda w: _bearer(_unsigned(_claims(w))), 401),
    "unpinned_alg_hs512": (lambda w: _bearer(jwt.encode(_claims(w), w.settings.jwt_key(), algorithm="HS512")), 401),
    "wrong_audience": (lambda w: _bearer(jwt.encode(_claims(w, aud="another-service"), w.settings.jwt_key(),
                                                    algorithm="HS256")), 401),
    "missing_jti": (lambda w: _bearer(jwt.encode({k: v for k, v in _claims(w).items() if k != "jti"},
                                                 w.settings.jwt_key(), algorithm="HS256")), 401),
    "refresh_as_access": (lambda w: _bearer(w.a_tokens["refresh_token"]), 401),
    "unknown_user": (lambda w: _bearer(create_token(subject="no-such-user", kind="access", settings=w.settings)), 401),
    "disabled_account": (lambda w: {"Authorization": w.extra_headers["c"]}, 403),
    "revoked_api_key": (lambda w: _bearer(w.keys["revoked"]), 401),
}
"""Credentials that must be refused everywhere a credential is needed, with this status."""
OTHER_USER: dict[str, Credential] = {
    "user_b_token": lambda w: w.b,
    "user_b_api_key": lambda w: _bearer(w.keys["b"]),
    "user_a_api_key": lambda w: _bearer(w.keys["active"]),
}
"""Valid credentials of someone (B), or of A in a form only some routes take (an API key)."""
VARIANTS = [*BAD_CREDENTIALS, *OTHER_USER]


def _accepts_api_keys(app: FastAPI) -> set[tuple[str, str]]:
    found = set()

    def uses_keys(dependant: Any) -> bool:
        return any(d.call is get_key_or_token_user or uses_keys(d) for d in dependant.dependencies)

    def walk(routes: list[Any]) -> None:
        for route in routes:
            included = getattr(route, "original_router", None)  # FastAPI >= 0.16x wraps included routers
            if included is not None:
                walk(included.routes)
            elif isinstance(route, APIRoute) and uses_keys(route.dependant):
                found.update((method, route.path) for method in route.methods)

    walk(app.routes)
    assert found, "no route takes API keys: the dependency walk is broken"
    return found


KEYED = _accepts_api_keys(_SCHEMA_APP)
"""Routes that take an API key as well as a token (read from their dependencies)."""
CASES = [(m, p, op, v) for m, p, op in OPERATIONS for v in VARIANTS if not (v == "user_a_api_key" and (m, p) in KEYED)]
"""A's own key where keys are accepted is A acting, not an attack: left out."""


# --- requests ---------------------------------------------------------------------------------------
def _request(world: World, method: str, path: str, op: dict[str, Any]) -> dict[str, Any]:
    """Keyword arguments for TestClient.request: A's ids in the path, a valid body referencing A's things."""
    ids = world.ids
    url = path.format(**{p["name"]: ids[p["name"]] for p in op.get("parameters", []) if p["in"] == "path"})
    kwargs: dict[str, Any] = {"method": method, "url": url}
    body = {
        ("POST", "/api/auth/register"): {"username": "new" + secrets.token_hex(4), "password": PASSWORD},
        ("POST", "/api/auth/login"): {"username": "nobody-here", "password": "wrong password"},
        ("POST", "/api/auth/refresh"): {"refresh_token": "not.a.jwt"},
        ("POST", "/api/auth/api-keys"): {"name": "attacker key"},
        ("POST", "/api/chat"): {"message": "show me", "conversation_id": ids["conversation_id"],
                                "files": [ids["file_id"]]},
        ("PATCH", "/api/conversations/{conversation_id}"): {"title": "renamed by someone else"},
        ("POST", "/api/v1/run-task"): {"goal": "summarise everything you know"},
        ("POST", "/v1/chat/completions"): {"model": ids["model_id"], "messages": [{"role": "user", "content": "hi"}]},
    }.get((method, path))
    if (method, path) == ("POST", "/api/upload"):
        kwargs["files"] = [("files", ("mine.csv", b"a,b\n1,2\n", "text/csv"))]
    elif body is not None:
        kwargs["json"] = body
    elif "requestBody" in op:
        raise AssertionError(f"{method} {path} takes a body this matrix does not know: add one to _request")
    if path == "/v1/chat/completions":
        kwargs["headers"] = {"X-Conversation-ID": ids["conversation_id"]}
    return kwargs


def _leaks(world: World, response: Any, sent: str) -> list[str]:
    """A's secrets and ids in the response that the caller did not send itself."""
    text = response.content.decode(errors="replace")
    candidates = [*world.secrets, *(value for name, value in world.ids.items() if name != "model_id")]
    return [value for value in candidates if value in text and value not in sent]


@pytest.mark.parametrize(("method", "path", "op", "variant"), CASES, ids=[f"{m} {p} {v}" for m, p, _, v in CASES])
def test_credential_is_refused_and_nothing_leaks(world: World, method: str, path: str, op: dict[str, Any],
                                                 variant: str, tally: Tally) -> None:
    tally.case("auth")
    request = _request(world, method, path, op)
    if variant in BAD_CREDENTIALS:
        credential, refused_with = BAD_CREDENTIALS[variant]
    else:
        credential, refused_with = OTHER_USER[variant], 0
    headers = {**request.pop("headers", {}), **credential(world)}
    response = world.client.request(**request, headers=headers)
    sent = json.dumps(request, default=str) + json.dumps(headers)
    public = "security" not in op
    keyed = (method, path) in KEYED
    owned = any(p["in"] == "path" and p["name"] != "model_id" for p in op.get("parameters", []))
    assert response.status_code < 500, response.text
    assert _leaks(world, response, sent) == [], f"{variant} on {method} {path} saw A's data: {response.text[:500]}"
    if public:
        return  # no credential needed: any 2xx/4xx, as long as nothing of A's shows
    if variant in BAD_CREDENTIALS:
        assert response.status_code == refused_with, (variant, response.status_code, response.text[:300])
    elif variant.endswith("api_key") and not keyed:
        assert response.status_code == 401, f"an API key was taken on {method} {path}: {response.status_code}"
    elif owned:
        assert response.status_code in (403, 404), f"B reached A's {method} {path}: {response.status_code}"
    if path == "/metrics" and variant.startswith("user_b"):
        assert response.status_code in (401, 403), response.status_code  # B is no admin


def test_refresh_refuses_every_token_that_is_not_a_live_refresh_token(world: World, tally: Tally) -> None:
    w = world
    refused = {
        "access_token": w.a_tokens["access_token"],
        "forged": jwt.encode(_claims(w, typ="refresh"), "k" * 48, algorithm="HS256"),
        "alg_none": _unsigned(_claims(w, typ="refresh")),
        "expired": create_token(subject=w.a_tokens["user_id"], kind="refresh", settings=w.settings,
                                now=datetime.now(UTC) - timedelta(days=30)),
        "wrong_audience": jwt.encode(_claims(w, typ="refresh", aud="x"), w.settings.jwt_key(), algorithm="HS256"),
        "api_key": w.keys["active"],
    }
    for name, token in refused.items():
        tally.case("auth")
        reply = w.client.post("/api/auth/refresh", json={"refresh_token": token})
        assert reply.status_code == 401, (name, reply.status_code, reply.text)
        assert _leaks(w, reply, token) == []
    tally.case("auth")
    mine = w.client.post("/api/auth/refresh", json={"refresh_token": w.b_tokens["refresh_token"]})
    assert mine.status_code == 200
    me = w.client.get("/api/auth/me", headers=_bearer(mine.json()["access_token"])).json()
    assert me["id"] == w.b_tokens["user_id"], "a refresh token minted access for someone else"


def test_every_route_was_attacked_and_a_still_has_everything(world: World) -> None:
    """Runs last in this module: no attack above changed or removed anything of A's."""
    assert len(OPERATIONS) >= 20
    assert _state_of_a(world) == world.a_state
