"""Child-side variable handling: describe, fingerprint, save (Parquet/NPY/JSON/PNG) and load — never pickle.

Imported only by `child.py` inside the sandbox; data libraries are imported lazily so a cold worker
that never touches pandas does not pay for it.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import sys
import types
from typing import Any

PREVIEW_CHARS = 300
MAX_COLUMNS_LISTED = 50
JSON_MAX_CHARS = 2_000_000
"""JSON-able values larger than this are not persisted (they are usually better as a DataFrame)."""
FIGURE_DPI = 100
NOT_DATA = (types.ModuleType, types.FunctionType, types.BuiltinFunctionType, types.MethodType, type)


def _pd() -> Any:
    return sys.modules.get("pandas")


def _np() -> Any:
    return sys.modules.get("numpy")


def _figure_type() -> Any:
    module = sys.modules.get("matplotlib.figure")
    return module.Figure if module else None


def is_data(value: Any) -> bool:
    return not isinstance(value, NOT_DATA)


def kind_of(value: Any) -> str | None:
    """Which store format fits a value; None when it cannot be persisted without pickle."""
    pd, np, figure = _pd(), _np(), _figure_type()
    if pd is not None and isinstance(value, pd.DataFrame):
        return "dataframe"
    if pd is not None and isinstance(value, pd.Series):
        return "series"
    if np is not None and isinstance(value, np.ndarray):
        return None if value.dtype.hasobject else "ndarray"
    if figure is not None and isinstance(value, figure):
        return "figure"
    if np is not None and isinstance(value, np.generic):
        value = value.item()
    return "json" if _json_text(value, exact=True) is not None else None


def _json_text(value: Any, *, exact: bool = False) -> str | None:
    """JSON for plain values; with `exact`, only if loading it back gives an equal value (no tuple/key drift)."""
    if not isinstance(value, (bool, int, float, str, list, tuple, dict, type(None))):
        return None
    try:
        text = json.dumps(value, default=_numpy_scalar)
        if len(text) > JSON_MAX_CHARS or (exact and json.loads(text) != value):
            return None
    except (TypeError, ValueError, RecursionError):
        return None
    return text


def _numpy_scalar(value: Any) -> Any:
    np = _np()
    if np is not None and isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _shape(value: Any) -> str | None:
    shape = getattr(value, "shape", None)
    if isinstance(shape, tuple):
        return str(tuple(int(x) for x in shape))
    if isinstance(value, (list, tuple, dict, set, str)):
        return f"len {len(value)}"
    return None


def describe(name: str, value: Any) -> dict[str, Any]:
    pd = _pd()
    try:
        if pd is not None and isinstance(value, pd.DataFrame):
            preview = value.head(3).to_string(max_cols=12)
        else:
            preview = repr(value)
    except Exception as exc:
        preview = f"<unprintable: {type(exc).__name__}>"
    return {"name": name, "type": type(value).__name__, "shape": _shape(value), "preview": preview[:PREVIEW_CHARS]}


def fingerprint(value: Any) -> Any:
    """A cheap content signature used to notice in-place changes of a variable named in the code."""
    pd, np = _pd(), _np()
    try:
        if pd is not None and isinstance(value, (pd.DataFrame, pd.Series)):
            digest = int(pd.util.hash_pandas_object(value, index=True).sum())
            columns = tuple(map(str, getattr(value, "columns", ())))
            return ("pandas", value.shape, columns, digest)
        if np is not None and isinstance(value, np.ndarray) and not value.dtype.hasobject:
            import hashlib

            return ("ndarray", value.shape, str(value.dtype), hashlib.blake2b(value.tobytes()).hexdigest())
        text = _json_text(value)
        if text is not None:
            return ("json", text)
    except Exception:  # noqa: S110  (unhashable content: treat as changed below)
        pass
    return ("object", id(value), object())  # never equal: always considered changed


def _atomic(path: str, write: Any) -> None:
    """Write via a temp file; on failure (disk full, file size limit) the partial temp file is removed and the
    previous version of the variable stays as it was."""
    tmp = path + ".tmp"
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def save(name: str, value: Any, vars_dir: str) -> dict[str, Any] | None:
    kind = kind_of(value)
    if kind is None:
        return None
    meta: dict[str, Any] = {"name": name, "kind": kind, "type": type(value).__name__, "shape": _shape(value)}

    if kind in ("dataframe", "series"):
        frame = value.to_frame(name=str(value.name) if value.name is not None else name) if kind == "series" else value
        if not all(isinstance(c, str) for c in frame.columns):
            frame = frame.set_axis([str(c) for c in frame.columns], axis=1)
        meta["columns"] = [str(c) for c in frame.columns[:MAX_COLUMNS_LISTED]]
        meta["dtypes"] = [str(t) for t in frame.dtypes.iloc[:MAX_COLUMNS_LISTED]]
        meta["file"] = f"{name}.parquet"
        _atomic(os.path.join(vars_dir, meta["file"]), lambda p: frame.to_parquet(p, engine="pyarrow"))
    elif kind == "ndarray":
        meta["dtype"], meta["file"] = str(value.dtype), f"{name}.npy"

        def write_npy(p: str) -> None:
            with open(p, "wb") as fh:
                _np().save(fh, value, allow_pickle=False)

        _atomic(os.path.join(vars_dir, meta["file"]), write_npy)
    elif kind == "figure":
        meta["file"] = f"{name}.png"
        _atomic(os.path.join(vars_dir, meta["file"]), lambda p: value.savefig(p, format="png", dpi=FIGURE_DPI))
    else:
        meta["file"] = f"{name}.json"
        text = json.dumps(value, default=_numpy_scalar)
        _atomic(os.path.join(vars_dir, meta["file"]), lambda p: _write_text(p, text))
    return meta


def _write_text(path: str, text: str) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(text)


def save_all(names: list[str], ns: dict[str, Any], vars_dir: str) -> list[dict[str, Any]]:
    saved = []
    for name in names:
        try:
            meta = save(name, ns[name], vars_dir)
        except Exception as exc:
            meta = {"name": name, "error": f"{type(exc).__name__}: {exc}"[:PREVIEW_CHARS]}
        if meta is not None:
            saved.append(meta)
    return saved


def load(entry: dict[str, Any], vars_dir: str) -> Any:
    file = entry["file"]
    if os.path.basename(file) != file or file.startswith("."):
        raise ValueError(f"bad variable file name {file!r}")
    path = os.path.join(vars_dir, file)
    kind = entry["kind"]
    if kind in ("dataframe", "series"):
        import pandas as pd

        frame = pd.read_parquet(path)
        return frame.iloc[:, 0] if kind == "series" else frame
    if kind == "ndarray":
        import numpy as np

        return np.load(path, allow_pickle=False)
    if kind == "json":
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    raise ValueError(f"{kind} variables are not restored (load the file instead)")


def save_open_figures(figures_dir: str) -> list[str]:
    """Save figures the code drew but never saved (still `stale`), then close all figures."""
    plt = sys.modules.get("matplotlib.pyplot")
    if plt is None:
        return []
    written = []
    for number in plt.get_fignums():
        fig = plt.figure(number)
        if not fig.stale:
            continue
        name = _free_name(figures_dir, _slug(_figure_title(fig)) or "figure")
        fig.savefig(os.path.join(figures_dir, name), format="png", dpi=FIGURE_DPI)
        written.append(name)
    plt.close("all")
    return written


def _figure_title(fig: Any) -> str:
    if fig._suptitle is not None and fig._suptitle.get_text():
        return str(fig._suptitle.get_text())
    for ax in fig.axes:
        if ax.get_title():
            return str(ax.get_title())
    return ""


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")[:60]


def _free_name(directory: str, stem: str) -> str:
    candidate, n = f"{stem}.png", 2
    while os.path.lexists(os.path.join(directory, candidate)):
        candidate, n = f"{stem}_{n}.png", n + 1
    return candidate
