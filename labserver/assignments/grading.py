"""Grading a submission: the reference's notebooks, the student's answers, points per exercise.

A submission is graded in a grading copy built fresh for it, never in the
student's repository and never in the instructor's kit:

    OUT/kit/labserver/      the reference's package (checks, grader): the one the kernel imports
    OUT/project/            the student's project/ folder (lesson 10 and the project grade)
    OUT/notebooks/NN-...    each notebook REBUILT from the reference, executed, with its outputs
    OUT/results.json        points per exercise, messages, notes (what the grader trusts)

The reference is the instructor's kit (`assignments hidden`: hidden checks
included) or the released template at its pinned tag (`assignments grade`,
run by the Classroom workflow). From the student's notebooks only the
answer cells' text is taken, found by cell id (then by the answer's
metadata, then by its first line): metadata, tags (nbval's raises-exception
among them), extra cells and edited check cells do not survive. Before each
check cell runs, a guard cell undoes what an answer could have done to the
machinery (IPython input transformers, a custom exception handler, tracers,
patched labserver modules: all labserver modules are imported afresh). An
exercise earns its points when its check cell's execute_reply says "ok".

What this cannot stop: an answer runs in the same Python process as its
check, so a determined student can still monkeypatch what the guard does
not restore. Answers that reach for the machinery (labserver.checks,
get_ipython, sys.modules, builtins, exec, ctypes, shell escapes...) are
refused by a plain text scan, with the reason, and the package copy is
hashed before and after the run: any change voids the notebook's points.
The instructor guide says what each check proves and what it does not.

Everything the student's code starts carries a marker in its environment;
when a notebook is done (or its deadline passes, when the kernel's whole
process group is killed) every process with that marker is killed and
reported.
"""

import csv
import hashlib
import json
import os
import re
import secrets
import shutil
import signal
import sys
import threading
from pathlib import Path

from .release import (PROJECT_POINTS, WORKFLOW, AssignmentError, check_kit, classroom_workflow, graded, hidden_source,
                      kit_notebooks, read_notebook, release_files, source_of, student_source, write_notebook)

CELL_TIMEOUT = 300  # seconds for one cell (a check gives up on a hang long before)
NOTEBOOK_DEADLINE = 900  # seconds for a whole notebook; then its kernel is killed
MARKER = "LABSERVER_GRADING"  # environment variable on every process a graded notebook starts
COPY_MARK = ".labserver-grading"  # a file that says: this folder is a grading copy, safe to replace

GUARD = """\
# Grading guard (added by the grader, not part of the lesson): the next check runs as the instructor wrote it.
import sys as _sys, threading as _threading
from IPython.core.inputtransformer2 import TransformerManager as _TransformerManager
_shell = get_ipython()
_shell.input_transformer_manager, _shell.input_transformers_post, _shell.ast_transformers = _TransformerManager(), [], []
_shell.set_custom_exc((), None)
_sys.settrace(None), _sys.setprofile(None), _threading.settrace(None), _threading.setprofile(None)
for _name in [_n for _n in _sys.modules if _n == "labserver" or _n.startswith("labserver.")]:
    del _sys.modules[_name]
"""

# Text in an answer that reaches for the grading machinery, not for the exercise: the answer earns nothing.
REFUSED = [
    (r"\blabserver\s*\.\s*checks\b|\bfrom\s+labserver\s+import\s+checks\b|\bcheck\s*\.\s*\w+\s*=|\bhidden\s*\.",
     "the checks"),
    (r"\bget_ipython\b|\bIPython\b|\binput_transformers|\bast_transformers\b|\bset_custom_exc\b", "IPython itself"),
    (r"\bsys\s*\.\s*modules\b|\bimportlib\b|__import__|\bbuiltins\b|__builtins__", "the import machinery"),
    (r"\bsettrace\b|\bsetprofile\b|\bctypes\b|\bgc\s*\.|__code__|__globals__|__class__|__eq__", "Python's internals"),
    (r"(?<![.\w])(eval|exec|compile|setattr)\s*\(", "code built at run time"),  # re.compile( is fine
    (r"\bos\s*\.\s*_exit\b|\bsys\s*\.\s*exit\b|\bsubprocess\b|\bos\s*\.\s*(system|popen|exec\w*|spawn\w*|kill)\b",
     "processes"),
    (r"^\s*[!%]", "a shell escape or magic"),
]


