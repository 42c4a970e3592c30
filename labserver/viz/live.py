"""Live plots: a sweep drawn point by point as it is measured.

    rows = live_sweep(models=["threads", "threadpool", "asyncio"])   # the one call

    plot = LivePlot(models=["threads", "threadpool"])                # the parts of it
    plot.show()
    rows = sweep(models=["threads", "threadpool"], on_point=plot.add)
    plot.close()

LivePlot keeps one SweepFigure (figure.py) and, after every point, renders
it to PNG and replaces what is on screen:
  show()    in a notebook, one output with a display handle; every add()
            updates that output in place (jupyter.py says why not
            clear_output or display(fig)). For the thread that runs the cell.
  widget()  an ipywidgets.Image whose value add() replaces: for a sweep in a
            background thread (panel.py says why that is safe).
  outside Jupyter, neither: the figure is still there (plot.figure, plot.png()).

The PNG has DPI / figure.SCREEN_DPI times the pixels it is shown with, so
it stays sharp on a projector and when zoomed. Drawing costs 0.1-0.3 s of
this process's CPU per point (five panels, on a slow 2-core machine; fixed
margins halve it, see figure.py). add() runs inside the sweep's on_point,
between two points: the load generator (which may run in this process) is
idle then, so drawing never steals CPU from a measurement; it only makes
the sweep that much longer.
"""

import threading

from .figure import METRICS, SweepFigure
from .jupyter import in_notebook, png_output
from .progress import Progress

DPI = 120  # 1.33 pixels per CSS pixel: sharp on a projector, and drawn in ~0.15 s


class LivePlot:
    """A sweep's figure that grows as add(row) is called; see the module docstring.
    x, xs: as SweepFigure's (the x column, and the values the sweep will
    measure: with one, a bar chart; unknown, lines)."""

    def __init__(self, models=(), metrics=METRICS, title=None, dpi=DPI, x=None, xs=()):
        self.plot = SweepFigure(models, metrics, title, layout="fixed", x=x, xs=xs)  # laid out once, not per point
        self.figure = self.plot.figure
        self.records = []
        self.dpi = dpi
        self.handle = None  # IPython DisplayHandle, after show()
        self.image = None  # ipywidgets.Image, after widget()
        self.lock = threading.Lock()  # add() from a sweep thread, widget() or png() from the kernel's

    def show(self):
        """Display the plot (in a notebook): one output, updated in place by add().
        Returns nothing, so a cell ending in plot.show() still shows one image."""
        if in_notebook():
            from IPython.display import display

            self.handle = display(png_output(self.png(), self.plot.screen_width), display_id=True)

    def widget(self, image=None, draw=True):
        """The plot as an ipywidgets.Image, which add() keeps up to date from
        any thread. image: an existing Image to draw into instead of a new one;
        draw=False: leave it as it is until the next add() or redraw()."""
        if image is not None or self.image is None:
            import ipywidgets as widgets

            self.image = image or widgets.Image(format="png", layout=widgets.Layout(max_width="100%", height="auto"))
            if draw:
                self.image.value = self.png()
        return self.image

    def redraw(self):
        """Render and publish the current state (add() does this itself)."""
        self.publish(self.png())

    def add(self, record):
        """One more point, drawn now. Use as sweep(on_point=plot.add)."""
        with self.lock:
            self.records.append(record)
            self.plot.add(record)
            self.plot.redraw()
            png = self.plot.png(self.dpi) if self.handle is not None or self.image is not None else None
        if png is not None:
            self.publish(png)

    def extend(self, records):
        for record in records:
            self.add(record)

    def close(self, title=None):
        """The last frame (with a new title, if given); the output stays as it is after this."""
        if title is not None:
            with self.lock:
                self.plot.title = title
                self.plot.redraw()
            self.publish(self.png())
        self.handle = None

    def publish(self, png):
        if self.image is not None:
            self.image.value = png  # a comm message: any thread
        if self.handle is not None:
            self.handle.update(png_output(png, self.plot.screen_width))  # update_display_data: the cell's own thread

    def png(self, dpi=None):
        with self.lock:
            return self.plot.png(dpi or self.dpi)

    def __enter__(self):
        self.show()
        return self

    def __exit__(self, *exc_info):
        self.close()

    def __repr__(self):
        return f"<LivePlot of {', '.join(self.plot.models) or 'no models yet'}: {len(self.records)} points>"


class Records(list):
    """The rows of a sweep: a plain list of dicts, shown as one line rather
    than a wall of 34 columns per point (print(format_table(rows)) shows them)."""

    stopped = False

    def __repr__(self):
        models = ", ".join(dict.fromkeys(str(row.get("model")) for row in self)) or "nothing"
        return f"<{len(self)} points of {models}{' (stopped early)' if self.stopped else ''}>"


def sweep_size(models, clients=None, workloads=None, url=None, rates=None):
    """How many points a sweep with these arguments measures (its defaults from profile())."""
    from ..load import RATE_CLIENTS, profile

    defaults = profile()
    workloads = workloads or ([None] if url is not None else defaults["workloads"])
    clients = clients or (RATE_CLIENTS if rates else defaults["clients"])
    return max(1, len(models or [url])) * len(clients) * len(rates or [None]) * len(workloads)


def live_sweep(models=None, *, metrics=METRICS, on_point=None, sweep=None, **sweep_options):
    """Run a sweep and watch it draw: a progress bar and a live plot in a
    notebook, a line per point in a terminal. Returns the rows (Records).

    models: names from labserver.MODELS (default: every model, in lesson
    order) or url= for a running server; every other argument goes to
    labserver.load.sweep (clients, workloads, duration, keep_alive, rates ...).
    With rates=[...] the x axis is the offered rate (latency against offered
    load: the hockey stick); with one client count (or rate), bars.
    Interrupting (the notebook's stop button, Ctrl-C) stops the sweep
    cleanly and returns the points measured so far.
    sweep: the function that measures (default labserver.load.sweep).
    """
    from ..load import profile
    from ..servers import MODELS

    if sweep is None:
        from ..load import sweep
    url = sweep_options.get("url")
    if isinstance(models, str):
        models = [models]
    if models is None and url is None:
        models = list(MODELS)
    stop_event = sweep_options.pop("stop_event", None) or threading.Event()
    clients, rates = sweep_options.get("clients"), sweep_options.get("rates")
    total = sweep_size(models, clients, sweep_options.get("workloads"), url, rates)
    records = Records()
    progress = Progress(total)
    x, xs = ("rate", rates) if rates else ("clients", clients or profile()["clients"])
    plot = LivePlot(models or [url], metrics, x=x, xs=xs)

    def point(row):
        records.append(row)
        plot.add(row)
        progress.add(row)
        if on_point is not None:
            on_point(row)

    progress.show()
    plot.show()
    try:
        sweep(models=models, on_point=point, stop_event=stop_event, **sweep_options)
    except KeyboardInterrupt:  # the sweep has stopped its servers and clients on the way out
        stop_event.set()
    finally:  # an error still leaves the bar and the plot in their final state, then propagates
        records.stopped = stop_event.is_set() or len(records) < total
        progress.finish("stopped" if records.stopped else "done")
        plot.close()
    return records
