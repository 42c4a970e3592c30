"""Graded assignments: the student release holds no solution, and every check
means something: it fails on the stub a student starts from (nbgrader's
`validate --invert`, done here with nbclient), and passes on the instructor's
solution (nbval runs the instructor notebooks in `make test`)."""

import json
import os
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from labserver.assignments import (STUB, AssignmentError, build, exercises, leaked_solutions,
                                   student_notebook, student_source)

KIT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((KIT / "notebooks").glob("*.ipynb"))
# What a check cell may fail with on a stub: the check's own verdict, the stub
# itself, or a name the unfinished exercise never defined.
FAILURES_OF_A_STUB = {"CheckFailed", "NotImplementedError", "NameError"}


def test_a_solution_becomes_a_stub_at_its_indentation():
    source = ("def f(x):\n    \"doc\"\n    ### BEGIN SOLUTION\n    return x + 1\n    ### END SOLUTION\n"
              "print(f)\n")
    assert student_source(source) == f"def f(x):\n    \"doc\"\n    {STUB}\nprint(f)\n"


def test_hidden_tests_disappear():
    source = "check(a)\n### BEGIN HIDDEN TESTS\ncheck_more(a)\n### END HIDDEN TESTS\n"
    assert student_source(source) == "check(a)\n"


@pytest.mark.parametrize("source", [
    "### BEGIN SOLUTION\nx = 1\n",                       # never closed
    "x = 1\n### END SOLUTION\n",                         # closed, never opened
    "### BEGIN SOLUTION\n### BEGIN HIDDEN TESTS\n",      # nested
])
def test_unpaired_markers_are_refused(source):
    with pytest.raises(AssignmentError):
        student_source(source)


def test_the_leak_check_finds_a_solution_left_behind():
    instructor = {"cells": [{"cell_type": "code", "source": ["### BEGIN SOLUTION\n", "answer = compute_the_secret()\n",
                                                              "### END SOLUTION\n"]}]}
    student = {"cells": [{"cell_type": "code", "source": ["answer = compute_the_secret()\n"]}]}
    assert leaked_solutions(instructor, student) == ["answer = compute_the_secret()"]
    assert leaked_solutions(instructor, student_notebook(instructor)) == []


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    out = tmp_path_factory.mktemp("student")
    build(out, KIT, force=True)
    return out


def test_the_release_is_complete(release):
    assert sorted(p.name for p in (release / "notebooks").glob("*.ipynb")) == [p.name for p in NOTEBOOKS]
    assert (release / ".github" / "workflows" / "classroom.yml").is_file()
    assert (release / "labserver" / "__init__.py").is_file() and (release / "pyproject.toml").is_file()
    assert (release / "project" / "server.py").is_file(), "the project starter is missing"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_no_solution_reaches_students(path, release):
    instructor = json.loads(path.read_text())
    student_text = (release / "notebooks" / path.name).read_text()
    assert "BEGIN SOLUTION" not in student_text and "BEGIN HIDDEN TESTS" not in student_text
    assert leaked_solutions(instructor, json.loads(student_text)) == []


def test_every_exercise_has_a_check():
    for path in NOTEBOOKS:
        cells = json.loads(path.read_text())["cells"]
        for i, cell in enumerate(cells):
            if "### BEGIN SOLUTION" in "".join(cell["source"]):
                following = [c for c in cells[i + 1:] if c["cell_type"] == "code"][:2]
                assert any("".join(c["source"]).lstrip().startswith("# Check") for c in following), \
                    f"{path.name} cell {i}: an exercise without a check cell after it"


def run_student_notebook(path):
    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(notebook, timeout=300, kernel_name="python3", allow_errors=True,
                            resources={"metadata": {"path": str(path.parent)}})
    client.execute()
    return notebook


def test_every_check_fails_on_its_stub(release, monkeypatch):
    monkeypatch.setenv("LABSERVER_PROFILE", os.environ.get("LABSERVER_PROFILE", "ci"))
    paths = sorted((release / "notebooks").glob("*.ipynb"))
    # Most of a lesson's time is spent waiting on sockets, so three kernels at once fit on 2 cores.
    with ThreadPoolExecutor(max_workers=3) as pool:
        executed = dict(zip(paths, pool.map(run_student_notebook, paths)))
    problems, checks = [], 0
    for path, notebook in executed.items():
        for index in exercises(notebook):
            checks += 1
            errors = [o for o in notebook.cells[index].outputs if o.output_type == "error"]
            if not errors:
                problems.append(f"{path.name} cell {index}: the check passed on the stub")
            elif errors[0].ename not in FAILURES_OF_A_STUB:
                problems.append(f"{path.name} cell {index}: failed with {errors[0].ename}: {errors[0].evalue}")
    assert checks > 0, "no check cells found"
    assert problems == []


def test_the_instructor_grades_with_hidden_checks_and_untouched_visible_ones(release, tmp_path):
    from labserver.assignments import merge_hidden

    submitted = tmp_path / "submitted"
    shutil.copytree(release / "notebooks", submitted / "notebooks")  # the release stays pristine
    student = json.loads((submitted / "notebooks" / NOTEBOOKS[-1].name).read_text())
    check = exercises(student)[0]
    student["cells"][check]["source"] = ["# Check (do not edit)\n", "pass  # a student who silenced the check\n"]
    (submitted / "notebooks" / NOTEBOOKS[-1].name).write_text(json.dumps(student))
    merged = {p.name: json.loads(p.read_text()) for p in merge_hidden(submitted, tmp_path / "graded", KIT)}
    instructor = json.loads(NOTEBOOKS[-1].read_text())
    assert merged[NOTEBOOKS[-1].name]["cells"][check]["source"] == instructor["cells"][exercises(instructor)[0]]["source"]
