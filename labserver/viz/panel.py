"""The instructor panel: choose models, clients, workload; Run, Stop; watch it draw.

    from labserver.viz import Panel
    Panel()                 # the last line of a cell: the panel appears

    panel = Panel(); panel.run(); ...; panel.stop()     # the same without clicking

Before the first run the panel says what to do (an empty Image would show
as a broken picture); each new run moves the previous plot into "Earlier
runs" below (the last KEEP of them), so two runs can be compared side by side.
A panel is a widget: a notebook saved with one shows it again only after
the cell is run again (widget state is not saved in the file by default).

How it stays responsive. A button click reaches the kernel as a message that
the kernel's main thread handles between cells. If Run measured in that
thread, Stop's click would wait in line until the sweep was over. So Run
starts the sweep in a background thread and returns at once; Stop only sets
the sweep's stop_event, which the sweep checks every tick, and the sweep then
stops its server and client processes itself.

What the background thread may touch, and why (the choice this file makes):
  - widget values only: the plot is an ipywidgets.Image whose value is set
    to fresh PNG bytes, the bar an IntProgress, the messages Labels. Setting
    a value sends a comm message addressed to that widget's id, which
    ipykernel passes to its IOPub thread from any thread, and which the
    frontend applies to the widget wherever it is (the ipywidgets docs:
    "Updating a widget in the background"). Nothing depends on which cell
    runs now.
  - never print() or display(): those are routed by the "parent" message,
    i.e. to the cell that happens to be running (ipykernel 7: the latest
    one), so a thread's output appears in some other cell.
  - the matplotlib figure, drawn in this thread to PNG: it is a Figure with
    an Agg canvas that nothing else touches (no pyplot, figure.py), behind
    LivePlot's lock.
Rejected: handing each point to the kernel's main thread (its event loop's
call_soon_threadsafe) to draw and display there: it depends on ipykernel's
loop internals (tornado, asyncio, now anyio) and display() from a callback
still needs the right parent message. An Output widget written from a thread
has the same routing problem (ipywidgets issue #2358).
"""

import html
import threading

import ipywidgets as widgets

from ..load import parse_workload, profile
from ..load import sweep as load_sweep
from ..load.workload import MIX, WORKLOADS
from ..servers import DEFAULT_MODEL, MODELS
from .figure import METRICS
from .live import LivePlot
from .progress import Progress

KEEP = 3  # earlier runs kept below the current one


def parse_counts(text):
    """'1, 2, 4' -> [1, 2, 4]; anything else -> ValueError with what was wrong."""
    counts = []
    for item in str(text).replace(" ", "").split(","):
        if not item.isdigit() or int(item) < 1:
            raise ValueError(f"clients: expected whole numbers >= 1 separated by commas, got {text!r}")
        counts.append(int(item))
    return counts


