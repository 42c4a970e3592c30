"""The committed state of the lessons: outputs stripped, names numbered, each importing labserver.

nbval runs the notebooks in lax mode (see README), so committed outputs would only
go stale; stripping them keeps diffs readable and students' first run clean.
"""

import json
import re
from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("*.ipynb"))


def test_there_are_notebooks():
    assert NOTEBOOKS, "notebooks/ has no lessons"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_committed_without_outputs(path):
    notebook = json.loads(path.read_text())
    for i, cell in enumerate(notebook["cells"]):
        if cell["cell_type"] == "code":
            assert cell.get("outputs") == [], f"{path.name} cell {i} has outputs: clear them before committing"
            assert cell.get("execution_count") is None, f"{path.name} cell {i} has an execution count"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_named_and_importing_labserver(path):
    assert re.fullmatch(r"\d\d-[a-z0-9]+(-[a-z0-9]+)*\.ipynb", path.name), f"{path.name}: use NN-kebab-title.ipynb"
    code = "\n".join("".join(c["source"]) for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code")
    assert re.search(r"^(import|from) labserver", code, re.M), f"{path.name} does not import labserver"


# Lessons whose demos are quick; the others are covered by their own last cell,
# nothing_left_running(), on every nbval run.
TWICE = ["00-welcome.ipynb", "05-http-by-hand.ipynb"]


@pytest.mark.parametrize("name", TWICE)
def test_a_lesson_runs_twice_in_one_kernel(name, monkeypatch):
    """Re-running a notebook from the top, as students do all day, must work:
    every server the first run started was stopped, every port freed."""
    import nbformat
    from nbclient import NotebookClient

    monkeypatch.setenv("LABSERVER_PROFILE", "ci")
    path = next(p for p in NOTEBOOKS if p.name == name)
    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(notebook, timeout=300, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}})
    with client.setup_kernel():
        for run in (1, 2):
            for index, cell in enumerate(notebook.cells):
                if cell.cell_type == "code":
                    client.execute_cell(cell, index)  # raises CellExecutionError on any failure
        last = notebook.cells[-1]
        assert "nothing_left_running" in last.source
        assert any("nothing left running" in output.get("text", "") for output in last.outputs)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_every_lesson_ends_by_checking_nothing_is_left_running(path):
    cells = json.loads(path.read_text())["cells"]
    assert "nothing_left_running()" in "".join(cells[-1]["source"]), f"{path.name}: add the tidy-up cell last"
