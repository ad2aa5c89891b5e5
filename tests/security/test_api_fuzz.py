"""Schemathesis over the whole schema, beyond tests/unit/api/test_openapi_fuzz.py (which it builds on).

The base test fuzzes every operation with generated path ids, which the API rightly answers with 404 before any
handler logic runs. Here:

- operations with path parameters are fuzzed with the signed-in user's *real* ids (a conversation with a run
  and a figure, an upload, an API key, a model), so generated queries and bodies reach the handlers;
- every operation is also fuzzed in negative mode (schema-violating requests), which must be refused with a
  4xx, never accepted or answered with a 5xx.

Every response is validated against the schema (status code, content type, headers, body); the run counts
cases and 5xx answers for the hardening report.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from schemathesis import GenerationMode
from schemathesis.python import asgi
from schemathesis.specs.openapi.checks import (
    negative_data_rejection,
    positive_data_acceptance,
    status_code_conformance,
)

import tests.unit.api.test_openapi_fuzz as base
from backend.core.settings import Settings
from tests.hardening.inproc import PNG, hardened_settings
from tests.hardening.tally import Tally
from tests.unit.api.conftest import FakeAgent

CATEGORY = "fuzz: API schema"
MAX_EXAMPLES = 25
WITH_IDS = [(m, p) for m, p in base.OPERATIONS if "{" in p]
_SCHEMA = base._SCHEMA_ONLY.openapi()["paths"]
WITH_INPUT = [(m, p) for m, p in base.OPERATIONS if "requestBody" in _SCHEMA[p][m.lower()]
              or any(param["in"] != "path" for param in _SCHEMA[p][m.lower()].get("parameters", []))]
"""Operations a request can violate the schema of (the others take nothing but the token and free-form ids)."""
UNPARSABLE_JSON = "There was an error parsing the body"
"""FastAPI's 400 for a JSON body that is not UTF-8: open finding 3 (tests/security/test_open_findings.py; the fix
belongs in backend/api/errors.py, owned by another change). Until it is fixed, such answers are checked for
everything but their (undocumented) status code."""
NEGATIVE_EXCLUDED: dict[tuple[str, str], list[Any]] = {
    ("POST", "/api/upload"): [positive_data_acceptance],
    ("POST", "/api/auth/login"): [negative_data_rejection],
}
"""Login takes JSON *or* a form (its body is read by hand, beyond what the schema can state); upload as in base."""


@pytest.fixture
def settings(tmp_path: Path) -> Settings:  # overrides the shared one: no per-user request limit while fuzzing
    return hardened_settings(tmp_path / "data")


@pytest.fixture
def agent(settings: Settings) -> FakeAgent:  # overrides the rig's: runs leave a figure artifact to fuzz
    return FakeAgent(figure=PNG, workdir=settings.sessions_dir)


SEEDED = ("conversation_id", "run_id", "file_id", "artifact_id", "key_id", "model_id")


def _real_ids(client: Any, auth: dict[str, str]) -> dict[str, str]:
    """The fuzzer's own resources, by path parameter name (seeded by base._signed_in, plus a key)."""
    conversation = client.get("/api/conversations", headers=auth).json()[0]
    detail = client.get(f"/api/conversations/{conversation['id']}", headers=auth).json()
    key = client.post("/api/auth/api-keys", json={"name": "fuzz"}, headers=auth).json()
    models = client.get("/v1/models", headers=auth).json()["data"]
    files = client.get("/api/files", headers=auth).json()
    return {"conversation_id": conversation["id"], "run_id": detail["runs"][0]["id"], "file_id": files[0]["id"],
            "artifact_id": detail["figures"][0]["id"], "key_id": key["id"], "model_id": models[0]["id"]}


def _unparsable_json_400(response: Any) -> bool:
    return bool(response.status_code == 400 and UNPARSABLE_JSON in response.text
                and "json" in response.request.headers.get("content-type", ""))


def _fuzz(app: FastAPI, method: str, path: str, tally: Tally, *, mode: GenerationMode, real_ids: bool,
          excluded: list[Any]) -> int:
    """Fuzz one operation; returns how many answers were 2xx."""
    accepted = 0
    try:
        with asgi.get_client(app) as client:
            auth = base._signed_in(app, client)
            ids = _real_ids(client, auth) if real_ids else {}
            operation = schemathesis.openapi.from_asgi("/openapi.json", app)[path][method]
            params = {p.name: ids[p.name] for p in operation.path_parameters} if real_ids else None
            strategy = operation.as_strategy(generation_mode=mode, path_parameters=params)

            @given(case=strategy)
            @hypothesis_settings(max_examples=MAX_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
            def check(case: Any) -> None:
                nonlocal accepted
                response = case.call(headers=auth)
                accepted += 200 <= response.status_code < 300
                tally.case(CATEGORY)
                if response.status_code >= 500:
                    tally.fail(CATEGORY)
                skip = [status_code_conformance] if _unparsable_json_400(response) else []
                if response.status_code == 413:  # the body limit refused it: a refusal, if not one schemathesis lists
                    skip.append(negative_data_rejection)
                case.validate_response(response, headers=auth, excluded_checks=[*excluded, *skip])

            check()
        assert app.state.unexpected_errors == 0
    finally:
        asgi.shutdown_lifespans()
    return accepted


@pytest.mark.parametrize(("method", "path"), WITH_IDS, ids=[f"{m} {p}" for m, p in WITH_IDS])
def test_operations_fuzzed_with_real_ids(app: FastAPI, method: str, path: str, tally: Tally) -> None:
    accepted = _fuzz(app, method, path, tally, mode=GenerationMode.POSITIVE, real_ids=True,
                     excluded=base.EXCLUDED.get((method, path), []))
    assert accepted > 0, "no generated request got past the id lookup: the ids are not real"


@pytest.mark.parametrize(("method", "path"), WITH_INPUT, ids=[f"{m} {p}" for m, p in WITH_INPUT])
def test_schema_violating_requests_are_refused(app: FastAPI, method: str, path: str, tally: Tally) -> None:
    _fuzz(app, method, path, tally, mode=GenerationMode.NEGATIVE, real_ids=False,
          excluded=NEGATIVE_EXCLUDED.get((method, path), []))


def test_real_ids_cover_every_path_parameter() -> None:
    """A new route with another kind of id must get a real one seeded in `_real_ids`."""
    names = {name.strip("{}") for _, path in WITH_IDS for name in path.split("/") if name.startswith("{")}
    assert names <= set(SEEDED), names - set(SEEDED)