def scan(source):
    """[(what, line number, line)] for each line of an answer that reaches for the machinery."""
    found = []
    for number, line in enumerate(source.splitlines(), 1):
        code = line.split("#", 1)[0] if not line.lstrip().startswith(("!", "%")) else line
        for pattern, what in REFUSED:
            if re.search(pattern, code):
                found.append((what, number, line.strip()))
                break
    return found


def find_answer(cell, ident, student, taken):
    """The student's cell that answers `cell` of the reference: same id, else same
    labserver.answer metadata, else the only cell starting with the same line."""
    cells = [c for i, c in enumerate(student["cells"]) if c.get("cell_type") == "code" and i not in taken]
    by_id = [c for c in cells if cell.get("id") and c.get("id") == cell.get("id")]
    by_meta = [c for c in cells if c.get("metadata", {}).get("labserver", {}).get("answer") == ident]
    first = student_source(source_of(cell)).lstrip().split("\n", 1)[0]
    by_line = [c for c in cells if first and source_of(c).lstrip().split("\n", 1)[0] == first]
    for candidates, how in [(by_id, "cell id"), (by_meta, "metadata"), (by_line if len(by_line) == 1 else [], "first line")]:
        if candidates:
            return candidates[0], how
    return None, None


def graded_notebook(reference, student, name="notebook", hidden=True):
    """(notebook to run, items): the reference rebuilt with the student's answers.

    Every cell comes from the reference with its solutions stubbed, except the
    answer cells (the student's text) and the check cells, each split into a
    guard, the visible check, and (with hidden) a guard and the hidden checks.
    items: one dict per graded cell (id, hidden, points, cell index, answer
    index, refused reason, how the answer was found)."""
    items_by_check = {item["check"]: item for item in graded(reference, name)}
    answers = {item["answer"]: item for item in items_by_check.values()}
    cells, items, taken = [], [], set()
    refused = None  # an answer that touched the machinery: every check after it is void
    for index, cell in enumerate(reference["cells"]):
        if cell["cell_type"] != "code":
            cells.append(_cell(cell, source_of(cell)))
            continue
        if index in answers:
            item = answers[index]
            mine, how = find_answer(cell, item["id"], student, taken) if student else (None, None)
            if mine is not None:
                taken.add(student["cells"].index(mine))
                source = source_of(mine)
                flags = scan(source)
                if flags and refused is None:
                    what, number, line = flags[0]
                    refused = (f"the answer to {item['id']} reaches for {what} (line {number}: `{line[:60]}`): "
                               f"answers may not touch the grading machinery; ask your teacher if this is a mistake")
            else:
                source = student_source(source_of(cell))
            item.update(found=how, answer_cell=len(cells))
            cells.append(_cell(cell, source, role="answer", item=item["id"]))
            continue
        if index in items_by_check:
            item = items_by_check[index]
            parts = [(False, student_source(source_of(cell)), item["points"])]
            if hidden and hidden_source(source_of(cell)).strip():
                parts.append((True, "# Hidden check (do not edit)\n" + hidden_source(source_of(cell)),
                              item["hidden_points"]))
            for is_hidden, source, points in parts:
                ident = item["id"] + (".hidden" if is_hidden else "")
                cells.append(_cell({"cell_type": "code", "metadata": {}}, GUARD, role="guard", item=ident))
                cells.append(_cell(cell, source, role="check", item=ident))
                items.append({"id": ident, "exercise": item["id"], "hidden": is_hidden, "points": points,
                              "cell": len(cells) - 1, "answer_cell": item.get("answer_cell"),
                              "found": item.get("found"), "refused": refused})
            continue
        cells.append(_cell(cell, student_source(source_of(cell))))
    for number, cell in enumerate(cells):
        cell["id"] = f"graded-{number:03}"
    notebook = {"cells": cells, "metadata": reference.get("metadata", {}), "nbformat": 4, "nbformat_minor": 5}
    return notebook, items


