"""The student release: the instructor's lessons with every solution taken out.

The notebooks in notebooks/ are the instructor's: each exercise cell holds its
solution between two marker lines,

    ### BEGIN SOLUTION
    ...the instructor's answer...
    ### END SOLUTION

and a check cell may hold checks only the instructor runs, between
`### BEGIN HIDDEN TESTS` and `### END HIDDEN TESTS`. Cell metadata names each
exercise: `{"labserver": {"answer": "01.recv_exactly"}}` on the answer cell,
`{"labserver": {"check": "01.recv_exactly", "points": 6, "hidden_points": 2}}`
on its check cell. The grader goes by these, never by the student's copy.

build() writes the release: solutions stubbed, hidden tests and the hidden
check module removed, outputs cleared; the package, the setup files, a
.gitignore, and a GitHub Classroom workflow that grades with the template
repository at a pinned tag. It refuses to finish if a solution line or the
hidden module would be published.

Trade-off: markers in the instructor's notebooks (the nbgrader convention,
without nbgrader) keep one source for both versions, at the price of
discipline: an answer written outside the markers would be published (the
leak check catches the lines it can).
"""

import json
import shutil
from pathlib import Path

BEGIN_SOLUTION, END_SOLUTION = "### BEGIN SOLUTION", "### END SOLUTION"
BEGIN_HIDDEN, END_HIDDEN = "### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS"
CHECK_MARK = "# Check (do not edit)"
STUB = 'raise NotImplementedError("Exercise: replace this line with your code")'

# What a student repository needs besides the notebooks (relative to the kit).
RELEASE_FILES = ["labserver", "project", "pyproject.toml", "environment.yml", "postBuild", "Makefile", "README.md",
                 "conftest.py"]  # each one that the kit has
HIDDEN_FILES = ["labserver/checks/hidden.py"]  # the hidden checks: never in a release
WORKFLOW = Path(".github") / "workflows" / "classroom.yml"
PLACEHOLDER_REPO, PLACEHOLDER_REF = "YOUR-ORG/YOUR-TEMPLATE", "grading-v1"
PROJECT_POINTS = 30
PROJECT_STEPS = [0.2, 0.4, 0.6, 0.8, 1.0]  # Classroom gives all or nothing per step: partial credit in five steps

GITIGNORE = """\
# Made by tools, never part of an answer
.venv/
__pycache__/
*.egg-info/
.ipynb_checkpoints/
.pytest_cache/
.hypothesis/
build/
dist/
grade.txt
grading/
results/
"""


class AssignmentError(ValueError):
    """A notebook whose markers do not pair up, a release that would leak, a submission that cannot be graded."""


def student_source(source, where="cell", keep_hidden=False):
    """A cell's source with solutions stubbed and hidden tests removed (kept, for graders, with keep_hidden)."""
    out, mode, indent = [], None, ""
    for line in source.splitlines(keepends=True):
        marker = line.strip()
        if marker in (BEGIN_SOLUTION, BEGIN_HIDDEN):
            if mode is not None:
                raise AssignmentError(f"{where}: {marker!r} inside another marked region")
            mode, indent = marker, line[: len(line) - len(line.lstrip())]
            if marker == BEGIN_SOLUTION:
                out.append(f"{indent}{STUB}\n")
            elif keep_hidden:
                out.append(line)
        elif marker in (END_SOLUTION, END_HIDDEN):
            if mode != {END_SOLUTION: BEGIN_SOLUTION, END_HIDDEN: BEGIN_HIDDEN}[marker]:
                raise AssignmentError(f"{where}: {marker!r} without its BEGIN line")
            if keep_hidden and marker == END_HIDDEN:
                out.append(line)
            mode = None
        elif mode is None or (keep_hidden and mode == BEGIN_HIDDEN):
            out.append(line)
    if mode is not None:
        raise AssignmentError(f"{where}: {mode!r} is never closed")
    return "".join(out)


def hidden_source(source):
    """The lines between the hidden-test markers of a check cell ("" if none)."""
    inside, lines = False, []
    for line in source.splitlines(keepends=True):
        marker = line.strip()
        if marker in (BEGIN_HIDDEN, END_HIDDEN):
            inside = marker == BEGIN_HIDDEN
        elif inside:
            lines.append(line)
    return "".join(lines)


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


