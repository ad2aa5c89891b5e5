"""Database engine and versioned schema bootstrap: SQLite (WAL) by default, any SQLAlchemy URL otherwise."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, inspect, select
from sqlalchemy.orm import Session, sessionmaker

from backend.storage.models import ApiKey, Base, SchemaVersion

log = logging.getLogger(__name__)

SCHEMA_VERSION = 2
"""Version the code expects; bump it and add a step to MIGRATIONS when a table changes."""


def _create_api_keys(engine: Engine) -> None:
    """Version 2: the `api_keys` table (OpenAI-compatible clients); nothing else changed."""
    Base.metadata.tables[ApiKey.__tablename__].create(engine, checkfirst=True)


MIGRATIONS: dict[int, Callable[[Engine], None]] = {2: _create_api_keys}
"""Upgrade steps: MIGRATIONS[n] brings a database from version n-1 to n (version 1 is the initial create_all)."""
SQLITE_BUSY_TIMEOUT_MS = 10_000
"""How long a SQLite writer waits for the lock before failing."""
POOL_SIZE = 10
POOL_OVERFLOW = 30


class SchemaError(RuntimeError):
    """The database was written by a newer version of the server, or a migration step is missing."""


def create_db_engine(url: str) -> Engine:
    """Engine for `url`; SQLite files get WAL, foreign keys and a busy timeout so concurrent writers queue."""
    if url.startswith("sqlite"):
        database = url.split("///", 1)[-1]
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
            pool_size=POOL_SIZE,
            max_overflow=POOL_OVERFLOW,
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=POOL_SIZE, max_overflow=POOL_OVERFLOW)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.close()


def init_schema(engine: Engine) -> int:
    """Create a fresh schema or upgrade an older one step by step; return the resulting version."""
    with Session(engine) as session:
        has_table = inspect(engine).has_table(SchemaVersion.__tablename__)
        latest = select(SchemaVersion.version).order_by(SchemaVersion.version.desc())
        current = session.scalar(latest) if has_table else None
    if current is None:
        Base.metadata.create_all(engine)
        _record_version(engine, SCHEMA_VERSION)
        log.info("database schema created at version %s", SCHEMA_VERSION)
        return SCHEMA_VERSION
    if current > SCHEMA_VERSION:
        raise SchemaError(f"database schema is version {current}, newer than this server ({SCHEMA_VERSION}); upgrade")
    for version in range(current + 1, SCHEMA_VERSION + 1):
        step = MIGRATIONS.get(version)
        if step is None:
            raise SchemaError(f"no migration to schema version {version}")
        step(engine)
        _record_version(engine, version)
        log.info("database schema migrated to version %s", version)
    return SCHEMA_VERSION


def _record_version(engine: Engine, version: int) -> None:
    with Session(engine) as session, session.begin():
        session.add(SchemaVersion(version=version))


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)
