"""The architecture, enforced: arrows point down only.

protocol and app are sans-I/O: no sockets, threads, selectors, event loops or
plots. servers and load never import the plotting layer (load measures, viz
draws what it measured). A module that breaks this rule makes every lesson
built on it harder to test and to read.
"""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "labserver"
IO_AND_PLOTS = {"socket", "ssl", "selectors", "select", "threading", "asyncio", "multiprocessing",
                "concurrent", "socketserver", "http.server", "http.client", "matplotlib", "ipywidgets"}


def imported_modules(path, package):
    """Every module that the file at `path`, in `package` (say
    "labserver.load"), imports, anywhere in it (a function's lazy import too),
    with relative imports made absolute: `from ..viz import live` there
    imports labserver.viz and labserver.viz.live."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            parts = package.split(".")[:len(package.split(".")) + 1 - node.level] if node.level else []
            base = ".".join(parts + ([node.module] if node.module else []))
            yield base
            yield from (f"{base}.{alias.name}" for alias in node.names)


def forbidden_imports(folder, forbidden):
    found = []
    for path in sorted((PACKAGE / folder).rglob("*.py")):
        package = ".".join(path.relative_to(PACKAGE.parent).parent.parts)
        for module in imported_modules(path, package):
            if any(module == name or module.startswith(name + ".") for name in forbidden):
                found.append(f"{path.relative_to(PACKAGE)} imports {module}")
    return sorted(set(found))


@pytest.mark.parametrize("layer", ["protocol", "app"])
def test_core_layers_do_no_io(layer):
    assert (PACKAGE / layer).is_dir()
    assert forbidden_imports(layer, IO_AND_PLOTS) == []


@pytest.mark.parametrize("layer", ["servers", "load"])
def test_servers_and_load_never_import_plots(layer):
    assert forbidden_imports(layer, {"matplotlib", "ipywidgets", "labserver.viz"}) == []


def test_the_checker_itself_sees_imports(tmp_path):
    # Guard against a vacuous pass: the scanner must find real imports,
    # relative ones and those inside a function included.
    sample = tmp_path / "sample.py"
    sample.write_text("import socket\nfrom threading import Thread\n"
                      "def plot():\n    from ..viz import live\n    from .. import viz\n", encoding="utf-8")
    assert set(imported_modules(sample, "labserver.load")) == {
        "socket", "threading", "threading.Thread", "labserver.viz", "labserver.viz.live", "labserver"}
