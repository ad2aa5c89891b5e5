"""Model assembly from part packages: order, checksums, atomic writes, the cheap re-check and clear errors."""

from __future__ import annotations

import hashlib
import os
import sys
import types
from pathlib import Path

import pytest

from backend.core.settings import Settings
from backend.llm import model_files
from backend.llm.errors import ChecksumMismatchError, MissingPartError, ModelFileError
from backend.llm.model_registry import MODELS, PackagedModel, PartSpec

NAME = "tiny-test-model"
PART_BYTES = [b"GGUF" + b"a" * 1000, b"b" * 777, b"c" * 5]


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def parts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Three fake part packages (importable modules with get_part_path) and a registry entry for them."""
    paths = []
    specs = []
    for i, data in enumerate(PART_BYTES, start=1):
        path = tmp_path / "site" / f"part{i:02d}.bin"
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(data)
        module = types.ModuleType(f"tiny_part{i}")
        module.get_part_path = lambda p=path: str(p)  # type: ignore[attr-defined]
        monkeypatch.setitem(sys.modules, f"tiny_part{i}", module)
        paths.append(path)
        specs.append(PartSpec(f"tiny_part{i}", f"tiny-part{i}", "1.0", len(data), _sha(data)))
    whole = b"".join(PART_BYTES)
    spec = PackagedModel(NAME, "tiny.gguf", len(whole), _sha(whole), tuple(specs))
    monkeypatch.setitem(MODELS, NAME, spec)
    return paths


@pytest.fixture
def models_dir(tmp_path: Path) -> Path:
    return tmp_path / "models"


def test_parts_are_concatenated_in_order_into_the_models_dir(parts: list[Path], models_dir: Path) -> None:
    path = model_files.assemble(NAME, models_dir=models_dir, progress=False)
    assert path == models_dir / "tiny.gguf"
    assert path.read_bytes() == b"".join(PART_BYTES)


def test_assembly_leaves_no_temp_file_and_a_verified_stamp(parts: list[Path], models_dir: Path) -> None:
    model_files.assemble(NAME, models_dir=models_dir, progress=False)
    assert sorted(p.name for p in models_dir.iterdir()) == ["tiny.gguf", "tiny.gguf.verified.json"]
    assert model_files.is_verified(models_dir / "tiny.gguf", MODELS[NAME])


def test_second_run_does_not_touch_the_parts(
    parts: list[Path], models_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model_files.assemble(NAME, models_dir=models_dir, progress=False)
    mtime = (models_dir / "tiny.gguf").stat().st_mtime_ns
    for i in range(1, 4):
        monkeypatch.delitem(sys.modules, f"tiny_part{i}")  # parts now uninstalled: any access would fail
    assert model_files.assemble(NAME, models_dir=models_dir, progress=False).stat().st_mtime_ns == mtime


def test_missing_part_package_names_the_package_and_the_pip_fix(
    parts: list[Path], models_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delitem(sys.modules, "tiny_part2")
    with pytest.raises(MissingPartError, match=r"tiny-part2 is not installed; fix: pip install tiny-part2==1\.0"):
        model_files.assemble(NAME, models_dir=models_dir, progress=False)


def test_missing_part_file_names_the_file(parts: list[Path], models_dir: Path) -> None:
    parts[2].unlink()
    with pytest.raises(MissingPartError, match=r"part03\.bin"):
        model_files.assemble(NAME, models_dir=models_dir, progress=False)


def test_truncated_part_is_reported_by_size(parts: list[Path], models_dir: Path) -> None:
    parts[1].write_bytes(b"b" * 10)
    with pytest.raises(ChecksumMismatchError, match=r"tiny-part2.*10 bytes, expected 777"):
        model_files.assemble(NAME, models_dir=models_dir, progress=False)


def test_corrupt_part_names_the_part_and_leaves_nothing_behind(parts: list[Path], models_dir: Path) -> None:
    parts[1].write_bytes(b"x" * 777)  # right size, wrong bytes
    with pytest.raises(ChecksumMismatchError, match=r"tiny-part2 is corrupt .*--force-reinstall tiny-part2"):
        model_files.assemble(NAME, models_dir=models_dir, progress=False)
    assert list(models_dir.iterdir()) == []


def test_whole_file_checksum_mismatch_is_refused(
    parts: list[Path], models_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = MODELS[NAME]
    monkeypatch.setitem(MODELS, NAME, PackagedModel(spec.name, spec.filename, spec.size, "0" * 64, spec.parts))
    with pytest.raises(ChecksumMismatchError, match=r"tiny\.gguf"):
        model_files.assemble(NAME, models_dir=models_dir, progress=False)
    assert not (models_dir / "tiny.gguf").exists()


def test_a_file_changed_after_verification_is_rebuilt(parts: list[Path], models_dir: Path) -> None:
    path = model_files.assemble(NAME, models_dir=models_dir, progress=False)
    path.write_bytes(b"z" * MODELS[NAME].size)  # same size, new mtime, wrong content
    model_files.assemble(NAME, models_dir=models_dir, progress=False)
    assert path.read_bytes() == b"".join(PART_BYTES)


def test_valid_file_without_stamp_is_adopted_without_parts(
    parts: list[Path], models_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    models_dir.mkdir()
    (models_dir / "tiny.gguf").write_bytes(b"".join(PART_BYTES))
    monkeypatch.delitem(sys.modules, "tiny_part1")
    model_files.assemble(NAME, models_dir=models_dir, progress=False)
    assert model_files.is_verified(models_dir / "tiny.gguf", MODELS[NAME])


def test_stamp_from_another_mtime_does_not_count_as_verified(parts: list[Path], models_dir: Path) -> None:
    path = model_files.assemble(NAME, models_dir=models_dir, progress=False)
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    assert not model_files.is_verified(path, MODELS[NAME])


def test_unknown_model_name_lists_the_choices(models_dir: Path) -> None:
    with pytest.raises(ModelFileError, match=r"qwen2\.5-coder-0\.5b"):
        model_files.assemble("gpt-5", models_dir=models_dir)


def test_model_status_reports_presence_and_verification(
    parts: list[Path], settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(settings, "embedded_model", NAME)
    before = model_files.model_status(settings=settings)
    model_files.assemble(NAME, models_dir=settings.models_dir, progress=False)
    after = model_files.model_status(settings=settings)
    assert (before["present"], before["verified"]) == (False, False)
    assert (after["present"], after["verified"], after["size_bytes"]) == (True, True, MODELS[NAME].size)


def test_pinned_registry_sizes_add_up_to_the_model_sizes() -> None:
    for spec in (MODELS["qwen2.5-coder-1.5b"], MODELS["qwen2.5-coder-0.5b"]):
        assert sum(part.size for part in spec.parts) == spec.size


def test_cli_prints_one_error_line_and_fails(
    parts: list[Path], models_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("backend.llm.model_files._parse", lambda argv: _args(models_dir))
    monkeypatch.delitem(sys.modules, "tiny_part3")
    assert model_files.main([]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0
    assert err.startswith("error: model part package tiny-part3 is not installed")


def test_cli_reports_the_ready_model(
    parts: list[Path], models_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("backend.llm.model_files._parse", lambda argv: _args(models_dir))
    assert model_files.main([]) == 0
    assert f"model {NAME} ready" in capsys.readouterr().out


def _args(models_dir: Path) -> types.SimpleNamespace:
    return types.SimpleNamespace(command="assemble", model=NAME, models_dir=models_dir, force=False)
