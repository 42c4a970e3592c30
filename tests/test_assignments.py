"""Graded assignments: the release holds no solution, every check means something,
and grading gives no points to a student who tries to get them without the work.

The inverse validation (nbgrader's `validate --invert`) runs every notebook of the
release through the grader: every check fails on its stub, with a reason. nbval
runs the instructor's notebooks in `make test`: every check passes on its
solution. The cheats are tried on lesson 03, whose notebook runs in seconds.
"""

import json
import os
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nbformat
import psutil
import pytest
from nbclient import NotebookClient

from labserver.assignments import (STUB, AssignmentError, build, classroom_workflow, exercises, graded,
                                   graded_notebook, grade_submission, leaked_solutions, scan, student_notebook,
                                   student_source)
from labserver.assignments.grading import grade_notebook, prepare_copy
from labserver.assignments.release import PROJECT_POINTS, kit_notebooks, read_notebook, source_of, write_notebook
from labserver.cli import main

KIT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((KIT / "notebooks").glob("*.ipynb"))
SELECT = "03-select.ipynb"  # the quick notebook the cheats are tried on
BOUND = 180  # seconds: no grading of one quick notebook may take longer, whatever the student wrote


# The markers.


def test_a_solution_becomes_a_stub_at_its_indentation():
    source = ("def f(x):\n    \"doc\"\n    ### BEGIN SOLUTION\n    return x + 1\n    ### END SOLUTION\n"
              "print(f)\n")
    assert student_source(source) == f"def f(x):\n    \"doc\"\n    {STUB}\nprint(f)\n"


def test_hidden_tests_disappear_for_students_and_stay_for_graders():
    source = "check(a)\n### BEGIN HIDDEN TESTS\ncheck_more(a)\n### END HIDDEN TESTS\n"
    assert student_source(source) == "check(a)\n"
    assert student_source(source, keep_hidden=True) == source


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


# The lessons' exercises, as the grader sees them.


def test_every_exercise_is_named_with_points_and_every_lesson_has_hidden_checks():
    ids, hidden = [], set()
    for path in NOTEBOOKS:
        notebook = read_notebook(path)
        items = graded(notebook, path.name)
        assert len(items) == len(exercises(notebook)), f"{path.name}: a check cell without its metadata"
        for item in items:
            assert item["id"].startswith(path.name[:2] + ".") and item["points"] > 0
            assert "BEGIN SOLUTION" in source_of(notebook["cells"][item["answer"]])
            ids.append(item["id"])
            if item["hidden_points"]:
                assert "BEGIN HIDDEN TESTS" in source_of(notebook["cells"][item["check"]])
                hidden.add(path.name[:2])
    assert len(ids) == len(set(ids)), "two exercises with one id"
    assert {p.name[:2] for p in NOTEBOOKS if p.name[:2] != "00"} <= hidden, "a lesson without hidden checks"


def test_the_instructors_own_answers_are_not_refused():
    for path in NOTEBOOKS:
        notebook = read_notebook(path)
        for item in graded(notebook, path.name):
            assert scan(source_of(notebook["cells"][item["answer"]])) == [], f"{item['id']} would be refused"


@pytest.mark.parametrize("line", [
    "import labserver.checks.lesson03 as m; m.echo_server = print",
    "check.echo_server = lambda f: None",
    "get_ipython().input_transformers_cleanup.append(wrap)",
    "import sys; sys.modules['labserver.checks'] = None",
    "__import__('os')._exit(0)",
    "exec(open('x').read())",
    "!sed -i s/a/b/ ../kit/labserver/checks/lesson03.py",
    "class Yes(str):\n    def __eq__(self, other): return True",
    "import subprocess; subprocess.Popen(['sleep', '100'])",
])
def test_answers_that_reach_for_the_machinery_are_found(line):
    assert scan(line)


@pytest.mark.parametrize("line", [
    "LINE = re.compile(rb'([A-Z]+) (\\S+) HTTP/(\\d)\\.(\\d)')",
    "data = sock.makefile('rb').read(n)  # get_ipython() in a comment is fine",
    "checked = check_line(line)",
    "selector.unregister(sock)",
])
def test_ordinary_answers_are_not_refused(line):
    assert scan(line) == []


