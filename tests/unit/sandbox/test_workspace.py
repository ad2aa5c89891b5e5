"""Host-side session directories: slot adoption, upload staging, workdir diffs and symlink clean-up."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from backend.sandbox.workspace import (
    BadSessionId,
    BadUploadName,
    adopt_slot,
    changed_files,
    check_session_id,
    remove_escaping_symlinks,
    snapshot,
    stage_uploads,
    sweep_stale_slots,
)


@pytest.mark.parametrize("bad", ["", "../x", "a/b", ".pool", "x" * 200, "a b", "é"])
def test_session_ids_that_could_be_paths_are_refused(bad: str) -> None:
    with pytest.raises(BadSessionId):
        check_session_id(bad)


def test_adopting_a_slot_keeps_the_slot_inode_and_merges_existing_files(tmp_path: Path) -> None:
    slot = tmp_path / "slot"
    (slot / "work").mkdir(parents=True)
    (slot / "vars").mkdir()
    inode = (slot / "work").stat().st_ino
    session = tmp_path / "s1"
    (session / "work").mkdir(parents=True)
    (session / "work" / "earlier.csv").write_text("a\n1\n")
    adopt_slot(slot=slot, session_dir=session)
    assert (session / "work").stat().st_ino == inode
    assert (session / "work" / "earlier.csv").read_text() == "a\n1\n"
    assert not slot.exists()


def test_uploads_appear_read_only_under_their_names(tmp_path: Path) -> None:
    upload = tmp_path / "uploads" / "abc123"
    upload.parent.mkdir()
    upload.write_text("x,y\n1,2\n")
    work = tmp_path / "work"
    work.mkdir()
    assert stage_uploads(work=work, files={"sales.csv": upload}) == ["sales.csv"]
    staged = work / "sales.csv"
    assert staged.read_text() == "x,y\n1,2\n"
    assert not staged.stat().st_mode & 0o222 or staged.stat().st_ino == upload.stat().st_ino


@pytest.mark.parametrize("name", ["../escape.csv", "a/b.csv", ".hidden", "", "x" * 300])
def test_upload_names_that_are_not_plain_file_names_are_refused(tmp_path: Path, name: str) -> None:
    src = tmp_path / "f"
    src.write_text("1")
    with pytest.raises(BadUploadName):
        stage_uploads(work=tmp_path, files={name: src})


def test_changed_files_lists_new_and_modified_regular_files_only(tmp_path: Path) -> None:
    (tmp_path / "old.txt").write_text("1")
    before = snapshot(tmp_path)
    (tmp_path / "new.txt").write_text("2")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "deep.png").write_bytes(b"x")
    os.symlink("/etc/hostname", tmp_path / "link")
    assert changed_files(before, snapshot(tmp_path)) == ["new.txt", "sub/deep.png"]


def test_symlinks_pointing_outside_the_workdir_are_removed(tmp_path: Path) -> None:
    (tmp_path / "data.csv").write_text("1")
    os.symlink("data.csv", tmp_path / "inside")
    os.symlink("/etc/passwd", tmp_path / "outside")
    os.symlink("../../x", tmp_path / "dotdot")
    assert sorted(remove_escaping_symlinks(tmp_path)) == ["dotdot", "outside"]
    assert (tmp_path / "inside").is_symlink()


def test_pool_slots_of_dead_servers_are_swept_and_live_ones_kept(tmp_path: Path) -> None:
    dead = subprocess.Popen(["true"])
    dead.wait()
    (tmp_path / ".pool" / f"{dead.pid}-abc" / "work").mkdir(parents=True)
    (tmp_path / ".pool" / f"{os.getpid()}-mine").mkdir()
    (tmp_path / ".pool" / "1-init").mkdir()
    assert sweep_stale_slots(tmp_path) == [f"{dead.pid}-abc"]
    assert sorted(p.name for p in (tmp_path / ".pool").iterdir()) == sorted([f"{os.getpid()}-mine", "1-init"])


def test_staging_replaces_a_planted_symlink_instead_of_writing_through_it(tmp_path: Path) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("original")
    work = tmp_path / "work"
    work.mkdir()
    os.symlink(victim, work / "sales.csv")
    upload = tmp_path / "upload"
    upload.write_text("a,b\n")
    stage_uploads(work=work, files={"sales.csv": upload})
    assert victim.read_text() == "original"
    assert not (work / "sales.csv").is_symlink()
    assert (work / "sales.csv").read_text() == "a,b\n"
