"""Account administration used by the CLI: create, list, enable/disable, delete with all data."""

from __future__ import annotations

import asyncio

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from backend.core.settings import Settings
from backend.ops.purge import PurgeReport, purge_user
from backend.ops.table import format_table
from backend.storage.models import Conversation, User
from backend.storage.repositories import UserRepository


def create(*, sessions: sessionmaker[Session], username: str, password: str, is_admin: bool) -> User:
    """ConflictError (a ValueError) when the name is taken."""
    with sessions() as session:
        return UserRepository(session).create(username=username, password=password, is_admin=is_admin)


def _by_name(session: Session, username: str) -> User:
    user = UserRepository(session).by_username(username)
    if user is None:
        raise LookupError(f"no user named {username!r}")
    return user


def set_active(*, sessions: sessionmaker[Session], username: str, active: bool) -> User:
    """Disabled users get 403 on every request (their tokens stop working at once) and cannot sign in."""
    with sessions() as session, session.begin():
        user = _by_name(session, username)
        user.is_active = active
        return user


def list_table(*, sessions: sessionmaker[Session]) -> str:
    with sessions() as session:
        counts = dict(session.execute(
            select(Conversation.user_id, func.count()).group_by(Conversation.user_id)).tuples().all())
        users = session.scalars(select(User).order_by(User.created_at)).all()
        rows = [(u.username, "yes" if u.is_admin else "", "active" if u.is_active else "DISABLED",
                 counts.get(u.id, 0), f"{u.created_at:%Y-%m-%d %H:%M}", u.id) for u in users]
    if not rows:
        return "no users yet (python -m backend users create NAME)"
    return format_table(("USERNAME", "ADMIN", "STATUS", "CONVERSATIONS", "CREATED", "ID"), rows)


def delete(*, settings: Settings, sessions: sessionmaker[Session], username: str) -> PurgeReport:
    """Everything of the user goes (see `purge_user`); a running server's live runs end when they next write."""
    with sessions() as session:
        user_id = _by_name(session, username).id
    return asyncio.run(purge_user(settings=settings, sessions=sessions, user_id=user_id))