def source_of(cell):
    return "".join(cell["source"])


def student_notebook(notebook, name="notebook", keep_hidden=False):
    """A copy of a notebook (as parsed JSON) in its student version."""
    notebook = json.loads(json.dumps(notebook))
    for i, cell in enumerate(notebook["cells"]):
        if cell["cell_type"] == "code":
            cell["source"] = student_source(source_of(cell), f"{name} cell {i}", keep_hidden).splitlines(keepends=True)
            cell["outputs"], cell["execution_count"] = [], None
    return notebook


def exercises(notebook):
    """Indices of the check cells."""
    return [i for i, cell in enumerate(notebook["cells"])
            if cell["cell_type"] == "code" and source_of(cell).lstrip().startswith(CHECK_MARK)]


def graded(notebook, name="notebook"):
    """The notebook's exercises, in order, as dicts: id, points, hidden_points,
    check (index of the check cell), answer (index of the answer cell)."""
    cells, found = notebook["cells"], []
    answers = {cell.get("metadata", {}).get("labserver", {}).get("answer"): i for i, cell in enumerate(cells)}
    for i in exercises(notebook):
        meta = cells[i].get("metadata", {}).get("labserver", {})
        ident, points = meta.get("check"), meta.get("points")
        if not ident or not isinstance(points, int) or ident not in answers:
            raise AssignmentError(f"{name} cell {i}: a check cell needs metadata labserver.check (an id), "
                                  f"labserver.points, and an answer cell with labserver.answer of the same id")
        found.append({"id": ident, "points": points, "hidden_points": meta.get("hidden_points", 0),
                      "check": i, "answer": answers[ident]})
    return found


def leaked_solutions(instructor, student):
    """Solution lines of the instructor notebook that appear in the student one.

    A line that the instructor notebook also has outside every solution (an
    import, a `with` statement from a demo) is public anyway: not a leak."""
    sources = [source_of(c) for c in instructor["cells"]]
    public = {line.strip() for s in sources for line in student_source(s).splitlines()}
    shown = {line.strip() for c in student["cells"] for line in source_of(c).splitlines()}
    solutions = {line for s in sources for line in solution_lines(s)} - public
    return sorted(solutions & shown)


def read_notebook(path):
    return json.loads(Path(path).read_text(encoding="utf-8"))


