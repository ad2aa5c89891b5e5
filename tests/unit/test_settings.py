"""Settings: validation of the provider chain, secrets and typed values."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from backend.core.settings import Settings


def make(tmp_path: Path, **kwargs: object) -> Settings:
    return Settings(_env_file=None, data_dir=tmp_path, **kwargs)  # type: ignore[call-arg, arg-type]


def test_provider_chain_is_parsed_from_a_comma_list(tmp_path: Path) -> None:
    assert make(tmp_path, llm_providers="ollama, llamacpp").llm_providers == ["ollama", "llamacpp"]


def test_unknown_provider_is_rejected_with_its_name(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="gpt5local"):
        make(tmp_path, llm_providers="gpt5local")


@pytest.mark.parametrize("weak", ["secret", "changeme", "short-key"])
def test_well_known_or_short_jwt_secret_is_refused(tmp_path: Path, weak: str) -> None:
    with pytest.raises(ValidationError, match="JWT_SECRET"):
        make(tmp_path, jwt_secret=weak)


def test_generated_jwt_secret_is_persisted_and_reused(tmp_path: Path) -> None:
    first = make(tmp_path).jwt_key()
    second = make(tmp_path).jwt_key()
    assert first == second
    assert len(first) >= 32
    assert (tmp_path / "jwt_secret").stat().st_mode & 0o077 == 0


def test_wrong_type_from_environment_names_the_field(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APP_PORT", "eighty")
    with pytest.raises(ValidationError, match="port"):
        make(tmp_path)


def test_ollama_host_is_read_from_the_conventional_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OLLAMA_HOST", "http://gpu-box:11434")
    assert make(tmp_path).ollama_host == "http://gpu-box:11434"


def test_database_defaults_to_sqlite_in_the_data_dir(tmp_path: Path) -> None:
    assert make(tmp_path).resolved_database_url == f"sqlite:///{tmp_path / 'app.db'}"
