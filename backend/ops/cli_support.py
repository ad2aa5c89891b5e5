"""What the ops CLI commands share: settings with a clear error, logging, and an opened database."""

from __future__ import annotations

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from backend.core.logging import configure_logging
from backend.core.settings import Settings
from backend.storage.db import create_db_engine, init_schema, session_factory


def cli_settings() -> Settings:
    """Settings from APP_* (exit 2 naming the bad variable), with logging configured like the server's."""
    from backend.core.startup import load_settings

    settings = load_settings()
    configure_logging(settings)
    return settings


def open_database(settings: Settings) -> tuple[Engine, sessionmaker[Session]]:
    """The server's database, created or upgraded to this version's schema (SchemaError if it is newer)."""
    engine = create_db_engine(settings.resolved_database_url)
    init_schema(engine)
    return engine, session_factory(engine)