def write_notebook(notebook, path):
    Path(path).write_text(json.dumps(notebook, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


def kit_notebooks(kit):
    return sorted((Path(kit) / "notebooks").glob("*.ipynb"))


def check_kit(kit):
    kit = Path(kit)
    if not (kit / "notebooks").is_dir() or not (kit / "labserver").is_dir():
        raise AssignmentError(f"{kit.resolve()} is not the labserver kit (no notebooks/ and labserver/)")


def release_files(kit, keep_hidden=False):
    """{relative path: bytes} of every file build() copies from the kit (notebooks and workflow aside)."""
    kit, files = Path(kit), {}
    for name in RELEASE_FILES:
        source = kit / name
        paths = [p for p in sorted(source.rglob("*")) if p.is_file()] if source.is_dir() else [source]
        for path in paths:
            relative = path.relative_to(kit).as_posix()
            if path.exists() and "__pycache__" not in path.parts and ".egg-info" not in relative \
                    and (keep_hidden or relative not in HIDDEN_FILES):
                files[relative] = path.read_bytes()
    files[".gitignore"] = GITIGNORE.encode()
    return files


def build(out, kit=Path("."), force=False, template=PLACEHOLDER_REPO, ref=PLACEHOLDER_REF, keep_hidden=False):
    """Write the student release of the kit at `kit` into `out`; return the notebooks written.

    template and ref: the repository the release will be pushed to (the
    Classroom template) and the tag that pins it; the workflow installs the
    grading kit from there, never from the student's own copy. keep_hidden:
    the graders' reference instead, the release with its hidden checks (still
    no solution): what `assignments hidden --kit` can grade with, in a
    container, without the instructor's kit in reach."""
    kit, out = Path(kit), Path(out)
    check_kit(kit)
    if out.exists() and any(out.iterdir()):
        if not force:
            raise AssignmentError(f"{out} is not empty (use --force to replace it)")
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    for relative, data in release_files(kit, keep_hidden).items():
        (out / relative).parent.mkdir(parents=True, exist_ok=True)
        (out / relative).write_bytes(data)
    (out / "notebooks").mkdir()
    written, items = [], []
    for path in kit_notebooks(kit):
        notebook = read_notebook(path)
        items += [(path.name, item) for item in graded(notebook, path.name)]
        student = student_notebook(notebook, path.name, keep_hidden)
        leaks = leaked_solutions(notebook, student)
        if leaks:
            raise AssignmentError(f"{path.name}: solution text left in the student version: {leaks[0]!r}")
        write_notebook(student, out / "notebooks" / path.name)
        written.append(out / "notebooks" / path.name)
    (out / WORKFLOW).parent.mkdir(parents=True)
    (out / WORKFLOW).write_text(classroom_workflow([item for _, item in items], template, ref), encoding="utf-8")
    leaked = [name for name in HIDDEN_FILES if (out / name).exists() and not keep_hidden]
    if leaked:
        raise AssignmentError(f"the hidden checks would be published: {leaked[0]}")
    return written


def step_id(ident):
    return "ex-" + ident.replace(".", "-").replace("_", "-").lower()


def classroom_workflow(items, template=PLACEHOLDER_REPO, ref=PLACEHOLDER_REF):
    """The GitHub Classroom workflow for these exercises (see classroom/INSTRUCTORS.md)."""
    head = f"""\
# GitHub Classroom autograding for a student repository of the labserver kit.
# Written by `python -m labserver assignments build`; do not edit it here, rebuild.
#
# The student's code is graded by the kit of the TEMPLATE repository at a pinned
# tag, never by this repository's copy: checks, grader and notebooks' check cells
# come from there. Only the answer cells of notebooks/ and project/ are taken from
# this repository. One step runs everything (LABSERVER_PROFILE=ci is set by the
# grader itself); then one step per exercise reads its result from the results
# file, so points are per exercise. Students can edit this file: protect
# .github/** in Classroom, and trust the instructor's regrade
# (`labserver assignments hidden`), which ignores it.
name: Autograding Tests
on:
  - push
  - repository_dispatch
  - workflow_dispatch
permissions:
  checks: write
  actions: read
  contents: read
env:
  GRADING_KIT: {template}  # the template repository (public: it holds no solution)
  GRADING_REF: {ref}  # the tag that pins the grading kit
jobs:
  run-autograding-tests:
    runs-on: ubuntu-latest
    if: github.actor != 'github-classroom[bot]'
    steps:
      - name: Checkout the submission
        uses: actions/checkout@v4
        with:
          path: submission
      - name: Set up Python
        uses: actions/setup-python@v5
        with:
          python-version: "3.11"
      - name: Install the grading kit (the template at its pinned tag)
        run: |
          git clone --quiet --depth 1 --branch "$GRADING_REF" "https://github.com/$GRADING_KIT" "$HOME/grading-kit"
          python -m pip install --quiet "$HOME/grading-kit"
      - name: Grade every notebook and the project
        timeout-minutes: 40
        run: >-
          cd "$HOME" && python -I -m labserver assignments grade --reference "$HOME/grading-kit"
          --submission "$GITHUB_WORKSPACE/submission" --out "$HOME/grading"
"""
    steps, runners = [], []

    def step(ident, name, argument, points):
        runners.append(ident)
        steps.append(f"""\
      - name: {name}
        id: {ident}
        uses: classroom-resources/autograding-command-grader@v1
        with:
          test-name: "{name}"
          command: python -I -m labserver assignments score --results "$HOME/grading/results.json" --step {argument}
          timeout: 1
          max-score: {points}
""")

    for item in items:
        step(step_id(item["id"]), f"{item['id']} ({item['points']} points)", item["id"], item["points"])
    share = PROJECT_POINTS // len(PROJECT_STEPS)
    for fraction in PROJECT_STEPS:
        step(f"project-{round(fraction * 100)}", f"project at {fraction:.0%} of the grader's points",
             f"project:{fraction:g}", share)
    env = "".join(f'          {r.upper()}_RESULTS: "${{{{steps.{r}.outputs.result}}}}"\n' for r in runners)
    reporter = f"""\
      - name: Autograding Reporter
        uses: classroom-resources/autograding-grading-reporter@v1
        env:
{env}        with:
          runners: {",".join(runners)}
"""
    return head + "".join(steps) + reporter
