"""File descriptions for prompts: exact columns and dtypes, shapes, load hints, bounded work, typed errors."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from backend.storage import inspect as inspect_module
from backend.storage.inspect import FileInspectionError, describe_file


def write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


def test_csv_lists_exact_column_names_with_dtypes_and_shape(tmp_path: Path) -> None:
    path = write(tmp_path / "t.csv", "Name,Fare,Pclass\nAnn,7.25,3\nBob,71.5,1\n")
    desc = describe_file(path)
    assert [(c.name, c.dtype) for c in desc.columns][1:] == [("Fare", "float64"), ("Pclass", "int64")]
    prompt = desc.as_prompt()
    assert "2 rows x 3 columns" in prompt and "'Fare' float64: range 7.25..71.5" in prompt


def test_few_distinct_text_values_are_all_listed(tmp_path: Path) -> None:
    path = write(tmp_path / "t.csv", "Sex\nmale\nfemale\nmale\n")
    assert "values 'male', 'female'" in describe_file(path).as_prompt()


def test_head_rows_are_bounded_by_max_rows(tmp_path: Path) -> None:
    path = write(tmp_path / "t.csv", "a\n" + "\n".join(str(i) for i in range(50)) + "\n")
    head = describe_file(path, max_rows=2).head
    assert head.splitlines() == ["a", "0", "1"]


def test_missing_values_are_counted(tmp_path: Path) -> None:
    path = write(tmp_path / "t.csv", "Age,Name\n1,a\n,b\n3,c\n")
    assert "1 missing" in describe_file(path).as_prompt()


def test_semicolon_delimiter_is_detected_and_shown_in_load_hint(tmp_path: Path) -> None:
    path = write(tmp_path / "eu.csv", "city;price\nRome;1,5\nParis;2,0\n")
    desc = describe_file(path)
    assert [c.name for c in desc.columns] == ["city", "price"]
    assert desc.load_hint == "pd.read_csv('eu.csv', sep=';')"


def test_latin1_file_gets_an_encoding_hint(tmp_path: Path) -> None:
    path = write(tmp_path / "l.csv", "città,n\nMünchen,1\n", encoding="latin-1")
    desc = describe_file(path)
    assert "encoding='latin-1'" in desc.load_hint and desc.columns[0].name == "città"


def test_tsv_uses_tab_separator(tmp_path: Path) -> None:
    desc = describe_file(write(tmp_path / "t.tsv", "a\tb\n1\t2\n"))
    assert [c.name for c in desc.columns] == ["a", "b"] and "sep='\\t'" in desc.load_hint


def test_display_name_overrides_the_stored_file_name(tmp_path: Path) -> None:
    path = write(tmp_path / "f_123.csv", "a\n1\n")
    assert describe_file(path, name="sales.csv").load_hint == "pd.read_csv('sales.csv')"


def test_large_csv_is_sampled_and_its_row_count_estimated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(inspect_module, "FULL_READ_BYTES", 100)
    monkeypatch.setattr(inspect_module, "SAMPLE_ROWS", 10)
    path = write(tmp_path / "big.csv", "x\n" + "\n".join(str(i) for i in range(1000)) + "\n")
    desc = describe_file(path)
    assert desc.rows == 1000 and not desc.rows_exact
    assert desc.columns[0].maximum == "9"  # statistics come from the sample only
    assert "~1000 rows" in desc.as_prompt() and "first 10 rows" in desc.as_prompt()


def test_carriage_return_only_csv_is_read(tmp_path: Path) -> None:
    path = write(tmp_path / "mac.csv", "a,b\r1,2\r3,4\r")
    assert describe_file(path).rows == 2


def test_excel_lists_sheets_and_columns(tmp_path: Path) -> None:
    path = tmp_path / "book.xlsx"
    with pd.ExcelWriter(path) as writer:
        pd.DataFrame({"Revenue": [1.5, 2.5]}).to_excel(writer, sheet_name="Q1", index=False)
        pd.DataFrame({"Cost": [1]}).to_excel(writer, sheet_name="Q2", index=False)
    desc = describe_file(path)
    assert desc.sheets == ["Q1", "Q2"] and desc.columns[0].name == "Revenue" and desc.rows == 2
    assert "Sheets: Q1, Q2" in desc.as_prompt()


def test_parquet_row_count_comes_from_metadata(tmp_path: Path) -> None:
    path = tmp_path / "p.parquet"
    pd.DataFrame({"v": range(25)}).to_parquet(path)
    desc = describe_file(path)
    assert desc.rows == 25 and desc.columns[0].dtype == "int64" and desc.format == "Parquet"


def test_json_records_are_described_as_a_table(tmp_path: Path) -> None:
    path = write(tmp_path / "r.json", json.dumps([{"id": 1, "score": 0.5}, {"id": 2, "score": 0.7}]))
    desc = describe_file(path)
    assert desc.kind == "table" and [c.name for c in desc.columns] == ["id", "score"]


def test_json_object_is_outlined_by_keys(tmp_path: Path) -> None:
    desc = describe_file(write(tmp_path / "c.json", json.dumps({"version": 2, "items": [1, 2]})))
    assert desc.kind == "json" and "'version': int" in desc.preview and "'items': list" in desc.preview


def test_pdf_reports_its_page_count(tmp_path: Path) -> None:
    from pypdf import PdfWriter

    writer = PdfWriter()
    for _ in range(3):
        writer.add_blank_page(width=200, height=200)
    path = tmp_path / "doc.pdf"
    with path.open("wb") as handle:
        writer.write(handle)
    desc = describe_file(path)
    assert desc.kind == "pdf" and desc.pages == 3 and "3 pages" in desc.as_prompt()


def test_text_file_gets_line_count_and_preview(tmp_path: Path) -> None:
    desc = describe_file(write(tmp_path / "notes.txt", "alpha\nbeta\ngamma"))
    assert desc.kind == "text" and desc.rows == 3 and desc.preview.startswith("alpha")


def test_prompt_is_bounded_for_wide_tables(tmp_path: Path) -> None:
    header = ",".join(f"col_{i}" for i in range(300))
    path = write(tmp_path / "wide.csv", header + "\n" + ",".join("1" for _ in range(300)) + "\n")
    prompt = describe_file(path).as_prompt(max_chars=2000)
    assert len(prompt) <= 2000 and "'col_0' int64" in prompt


def test_missing_file_raises_a_typed_error(tmp_path: Path) -> None:
    with pytest.raises(FileInspectionError, match="no such file"):
        describe_file(tmp_path / "absent.csv")


def test_corrupt_parquet_raises_a_typed_error(tmp_path: Path) -> None:
    path = tmp_path / "bad.parquet"
    path.write_bytes(b"garbage")
    with pytest.raises(FileInspectionError, match=r"cannot read bad\.parquet"):
        describe_file(path)


def test_binary_file_of_unknown_type_is_not_parsed(tmp_path: Path) -> None:
    path = tmp_path / "blob.bin"
    path.write_bytes(b"\x00\x01\x02")
    assert describe_file(path).kind == "unknown"


def test_json_lines_are_described_as_a_table_with_a_lines_hint(tmp_path: Path) -> None:
    desc = describe_file(write(tmp_path / "e.jsonl", '{"a": 1, "b": "x"}\n{"a": 2, "b": "y"}\n'))
    assert desc.rows == 2 and [c.name for c in desc.columns] == ["a", "b"]
    assert desc.load_hint == "pd.read_json('e.jsonl', lines=True)"


def test_utf8_bom_needs_no_encoding_hint(tmp_path: Path) -> None:
    desc = describe_file(write(tmp_path / "b.csv", "\ufeffwage,educ\n5.7,14\n"))
    assert desc.columns[0].name == "wage" and desc.load_hint == "pd.read_csv('b.csv')"
