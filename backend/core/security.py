"""Password hashing (pwdlib/argon2), signed access/refresh tokens (PyJWT, one pinned algorithm) and API keys."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Literal

import jwt
from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher

from backend.core.settings import Settings

TokenKind = Literal["access", "refresh"]
REQUIRED_CLAIMS = ("exp", "iat", "sub", "aud", "typ", "jti")
"""Claims a token must carry; a token missing any of them is rejected."""
CLOCK_SKEW_SECONDS = 10
"""Leeway for `exp`/`iat` between machines."""

ARGON2_MEMORY_KIB = 19_456
ARGON2_TIME_COST = 2
ARGON2_PARALLELISM = 1
"""OWASP's Argon2id minimum (19 MiB, 2 passes, 1 lane): ~60 ms here, and one core per hash, not four."""

API_KEY_PREFIX = "ask-"
"""Marks a bearer token as an API key (not a JWT), and makes leaked keys easy to grep for."""
API_KEY_RANDOM_BYTES = 32
API_KEY_SHOWN_CHARS = 12
"""Characters of a key kept in clear (prefix included) so users can tell their keys apart."""

_PASSWORD_HASH = PasswordHash(
    (Argon2Hasher(time_cost=ARGON2_TIME_COST, memory_cost=ARGON2_MEMORY_KIB, parallelism=ARGON2_PARALLELISM),)
)


class InvalidTokenError(Exception):
    """The token is malformed, forged, expired, of the wrong kind or for another audience."""


@dataclass(frozen=True)
class TokenClaims:
    subject: str
    kind: TokenKind
    expires_at: datetime
    token_id: str


@dataclass(frozen=True)
class TokenPair:
    access_token: str
    refresh_token: str
    expires_in: int
    """Seconds until the access token expires."""


def hash_password(password: str) -> str:
    return _PASSWORD_HASH.hash(password)


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    """A real argon2 hash of a random secret: verified against when the user does not exist."""
    return hash_password(secrets.token_urlsafe(16))


def verify_password(password: str, hashed: str | None) -> bool:
    """Check a password; with `hashed=None` (unknown user) the same argon2 work is done, so timing reveals nothing."""
    reference = hashed or _dummy_hash()
    try:
        ok = _PASSWORD_HASH.verify(password, reference)
    except Exception:  # a corrupt stored hash must not turn into a 500
        return False
    return ok and hashed is not None


def create_token(*, subject: str, kind: TokenKind, settings: Settings, now: datetime | None = None) -> str:
    issued = now or datetime.now(UTC)
    lifetime = (
        timedelta(minutes=settings.access_token_minutes)
        if kind == "access"
        else timedelta(days=settings.refresh_token_days)
    )
    claims = {
        "sub": subject,
        "aud": settings.jwt_audience,
        "typ": kind,
        "iat": issued,
        "exp": issued + lifetime,
        "jti": uuid.uuid4().hex,
    }
    return jwt.encode(claims, settings.jwt_key(), algorithm=settings.jwt_algorithm)


def create_token_pair(*, subject: str, settings: Settings) -> TokenPair:
    return TokenPair(
        access_token=create_token(subject=subject, kind="access", settings=settings),
        refresh_token=create_token(subject=subject, kind="refresh", settings=settings),
        expires_in=settings.access_token_minutes * 60,
    )


def decode_token(token: str, *, kind: TokenKind, settings: Settings) -> TokenClaims:
    """Verify signature (only `settings.jwt_algorithm`), audience, expiry and kind; raise InvalidTokenError."""
    try:
        claims = jwt.decode(
            token,
            settings.jwt_key(),
            algorithms=[settings.jwt_algorithm],
            audience=settings.jwt_audience,
            leeway=CLOCK_SKEW_SECONDS,
            options={"require": list(REQUIRED_CLAIMS)},
        )
    except jwt.PyJWTError as exc:
        raise InvalidTokenError(str(exc)) from exc
    if claims.get("typ") != kind:
        raise InvalidTokenError(f"expected a {kind} token")
    subject = claims.get("sub")
    if not isinstance(subject, str) or not subject:
        raise InvalidTokenError("token has no subject")
    return TokenClaims(
        subject=subject,
        kind=kind,
        expires_at=datetime.fromtimestamp(float(claims["exp"]), UTC),
        token_id=str(claims["jti"]),
    )


@dataclass(frozen=True)
class NewApiKey:
    secret: str
    """Shown to the user once; only `digest` is stored."""
    prefix: str
    digest: str


def is_api_key(token: str) -> bool:
    return token.startswith(API_KEY_PREFIX)


def hash_api_key(secret: str) -> str:
    """SHA-256 suffices (no argon2): the key has 256 random bits, so there is nothing to brute-force."""
    return hashlib.sha256(secret.encode()).hexdigest()


def new_api_key() -> NewApiKey:
    secret = API_KEY_PREFIX + secrets.token_urlsafe(API_KEY_RANDOM_BYTES)
    return NewApiKey(secret=secret, prefix=secret[:API_KEY_SHOWN_CHARS], digest=hash_api_key(secret))
