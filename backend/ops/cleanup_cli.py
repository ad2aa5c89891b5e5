"""`python -m backend cleanup [--dry-run]`: apply the retention policy (APP_RETENTION_DAYS, size caps) now."""

from __future__ import annotations

import argparse
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dry-run", action="store_true", help="only list what would be removed")


def main(args: argparse.Namespace) -> int:
    import asyncio

    from backend.ops.cleanup import run_cleanup
    from backend.ops.cli_support import cli_settings, open_database
    from backend.ops.table import format_table, human_bytes
    from backend.storage.db import SchemaError

    settings = cli_settings()
    try:
        engine, sessions = open_database(settings)
    except SchemaError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        report = asyncio.run(run_cleanup(settings=settings, sessions=sessions, dry_run=args.dry_run))
    finally:
        engine.dispose()
    shown = report.planned if args.dry_run else report.removed
    if shown:
        rows = [(item.kind, human_bytes(item.size_bytes), item.target, item.reason) for item in shown]
        print(format_table(("KIND", "SIZE", "TARGET", "REASON"), rows))
    for item, reason in report.kept:
        print(f"kept {item.kind} {item.target}: {reason}")
    for error in report.errors:
        print(f"error: {error}", file=sys.stderr)
    policy = f"retention {settings.retention_days} days"
    if settings.scratch_max_mb:
        policy += f", scratch cap {settings.scratch_max_mb} MB"
    if settings.artifacts_max_mb:
        policy += f", artifacts cap {settings.artifacts_max_mb} MB"
    print(f"{report.summary()} ({policy}; data dir {settings.data_dir})")
    return 1 if report.errors else 0
