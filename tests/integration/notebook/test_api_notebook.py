"""API_examples.ipynb runs top to bottom (nbclient) against a server it starts itself on the scripted demo model."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[3]
NOTEBOOK = ROOT / "API_examples.ipynb"
CELL_TIMEOUT_SECONDS = 300
"""Start-up of the server it launches (imports, sandbox) dominates; a demo answer takes about a second."""


def outputs_text(notebook: nbformat.NotebookNode) -> str:
    parts = []
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            parts.append(output.get("text", "") or "".join(output.get("data", {}).get("text/plain", "")))
    return "\n".join(parts)


@pytest.fixture(scope="module")
def executed(tmp_path_factory: pytest.TempPathFactory) -> nbformat.NotebookNode:
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    mp = pytest.MonkeyPatch()
    mp.setenv("TOUR_MODEL", "fake")
    mp.setenv("TOUR_API_URL", "")
    mp.setenv("APP_DATA_DIR", str(tmp_path_factory.mktemp("notebook-data")))
    mp.setenv("APP_SANDBOX_POOL_SIZE", "0")
    try:
        NotebookClient(notebook, timeout=CELL_TIMEOUT_SECONDS, kernel_name="python3",
                       resources={"metadata": {"path": str(ROOT)}}).execute()
    finally:
        mp.undo()
    return notebook


def test_every_cell_runs_without_error(executed: nbformat.NotebookNode) -> None:
    errors = [o for cell in executed.cells for o in cell.get("outputs", []) if o.get("output_type") == "error"]
    assert errors == []


def test_first_answer_has_the_averages_the_sandbox_computed(executed: nbformat.NotebookNode) -> None:
    # East: (143.2 + 150.8 + 139.6) / 3 = 144.53
    assert "144.53" in outputs_text(executed)


def test_follow_up_reuses_the_variable_and_names_the_top_region(executed: nbformat.NotebookNode) -> None:
    text = outputs_text(executed)
    assert "avg_revenue_by_region.idxmax()" in text
    assert "Highest: East (144.53)" in text


def test_streamed_run_produced_a_figure_shown_inline(executed: nbformat.NotebookNode) -> None:
    images = [o for cell in executed.cells for o in cell.get("outputs", []) if "image/png" in o.get("data", {})]
    assert images


def test_trace_lists_the_python_coder_step(executed: nbformat.NotebookNode) -> None:
    assert "python_coder" in outputs_text(executed)


def test_pdf_answer_quotes_the_document(executed: nbformat.NotebookNode) -> None:
    assert "120 EUR per night" in outputs_text(executed)


def test_conversation_list_shows_the_tour_conversations(executed: nbformat.NotebookNode) -> None:
    assert "What is the average revenue by region?" in outputs_text(executed)