def _cell(cell, source, role=None, item=None):
    new = {"cell_type": cell["cell_type"], "metadata": {}, "source": source.splitlines(keepends=True)}
    if cell["cell_type"] == "code":
        new.update(outputs=[], execution_count=None)
    if role:
        new["metadata"]["labserver_grading"] = {"role": role, "item": item}
    return new


# Running one notebook.


def kernel_environment(kit_copy, profile, token):
    """The graded kernel's environment: this one, minus anything that could
    put other code on its path, plus the copy's package first on the path."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON") and k != MARKER}
    env.update(PYTHONPATH=str(kit_copy), PYTHONDONTWRITEBYTECODE="1", LABSERVER_PROFILE=profile, **{MARKER: token})
    return env


def run_notebook(notebook, cwd, env, cell_timeout=CELL_TIMEOUT, deadline=NOTEBOOK_DEADLINE, log=None):
    """Execute every cell in order; return {cell index: outcome} where an outcome
    is {"status": ok | error | timeout | not run, "ename", "evalue", "text"}.
    The kernel's own output (not the cells') goes to the file `log`."""
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellTimeoutError, DeadKernelError

    node = nbformat.reads(json.dumps(notebook), as_version=4)
    replies = {}
    client = NotebookClient(node, timeout=cell_timeout, kernel_name="python3", allow_errors=True,
                            interrupt_on_timeout=True, resources={"metadata": {"path": str(cwd)}},
                            on_cell_executed=lambda cell, cell_index, execute_reply: replies.__setitem__(
                                cell_index, execute_reply["content"]))
    outcomes, expired = {}, threading.Event()
    with open(log or os.devnull, "wb") as output, client.setup_kernel(env=env, stdout=output, stderr=output):
        watchdog = threading.Timer(deadline, _kill_kernel, [client, expired])
        watchdog.daemon = True
        watchdog.start()
        try:
            for index, cell in enumerate(node.cells):
                if cell.cell_type != "code":
                    continue
                if expired.is_set():
                    outcomes[index] = {"status": "not run", "evalue": f"the notebook's deadline of {deadline:g} s "
                                                                      f"had passed"}
                    continue
                try:
                    client.execute_cell(cell, index)
                except CellTimeoutError:
                    outcomes[index] = {"status": "timeout", "evalue": f"the cell did not finish within {cell_timeout:g} s"}
                    continue
                except DeadKernelError:
                    why = f"the notebook's deadline of {deadline:g} s passed" if expired.is_set() else "the kernel died"
                    outcomes[index] = {"status": "not run", "evalue": why}
                    expired.set()
                    continue
                outcomes[index] = _outcome(cell, replies.get(index, {}))
        finally:
            watchdog.cancel()
    notebook["cells"] = json.loads(json.dumps(node.cells))  # with their outputs, for the instructor to read
    return outcomes


def _kill_kernel(client, expired):
    expired.set()
    provisioner = getattr(client.km, "provisioner", None)
    pid = getattr(provisioner, "pid", None)
    if pid is None:
        return
    try:
        if os.name == "posix":
            os.killpg(getattr(provisioner, "pgid", None) or pid, signal.SIGKILL)
        else:
            os.kill(pid, signal.SIGTERM)
    except OSError:
        pass


def _outcome(cell, reply):
    text = "".join(o.get("text", "") for o in cell.outputs if o.get("output_type") == "stream")
    errors = [o for o in cell.outputs if o.get("output_type") == "error"]
    if reply.get("status") == "ok" and not errors:
        return {"status": "ok", "text": text}
    error = errors[0] if errors else reply
    return {"status": "error", "ename": error.get("ename", "Error"), "evalue": error.get("evalue", ""), "text": text}


def kill_marked(token):
    """Kill every process whose environment carries this grading run's marker; describe each."""
    import psutil

    killed = []
    for process in psutil.process_iter(["pid", "ppid", "cmdline"]):
        try:
            if process.pid == os.getpid() or process.environ().get(MARKER) != token:
                continue
            if process.info["ppid"] == os.getpid() and "resource_tracker" in " ".join(process.info["cmdline"] or []):
                continue  # multiprocessing's helper for this process (the project grader's), not the student's
            process.kill()
            killed.append(f"pid {process.pid} ({clean(' '.join(process.info['cmdline'] or []), 80)})")
        except (psutil.Error, OSError):
            continue
    return killed