def test_the_committed_classroom_workflow_is_the_one_build_writes():
    items = [item for path in NOTEBOOKS for item in graded(read_notebook(path), path.name)]
    assert (KIT / "classroom" / "classroom.yml").read_text(encoding="utf-8") == classroom_workflow(items)


# The release.


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    out = tmp_path_factory.mktemp("student")
    build(out, KIT, force=True, template="course-org/labserver-template", ref="v7")
    return out


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The graders' reference: the release with its hidden checks, and no solution."""
    out = tmp_path_factory.mktemp("reference")
    build(out, KIT, force=True, keep_hidden=True)
    return out


def test_the_release_is_complete_and_holds_no_hidden_check(release):
    assert sorted(p.name for p in (release / "notebooks").glob("*.ipynb")) == [p.name for p in NOTEBOOKS]
    assert (release / "labserver" / "__init__.py").is_file() and (release / "pyproject.toml").is_file()
    assert (release / "project" / "server.py").is_file(), "the project starter is missing"
    assert ".venv/" in (release / ".gitignore").read_text(encoding="utf-8") and "*.egg-info/" in (release / ".gitignore").read_text(encoding="utf-8")
    assert not (release / "labserver" / "checks" / "hidden.py").exists()
    assert not list(release.rglob("__pycache__"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_no_solution_reaches_students(path, release, reference):
    instructor = json.loads(path.read_text(encoding="utf-8"))
    for folder in (release, reference):
        text = (folder / "notebooks" / path.name).read_text(encoding="utf-8")
        assert "BEGIN SOLUTION" not in text
        assert leaked_solutions(instructor, json.loads(text)) == []
    assert "BEGIN HIDDEN TESTS" not in (release / "notebooks" / path.name).read_text(encoding="utf-8")


def test_the_graders_reference_keeps_the_hidden_checks(reference):
    assert (reference / "labserver" / "checks" / "hidden.py").is_file()
    assert "BEGIN HIDDEN TESTS" in (reference / "notebooks" / "01-blocking-recv.ipynb").read_text(encoding="utf-8")


def test_the_workflow_grades_with_the_pinned_template_one_step_per_exercise(release):
    text = (release / ".github" / "workflows" / "classroom.yml").read_text(encoding="utf-8")
    assert "GRADING_KIT: course-org/labserver-template" in text and "GRADING_REF: v7" in text
    assert 'git clone --quiet --depth 1 --branch "$GRADING_REF"' in text
    assert "pip install -e" not in text and "python -I -m labserver assignments grade" in text
    items = [item for path in NOTEBOOKS for item in graded(read_notebook(path), path.name)]
    for item in items:
        assert f'score --results "$HOME/grading/results.json" --step {item["id"]}\n' in text
    scores = [int(line.split(":")[1]) for line in text.splitlines() if line.strip().startswith("max-score:")]
    assert sum(scores) == sum(item["points"] for item in items) + PROJECT_POINTS
    # Classroom's command grader passes only PATH and HOME: the profile is the grader's business.
    assert "LABSERVER_PROFILE:" not in text and "env LABSERVER_PROFILE" not in text


def test_the_graded_notebook_is_the_reference_with_the_students_answer_text(release):
    instructor = read_notebook(KIT / "notebooks" / SELECT)
    student = read_notebook(release / "notebooks" / SELECT)
    items = graded(instructor, SELECT)
    answer, check = student["cells"][items[1]["answer"]], student["cells"][items[0]["check"]]
    first_line = source_of(instructor["cells"][items[1]["answer"]]).splitlines(keepends=True)[0]
    answer["source"] = [first_line, "    return 'mine'\n"]
    answer["metadata"] = {"tags": ["raises-exception"]}
    check["source"] = ["# Check (do not edit)\n", "pass\n"]
    del student["cells"][items[1]["check"]]  # the other check cell deleted
    student["cells"].insert(0, {"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None,
                                "source": ["print('an extra cell')\n"]})
    notebook, graded_items = graded_notebook(instructor, student, SELECT)
    sources = [source_of(cell) for cell in notebook["cells"]]
    assert "    return 'mine'\n" in "".join(sources)
    assert "print('an extra cell')" not in "".join(sources) and "pass\n" not in sources
    assert all("tags" not in cell["metadata"] for cell in notebook["cells"])
    assert leaked_solutions(instructor, notebook) == []
    assert [i["id"] for i in graded_items] == ["03.echo_server", "03.echo_server.hidden", "03.nonblocking_echo_server"]
    for item in graded_items:
        assert "check" in source_of(notebook["cells"][item["cell"]]) and "Grading guard" in sources[item["cell"] - 1]
    # An answer cell found by its metadata, or by its first line, when its id changed.
    for cell in student["cells"]:
        cell["id"] = "renamed"
    _, graded_items = graded_notebook(instructor, student, SELECT)
    assert {item["found"] for item in graded_items} <= {"metadata", "first line"}


# Grading, for real.


def no_children_left():
    children = [p for p in psutil.Process().children(recursive=True)
                if "resource_tracker" not in " ".join(p.cmdline())]
    return children == []


def test_every_check_fails_on_its_stub_and_says_why(release, reference, tmp_path):
    """The release graded with every check, hidden ones too: nothing earns a point, everything says why."""
    copy = prepare_copy(tmp_path / "graded", release, reference)
    with ThreadPoolExecutor(max_workers=3) as pool:  # mostly waiting on sockets: three kernels fit on 2 cores
        outcomes = list(pool.map(lambda path: grade_notebook(path, release, copy, True), kit_notebooks(reference)))
    items = [item for results, _ in outcomes for item in results]
    expected = sum(1 + bool(i["hidden_points"]) for p in NOTEBOOKS for i in graded(read_notebook(p), p.name))
    assert len(items) == expected
    problems = [f"{i['id']}: {i['message']}" for i in items
                if i["earned"] or not any(s in i["message"] for s in ("not written yet", "NotImplementedError"))]
    assert problems == []
    for path in NOTEBOOKS:  # and the graded notebooks, executed, hold no solution either
        assert leaked_solutions(read_notebook(path), read_notebook(copy / "notebooks" / path.name)) == []
    assert no_children_left()


def cheat_on(release, tmp_path, edit):
    """A student's repository made from the release, with `edit(notebook, items)` applied to lesson 03."""
    repo = tmp_path / "student"
    shutil.copytree(release, repo)
    path = repo / "notebooks" / SELECT
    notebook = read_notebook(path)
    edit(notebook, graded(read_notebook(KIT / "notebooks" / SELECT), SELECT))
    write_notebook(notebook, path)
    return repo


WRAP_EVERY_CELL = """\
def _wrap(lines):
    return ["try:\\n"] + ["    " + line for line in lines] + ["\\nexcept BaseException:\\n    pass\\n"]
get_ipython().input_transformers_cleanup.append(_wrap)
"""


def timed_grade(**kwargs):
    start = time.perf_counter()
    results = grade_submission(project=False, notebooks=["03"], **kwargs)
    assert time.perf_counter() - start < BOUND
    assert no_children_left()
    return results


def test_the_notebook_cheats_earn_nothing(release, tmp_path):
    def edit(notebook, items):
        for cell in notebook["cells"]:  # nbval's tag on every cell: "an exception here is expected"
            cell["metadata"]["tags"] = ["raises-exception"]
        checks = exercises(notebook)
        notebook["cells"][checks[0]]["source"] = ["# Check (do not edit)\n", "print('\u2714 passed')\n"]
        notebook["cells"].insert(0, {"cell_type": "code", "id": "extra", "metadata": {"jupyter": {"source_hidden": True}},
                                     "outputs": [], "execution_count": None, "source": WRAP_EVERY_CELL})

    repo = cheat_on(release, tmp_path, edit)
    (repo / "labserver" / "checks" / "lesson03.py").write_text("def echo_server(f): pass\ndef nonblocking_echo_server(f): pass\n",
                                                               encoding="utf-8")
    (repo / "conftest.py").write_text("def pytest_runtest_makereport(item, call):\n    call.excinfo = None\n",
                                      encoding="utf-8")
    workflow = repo / ".github" / "workflows" / "classroom.yml"
    workflow.write_text(workflow.read_text(encoding="utf-8").replace("command: python -I", "command: true; python -I"),
                        encoding="utf-8")

    # Run as it is, the cheat works: no check cell fails.
    raw = nbformat.read(repo / "notebooks" / SELECT, as_version=4)
    NotebookClient(raw, timeout=120, kernel_name="python3", allow_errors=True,
                   resources={"metadata": {"path": str(repo / "notebooks")}}).execute()
    assert not [o for c in raw.cells if "# Check" in c.source for o in c.outputs if o.output_type == "error"]

    # Graded, with the template as the Classroom workflow does: nothing.
    results = timed_grade(submission=repo, reference=release, out=tmp_path / "graded", hidden=False)
    assert [i["id"] for i in results["items"]] == ["03.echo_server", "03.nonblocking_echo_server"]
    for item in results["items"]:
        assert item["earned"] == 0 and "not written yet" in item["message"]
    assert "changed: labserver/checks/lesson03.py" in results["notes"]
    assert {"added: conftest.py", "changed: conftest.py"} & set(results["notes"])  # changed, once the kit has one
    assert any(note.startswith("changed: .github/workflows/classroom.yml") for note in results["notes"])
    saved = json.loads((tmp_path / "graded" / "results.json").read_text(encoding="utf-8"))
    assert saved["earned"] == 0 and saved["profile"] == "ci"


def solved(notebook, items, extra=""):
    """Put the instructor's answers in the student's notebook (plus `extra` in the first)."""
    instructor = read_notebook(KIT / "notebooks" / SELECT)
    for number, item in enumerate(items):
        cell = next(c for c in notebook["cells"] if c.get("metadata", {}).get("labserver", {}).get("answer") == item["id"])
        cell["source"] = source_of(instructor["cells"][item["answer"]]) + ("\n" + extra if number == 0 else "")


def test_an_answer_that_reaches_for_the_machinery_earns_nothing(release, tmp_path):
    repo = cheat_on(release, tmp_path, lambda notebook, items: solved(notebook, items, WRAP_EVERY_CELL))
    results = timed_grade(submission=repo, reference=KIT, out=tmp_path / "graded", hidden=True)
    assert len(results["items"]) == 3
    for item in results["items"]:
        assert item["earned"] == 0 and "reaches for IPython itself" in item["message"]


def test_changing_the_grading_copy_voids_the_notebook(release, tmp_path):
    tamper = 'open("../kit/labserver/checks/lesson03.py", "a", encoding="utf-8").write("\\n# mine now\\n")\n'
    repo = cheat_on(release, tmp_path, lambda notebook, items: solved(notebook, items, tamper))
    results = timed_grade(submission=repo, reference=KIT, out=tmp_path / "graded", hidden=True)
    for item in results["items"]:
        assert item["earned"] == 0 and "was changed while this notebook ran" in item["message"]


LEAVE_A_CHILD = """\
import multiprocessing, os, time
def _escape():  # a child in a session of its own: killing the kernel's process group does not reach it
    os.setsid()
    time.sleep(300)
_child = multiprocessing.get_context("fork").Process(target=_escape)
_child.start()
open("child.pid", "w", encoding="utf-8").write(str(_child.pid))
open("profile.txt", "w", encoding="utf-8").write(os.environ.get("LABSERVER_PROFILE", "none"))
"""


@pytest.mark.skipif(not hasattr(os, "setsid"), reason="the escaping child needs os.setsid and fork (POSIX)")
def test_the_solutions_earn_every_point_lesson_10_and_the_project_included(tmp_path, monkeypatch):
    """The instructor's notebooks as a submission: every check passes through the grader, the
    hidden ones too; lesson 10 finds ../project/server.py; the project's points come from the
    grader's report; a process an answer left behind is killed and reported."""
    repo = tmp_path / "kit"
    shutil.copytree(KIT / "notebooks", repo / "notebooks")
    shutil.copytree(KIT / "project", repo / "project")
    path = repo / "notebooks" / SELECT
    notebook = read_notebook(path)
    solved(notebook, graded(notebook, SELECT), LEAVE_A_CHILD)
    write_notebook(notebook, path)
    out = tmp_path / "graded"
    monkeypatch.setenv("LABSERVER_PROFILE", "lecture")  # whatever the caller has: the notebooks run in ci
    start = time.perf_counter()
    assert main(["assignments", "hidden", "--student", str(repo), "--out", str(out), "--notebooks", "03,10"]) == 0
    assert time.perf_counter() - start < 2 * BOUND
    results = json.loads((out / "kit" / "results.json").read_text(encoding="utf-8"))
    assert [(i["id"], i["passed"]) for i in results["items"]] == [
        ("03.echo_server", True), ("03.echo_server.hidden", True), ("03.nonblocking_echo_server", True),
        ("10.serve_forever", True), ("10.serve_forever.hidden", True)]
    project = results["project"]
    assert project["points"] == PROJECT_POINTS and "of the grader's points" in project["message"]
    assert project["earned"] == round(PROJECT_POINTS * project["score"] / project["total"], 1)
    assert project["score"] == sum(row["points"] for row in project["rows"] if row["passed"])
    assert any("killed" in note and "03-select" in note for note in results["notes"])
    assert (out / "kit" / "notebooks" / "profile.txt").read_text(encoding="utf-8") == "ci"
    child = int((out / "kit" / "notebooks" / "child.pid").read_text(encoding="utf-8"))
    deadline = time.monotonic() + 5  # killed; then reaped by init, its parent (the kernel) being gone
    while psutil.pid_exists(child) and psutil.Process(child).status() != psutil.STATUS_ZOMBIE and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not psutil.pid_exists(child) or psutil.Process(child).status() == psutil.STATUS_ZOMBIE
    gradebook = (out / "grades.csv").read_text(encoding="utf-8").splitlines()
    assert gradebook[0].startswith("student,total,out of,03.echo_server") and gradebook[1].startswith("kit,")
    assert no_children_left()


def test_a_classroom_step_scores_one_exercise_from_the_results(tmp_path, capsys):
    results = {"items": [{"id": "01.recv_exactly", "earned": 6, "points": 6, "passed": True, "message": "ok"},
                         {"id": "01.waiting_ratio", "earned": 0, "points": 4, "passed": False, "message": "no"}],
               "project": {"earned": 13.5, "points": 30, "message": "18/40"}}
    path = tmp_path / "results.json"
    path.write_text(json.dumps(results), encoding="utf-8")
    assert main(["assignments", "score", "--results", str(path), "--step", "01.recv_exactly"]) == 0
    assert main(["assignments", "score", "--results", str(path), "--step", "01.waiting_ratio"]) == 1
    assert main(["assignments", "score", "--results", str(path), "--step", "project:0.4"]) == 0
    assert main(["assignments", "score", "--results", str(path), "--step", "project:0.6"]) == 1
    assert main(["assignments", "score", "--results", str(path), "--step", "10.nothing"]) == 1
    assert "01.waiting_ratio: 0/4: no" in capsys.readouterr().out


def test_mistakes_on_the_command_line_get_one_line_and_status_2(tmp_path, capsys):
    assert main(["assignments", "hidden", "--out", str(tmp_path)]) == 2
    assert main(["assignments", "grade", "--reference", str(tmp_path), "--submission", str(tmp_path),
                 "--out", str(tmp_path / "o")]) == 2
    mine = tmp_path / "out" / KIT.name  # where the grading copy would go: a folder of the user's
    mine.mkdir(parents=True)
    (mine / "keep.txt").write_text("my files", encoding="utf-8")
    assert main(["assignments", "hidden", "--student", str(KIT), "--out", str(tmp_path / "out"),
                 "--notebooks", "99", "--no-project"]) == 2
    assert main(["assignments", "hidden", "--student", str(tmp_path / "a" / "lab"), str(tmp_path / "b" / "lab"),
                 "--out", str(tmp_path / "out")]) == 2
    errors = capsys.readouterr().err.strip().splitlines()
    assert len(errors) == 4 and all(line.startswith("labserver assignments: error:") for line in errors)
    assert (mine / "keep.txt").exists()
