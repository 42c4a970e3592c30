"""The committed state of the lessons: outputs stripped, names numbered, each importing labserver.

nbval runs the notebooks in lax mode (see README), so committed outputs would only
go stale; stripping them keeps diffs readable and students' first run clean.

The rules hold for what git holds, not for a working copy: running a lesson in
JupyterLab saves its outputs into the file, and a student's `make test` must
still pass. So the lessons are the notebooks git tracks (a scratch notebook
someone saved in notebooks/ is not one), and the outputs are checked in the
version git has staged, the one the next commit takes (`git show :path`).
Without git (a copy from a zip file) the lessons are the NN-*.ipynb files and
there is no committed version to check.
"""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LESSON_NAME = r"\d\d-[a-z0-9]+(-[a-z0-9]+)*\.ipynb"
GIT = shutil.which("git")


def git(root, *args):
    """A git command in `root` -> (exit status, stdout as text); (None, '') without git."""
    if GIT is None:
        return None, ""
    done = subprocess.run([GIT, *args], cwd=root, capture_output=True)
    return done.returncode, done.stdout.decode("utf-8")


def lessons(root=ROOT):
    """The notebooks in root/notebooks that git tracks; without git, the NN-*.ipynb ones."""
    status, listed = git(root, "ls-files", "-z", "--", "notebooks/*.ipynb")
    if status == 0:
        return sorted(root / name for name in listed.split("\0") if name)
    return sorted(p for p in (root / "notebooks").glob("*.ipynb") if re.fullmatch(LESSON_NAME, p.name))


def held_by_git(path, root=ROOT):
    """The notebook as git has it staged (what the next commit takes), or None without git."""
    status, text = git(root, "show", f":{path.relative_to(root).as_posix()}")
    return json.loads(text) if status == 0 else None


def outputs_left(notebook, name):
    """What should not be committed: outputs, execution counts, saved widget state."""
    problems = []
    for i, cell in enumerate(notebook["cells"]):
        if cell["cell_type"] == "code":
            if cell.get("outputs"):
                problems.append(f"{name} cell {i} has outputs")
            if cell.get("execution_count") is not None:
                problems.append(f"{name} cell {i} has an execution count")
    if "widgets" in notebook.get("metadata", {}):
        problems.append(f"{name} has saved widget state in its metadata")
    return problems


NOTEBOOKS = lessons()
IN_GIT = git(ROOT, "rev-parse", "--is-inside-work-tree")[0] == 0


def test_there_are_notebooks():
    assert NOTEBOOKS, "notebooks/ has no lessons"


@pytest.mark.skipif(not IN_GIT, reason="not a git checkout: there is no committed version to check")
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_committed_without_outputs(path):
    problems = outputs_left(held_by_git(path), path.name)
    assert not problems, "; ".join(problems) + ": clear the outputs (Edit > Clear Outputs of All Cells) and " \
                                               "`git add` the notebook again"


def test_outputs_saved_by_a_run_do_not_count_until_they_are_staged(tmp_path):
    # A student runs a lesson: JupyterLab saves the outputs into the working
    # copy, and a scratch notebook appears next to the lessons. Neither is a
    # committed lesson, so neither may fail the checks; staged outputs do.
    if GIT is None:
        pytest.skip("git is not installed")
    repo = tmp_path / "kit"
    (repo / "notebooks").mkdir(parents=True)
    lesson = repo / "notebooks" / "00-welcome.ipynb"
    shutil.copy(NOTEBOOKS[0], lesson)
    assert git(repo, "init", "-q")[0] == 0 and git(repo, "add", "notebooks")[0] == 0
    assert git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "lessons")[0] == 0
    run = json.loads(lesson.read_text(encoding="utf-8"))
    code = next(cell for cell in run["cells"] if cell["cell_type"] == "code")
    code["outputs"] = [{"output_type": "stream", "name": "stdout", "text": ["hello\n"]}]
    code["execution_count"] = 1
    run["metadata"]["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {}}}
    lesson.write_text(json.dumps(run), encoding="utf-8")
    (repo / "notebooks" / "Untitled.ipynb").write_text(json.dumps({"cells": [], "metadata": {}}), encoding="utf-8")

    assert lessons(repo) == [lesson]  # the scratch notebook is not a lesson
    assert outputs_left(held_by_git(lesson, repo), lesson.name) == []  # the saved outputs are not committed
    assert git(repo, "add", str(lesson))[0] == 0
    problems = outputs_left(held_by_git(lesson, repo), lesson.name)
    assert len(problems) == 3 and "saved widget state" in problems[-1]  # staged: now they count


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_named_and_importing_labserver(path):
    assert re.fullmatch(LESSON_NAME, path.name), f"{path.name}: use NN-kebab-title.ipynb"
    code = "\n".join("".join(c["source"]) for c in json.loads(path.read_text(encoding="utf-8"))["cells"]
                     if c["cell_type"] == "code")
    assert re.search(r"^(import|from) labserver", code, re.M), f"{path.name} does not import labserver"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_every_cell_has_its_own_id(path):
    """nbformat 4.5 gives each cell an id; a cell without one makes nbformat warn (an error in
    later versions), and the grader finds answer cells by id first."""
    notebook = json.loads(path.read_text(encoding="utf-8"))
    ids = [cell.get("id") for cell in notebook["cells"]]
    assert (notebook["nbformat"], notebook["nbformat_minor"]) >= (4, 5)
    assert None not in ids, f"{path.name}: cell {ids.index(None)} has no id"
    assert len(set(ids)) == len(ids), f"{path.name}: two cells share an id"


# Lessons whose demos are quick; the others are covered by their own last cell,
# nothing_left_running(), on every nbval run.
TWICE = ["00-welcome.ipynb", "09-http-by-hand.ipynb"]


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
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    assert "nothing_left_running()" in "".join(cells[-1]["source"]), f"{path.name}: add the tidy-up cell last"


def code_cell(notebook, marker):
    cells = [c for c in json.loads(notebook.read_text(encoding="utf-8"))["cells"] if c["cell_type"] == "code"]
    (cell,) = [c for c in cells if marker in "".join(c["source"])]
    return "".join(cell["source"])


def test_the_big_file_demo_survives_a_loaded_machine(monkeypatch, capsys):
    """Lesson 08's "one huge file" cell, run as the lesson runs it (CI profile),
    while other processes keep every core busy: a slow machine, where a
    download may not finish in the run. Progress counts bytes, and nothing
    the cell prints may be None."""
    monkeypatch.setenv("LABSERVER_PROFILE", "ci")
    lesson = next(p for p in NOTEBOOKS if p.name.startswith("08-"))
    setup, demo = code_cell(lesson, "P = profile()"), code_cell(lesson, "/bytes/16000000")
    burners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(os.cpu_count() or 2)]
    try:
        namespace = {}
        exec(setup, namespace)
        exec(demo, namespace)  # the cell itself: sweep, plot (in a terminal: text) and table
    finally:
        for burner in burners:
            burner.kill()
            burner.wait()
    rows = namespace["big"]
    assert [row["model"] for row in rows] == ["iterative", "threads", "threadpool", "callbacks"]
    for row in rows:
        assert row["mbps"] > 0 and row["fairness"] is not None, row  # bytes flowed, finished or not
    table = capsys.readouterr().out
    assert "threadpool" in table and "None" not in table
