"""The architecture, enforced: arrows point down only.

protocol and app are sans-I/O: no sockets, threads, selectors, event loops or
plots. servers never import the plotting layer. A module that breaks this rule
makes every lesson built on it harder to test and to read.
"""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "labserver"
IO_AND_PLOTS = {"socket", "ssl", "selectors", "select", "threading", "asyncio", "multiprocessing",
                "concurrent", "socketserver", "http.server", "http.client", "matplotlib", "ipywidgets"}


def imported_modules(path):
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            yield node.module


def forbidden_imports(folder, forbidden):
    found = []
    for path in sorted((PACKAGE / folder).rglob("*.py")):
        for module in imported_modules(path):
            if module in forbidden or module.split(".")[0] in forbidden:
                found.append(f"{path.relative_to(PACKAGE)} imports {module}")
    return found


@pytest.mark.parametrize("layer", ["protocol", "app"])
def test_core_layers_do_no_io(layer):
    assert (PACKAGE / layer).is_dir()
    assert forbidden_imports(layer, IO_AND_PLOTS) == []


def test_servers_never_import_plots():
    assert forbidden_imports("servers", {"matplotlib", "ipywidgets", "labserver.viz"}) == []


def test_the_checker_itself_sees_imports(tmp_path):
    # Guard against a vacuous pass: the scanner must find a real import.
    sample = tmp_path / "sample.py"
    sample.write_text("import socket\nfrom threading import Thread\n")
    assert set(imported_modules(sample)) == {"socket", "threading"}
