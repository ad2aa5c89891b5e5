"""Password hashing and tokens (backend.core.security): argon2id parameters, equal work for unknown users, claims."""

from __future__ import annotations

from typing import Any

import jwt
import pytest

from backend.core import security
from backend.core.settings import Settings


def test_hashes_are_argon2id_with_the_owasp_parameters() -> None:
    hashed = security.hash_password("correct horse battery")
    assert hashed.startswith(f"$argon2id$v=19$m={security.ARGON2_MEMORY_KIB},t={security.ARGON2_TIME_COST},p=1$")
    assert security.verify_password("correct horse battery", hashed)
    assert not security.verify_password("wrong", hashed)


def test_unknown_users_cost_one_real_verification(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    real_verify = security._PASSWORD_HASH.verify

    def counting_verify(password: str, hashed: str) -> bool:
        calls.append(hashed)
        return real_verify(password, hashed)

    monkeypatch.setattr(security._PASSWORD_HASH, "verify", counting_verify)
    assert security.verify_password("anything", None) is False
    assert len(calls) == 1 and calls[0].startswith("$argon2id$")


def test_a_corrupt_stored_hash_is_a_failed_login_not_an_error() -> None:
    assert security.verify_password("x", "$argon2id$garbage") is False


def test_token_claims_are_pinned(settings: Settings) -> None:
    token = security.create_token(subject="u1", kind="access", settings=settings)
    header = jwt.get_unverified_header(token)
    claims: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    assert header["alg"] == settings.jwt_algorithm
    assert set(claims) == {"sub", "aud", "typ", "iat", "exp", "jti"}
    assert claims["exp"] - claims["iat"] == settings.access_token_minutes * 60
    assert security.decode_token(token, kind="access", settings=settings).subject == "u1"


def test_a_token_of_one_kind_is_refused_as_the_other(settings: Settings) -> None:
    refresh = security.create_token(subject="u1", kind="refresh", settings=settings)
    with pytest.raises(security.InvalidTokenError, match="access"):
        security.decode_token(refresh, kind="access", settings=settings)


def test_tokens_from_another_secret_are_refused(settings: Settings) -> None:
    other = settings.model_copy(update={"jwt_secret": None, "data_dir": settings.data_dir / "other"})
    token = security.create_token(subject="u1", kind="access", settings=other)
    with pytest.raises(security.InvalidTokenError):
        security.decode_token(token, kind="access", settings=settings)
