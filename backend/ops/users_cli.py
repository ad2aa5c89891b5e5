"""`python -m backend users create|list|disable|enable|delete`: manage accounts without the HTTP API."""

from __future__ import annotations

import argparse
import getpass
import re
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

    from backend.core.settings import Settings

USERNAME_PATTERN = re.compile(r"^[A-Za-z0-9_.\-]{3,64}$")
"""Same rule as registration over HTTP."""
MIN_PASSWORD_CHARS = 8
MAX_PASSWORD_CHARS = 256


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", required=True)
    create = sub.add_parser("create", help="create an account (asks for the password unless --password-stdin)")
    create.add_argument("username")
    create.add_argument("--admin", action="store_true", help="may read /metrics and administer the server")
    create.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    sub.add_parser("list", help="list accounts")
    for action, text in (("disable", "block sign-in and API use (data is kept)"), ("enable", "allow again")):
        sub.add_parser(action, help=text).add_argument("username")
    delete = sub.add_parser("delete", help="delete an account and all its data (files, runs, vectors, checkpoints)")
    delete.add_argument("username")
    delete.add_argument("--yes", action="store_true", help="do not ask for confirmation")


def _password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\n")
    first = getpass.getpass("password: ")
    if first != getpass.getpass("repeat password: "):
        raise ValueError("the passwords differ")
    return first


def main(args: argparse.Namespace) -> int:
    from backend.ops.cli_support import cli_settings, open_database
    from backend.storage.db import SchemaError

    settings = cli_settings()
    try:
        engine, sessions = open_database(settings)
    except SchemaError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        return _dispatch(args, settings=settings, sessions=sessions)
    except (ValueError, LookupError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        engine.dispose()


def _dispatch(args: argparse.Namespace, *, settings: Settings, sessions: sessionmaker[Session]) -> int:
    from backend.ops import accounts

    if args.action == "list":
        print(accounts.list_table(sessions=sessions))
        return 0
    if args.action == "create":
        if not USERNAME_PATTERN.match(args.username):
            raise ValueError("username must be 3-64 letters, digits, '_', '.' or '-'")
        password = _password(args)
        if not MIN_PASSWORD_CHARS <= len(password) <= MAX_PASSWORD_CHARS:
            raise ValueError(f"password must have {MIN_PASSWORD_CHARS}-{MAX_PASSWORD_CHARS} characters")
        user = accounts.create(sessions=sessions, username=args.username, password=password,
                               is_admin=args.admin)
        print(f"created {'admin ' if user.is_admin else ''}{user.username} ({user.id})")
        return 0
    if args.action in ("disable", "enable"):
        user = accounts.set_active(sessions=sessions, username=args.username,
                                   active=args.action == "enable")
        print(f"{user.username} is now {'active' if user.is_active else 'disabled'}")
        return 0
    if not args.yes and input(f"delete {args.username} and all their data? [y/N] ").strip().lower() != "y":
        print("nothing deleted")
        return 1
    report = accounts.delete(settings=settings, sessions=sessions, username=args.username)
    print(f"deleted {args.username}: {report.conversations} conversation(s), {report.paths_removed} path(s), "
          f"{report.documents} RAG document(s), {report.checkpoint_threads} checkpoint thread(s)")
    for note in report.notes:
        print(f"note: {note}")
    return 0
