"""Each server model fits on one screen.

The lessons promise that a student opens a model's module (or types
`Model??` in a notebook) and sees the whole idea at once. So a model module
may hold at most MAX_LOGIC_LINES lines of code, not counting docstrings,
comments and blank lines. Sixty lines of code, with the comments and blank
lines between them, fill a laptop editor or a notebook's pager about once:
beyond that the student scrolls back and forth and loses the thread. What the
models share lives beside them (server.py, blocking.py, nonblocking.py, ...),
so that each model holds only what it does differently.
"""

import ast
import inspect
import io
import tokenize
from pathlib import Path

import pytest

from labserver.servers import MODELS

MAX_LOGIC_LINES = 60
NOT_CODE = {tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT, tokenize.ENDMARKER}


def docstring_lines(tree):
    """The line numbers of the module's, classes' and functions' docstrings."""
    lines = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) \
                    and isinstance(first.value.value, str):
                lines.update(range(first.lineno, first.end_lineno + 1))
    return lines


def logic_lines(source):
    """How many lines hold code: a statement over three lines counts three."""
    docstrings = docstring_lines(ast.parse(source))
    lines = set()
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type not in NOT_CODE:
            lines.update(n for n in range(token.start[0], token.end[0] + 1) if n not in docstrings)
    return len(lines)


def test_the_counter_skips_docstrings_comments_and_blank_lines():
    source = '''"""A module docstring,
    over two lines."""

    import os  # a comment


    def f(x):
        """A docstring."""
        # a comment line
        return (x +
                os.sep)
    '''
    assert logic_lines(inspect.cleandoc(source)) == 4  # import, def, and the return over two lines


@pytest.mark.parametrize("name", list(MODELS))
def test_each_model_module_fits_on_a_screen(name):
    path = Path(inspect.getsourcefile(MODELS[name]))
    count = logic_lines(path.read_text(encoding="utf-8"))
    assert count <= MAX_LOGIC_LINES, f"{path.name} has {count} lines of code (at most {MAX_LOGIC_LINES})"
