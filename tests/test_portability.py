"""Static portability rules, read from the source with ast (a student's Windows laptop
reads text as cp1252 unless told, and splits command strings differently):

* every text file is opened, read and written with an explicit encoding;
* a subprocess that talks text says which encoding;
* commands are argument lists: never shell=True, never one string to split.
"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SOURCES = sorted(p for folder in ("labserver", "tests", "benchmarks", "tools", "project")
                 for p in (ROOT / folder).rglob("*.py") if ".venv" not in p.parts)
SUBPROCESS_CALLS = {"run", "Popen", "check_output", "check_call", "call"}


def keywords(call):
    return {kw.arg: kw.value for kw in call.keywords if kw.arg}


def is_true(node):
    return isinstance(node, ast.Constant) and node.value is True


def text_mode(call, mode_index):
    """False if the call's mode is binary ('rb', 'wb'...), True otherwise (text is the default)."""
    mode = keywords(call).get("mode")
    if mode is None and len(call.args) > mode_index:
        mode = call.args[mode_index]
    if mode is None:
        return True
    if isinstance(mode, ast.Constant) and isinstance(mode.value, str):
        return "b" not in mode.value
    return True  # a computed mode: it must say its encoding anyway


def problems(path, source=None, where=None):
    tree = ast.parse(path.read_text(encoding="utf-8") if source is None else source, filename=str(path))
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func, kws = node.func, keywords(node)
        name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else None
        where = f"{path.relative_to(ROOT)}{where or ''}:{node.lineno}"
        if name == "open" and isinstance(func, ast.Name) and text_mode(node, 1) and "encoding" not in kws:
            found.append(f"{where}: open() of a text file without encoding=")
        if name == "open" and isinstance(func, ast.Attribute) and text_mode(node, 0) and "encoding" not in kws \
                and not (isinstance(func.value, ast.Name) and func.value.id in ("os", "webbrowser")):
            found.append(f"{where}: Path.open() of a text file without encoding=")
        if name in ("read_text", "write_text") and "encoding" not in kws:
            found.append(f"{where}: {name}() without encoding=")
        if name in SUBPROCESS_CALLS and isinstance(func, ast.Attribute) and \
                isinstance(func.value, ast.Name) and func.value.id == "subprocess":
            if is_true(kws.get("shell")):
                found.append(f"{where}: shell=True (pass the command as a list)")
            if node.args and isinstance(node.args[0], (ast.Constant, ast.JoinedStr)):
                found.append(f"{where}: a command as one string (pass a list)")
            if (is_true(kws.get("text")) or is_true(kws.get("universal_newlines"))) and "encoding" not in kws:
                found.append(f"{where}: text=True without encoding=")
    return found


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_text_is_utf8_and_commands_are_lists(path):
    assert not problems(path), "\n".join(problems(path))


@pytest.mark.parametrize("path", sorted((ROOT / "notebooks").glob("*.ipynb")), ids=lambda p: p.name)
def test_the_lessons_code_follows_the_same_rules(path):
    import json

    found = []
    for number, cell in enumerate(json.loads(path.read_text(encoding="utf-8"))["cells"]):
        source = "".join(cell["source"])
        if cell["cell_type"] != "code" or "??" in source or source.lstrip().startswith(("%", "!")):
            continue  # IPython's own syntax: not Python
        found += problems(path, source, f" cell {number}")
    assert not found, "\n".join(found)


def test_the_rules_catch_what_they_say(tmp_path):
    bad = ROOT / "tests" / "_portability_probe.py"  # inside ROOT: problems() names files relative to it
    bad.write_text("import subprocess\nfrom pathlib import Path\n"
                   "open('x')\nopen('x', 'w')\nPath('x').read_text()\nPath('x').open()\n"
                   "subprocess.run('ls -l', shell=True)\nsubprocess.run(['ls'], text=True)\n"
                   "open('x', 'rb')\nPath('x').read_bytes()\nopen('x', encoding='utf-8')\n", encoding="utf-8")
    try:
        found = problems(bad)
    finally:
        bad.unlink()
    assert len(found) == 7, found
