"""Progress of a sweep: a bar in a notebook, one line per point in a terminal.

    progress = Progress(total=18)
    progress.show()
    sweep(..., on_point=progress.add)        # "5/18  threads small x16: 12,345 req/s"
    progress.finish("done")

Three forms, chosen by `form` (default: "html" in a notebook, else "text"):
  html    an HTML <progress> bar and a line of text, one output replaced in
          place through a display handle (jupyter.py says why). Plain HTML,
          not a widget: a notebook saved with it reopens showing the last
          state, where a widget's view would say "Error displaying widget:
          model not found" (widget state is not saved unless asked for).
          For the thread that runs the cell.
  widget  an ipywidgets.IntProgress and a Label: for the instructor panel,
          which is a widget anyway. Setting a widget's value sends a comm
          message to the frontend, which finds the widget by its id, not by
          the cell running now: so add() may be called from a background thread.
  text    a line per point on a stream (a terminal, a script, pytest). print()
          is only used there, never in a notebook from a thread, where its
          output would land in whatever cell runs.
"""

import html
import sys

from .jupyter import in_notebook

FORMS = ("html", "widget", "text")


def describe_point(row):
    """One row -> "threads small x16: 12,345 req/s, 3 errors" (open loop: "@ 2,000/s")."""
    rate = f" @ {row['rate']:,.0f}/s" if row.get("rate") is not None else ""
    text = (f"{row.get('model')} {row.get('workload')} x{row.get('clients')}{rate}: "
            f"{row.get('rps') or 0:,.0f} req/s")
    return text + (f", {row['errors']} errors" if row.get("errors") else "")


class Progress:
    """Counts points out of `total`; see the module docstring."""

    def __init__(self, total, description="sweep", form=None, stream=None):
        self.total = total
        self.done = 0
        self.description = description
        self.form = form or ("html" if in_notebook() else "text")
        if self.form not in FORMS:
            raise ValueError(f"form must be one of {', '.join(FORMS)}, not {self.form!r}")
        self.stream = stream  # for the text form (None: sys.stdout at the time of writing)
        self.message = f"0/{total}"
        self.state = "running"  # then "done" or "stopped"
        self.handle = None  # the html form's display handle, after show()
        self.bar = self.label = self.widget = None
        if self.form == "widget":
            import ipywidgets as widgets

            self.bar = widgets.IntProgress(value=0, min=0, max=max(total, 1), description=description,
                                           bar_style="info")
            self.label = widgets.Label(value=self.message)
            self.widget = widgets.HBox([self.bar, self.label])

    def show(self):
        """Display the bar (a notebook); print the start line (a terminal)."""
        if self.form == "text":
            self.write(f"{self.description}: {self.total} points")
            return
        from IPython.display import display

        if self.form == "widget":
            display(self.widget)
        else:
            self.handle = display(self.html_output(), display_id=True)

    def add(self, row=None):
        """One more point done (row: its result, shown beside the count)."""
        self.done += 1
        self.message = f"{self.done}/{self.total}" + (f"  {describe_point(row)}" if row else "")
        if self.form == "text":
            self.write("  " + self.message)
        self.refresh()

    def finish(self, message="done"):
        """The end: the bar turns green (orange if stopped early); a last line in a terminal."""
        self.state = "done" if self.done >= self.total else "stopped"
        self.message = f"{self.done}/{self.total}  {message}"
        if self.form == "text":
            self.write(f"{self.description}: {message} ({self.done}/{self.total} points)")
        self.refresh()

    def reset(self, total):
        self.total, self.done, self.state, self.message = total, 0, "running", f"0/{total}"
        self.refresh()

    def refresh(self):
        if self.bar is not None:
            self.bar.max, self.bar.value = max(self.total, 1), min(self.done, max(self.total, 1))
            self.bar.bar_style = {"running": "info", "done": "success"}.get(self.state, "warning")
            self.label.value = self.message
        if self.handle is not None:
            self.handle.update(self.html_output())

    def html_output(self):
        from IPython.display import HTML

        colour = {"running": "#1f77b4", "done": "#2ca02c"}.get(self.state, "#ff7f0e")
        return HTML(f'<div style="font-family: monospace">{html.escape(self.description)} '
                    f'<progress value="{self.done}" max="{max(self.total, 1)}" '
                    f'style="width: 16em; accent-color: {colour}"></progress> {html.escape(self.message)}</div>')

    def write(self, line):
        stream = self.stream or sys.stdout
        print(line, file=stream, flush=True)
