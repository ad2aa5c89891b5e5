"""`python -m backend <command>`: the admin and developer CLI.

Each command lives with its room; this file only dispatches, importing a room when its command is used.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# command -> (module, one-line help). Each module exposes `add_arguments(parser)` and `main(args) -> int`.
COMMANDS: dict[str, tuple[str, str]] = {
    "ask": ("backend.llm.cli", "send one prompt through the provider chain and stream the reply"),
    "reindex": ("backend.storage.reindex_cli", "rebuild the Chroma RAG index from the chunk record"),
    "cleanup": ("backend.ops.cleanup_cli", "apply the retention policy now (--dry-run: only list what would go)"),
    "users": ("backend.ops.users_cli", "create, list, disable, enable or delete accounts"),
    "doctor": ("backend.ops.doctor", "check model file, providers, sandbox, disk, database and Chroma"),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m backend")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (module_name, help_text) in COMMANDS.items():
        sub_parser = sub.add_parser(name, help=help_text)
        sub_parser.set_defaults(_module=module_name)
        importlib.import_module(module_name).add_arguments(sub_parser)
    args = parser.parse_args(argv)
    from backend.core.logging import configure_cli_logging

    configure_cli_logging()
    result: int = importlib.import_module(args._module).main(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
