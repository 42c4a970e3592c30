"""Instructor and student versions of the lessons (graded assignments).

The notebooks in notebooks/ are the instructor's: each exercise cell holds its
solution between two marker lines,

    ### BEGIN SOLUTION
    ...the instructor's answer...
    ### END SOLUTION

and a check cell may hold checks only the instructor runs, between
`### BEGIN HIDDEN TESTS` and `### END HIDDEN TESTS`.

    python -m labserver assignments build --out ../labserver-student

writes the student release: every solution replaced by a stub that raises
NotImplementedError (so its check cell fails with "not written yet"), every
hidden test removed, outputs cleared; plus the package, the setup files and
a GitHub Classroom workflow that runs the same nbval command as `make test`.
It then makes sure no solution line survived in the student notebooks.

Trade-off: markers in the instructor's notebooks (the nbgrader convention,
without nbgrader) keep one source for both versions, at the price of
discipline: an answer written outside the markers would be published.
"""

import json
import shutil
from pathlib import Path

BEGIN_SOLUTION, END_SOLUTION = "### BEGIN SOLUTION", "### END SOLUTION"
BEGIN_HIDDEN, END_HIDDEN = "### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS"
CHECK_MARK = "# Check (do not edit)"
STUB = 'raise NotImplementedError("Exercise: replace this line with your code")'

# What a student repository needs besides the notebooks (relative to the kit).
RELEASE_FILES = ["labserver", "project", "pyproject.toml", "environment.yml", "postBuild", "Makefile", "README.md"]
CLASSROOM = Path("classroom")


class AssignmentError(ValueError):
    """A notebook whose markers do not pair up, or a release that leaks a solution."""


def student_source(source, where="cell"):
    """A cell's source with solutions stubbed and hidden tests removed."""
    out, mode, indent = [], None, ""
    for line in source.splitlines(keepends=True):
        marker = line.strip()
        if marker in (BEGIN_SOLUTION, BEGIN_HIDDEN):
            if mode is not None:
                raise AssignmentError(f"{where}: {marker!r} inside another marked region")
            mode, indent = marker, line[: len(line) - len(line.lstrip())]
            if marker == BEGIN_SOLUTION:
                out.append(f"{indent}{STUB}\n")
        elif marker in (END_SOLUTION, END_HIDDEN):
            if mode != {END_SOLUTION: BEGIN_SOLUTION, END_HIDDEN: BEGIN_HIDDEN}[marker]:
                raise AssignmentError(f"{where}: {marker!r} without its BEGIN line")
            mode = None
        elif mode is None:
            out.append(line)
    if mode is not None:
        raise AssignmentError(f"{where}: {mode!r} is never closed")
    return "".join(out)


def solution_lines(source):
    """The lines between solution markers that say something (for the leak check)."""
    lines, inside = [], False
    for line in source.splitlines():
        marker = line.strip()
        if marker in (BEGIN_SOLUTION, END_SOLUTION):
            inside = marker == BEGIN_SOLUTION
        elif inside and len(marker) > 12 and not marker.startswith("#"):
            lines.append(marker)
    return lines


def student_notebook(notebook, name="notebook"):
    """A copy of a notebook (as parsed JSON) in its student version."""
    notebook = json.loads(json.dumps(notebook))
    for i, cell in enumerate(notebook["cells"]):
        source = "".join(cell["source"])
        if cell["cell_type"] == "code":
            cell["source"] = student_source(source, f"{name} cell {i}").splitlines(keepends=True)
            cell["outputs"], cell["execution_count"] = [], None
    return notebook


def exercises(notebook):
    """Indices of the check cells, each with the exercise cell before it."""
    cells = notebook["cells"]
    pairs = []
    for i, cell in enumerate(cells):
        if cell["cell_type"] == "code" and "".join(cell["source"]).lstrip().startswith(CHECK_MARK):
            pairs.append(i)
    return pairs


def build(out, kit=Path("."), force=False):
    """Write the student release of the kit at `kit` into `out`; return the notebooks written."""
    kit, out = Path(kit), Path(out)
    if not (kit / "notebooks").is_dir() or not (kit / "labserver").is_dir():
        raise AssignmentError(f"{kit.resolve()} is not the labserver kit (no notebooks/ and labserver/)")
    if out.exists() and any(out.iterdir()):
        if not force:
            raise AssignmentError(f"{out} is not empty (use --force to replace it)")
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    for name in RELEASE_FILES:
        source = kit / name
        if source.is_dir():
            shutil.copytree(source, out / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        elif source.exists():
            shutil.copy2(source, out / name)
    workflow = out / ".github" / "workflows"
    workflow.mkdir(parents=True)
    shutil.copy2(kit / CLASSROOM / "classroom.yml", workflow / "classroom.yml")
    (out / "notebooks").mkdir()
    written = []
    for path in sorted((kit / "notebooks").glob("*.ipynb")):
        notebook = json.loads(path.read_text(encoding="utf-8"))
        student = student_notebook(notebook, path.name)
        target = out / "notebooks" / path.name
        target.write_text(json.dumps(student, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        leaks = leaked_solutions(notebook, student)
        if leaks:
            raise AssignmentError(f"{path.name}: solution text left in the student version: {leaks[0]!r}")
        written.append(target)
    return written


def leaked_solutions(instructor, student):
    """Solution lines of the instructor notebook that appear in the student one.

    A line that the instructor notebook also has outside every solution (an
    import, a `with` statement from a demo) is public anyway: not a leak."""
    sources = ["".join(c["source"]) for c in instructor["cells"]]
    public = {line.strip() for s in sources for line in student_source(s).splitlines()}
    shown = {line.strip() for c in student["cells"] for line in "".join(c["source"]).splitlines()}
    solutions = {line for s in sources for line in solution_lines(s)} - public
    return sorted(solutions & shown)


def with_instructor_checks(student, instructor, name="notebook"):
    """The student's notebook with every check cell replaced by the
    instructor's, hidden tests included: what the instructor grades. It also
    undoes any edit a student made to a visible check."""
    merged = json.loads(json.dumps(student))
    ours, theirs = exercises(instructor), exercises(merged)
    if len(ours) != len(theirs):
        raise AssignmentError(f"{name}: the student's notebook has {len(theirs)} check cells, "
                              f"the instructor's {len(ours)}: was a check cell deleted?")
    for mine, yours in zip(ours, theirs):
        merged["cells"][yours]["source"] = instructor["cells"][mine]["source"]
    return merged


def merge_hidden(student_dir, out, kit=Path(".")):
    """Write the student's notebooks with the instructor's full checks into `out`."""
    student_dir, out = Path(student_dir), Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for path in sorted((Path(kit) / "notebooks").glob("*.ipynb")):
        submitted = student_dir / "notebooks" / path.name
        if not submitted.is_file():
            raise AssignmentError(f"{submitted} is missing")
        instructor = json.loads(path.read_text(encoding="utf-8"))
        student = json.loads(submitted.read_text(encoding="utf-8"))
        target = out / path.name
        merged = with_instructor_checks(student, instructor, path.name)
        target.write_text(json.dumps(merged, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        written.append(target)
    return written
