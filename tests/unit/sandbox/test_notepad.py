"""The notepad keeps findings per conversation as JSON lines and renders the newest within a budget."""

from __future__ import annotations

from pathlib import Path

import pytest

from backend.storage.notepad import Notepad, save_code


def test_entries_roundtrip_in_order(tmp_path: Path) -> None:
    pad = Notepad(path=tmp_path / "notepad.jsonl")
    pad.add(question="mean fare?", finding="32.2", variables=["df"], code_files=["001_mean_fare.py"])
    pad.add(question="max age?", finding="80")
    entries = pad.entries()
    assert [e.question for e in entries] == ["mean fare?", "max age?"]
    assert entries[0].variables == ["df"] and entries[0].code_files == ["001_mean_fare.py"]


def test_a_corrupt_line_does_not_lose_the_other_entries(tmp_path: Path) -> None:
    pad = Notepad(path=tmp_path / "notepad.jsonl")
    pad.add(question="q1", finding="f1")
    with pad.path.open("a") as fh:
        fh.write("{not json\n")
    pad.add(question="q2", finding="f2")
    assert [e.finding for e in pad.entries()] == ["f1", "f2"]


def test_render_keeps_the_newest_entries_within_the_budget(tmp_path: Path) -> None:
    pad = Notepad(path=tmp_path / "notepad.jsonl")
    for i in range(50):
        pad.add(question=f"question {i}", finding=f"finding {i}")
    text = pad.render(max_chars=300)
    assert len(text) <= 300
    assert "finding 49" in text
    assert "finding 0\n" not in text


def test_empty_entry_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="question or a finding"):
        Notepad(path=tmp_path / "n.jsonl").add(question=" ", finding="")


def test_saved_code_gets_a_numbered_descriptive_name(tmp_path: Path) -> None:
    first = save_code("conv1", "print(1)", title="Mean fare by class!", sessions_dir=tmp_path)
    second = save_code("conv1", "print(2)", title="Mean fare by class!", sessions_dir=tmp_path)
    assert first.name == "001_mean_fare_by_class.py"
    assert second.name == "002_mean_fare_by_class.py"
    assert first.read_text() == "# Mean fare by class!\nprint(1)"


def test_save_code_refuses_a_session_id_that_is_a_path(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="session id"):
        save_code("../x", "print(1)", title="t", sessions_dir=tmp_path)
