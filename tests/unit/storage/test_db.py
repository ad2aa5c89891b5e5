"""Engine and schema bootstrap: SQLite in WAL mode with foreign keys, versioned creation and upgrades."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, inspect, select, text
from sqlalchemy.orm import Session

import backend.storage.db as db
from backend.core.settings import Settings
from backend.storage.models import ApiKey, Base, SchemaVersion, User


@pytest.fixture
def engine(settings: Settings) -> Engine:
    return db.create_db_engine(settings.resolved_database_url)


def test_sqlite_runs_in_wal_mode_with_foreign_keys(engine: Engine, settings: Settings) -> None:
    with engine.connect() as connection:
        assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert connection.execute(text("PRAGMA foreign_keys")).scalar() == 1
    assert (settings.data_dir / "app.db").exists()


def test_fresh_database_is_created_at_the_current_version(engine: Engine) -> None:
    assert db.init_schema(engine) == db.SCHEMA_VERSION
    with Session(engine) as session:
        assert session.scalars(select(SchemaVersion.version)).all() == [db.SCHEMA_VERSION]


def test_init_is_idempotent(engine: Engine) -> None:
    db.init_schema(engine)
    db.init_schema(engine)
    with Session(engine) as session:
        assert len(session.scalars(select(SchemaVersion.version)).all()) == 1


def test_older_database_is_migrated_step_by_step(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    db.init_schema(engine)
    applied: list[int] = []
    first, second = db.SCHEMA_VERSION + 1, db.SCHEMA_VERSION + 2
    monkeypatch.setattr(db, "SCHEMA_VERSION", second)
    monkeypatch.setattr(db, "MIGRATIONS", {first: lambda e: applied.append(first),
                                           second: lambda e: applied.append(second)})
    assert db.init_schema(engine) == second
    assert applied == [first, second]


def test_a_version_1_database_gains_the_api_keys_table_and_keeps_its_rows(engine: Engine) -> None:
    v1_tables = [table for name, table in Base.metadata.tables.items() if name != "api_keys"]
    Base.metadata.create_all(engine, tables=v1_tables)
    with Session(engine) as session, session.begin():
        session.add(SchemaVersion(version=1))
        session.add(User(id="u1", username="old-user", password_hash="x"))
    assert not inspect(engine).has_table("api_keys")
    assert db.init_schema(engine) == 2
    assert inspect(engine).has_table("api_keys")
    with Session(engine) as session, session.begin():
        assert session.get(User, "u1") is not None
        session.add(ApiKey(user_id="u1", name="k", prefix="ask-abc", key_hash="0" * 64))
    with Session(engine) as session:
        assert session.scalars(select(SchemaVersion.version).order_by(SchemaVersion.version)).all() == [1, 2]
        assert session.scalars(select(ApiKey.name)).all() == ["k"]


def test_database_from_a_newer_server_is_refused(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    db.init_schema(engine)
    monkeypatch.setattr(db, "SCHEMA_VERSION", 0)
    with pytest.raises(db.SchemaError, match="newer"):
        db.init_schema(engine)


def test_a_missing_migration_step_is_an_error(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    db.init_schema(engine)
    monkeypatch.setattr(db, "SCHEMA_VERSION", db.SCHEMA_VERSION + 1)
    with pytest.raises(db.SchemaError, match="no migration"):
        db.init_schema(engine)