# Messages: whatever the student's code printed or raised is shown escaped and short.

def clean(text, limit=400):
    text = "".join(c if c.isprintable() or c == " " else repr(c)[1:-1] for c in str(text))
    return text if len(text) <= limit else text[:limit] + "..."


def _item_result(item, outcomes, answer_error):
    guard = outcomes.get(item["cell"] - 1, {"status": "not run"})
    outcome = outcomes.get(item["cell"], {"status": "not run", "evalue": "the check was never reached"})
    passed = False
    if item["refused"]:
        message = item["refused"]
    elif guard["status"] != "ok":
        message = (f"the grading guard before this check failed ({clean(guard.get('ename', guard['status']))}: "
                   f"{clean(guard.get('evalue', ''), 120)}): something in the notebook interfered with IPython")
    elif outcome["status"] == "ok":
        passed = True
        lines = [line for line in outcome.get("text", "").splitlines() if line.startswith("\u2714")]
        message = clean(lines[-1][1:].strip() if lines else "passed")
    elif outcome["status"] == "error":
        message = clean(outcome["evalue"]) if outcome["ename"] == "CheckFailed" else \
            f"{clean(outcome['ename'], 60)}: {clean(outcome['evalue'])}"
        if outcome["ename"] == "NameError" and answer_error:
            message = f"your answer cell raised {answer_error}, so it defined nothing: {message}"
    else:
        message = clean(outcome.get("evalue") or outcome["status"])
    if item["found"] is None and not passed:
        message = f"no answer cell for {item['exercise']} in your notebook (was it deleted?); {message}"
    return {"id": item["id"], "hidden": item["hidden"], "points": item["points"],
            "earned": item["points"] if passed else 0, "passed": passed, "message": message}


def grade_notebook(reference_path, submission, copy, hidden, profile="ci", deadline=NOTEBOOK_DEADLINE):
    """Grade one notebook of a submission in the grading copy; a list of item results and notes."""
    name = Path(reference_path).name
    reference = read_notebook(reference_path)
    notes = []
    student_path = Path(submission) / "notebooks" / name
    try:
        student = read_notebook(student_path)
    except (OSError, ValueError) as error:
        student = None
        notes.append(f"{name}: cannot read your notebook ({clean(error, 120)}): every answer in it counts as missing")
    notebook, items = graded_notebook(reference, student, name, hidden)
    token = secrets.token_hex(8)
    env = kernel_environment(copy / "kit", profile, token)
    try:
        outcomes = run_notebook(notebook, copy / "notebooks", env, deadline=deadline,
                                log=copy / "notebooks" / f"{Path(name).stem}.kernel.log")
    except Exception as error:  # no kernel, or nbclient itself failed: no cell ran
        outcomes = {}
        notes.append(f"{name}: the notebook could not run: {type(error).__name__}: {clean(error, 200)}")
    finally:
        killed = kill_marked(token)
    if killed:
        notes.append(f"{name}: killed {len(killed)} process(es) the notebook left running: {'; '.join(killed)}")
    write_notebook(notebook, copy / "notebooks" / name)
    results = []
    for item in items:
        answer = outcomes.get(item["answer_cell"], {}) if item["answer_cell"] is not None else {}
        answer_error = None
        if answer.get("status") == "error":
            answer_error = "NotImplementedError (it is not written yet)" if answer.get("ename") == "NotImplementedError" \
                else f"{answer.get('ename')}: {clean(answer.get('evalue'), 120)}"
        result = _item_result(item, outcomes, answer_error)
        result["notebook"] = name
        results.append(result)
    return results, notes