class Panel(widgets.VBox):
    """The widget itself; see the module docstring. sweep: the measuring
    function (default labserver.load.sweep; tests may pass their own)."""

    def __init__(self, models=(DEFAULT_MODEL,), clients=None, workload="small", duration=None,
                 keep_alive=True, metrics=METRICS, sweep=None):
        defaults = profile()
        self.metrics = metrics
        self.sweep_function = sweep or load_sweep
        self.thread = None
        self.stop_event = threading.Event()
        self.records = []
        self.error = None
        self.plot = None
        chosen = (models,) if isinstance(models, str) else tuple(models)
        self.model_select = widgets.SelectMultiple(options=list(MODELS), value=chosen, rows=len(MODELS),
                                                   description="models")
        self.clients_text = widgets.Text(value=",".join(map(str, clients or defaults["clients"])),
                                         description="clients")
        self.workload_box = widgets.Combobox(value=workload, options=[*WORKLOADS, "mix"], description="workload",
                                             placeholder=f"a name, a /path or a mix like {MIX.split(',')[0]},large:1")
        self.duration_box = widgets.BoundedFloatText(value=duration or defaults["duration"], min=0.05, max=3600,
                                                     step=0.5, description="seconds")
        self.keep_alive_box = widgets.Checkbox(value=keep_alive, description="keep-alive")
        self.run_button = widgets.Button(description="Run", icon="play", button_style="success")
        self.stop_button = widgets.Button(description="Stop", icon="stop", button_style="danger", disabled=True)
        self.run_button.on_click(lambda _: self.run())
        self.stop_button.on_click(lambda _: self.stop(wait=False))  # never block the kernel in a click
        self.progress = Progress(0, description="points", form="widget")
        self.status = widgets.Label(value=f"Profile {defaults['name']}: choose, then Run.")
        self.empty = widgets.HTML("<p style='font-size: 1.2em; color: #666'>No measurements yet: choose the "
                                  "models and the clients, then press <b>Run</b>. The plot appears here.</p>")
        self.image = widgets.Image(format="png", layout=widgets.Layout(max_width="100%", height="auto",
                                                                       display="none"))
        self.earlier = widgets.VBox([])  # [HTML caption, Image] per earlier run, the newest first
        controls = widgets.VBox([self.clients_text, self.workload_box, self.duration_box, self.keep_alive_box,
                                 widgets.HBox([self.run_button, self.stop_button])])
        super().__init__([widgets.HBox([self.model_select, controls]), self.progress.widget, self.status,
                          self.empty, self.image, self.earlier])

    def options(self):
        """The controls -> sweep() arguments, or ValueError saying what is wrong."""
        models = list(self.model_select.value)
        if not models:
            raise ValueError("choose at least one model")
        workload = self.workload_box.value.strip()
        parse_workload(workload)  # WorkloadError (a ValueError) names the choices
        return {"models": models, "clients": parse_counts(self.clients_text.value), "workloads": [workload],
                "duration": float(self.duration_box.value), "keep_alive": bool(self.keep_alive_box.value)}

    @property
    def running(self):
        return self.thread is not None and self.thread.is_alive()

    def run(self):
        """Start the sweep the controls describe, in a background thread.
        Returns True if it started (False: one is running, or a control is wrong: see the status)."""
        if self.running:
            return False
        try:
            options = self.options()
        except ValueError as error:
            self.status.value = f"Not started: {error}"
            return False
        self.keep_earlier_run()
        self.records, self.error = [], None
        self.stop_event = threading.Event()
        self.plot = LivePlot(options["models"], self.metrics, xs=options["clients"])
        self.plot.widget(self.image, draw=False)  # drawn by the thread: a click returns at once
        self.empty.layout.display, self.image.layout.display = "none", None
        self.progress.reset(len(options["models"]) * len(options["clients"]))
        self.status.value = f"Measuring {', '.join(options['models'])} ..."
        self.set_running(True)
        self.thread = threading.Thread(target=self.work, args=(options, self.plot, self.stop_event),
                                       name="labserver-panel-sweep", daemon=True)
        self.thread.start()
        return True

    def keep_earlier_run(self):
        """The plot on show (if it has points) moves to the top of "Earlier runs"."""
        if self.plot is None or not self.records:
            return
        import ipywidgets as widgets

        title = self.plot.figure.get_suptitle()
        caption = widgets.HTML(f"<b>Earlier run</b> ({len(self.records)} points): {html.escape(title)}")
        frozen = widgets.Image(value=bytes(self.image.value), format="png",
                               layout=widgets.Layout(max_width="100%", height="auto"))
        kept = [widgets.VBox([caption, frozen]), *self.earlier.children]
        self.earlier.children = kept[:KEEP]
        for dropped in kept[KEEP:]:
            for part in dropped.children:
                part.close()
            dropped.close()

    def work(self, options, plot, stop_event):
        """The background thread: the sweep, then the end state (widgets only, see above)."""
        def point(row):
            self.records.append(row)
            plot.add(row)  # draws the PNG here, between two points
            self.progress.add(row)

        outcome = "stopped"
        try:
            plot.redraw()  # the empty panels, with the models announced
            self.sweep_function(**options, on_point=point, stop_event=stop_event)
            outcome = "stopped" if stop_event.is_set() else "done"
        except Exception as error:  # shown in the panel; a thread's traceback would reach no cell
            self.error = error
            outcome = f"error: {error}"
        finally:
            self.progress.finish(outcome if self.error is None else "error")
            count = len(self.records)
            self.status.value = f"{outcome[:1].upper()}{outcome[1:]}: {count} point{'s' * (count != 1)}."
            self.set_running(False)

    def stop(self, wait=True, timeout=60.0):
        """Stop the sweep (its servers and clients with it). wait: until the
        thread has ended. Returns True if nothing runs any more."""
        self.stop_event.set()
        if self.running:
            self.status.value = "Stopping ..."
            self.stop_button.disabled = True
            if wait:
                self.thread.join(timeout)
        return not self.running

    def wait(self, timeout=None):
        """Until the sweep ends by itself (or by stop()); returns True if it has."""
        if self.thread is not None:
            self.thread.join(timeout)
        return not self.running

    def set_running(self, running):
        self.run_button.disabled = running
        self.stop_button.disabled = not running
        for control in (self.model_select, self.clients_text, self.workload_box, self.duration_box,
                        self.keep_alive_box):
            control.disabled = running

    def close(self):
        """Closing the widget stops its sweep first."""
        stop_event = getattr(self, "stop_event", None)
        if stop_event is not None:
            stop_event.set()
        super().close()
