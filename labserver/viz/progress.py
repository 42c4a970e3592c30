"""Progress of a sweep: a bar in a notebook, one line per point in a terminal.

    progress = Progress(total=18)
    progress.show()
    sweep(..., on_point=progress.add)        # "5/18  threads small x16: 12,345 req/s"
    progress.finish("done")

In a notebook the bar is an ipywidgets.IntProgress with a Label beside it.
Setting a widget's value sends a comm message to the frontend, which finds
the widget by its id, not by the cell running now: so add() may be called
from a background thread (the instructor panel does). In a terminal (or with
text=True) each point prints one line; print() is only used there, never in a
notebook from a thread, where its output would land in whatever cell runs.
"""

import sys

from .jupyter import has_widgets, in_notebook


def describe_point(row):
    """One row -> "threads small x16: 12,345 req/s, 3 errors"."""
    text = f"{row.get('model')} {row.get('workload')} x{row.get('clients')}: {row.get('rps') or 0:,.0f} req/s"
    return text + (f", {row['errors']} errors" if row.get("errors") else "")


class Progress:
    """Counts points out of `total`; see the module docstring."""

    def __init__(self, total, description="sweep", text=None, stream=None):
        self.total = total
        self.done = 0
        self.description = description
        self.text = not (in_notebook() and has_widgets()) if text is None else text
        self.stream = stream  # for the text form (None: sys.stdout at the time of writing)
        self.bar = self.label = self.widget = None
        if not self.text:
            import ipywidgets as widgets

            self.bar = widgets.IntProgress(value=0, min=0, max=max(total, 1), description=description,
                                           bar_style="info")
            self.label = widgets.Label(value=f"0/{total}")
            self.widget = widgets.HBox([self.bar, self.label])

    def show(self):
        """Display the bar (a notebook); print the start line (a terminal)."""
        if self.widget is not None:
            from IPython.display import display

            display(self.widget)
        else:
            self.write(f"{self.description}: {self.total} points")

    def add(self, row=None):
        """One more point done (row: its result, shown beside the count)."""
        self.done += 1
        message = f"{self.done}/{self.total}" + (f"  {describe_point(row)}" if row else "")
        if self.bar is not None:
            self.bar.value = min(self.done, self.bar.max)
            self.label.value = message
        else:
            self.write("  " + message)

    def finish(self, message="done"):
        """The end: the bar turns green (red if stopped early); a last line in a terminal."""
        if self.bar is not None:
            self.bar.bar_style = "success" if self.done >= self.total else "warning"
            self.label.value = f"{self.done}/{self.total}  {message}"
        else:
            self.write(f"{self.description}: {message} ({self.done}/{self.total} points)")

    def reset(self, total):
        self.total, self.done = total, 0
        if self.bar is not None:
            self.bar.max, self.bar.value, self.bar.bar_style = max(total, 1), 0, "info"
            self.label.value = f"0/{total}"

    def write(self, line):
        stream = self.stream or sys.stdout
        print(line, file=stream, flush=True)
