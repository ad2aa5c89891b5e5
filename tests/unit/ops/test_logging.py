"""Structured logging: redaction, request/run ids on every record, JSON file lines, DEBUG-only prompts, bad log dirs."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr

from backend.core import logging as ops_logging
from backend.core.logging import (
    REDACTED,
    SafeRotatingFileHandler,
    bind_request,
    bind_run,
    configure_logging,
    log_llm_exchange,
    redact,
    request_id_var,
    run_id_var,
)
from backend.core.settings import Settings

JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlLXZhbHVl"


@pytest.fixture(autouse=True)
def _clean_context() -> Iterator[None]:
    request_token, run_token = request_id_var.set(None), run_id_var.set(None)
    yield
    request_id_var.reset(request_token)
    run_id_var.reset(run_token)
    ops_logging.set_known_secrets(())


def json_lines(path: Path) -> list[dict[str, object]]:
    for handler in logging.getLogger().handlers:
        handler.flush()
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("Authorization: Bearer abcdef0123456789xyz", "abcdef0123456789xyz"),
        (f"token is {JWT}", JWT),
        ("calling https://api.example.com/?api_key=k3y-s3cr3t-value&q=1", "k3y-s3cr3t-value"),
        ('{"username": "bob", "password": "hunter2-long"}', "hunter2-long"),
        ("settings: openai_api_key='sk-abcdefghijklmnopqrstuvwx'", "sk-abcdefghijklmnopqrstuvwx"),
        ("TAVILY key tvly-ABCDEFGHIJKLMNOP in use", "tvly-ABCDEFGHIJKLMNOP"),
        ("db at postgresql://app:pa55word@db:5432/app", "pa55word"),
        ("login password=hunter2-long ok", "hunter2-long"),
    ],
)
def test_redact_masks_tokens_keys_and_passwords(text: str, secret: str) -> None:
    cleaned = redact(text)
    assert secret not in cleaned
    assert REDACTED in cleaned


def test_redact_leaves_ordinary_text_alone() -> None:
    text = "GET /api/conversations/3f2a 200 12.5ms: the mean of column tokens_used is 4.2"
    assert redact(text) == text


def test_configured_secret_values_are_masked_verbatim(settings: Settings, tmp_path: Path) -> None:
    custom = settings.model_copy(update={"tavily_api_key": SecretStr("plain-looking-value-42"), "data_dir": tmp_path})
    path = configure_logging(custom, console=False)
    assert path is not None
    logging.getLogger("tests.secret").warning("key in use: %s", "plain-looking-value-42")
    line = json_lines(path)[-1]
    assert "plain-looking-value-42" not in json.dumps(line)
    assert REDACTED in str(line["msg"])


def test_json_lines_carry_request_and_run_ids(settings: Settings) -> None:
    path = configure_logging(settings, console=False)
    assert path is not None and path.parent == settings.logs_dir
    bind_request("req-123")
    bind_run("run-456")
    logging.getLogger("tests.ids").info("inside a turn", extra={"rows": 3})
    line = json_lines(path)[-1]
    assert line["request_id"] == "req-123"
    assert line["run_id"] == "run-456"
    assert line["msg"] == "inside a turn"
    assert line["rows"] == 3
    assert line["level"] == "INFO" and line["logger"] == "tests.ids"


def test_arguments_and_exceptions_are_redacted_in_the_file(settings: Settings) -> None:
    path = configure_logging(settings, console=False)
    assert path is not None
    try:
        raise ValueError(f"upstream refused Bearer {JWT}")
    except ValueError:
        logging.getLogger("tests.exc").exception("call failed with header %s", f"Bearer {JWT}")
    text = json.dumps(json_lines(path)[-1])
    assert JWT not in text
    assert "upstream refused" in text


def test_console_shows_readable_text_with_ids(settings: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging(settings, log_file=False)
    bind_request("abc123")
    logging.getLogger("tests.console").warning("disk is at %d%%", 97)
    err = capsys.readouterr().err
    assert "WARNING" in err and "tests.console" in err and "disk is at 97%" in err
    assert "req=abc123" in err


def test_level_comes_from_settings(settings: Settings) -> None:
    path = configure_logging(settings.model_copy(update={"log_level": "WARNING"}), console=False)
    assert path is not None
    logging.getLogger("tests.level").info("not written")
    logging.getLogger("tests.level").warning("written")
    messages = [line["msg"] for line in json_lines(path)]
    assert "written" in messages and "not written" not in messages


def test_prompts_and_replies_are_logged_only_at_debug(settings: Settings) -> None:
    path = configure_logging(settings, console=False)  # INFO
    assert path is not None
    log_llm_exchange(provider="fake", prompt=["what is the secret?"], reply="the answer")
    assert not any("llm exchange" in str(line["msg"]) for line in json_lines(path))
    configure_logging(settings.model_copy(update={"log_level": "DEBUG"}), console=False)
    log_llm_exchange(provider="fake", prompt=[f"use token {JWT}"], reply="the answer")
    exchange = [line for line in json_lines(path) if "llm exchange" in str(line["msg"])]
    assert len(exchange) == 1
    assert "the answer" in str(exchange[0]["msg"]) and JWT not in str(exchange[0]["msg"])


def test_unwritable_log_dir_falls_back_to_console_with_one_warning(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    settings.data_dir.mkdir(parents=True)
    settings.logs_dir.write_text("a file where the log directory should be")
    assert configure_logging(settings) is None
    assert configure_logging(settings) is None
    logging.getLogger("tests.fallback").warning("still logging")
    err = capsys.readouterr().err
    assert err.count("is not writable") == 1
    assert "logging to the console only" in err
    assert "still logging" in err


def test_a_full_disk_pauses_the_file_log_instead_of_raising(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    handler = SafeRotatingFileHandler(tmp_path / "server.jsonl")
    handler.setFormatter(logging.Formatter("%(message)s"))

    def full(self: object, record: logging.LogRecord) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(logging.FileHandler, "emit", full)
    record = logging.makeLogRecord({"msg": "hello", "levelno": logging.INFO, "levelname": "INFO"})
    try:
        raise OSError(28, "No space left on device")
    except OSError:
        handler.handleError(record)
    handler.emit(record)  # paused: not even attempted
    handler.close()
    err = capsys.readouterr().err
    assert err.count("file logging paused") == 1
    assert "No space left on device" in err


def test_reconfiguring_replaces_our_handlers_instead_of_stacking(settings: Settings) -> None:
    configure_logging(settings)
    configure_logging(settings)
    ours = [h for h in logging.getLogger().handlers if getattr(h, "_ops_handler", False)]
    assert len(ours) == 2  # console + file


def test_the_json_file_rotates_at_its_size_limit(tmp_path: Path) -> None:
    handler = SafeRotatingFileHandler(tmp_path / "server.jsonl")
    handler.maxBytes = 500
    handler.setFormatter(ops_logging.JsonFormatter())
    for number in range(40):
        handler.emit(logging.makeLogRecord({"msg": f"line {number}", "levelno": 20, "levelname": "INFO"}))
    handler.close()
    assert (tmp_path / "server.jsonl.1").is_file()
    assert (tmp_path / "server.jsonl").stat().st_size <= 500 + 200


def test_every_handler_sees_redacted_records_not_only_ours(settings: Settings,
                                                           caplog: pytest.LogCaptureFixture) -> None:
    configure_logging(settings, console=False)
    caplog.set_level(logging.INFO, logger="tests.other")
    logging.getLogger("tests.other").info("forwarding header Authorization: Bearer %s", "abcdefghijklmnop123")
    assert "abcdefghijklmnop123" not in caplog.records[-1].getMessage()
    assert "Bearer [REDACTED]" in caplog.text
