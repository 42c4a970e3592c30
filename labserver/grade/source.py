"""The project's rule, checked: the server is the student's own code on the standard library.

    problems = check_source("project/server.py")    # [] if it keeps the rule

A server that only starts labserver's ThreadPoolServer, or wraps the standard
library's http.server, would earn full marks while the student wrote nothing
the lecture is about. What it says about itself (its Server: header) is no
evidence, so the grader looks at the code and at the running process:

* Before it starts the server, it reads the source it is given (and every
  module of the student's own that it imports, from the same folder) with
  the ast module. Refused: importing labserver (any of it: the model answer,
  the protocol core included), a ready-made server (http.server,
  socketserver, wsgiref, xmlrpc.server) or anything outside the standard
  library; and code whose imports cannot be read: importlib, __import__,
  exec, eval, compile, runpy, starting other programs (subprocess, os.system,
  os.exec*, os.spawn*).
* While the server runs, an audit hook (sys.addaudithook, which a program
  cannot remove) reports every import of those modules made by code outside
  the standard library, and makes it fail. It is installed through a
  sitecustomize module put first on the child's PYTHONPATH. A server that
  did not load it (python -I, -S, or not Python at all) is refused too: the
  grader could not watch it.

Trade-off: a rule the grader can check is stricter than a rule a person
would apply (a student may not even import a third-party JSON library), but
it is the same for everyone, and the reason is always given.
"""

import ast
import os
import sys
from pathlib import Path

FORBIDDEN = {  # module -> why a project may not import it
    "labserver": "labserver is the model answer: the project is to write your own server",
    "http.server": "http.server is the standard library's HTTP server: the project is to write your own",
    "socketserver": "socketserver's accept loop and threads are the part of the project about concurrency",
    "wsgiref": "wsgiref's server is http.server underneath",
    "xmlrpc.server": "xmlrpc.server is socketserver underneath",
}
UNREADABLE = {  # modules and calls that load code or start programs the grader cannot read
    "importlib", "runpy", "imp", "zipimport", "subprocess", "pty",
    "__import__", "exec", "eval", "compile",
    "os.system", "os.popen", "os.startfile", "os.exec", "os.spawn", "os.posix_spawn",
}
WATCH_VARIABLE = "LABSERVER_GRADE_WATCH"  # the file the audit hook reports to


def check_source(path):
    """Every way `path` (and the student's modules it imports) breaks the rule,
    one line each as 'file:line: what, why'; [] if it keeps it."""
    path = Path(path)
    problems, seen = [], set()
    _check_file(path, path.parent, problems, seen)
    return problems


def _check_file(path, folder, problems, seen):
    if path in seen:
        return
    seen.add(path)
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    except (OSError, UnicodeDecodeError, SyntaxError) as error:
        problems.append(f"{path.name}: cannot be read as Python ({error})")
        return
    for node in ast.walk(tree):
        for name in imported_names(node):
            _check_import(name, node, path, folder, problems, seen)
        called = call_name(node)
        if called is not None and (called in UNREADABLE or called.startswith(("os.exec", "os.spawn", "os.posix_spawn"))):
            problems.append(f"{path.name}:{node.lineno}: calls {called}(): the grader cannot read what it runs")


def imported_names(node):
    """The dotted module names an import statement can bring in."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if isinstance(node, ast.ImportFrom):
        if node.level:  # from . import x: the student's own modules
            return ["." + (node.module or alias.name) for alias in node.names]
        return [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
    return []


def _check_import(name, node, path, folder, problems, seen):
    where = f"{path.name}:{node.lineno}"
    local = name.lstrip(".").split(".")[0]
    own = [folder / f"{local}.py", folder / local / "__init__.py"]
    if name.startswith(".") or any(p.exists() for p in own):
        for module in own:
            if module.exists():
                _check_file(module, folder, problems, seen)
        return
    for forbidden, why in FORBIDDEN.items():
        if name == forbidden or name.startswith(forbidden + "."):
            problems.append(f"{where}: imports {name}: {why}")
            return
    if name in UNREADABLE or local in UNREADABLE:
        problems.append(f"{where}: imports {name}: the grader cannot read the code it loads or runs")
    elif local not in sys.stdlib_module_names:
        problems.append(f"{where}: imports {name}, which is not in the standard library")


def call_name(node):
    """'exec' for exec(...), 'os.system' for os.system(...); None for anything else."""
    if not isinstance(node, ast.Call):
        return None
    func = node.func
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
        return f"{func.value.id}.{func.attr}"
    return None


# The run-time watch: an audit hook in the server's own process.

SITECUSTOMIZE = '''\
"""Installed by labserver grade for the project server it grades (labserver/grade/source.py)."""
import os
import sys
import sysconfig

_report = os.environ.get({variable!r})
_forbidden = {forbidden!r}
_stdlib = tuple(os.path.normcase(os.path.abspath(p)) + os.sep for p in
                {{sysconfig.get_paths()["stdlib"], sysconfig.get_paths()["platstdlib"]}})


def _write(line):
    with open(_report, "a", encoding="utf-8") as file:
        file.write(line + "\\n")


def _by_the_standard_library():
    """True if the import statement runs in a module of the standard library itself."""
    frame = sys._getframe(2)
    while frame is not None and frame.f_code.co_filename.startswith("<"):
        frame = frame.f_back  # importlib's own frames
    name = os.path.normcase(os.path.abspath(frame.f_code.co_filename)) if frame is not None else ""
    return name.startswith(_stdlib) and "-packages" not in name


def _watch(event, args):
    if event == "import" and isinstance(args[0], str):
        name = args[0]
        if any(name == f or name.startswith(f + ".") for f in _forbidden) and (
                name.startswith("labserver") or not _by_the_standard_library()):
            _write("import " + name)
            raise ImportError("labserver grade: a project server may not import " + name)


if _report:
    _write("watching " + str(os.getpid()))
    sys.addaudithook(_watch)
'''


def watch(folder):
    """Write the hook into `folder`; returns the environment variables that make a
    Python child load it, and the file it reports to."""
    folder = Path(folder)
    (folder / "sitecustomize.py").write_text(
        SITECUSTOMIZE.format(variable=WATCH_VARIABLE, forbidden=tuple(FORBIDDEN)), encoding="utf-8")
    report = folder / "imports.txt"
    report.write_text("", encoding="utf-8")
    pythonpath = os.pathsep.join(p for p in [str(folder), os.environ.get("PYTHONPATH")] if p)
    return {"PYTHONPATH": pythonpath, WATCH_VARIABLE: str(report)}, report


def watched(report):
    """What the hook saw: (it was loaded, [forbidden imports it stopped])."""
    lines = Path(report).read_text(encoding="utf-8").splitlines()
    return (any(line.startswith("watching ") for line in lines),
            sorted({line[len("import "):] for line in lines if line.startswith("import ")}))
