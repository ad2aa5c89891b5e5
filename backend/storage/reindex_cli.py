"""`python -m backend reindex`: rebuild the Chroma index from the chunk record (heals interrupted ingests)."""

from __future__ import annotations

import argparse
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--user", default=None, help="rebuild only this user's documents (default: everyone's)")
    parser.add_argument("--quiet", action="store_true", help="print only the summary")


def main(args: argparse.Namespace) -> int:
    from backend.core.startup import load_settings
    from backend.storage.ingest import reindex
    from backend.storage.vectors import VectorIndexError, close_rag_store

    settings = load_settings()
    where = settings.chroma_url or str(settings.chroma_dir)
    print(f"reindexing {where} from {settings.data_dir / 'chunks.db'} ...", flush=True)
    say = None if args.quiet else (lambda message: print(f"  {message}", flush=True))
    try:
        report = reindex(settings=settings, user_id=args.user, progress=say)
    except VectorIndexError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        close_rag_store(settings=settings)
    print(
        f"done: {report.users} users, {report.documents} documents, {report.chunks} chunks "
        f"({report.healed} interrupted ingests healed, {report.dropped_collections} orphan collections dropped)"
    )
    for error in report.errors:
        print(f"error: {error}", file=sys.stderr)
    return 1 if report.errors else 0
