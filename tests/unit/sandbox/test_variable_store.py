"""Variables round-trip through the store without pickle: Parquet, NPY, JSON and PNG, with a validated catalog."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from backend.sandbox import child_vars
from backend.storage.variables import VariableMeta, VariableStore


def _roundtrip(tmp_path: Path, name: str, value: object) -> tuple[VariableMeta, object]:
    meta = child_vars.save(name, value, str(tmp_path))
    assert meta is not None
    store = VariableStore(root=tmp_path)
    store.update(saved=[meta])
    entry = store.get(name)
    assert entry is not None
    return entry, child_vars.load(entry.model_dump(), str(tmp_path))


def test_dataframe_roundtrips_through_parquet(tmp_path: Path) -> None:
    df = pd.DataFrame({"region": ["n", "s"], "amount": [1.5, 2.5]})
    meta, loaded = _roundtrip(tmp_path, "df", df)
    assert meta.kind == "dataframe" and meta.file == "df.parquet"
    assert meta.columns == ["region", "amount"]
    pd.testing.assert_frame_equal(loaded, df)


def test_series_roundtrips_as_a_series(tmp_path: Path) -> None:
    s = pd.Series([1, 2, 3], name="totals")
    meta, loaded = _roundtrip(tmp_path, "s", s)
    assert meta.kind == "series"
    pd.testing.assert_series_equal(loaded, s)


def test_ndarray_roundtrips_through_npy_without_pickle(tmp_path: Path) -> None:
    arr = np.arange(12, dtype=np.float32).reshape(3, 4)
    meta, loaded = _roundtrip(tmp_path, "arr", arr)
    assert meta.kind == "ndarray" and meta.dtype == "float32"
    np.testing.assert_array_equal(loaded, arr)


def test_json_value_roundtrips(tmp_path: Path) -> None:
    value = {"answer": 42, "names": ["a", "b"], "ratio": 0.5}
    meta, loaded = _roundtrip(tmp_path, "result", value)
    assert meta.kind == "json"
    assert loaded == value


def test_figure_is_saved_as_png_and_not_reloaded(tmp_path: Path) -> None:
    fig, ax = plt.subplots()
    ax.plot([1, 2, 3])
    meta = child_vars.save("fig", fig, str(tmp_path))
    plt.close(fig)
    assert meta is not None and meta["kind"] == "figure"
    assert (tmp_path / "fig.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match="not restored"):
        child_vars.load(meta, str(tmp_path))


@pytest.mark.parametrize(
    "value", [np.array([object()], dtype=object), (1, 2), {1: "int key"}, object(), lambda: 1], ids=repr
)
def test_values_that_would_need_pickle_or_change_type_are_not_persisted(value: object) -> None:
    assert child_vars.kind_of(value) is None


def test_catalog_ignores_entries_with_paths_outside_the_store(tmp_path: Path) -> None:
    bad = {"name": "x", "kind": "json", "file": "../../etc/passwd"}
    (tmp_path / "catalog.json").write_text(json.dumps({"variables": [bad]}))
    assert VariableStore(root=tmp_path).catalog() == []


def test_catalog_that_is_a_symlink_is_not_followed(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere.json"
    target.write_text(json.dumps({"variables": [{"name": "x", "kind": "json", "file": "x.json"}]}))
    (tmp_path / "x.json").write_text("1")
    (tmp_path / "catalog.json").symlink_to(target)
    assert VariableStore(root=tmp_path).catalog() == []


def test_changing_kind_replaces_the_old_file(tmp_path: Path) -> None:
    store = VariableStore(root=tmp_path)
    store.update(saved=[child_vars.save("v", pd.DataFrame({"a": [1]}), str(tmp_path))])
    store.update(saved=[child_vars.save("v", 3, str(tmp_path))])
    assert not (tmp_path / "v.parquet").exists()
    assert [m.file for m in store.catalog()] == ["v.json"]


def test_deleted_variables_leave_the_catalog_and_disk(tmp_path: Path) -> None:
    store = VariableStore(root=tmp_path)
    store.update(saved=[child_vars.save("gone", [1, 2], str(tmp_path))])
    store.update(saved=[], deleted=["gone"])
    assert store.catalog() == []
    assert not (tmp_path / "gone.json").exists()


def test_render_lists_columns_and_load_snippet_within_budget(tmp_path: Path) -> None:
    store = VariableStore(root=tmp_path)
    store.update(saved=[child_vars.save("sales", pd.DataFrame({"Fare": [1.0]}), str(tmp_path))])
    text = store.render(max_chars=2000)
    assert "sales: DataFrame shape (1, 1) columns [Fare:float64]" in text
    assert "pd.read_parquet('/sandbox/vars/sales.parquet')" in text
    assert len(store.render(max_chars=60)) <= 60
