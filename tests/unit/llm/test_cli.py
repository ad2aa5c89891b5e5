"""`python -m backend ask`: streams a reply, or prints one clear error line and exits non-zero."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
import respx

from backend.__main__ import main


@pytest.fixture(autouse=True)
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # no stray .env
    monkeypatch.setenv("APP_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("APP_OLLAMA_HOST", "http://ollama.test:11434")


def test_ask_streams_the_reply_to_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ask", "--provider", "fake", "hello", "there"]) == 0
    assert capsys.readouterr().out == "(scripted fake model) You said: hello there\n"


def test_ask_uses_the_configured_chain(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("APP_LLM_PROVIDERS", "fake")
    assert main(["ask", "ping"]) == 0
    assert "You said: ping" in capsys.readouterr().out


def test_missing_embedded_model_is_one_line_naming_the_fix(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ask", "--provider", "llamacpp", "hi"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("error: no usable LLM provider: llamacpp: model qwen2.5-coder-1.5b not assembled")


@respx.mock
def test_unreachable_ollama_is_one_line_naming_the_setting(capsys: pytest.CaptureFixture[str]) -> None:
    respx.get("http://ollama.test:11434/api/tags").mock(side_effect=httpx.ConnectError("refused"))
    assert main(["ask", "--provider", "ollama", "hi"]) == 1
    err = capsys.readouterr().err
    assert err == "error: no usable LLM provider: ollama: no server at APP_OLLAMA_HOST=http://ollama.test:11434\n"


def test_unknown_provider_flag_is_rejected_by_argparse(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["ask", "--provider", "gpt", "hi"])
    assert info.value.code == 2
    assert "invalid choice: 'gpt'" in capsys.readouterr().err


def test_unknown_provider_in_settings_is_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("APP_LLM_PROVIDERS", "fake,gpt")
    with pytest.raises(SystemExit):
        main(["ask", "hi"])
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "APP_LLM_PROVIDERS" in err and "gpt" in err
