"""Request-level limits every route shares (found by the hardening suites, fixed in backend/api/errors.py and
app.py): a body-size limit outside /api/upload too, 422 answers that never echo a huge or unencodable value, and
undecodable JSON answered with the documented 422.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from tests.hardening.inproc import hardened_settings, inprocess_app
from tests.hardening.tally import Tally

CATEGORY = "request limits"
BIG_BODY_BYTES = 16 * 1024 * 1024
BODY_LIMIT_BYTES = 8 * 1024 * 1024
"""Anything above this outside /api/upload should be refused unread."""
ERROR_BODY_LIMIT_BYTES = 64 * 1024


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    """Server errors come back as 500 responses here instead of raising, so the status itself is asserted."""
    settings = hardened_settings(tmp_path_factory.mktemp("findings") / "data")
    with inprocess_app(settings, strict=False) as (_app, test_client):
        yield test_client


def test_oversized_json_body_is_refused_before_it_is_parsed(client: TestClient, tally: Tally) -> None:
    tally.case(CATEGORY)
    body = b'{"username": "' + b"a" * BIG_BODY_BYTES + b'", "password": "x"}'
    assert len(body) > BODY_LIMIT_BYTES
    reply = client.post("/api/auth/login", content=body, headers={"Content-Type": "application/json"})
    assert reply.status_code == 413, reply.status_code


def test_validation_errors_do_not_echo_huge_values(client: TestClient, tally: Tally) -> None:
    tally.case(CATEGORY)
    reply = client.post("/api/auth/register", json={"username": "a" * 1024 * 1024, "password": "long enough"})
    assert reply.status_code == 422
    assert len(reply.content) < ERROR_BODY_LIMIT_BYTES, f"a {len(reply.content)}-byte error body"


def test_undecodable_json_is_a_documented_422(client: TestClient, tally: Tally) -> None:
    tally.case(CATEGORY)
    reply = client.post("/api/auth/refresh", content=b'{"refresh_token": "\xff\xfe"}',
                        headers={"Content-Type": "application/json"})
    assert reply.status_code == 422, (reply.status_code, reply.text)


UNRENDERABLE = {
    "lone_surrogate_register": ("/api/auth/register", b'{"username": "abc", "password": "\\ud800"}'),
    "lone_surrogate_login": ("/api/auth/login", b'{"username": "abc\\ud800", "password": "\\ud800"}'),
    "nan_chat": ("/api/chat", b'{"message": NaN}'),
    "infinity_register": ("/api/auth/register", b'{"username": 1e999999, "password": "long enough"}'),
}


@pytest.mark.parametrize("case", list(UNRENDERABLE))
def test_values_the_error_handler_cannot_echo_still_get_a_4xx(client: TestClient, case: str, tally: Tally) -> None:
    tally.case(CATEGORY)
    path, body = UNRENDERABLE[case]
    reply = client.post(path, content=body, headers={"Content-Type": "application/json"})
    assert 400 <= reply.status_code < 500, (reply.status_code, reply.text[:200])

