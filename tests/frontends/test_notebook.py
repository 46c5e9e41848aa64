"""examples/notebook.ipynb runs from top to bottom in a Jupyter kernel of its own (nbclient,
ipykernel): an LSTM defined in a cell passes `gatecheck.check`, the same LSTM with a slip fails
with its diagnosis, and Jupyter shows both results as HTML."""

import html
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
NOTEBOOK = REPO / "examples" / "notebook.ipynb"


@pytest.fixture(scope="module")
def executed():
    import nbclient  # the test extra installs nbclient, nbformat and ipykernel: missing, an error, never a skip
    import nbformat

    notebook = nbformat.read(NOTEBOOK, as_version=4)
    # the kernel starts in the repository (the notebook's own folder would not import this tree's gatecheck
    # without an install); an error in any cell raises CellExecutionError here
    nbclient.NotebookClient(notebook, timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": str(REPO)}}).execute()
    return notebook


def _results(notebook):
    """The outputs of the cells that end with a gatecheck result: (text/plain, text/html) each."""
    found = []
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if "text/html" in data and 'class="gatecheck-result"' in data["text/html"]:
                found.append((data["text/plain"], data["text/html"]))
    return found


def test_the_notebook_checks_an_lstm_defined_in_a_cell(executed):
    (text, page), _ = _results(executed)
    verdict = text.splitlines()[0]
    assert verdict.startswith("PASS: all ") and text.splitlines()[1].startswith("  __main__:run as the lstm family")
    assert f"{html.escape(verdict)}</p>" in page


def test_the_notebook_shows_a_slip_with_its_diagnosis(executed):
    _, (text, page) = _results(executed)
    assert text.startswith("FAIL: ") and "__main__:<lambda>" in text
    assert "matches the known bug 'dh0-dropped'" in text
    assert html.escape("matches the known bug 'dh0-dropped'") in page


def test_the_notebook_is_stored_without_outputs():
    """Outputs come from running it (this test does); a stored one would go stale."""
    import json

    cells = json.loads(NOTEBOOK.read_text())["cells"]
    assert all(not c.get("outputs") and c.get("execution_count") is None for c in cells if c["cell_type"] == "code")
