"""The admin CLI: `users`, `cleanup --dry-run` and `doctor`, run through `python -m backend`'s dispatcher."""

from __future__ import annotations

import io
import os
import time
from pathlib import Path

import pytest

from backend.__main__ import main

DAY = 86400.0


@pytest.fixture(autouse=True)
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    data = tmp_path / "data"
    monkeypatch.setenv("APP_DATA_DIR", str(data))
    monkeypatch.setenv("APP_LLM_PROVIDERS", "fake")
    monkeypatch.setenv("APP_JWT_SECRET", "j" * 48)
    monkeypatch.chdir(tmp_path)  # no stray .env
    return data


def users(*argv: str, stdin: str = "", monkeypatch: pytest.MonkeyPatch | None = None) -> int:
    if monkeypatch is not None:
        monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    return main(["users", *argv])


def test_users_create_list_disable_enable(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    assert users("create", "ada", "--admin", "--password-stdin", stdin="long enough pw\n", monkeypatch=monkeypatch) == 0
    assert users("create", "bob", "--password-stdin", stdin="long enough pw\n", monkeypatch=monkeypatch) == 0
    assert users("disable", "bob") == 0
    capsys.readouterr()
    assert users("list") == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split()[:4] == ["USERNAME", "ADMIN", "STATUS", "CONVERSATIONS"]
    assert table[2].split()[:3] == ["ada", "yes", "active"]
    assert table[3].split()[:2] == ["bob", "DISABLED"]
    assert users("enable", "bob") == 0
    assert "bob is now active" in capsys.readouterr().out


def test_users_refuses_bad_input_with_a_message(monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    assert users("create", "x", "--password-stdin", stdin="long enough pw\n", monkeypatch=monkeypatch) == 1
    assert "username must be 3-64" in capsys.readouterr().err
    assert users("create", "carol", "--password-stdin", stdin="short\n", monkeypatch=monkeypatch) == 1
    assert "password must have 8-256 characters" in capsys.readouterr().err
    users("create", "carol", "--password-stdin", stdin="long enough pw\n", monkeypatch=monkeypatch)
    assert users("create", "carol", "--password-stdin", stdin="long enough pw\n", monkeypatch=monkeypatch) == 1
    assert "taken" in capsys.readouterr().err
    assert users("disable", "nobody") == 1
    assert "no user named 'nobody'" in capsys.readouterr().err


def test_users_delete_removes_the_account_and_its_files(env: Path, monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    users("create", "dora", "--password-stdin", stdin="long enough pw\n", monkeypatch=monkeypatch)
    user_id = capsys.readouterr().out.split("(")[-1].rstrip(")\n")
    (env / "uploads" / user_id).mkdir(parents=True)
    (env / "uploads" / user_id / "f.csv").write_text("a\n")
    assert users("delete", "dora", "--yes") == 0
    assert "deleted dora" in capsys.readouterr().out
    assert not (env / "uploads" / user_id).exists()
    assert users("disable", "dora") == 1


def test_cleanup_dry_run_prints_what_would_go_and_keeps_it(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    orphan = env / "sessions" / "orphan-session"
    (orphan / "work").mkdir(parents=True)
    (orphan / "work" / "big.csv").write_bytes(b"x" * 2048)
    stamp = time.time() - 3 * DAY
    for path in (orphan / "work" / "big.csv", orphan / "work", orphan):
        os.utime(path, (stamp, stamp))
    assert main(["cleanup", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "session" in out and "orphan-session" in out and "conversation no longer exists" in out
    assert "would remove 1 item(s)" in out
    assert orphan.is_dir()
    assert main(["cleanup"]) == 0
    assert "removed 1 item(s)" in capsys.readouterr().out
    assert not orphan.exists()


def test_doctor_prints_a_table_of_checks(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["doctor", "--skip", "chroma", "--skip", "sandbox"]) == 0
    out = capsys.readouterr().out
    names = [line.split("  ")[0].strip() for line in out.splitlines()[2:] if line.strip() and "ok," not in line]
    assert names == ["disk space", "data dir", "log dir", "database", "model file", "providers", "embedder",
                     "checkpoints"]
    assert "chain: fake" in out


def test_doctor_fails_when_the_disk_is_nearly_full(monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("APP_MIN_FREE_DISK_MB", str(10**9))
    assert main(["doctor", "--skip", "chroma", "--skip", "sandbox"]) == 1
    line = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("disk space"))
    assert "FAIL" in line and "cleanup --dry-run" in line


def test_doctor_names_a_database_newer_than_the_server(env: Path, monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    from sqlalchemy.orm import Session

    from backend.storage.db import SCHEMA_VERSION, create_db_engine, init_schema
    from backend.storage.models import SchemaVersion

    engine = create_db_engine(f"sqlite:///{env / 'app.db'}")
    init_schema(engine)
    with Session(engine) as session, session.begin():
        session.add(SchemaVersion(version=SCHEMA_VERSION + 1))
    engine.dispose()
    assert main(["doctor", "--skip", "chroma", "--skip", "sandbox"]) == 1
    line = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("database"))
    assert "FAIL" in line and "newer than this server" in line