# The whole submission.


def tree_hash(folder):
    digest = hashlib.sha256()
    for path in sorted(Path(folder).rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts:
            digest.update(path.relative_to(folder).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def prepare_copy(out, submission, reference):
    """A fresh grading copy in `out` (replacing an older one, never anything else)."""
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        if not (out / COPY_MARK).exists():
            raise AssignmentError(f"{out} is not empty and is not a grading copy: choose another --out")
        shutil.rmtree(out)
    (out / "notebooks").mkdir(parents=True)
    (out / COPY_MARK).write_text("a grading copy made by labserver assignments; replaced on each grading\n",
                                 encoding="utf-8")
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info")
    shutil.copytree(Path(reference) / "labserver", out / "kit" / "labserver", ignore=ignore)
    project = Path(submission) / "project"
    if project.is_dir():
        shutil.copytree(project, out / "project", ignore=ignore, symlinks=True)
    else:
        (out / "project").mkdir()
    return out


def grade_project(copy, points=PROJECT_POINTS):
    """The project's points, from the grader's report (its score, not its printed text)."""
    from .. import grade as grader

    server = Path(copy) / "project" / "server.py"
    if not server.is_file():
        return {"points": points, "earned": 0, "message": "project/server.py is missing"}, []
    token = secrets.token_hex(8)
    saved = {key: os.environ.get(key) for key in ("PYTHONPATH", MARKER)}
    os.environ.update(PYTHONPATH=str(Path(copy) / "kit"), **{MARKER: token})
    try:
        report = grader.grade(cmd=[sys.executable, str(server), "--port", "{port}", "--root", "{root}"])
    except grader.GradeError as error:
        return {"points": points, "earned": 0, "message": f"not graded: {clean(error)}"}, kill_marked(token)
    except Exception as error:  # the grader must never take the notebooks' points down with it
        return {"points": points, "earned": 0, "message": f"the grader failed: {type(error).__name__}: {clean(error)}"}, \
            kill_marked(token)
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    killed = kill_marked(token)
    score, total = report.score, report.total
    earned = round(points * score / total, 1) if total else 0
    rows = [{"name": check.name, "points": check.points, "passed": check.passed, "detail": clean(check.detail, 200)}
            for check in report.checks]
    failed = [row["name"] for row in rows if not row["passed"]]
    message = f"{score}/{total} of the grader's points" + (f"; failed: {', '.join(failed)}" if failed else "")
    return {"points": points, "earned": earned, "score": score, "total": total, "message": message,
            "rows": rows}, killed


def integrity_notes(submission, reference):
    """Files of the release the student changed, added or removed (grading never uses them: for the instructor)."""
    submission, notes = Path(submission), []
    expected = release_files(reference)
    for relative, data in expected.items():
        path, top = submission / relative, relative.split("/")[0]
        if not (submission / top).exists():
            if f"removed: {top}" not in notes:
                notes.append(f"removed: {top}")
        elif not path.is_file():
            notes.append(f"removed: {relative}")
        elif path.read_bytes() != data and relative != ".gitignore":
            notes.append(f"changed: {relative}")
    package = submission / "labserver"
    if package.is_dir():
        for path in sorted(package.rglob("*.py")):
            relative = path.relative_to(submission).as_posix()
            if relative not in expected and "__pycache__" not in path.parts:
                notes.append(f"added: {relative}")
    for extra in ["conftest.py", "sitecustomize.py", "usercustomize.py", "pytest.ini", "setup.cfg", "tox.ini"]:
        if (submission / extra).exists() and extra not in expected:
            notes.append(f"added: {extra}")
    workflow = submission / WORKFLOW
    if not workflow.is_file():
        notes.append(f"removed: {WORKFLOW.as_posix()}")
    else:
        text = workflow.read_text(encoding="utf-8", errors="replace")
        pinned = dict(re.findall(r"^\s+(GRADING_KIT|GRADING_REF): (\S+)", text, re.M))
        items = [item for path in kit_notebooks(reference) for item in graded(read_notebook(path), path.name)]
        if text != classroom_workflow(items, pinned.get("GRADING_KIT", "?"), pinned.get("GRADING_REF", "?")):
            notes.append(f"changed: {WORKFLOW.as_posix()} (its Classroom points cannot be trusted)")
    return notes


def grade_submission(submission, reference, out, hidden=True, project=True, profile="ci", notebooks=None,
                     deadline=NOTEBOOK_DEADLINE, student=None):
    """Grade one submission against `reference` (the instructor's kit, or the
    released template); write OUT/results.json and return the results."""
    submission, reference = Path(submission).resolve(), Path(reference).resolve()
    check_kit(reference)
    if not submission.is_dir():
        raise AssignmentError(f"{submission} is not a folder")
    copy = prepare_copy(out, submission, reference).resolve()
    before = tree_hash(copy / "kit")
    items, notes = [], []
    for path in kit_notebooks(reference):
        if notebooks and path.name[:2] not in notebooks:
            continue
        results, more = grade_notebook(path, submission, copy, hidden, profile, deadline)
        if tree_hash(copy / "kit") != before:
            for result in results:
                result.update(earned=0, passed=False, message="the grading copy of labserver was changed while this "
                                                              "notebook ran: no points for it")
            before = tree_hash(copy / "kit")
        items += results
        notes += more
    results = {"student": student or submission.name, "mode": "hidden" if hidden else "public",
               "profile": profile, "items": items, "notes": notes + integrity_notes(submission, reference)}
    if project:
        results["project"], killed = grade_project(copy)
        if killed:
            results["notes"].append(f"project: killed {len(killed)} process(es) left running: {'; '.join(killed)}")
    results["earned"] = round(sum(i["earned"] for i in items) + results.get("project", {}).get("earned", 0), 1)
    results["points"] = sum(i["points"] for i in items) + results.get("project", {}).get("points", 0)
    (copy / "results.json").write_text(json.dumps(results, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return results


# Reports.


def table(results):
    """The results as text: one line per exercise, the project, notes, the total."""
    lines = [f"{results['student']}: {results['earned']:g}/{results['points']} points ({results['mode']} checks)"]
    for item in results["items"]:
        mark = "pass" if item["passed"] else "FAIL"
        lines.append(f"  {mark}  {item['earned']:>2}/{item['points']:<2} {item['id']:32} {item['message']}")
    project = results.get("project")
    if project:
        lines.append(f"  {'':4}  {project['earned']:>4g}/{project['points']:<2} {'project':30} {project['message']}")
    lines += [f"  note: {note}" for note in results["notes"]]
    return "\n".join(lines)


def write_gradebook(all_results, path):
    """One CSV row per student, a column per exercise: paste it into a gradebook."""
    columns = []
    for results in all_results:
        for item in results["items"]:
            if item["id"] not in columns:
                columns.append(item["id"])
    with open(path, "w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(["student", "total", "out of", *columns, "project", "notes"])
        for results in all_results:
            earned = {item["id"]: item["earned"] for item in results["items"]}
            writer.writerow([results["student"], results["earned"], results["points"],
                             *[earned.get(column, "") for column in columns],
                             results.get("project", {}).get("earned", ""), len(results["notes"])])


def score(results_path, what):
    """(passed, message) for one Classroom step: an exercise id, or project:FRACTION."""
    results = json.loads(Path(results_path).read_text(encoding="utf-8"))
    if what.startswith("project:"):
        project = results.get("project") or {}
        fraction = float(what.split(":", 1)[1])
        earned, points = project.get("earned", 0), project.get("points", PROJECT_POINTS)
        return earned >= fraction * points - 1e-9, f"project: {earned:g}/{points} ({project.get('message', 'not graded')})"
    for item in results["items"]:
        if item["id"] == what:
            return item["passed"], f"{item['id']}: {item['earned']}/{item['points']}: {item['message']}"
    return False, f"{what}: not graded (no such exercise in the results)"

