"""Hostile JSON bodies to every route that takes JSON (read from the schema), signed in and not: never a 5xx.

Found here and fixed: login read its JSON by hand and let RecursionError and ValueError (nesting too deep, a
number too long to convert) escape as a 500, before authentication.

Bodies a schema-driven fuzzer does not produce: nesting 1 000 and 100 000 deep, a 5 000-digit number, a BOM,
duplicate keys, top-level non-objects, truncation, invalid UTF-8, NUL characters, the wrong content type, a
megabyte of whitespace. (Lone surrogates, NaN and infinities, which still get a 500, are open finding 4 in
test_open_findings.py.)
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from backend.api.app import create_app
from backend.core.settings import Settings
from tests.hardening.inproc import hardened_settings, inprocess_app, sign_up
from tests.hardening.tally import Tally

CATEGORY = "fuzz: hostile JSON"
_SCHEMA = create_app(Settings(_env_file=None, data_dir=Path("/nonexistent"), jwt_secret="x" * 48)).openapi()  # type: ignore[call-arg,arg-type]
JSON_ROUTES = [(method.upper(), path) for path, item in _SCHEMA["paths"].items() for method, op in item.items()
               if "application/json" in op.get("requestBody", {}).get("content", {})]
BODIES: dict[str, tuple[bytes, str]] = {
    "nested_1k_arrays": (b'{"message": ' + b"[" * 1000 + b"]" * 1000 + b"}", "application/json"),
    "nested_100k_arrays": (b"[" * 100_000 + b"]" * 100_000, "application/json"),
    "nested_10k_objects": (b'{"a":' * 10_000 + b"1" + b"}" * 10_000, "application/json"),
    "number_5000_digits": (b'{"message": 1' + b"7" * 5000 + b', "username": 1' + b"7" * 5000 + b"}",
                           "application/json"),
    "bom_prefixed": (b'\xef\xbb\xbf{"message": "hello", "title": "t", "name": "n"}', "application/json"),
    "duplicate_keys": (b'{"message": "a", "message": 5, "title": "x", "title": null}', "application/json"),
    "top_level_array": (b'[{"message": "hi"}]', "application/json"),
    "top_level_string": (b'"just a string"', "application/json"),
    "top_level_null": (b"null", "application/json"),
    "truncated": (b'{"message": "unterminated', "application/json"),
    "invalid_utf8": (b'{"message": "\xff\xfe\xfd"}', "application/json"),
    "nul_characters": (b'{"message": "a\\u0000b", "username": "x\\u0000", "password": "\\u0000" , "title": "\\u0000"}',
                       "application/json"),
    "json_as_text_plain": (b'{"message": "hi"}', "text/plain"),
    "json_as_form": (b'{"message": "hi"}', "application/x-www-form-urlencoded"),
    "megabyte_of_whitespace": (b" " * (1024 * 1024) + b"{}", "application/json"),
    "empty": (b"", "application/json"),
}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, dict[str, str]]]:
    with inprocess_app(hardened_settings(tmp_path_factory.mktemp("json") / "data")) as (_app, client):
        headers, _ = sign_up(client, "jsonfuzz")
        yield client, headers


@pytest.mark.parametrize("signed_in", [True, False], ids=["signed-in", "anonymous"])
@pytest.mark.parametrize("body", list(BODIES))
@pytest.mark.parametrize(("method", "path"), JSON_ROUTES, ids=[f"{m} {p}" for m, p in JSON_ROUTES])
def test_hostile_json_never_gets_a_server_error(world: tuple[TestClient, dict[str, str]], method: str, path: str,
                                                body: str, signed_in: bool, tally: Tally) -> None:
    client, headers = world
    content, content_type = BODIES[body]
    url = path.replace("{conversation_id}", "nope")
    tally.case(CATEGORY)
    reply: Any = client.request(method, url, content=content,
                                headers={**(headers if signed_in else {}), "Content-Type": content_type})
    if reply.status_code >= 500:
        tally.fail(CATEGORY)
    assert reply.status_code < 500, (reply.status_code, reply.text[:300])  # a BOM-prefixed chat is fine: 200


def test_every_json_route_is_covered() -> None:
    assert {"/api/auth/login", "/api/auth/register", "/api/chat"} <= {p for _, p in JSON_ROUTES}
