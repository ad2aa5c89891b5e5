"""Schemathesis against the OpenAPI schema: generated requests (signed in as a real user) never get a 5xx.

One test per operation; the operations are read from the app's own schema at collection time.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from schemathesis.python import asgi
from schemathesis.specs.openapi.checks import positive_data_acceptance

from backend.api.app import create_app
from backend.core.settings import Settings

PASSWORD = "correct horse battery"
EXCLUDED = {("POST", "/api/upload"): [positive_data_acceptance]}
"""A schema cannot say "bytes that really are a CSV": schema-valid random files are rightly refused with 415."""
MAX_EXAMPLES = 25

_SCHEMA_ONLY = create_app(Settings(_env_file=None, data_dir=Path("/nonexistent"), jwt_secret="x" * 48))  # type: ignore[call-arg,arg-type]
OPERATIONS = [
    (method.upper(), path)
    for path, item in _SCHEMA_ONLY.openapi()["paths"].items()
    for method in item
]


def _signed_in(app: FastAPI, client: Any) -> dict[str, str]:
    client.post("/api/auth/register", json={"username": "fuzzer", "password": PASSWORD})
    token = client.post("/api/auth/login", json={"username": "fuzzer", "password": PASSWORD}).json()
    auth = {"Authorization": f"Bearer {token['access_token']}"}
    client.post("/api/chat", json={"message": "seed a conversation"}, headers=auth)
    client.post("/api/upload", files=[("files", ("seed.csv", b"a,b\n1,2\n"))], headers=auth)
    return auth


@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_no_generated_request_gets_a_server_error(app: FastAPI, method: str, path: str) -> None:
    try:
        with asgi.get_client(app) as client:
            auth = _signed_in(app, client)
            operation = schemathesis.openapi.from_asgi("/openapi.json", app)[path][method]

            @given(case=operation.as_strategy())
            @settings(max_examples=MAX_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
            def check(case: Any) -> None:
                case.call_and_validate(headers=auth, excluded_checks=EXCLUDED.get((method, path), []))

            check()
        assert app.state.unexpected_errors == 0
    finally:
        asgi.shutdown_lifespans()
