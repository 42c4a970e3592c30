"""SweepFigure: one matplotlib Figure of a sweep, which grows point by point.

    fig = SweepFigure(models=["threads", "threadpool"])
    for row in rows:
        fig.add(row)            # the lines get one point longer, in place
    png = fig.png()             # bytes, for a notebook, a widget or a file

Panels (choose with metrics=...): throughput (req/s), latency (p50 solid,
p99 dashed, log scale), CPU (server solid, the load generator's own dotted:
a figure is only the server's while the client is not the one at 100 %),
server memory (RSS), fairness (Jain's index, 1 = every client served alike).
Any other result column (e.g. "errors", "max_gap_ms") also makes a panel.
The x axis is the number of concurrent clients on a log-2 scale: 1, 2, 4 ...
1024 are equally spaced, and "twice the clients" is always the same step.

Trade-offs: the figure is made with matplotlib's object API
(matplotlib.figure.Figure with an Agg canvas), never pyplot. pyplot keeps a
global list of figures that the notebook's inline backend displays, again, at
the end of every cell, and that list is not safe to touch from the thread a
live sweep runs in. A Figure only this object touches has neither problem;
NotebookFigure adds the one thing pyplot did for it, showing as a PNG.
Each line is kept and given new data (set_data) rather than redrawn from
scratch, so a point added is a point added, not a new plot. Static plots
use constrained layout (every label fits); live ones fixed margins, since
laying the figure out again costs as much as drawing it, at every point.
"""

import io
import math
from collections import namedtuple

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import FuncFormatter, NullLocator

Panel = namedtuple("Panel", "title ylabel lines yscale ylim")  # lines: [(column, style, style name)]
PANELS = {
    "rps": Panel("Throughput", "requests / s", [("rps", "-", None)], "linear", (0, None)),
    "latency": Panel("Latency", "ms", [("p50_ms", "-", "p50"), ("p99_ms", "--", "p99")], "log", (None, None)),
    "cpu": Panel("CPU", "% of one core", [("cpu_pct", "-", "server"), ("client_cpu_pct", ":", "load generator")],
                 "linear", (0, None)),
    "memory": Panel("Server memory", "RSS, MB", [("rss_mb", "-", None)], "linear", (0, None)),
    "fairness": Panel("Fairness", "Jain's index", [("fairness", "-", None)], "linear", (0, 1.05)),
}
METRICS = tuple(PANELS)
PALETTE = ["C0", "C1", "C2", "C3", "C4", "C5", "C6", "C8", "C9"]  # tab10 without its grey (C7)
MARKERS = "osD^vP*X"  # one per (workload, keep-alive) variant; the colour is the model


def model_colors(models):
    """A fixed colour per model: lesson order first (the same colour in every
    plot of the course), then any other name (a URL) in the order given."""
    from ..servers import MODELS

    names = list(MODELS) + [m for m in models if m not in MODELS]
    return {name: PALETTE[i % len(PALETTE)] for i, name in enumerate(names)}


def number(value):
    """A plottable y value: None, NaN, inf, 0 or less on a log axis -> NaN (a gap in the line)."""
    try:
        value = float(value)
    except (TypeError, ValueError):
        return math.nan
    return value if math.isfinite(value) else math.nan


class NotebookFigure(Figure):
    """A Figure that a notebook shows as one PNG whatever matplotlib's backend
    (a plain Figure made without pyplot shows as "<Figure size ...>": jupyter.py)."""

    def _repr_png_(self):
        buffer = io.BytesIO()
        self.savefig(buffer, format="png")
        return buffer.getvalue()


def short_number(value, _position=None):
    """A tick label: 40k rather than 40000 (narrow, and no 4e4); 0.8 stays 0.8."""
    return f"{value / 1000:g}k" if abs(value) >= 10_000 else f"{value:g}"


def panel(metric):
    """The Panel of a metric name; any other result column gets a plain one."""
    return PANELS.get(metric) or Panel(metric, metric, [(metric, "-", None)], "linear", (None, None))


class SweepFigure:
    """The figure, its panels, and per panel one line per series and column.
    A series is (model, workload, keep_alive): one line per model in a
    sweep of one workload, as the lecture usually runs."""

    def __init__(self, models=(), metrics=METRICS, title=None, figsize=None, layout="constrained"):
        self.metrics = tuple(metrics)
        self.models = list(dict.fromkeys(models))  # in the legend before their first point
        self.title = title
        self.colors = model_colors(self.models)
        self.points = {}  # series -> {clients: row}
        self.lines = {}  # (metric, column, series) -> Line2D
        slots = len(self.metrics) + 1  # one slot more, for the legend
        width = min(3, slots)
        height = math.ceil(slots / width)
        # layout="constrained" fits every label, at the price of laying the figure
        # out again at each render (half its time); "fixed" margins suit a live
        # plot, rendered once per point.
        fixed = layout == "fixed"
        inches = figsize or (4.2 * width, 3.2 * height)
        self.figure = NotebookFigure(figsize=inches, layout=None if fixed else layout)
        FigureCanvasAgg(self.figure)  # draws to memory: no window, no pyplot
        grid = list(self.figure.subplots(height, width, squeeze=False).flat)
        if fixed:  # margins in inches: room for tick labels, axis labels and the titles
            self.figure.subplots_adjust(left=0.8 / inches[0], right=1 - 0.15 / inches[0], bottom=0.55 / inches[1],
                                        top=1 - 0.6 / inches[1], wspace=0.38, hspace=0.55)
        self.axes = dict(zip(self.metrics, grid))
        for metric, ax in self.axes.items():
            spec = panel(metric)
            ax.set(title=spec.title, ylabel=spec.ylabel, xlabel="concurrent clients", yscale=spec.yscale)
            ax.set_xscale("log", base=2)
            ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{x:g}"))  # 1 2 4 8, not 2^3
            if spec.yscale == "linear":
                ax.yaxis.set_major_formatter(FuncFormatter(short_number))
            ax.grid(True, alpha=0.3)
            if len(spec.lines) > 1:  # what the line styles mean in this panel: p50 solid, p99 dashed
                ax.legend([Line2D([], [], linestyle=style, color="0.3") for _, style, _ in spec.lines],
                          [name for _, _, name in spec.lines], fontsize="small", loc="best")
        self.legend_ax = grid[len(self.metrics)]
        for ax in grid[len(self.metrics) + 1:]:
            ax.remove()
        self.redraw()

    def add(self, row):
        """One result row (a dict, or a load Result) -> one more point (call redraw() to see it)."""
        row = row.row() if hasattr(row, "row") else row
        if row["model"] not in self.models:
            self.models.append(row["model"])
            self.colors = model_colors(self.models)
        series = (row["model"], row.get("workload"), row.get("keep_alive"))
        self.points.setdefault(series, {})[row["clients"]] = row  # a repeated point replaces the old one

    def extend(self, rows):
        for row in rows:
            self.add(row)
        self.redraw()
        return self

    def redraw(self):
        """Bring every line, axis range, legend and the title up to date with the points."""
        variants = list(dict.fromkeys(series[1:] for series in self.points))  # (workload, keep-alive)
        for series, by_clients in self.points.items():
            xs = sorted(by_clients)
            for metric, ax in self.axes.items():
                spec = panel(metric)
                for column, style, _ in spec.lines:
                    ys = [number(by_clients[x].get(column)) for x in xs]
                    if spec.yscale == "log":
                        ys = [y if y > 0 else math.nan for y in ys]
                    line = self.lines.get((metric, column, series))
                    if line is None:
                        marker = MARKERS[variants.index(series[1:]) % len(MARKERS)]
                        (line,) = ax.plot([], [], linestyle=style, marker=marker, markersize=4,
                                          color=self.colors[series[0]])
                        self.lines[metric, column, series] = line
                    line.set_data(xs, ys)  # the same line, longer: updated in place
                    line.set_label(label(series, variants))
        clients = sorted({x for by_clients in self.points.values() for x in by_clients})
        for metric, ax in self.axes.items():
            ax.relim()
            ax.autoscale_view()
            if clients:
                ax.set_xticks(clients)  # the counts measured, and no others
                ax.xaxis.set_minor_locator(NullLocator())
                ax.set_xlim(clients[0] / 1.4, clients[-1] * 1.4)  # room for the end markers
            bottom, top = panel(metric).ylim
            if bottom is not None or top is not None:
                ax.set_ylim(bottom=bottom, top=top, auto=True)  # auto: the next point may go higher
        self.draw_legend(variants)
        self.figure.suptitle(self.title or describe(self.rows()), fontsize="medium")

    def draw_legend(self, variants):
        """The models (colour) and, if several, workloads (marker), in a slot of their own."""
        self.legend_ax.clear()
        self.legend_ax.axis("off")
        handles, seen = [], set()
        for series in self.points:
            handles.append(self.series_line(series) or Line2D([], []))
            seen.add(series[0])
        for model in self.models:  # announced, not measured yet: a faint line, no point
            if model not in seen:
                handles.append(Line2D([], [], color=self.colors[model], alpha=0.4, label=f"{model} (waiting)"))
        if handles:
            self.legend_ax.legend(handles=handles, loc="center", title="model", frameon=False)

    def series_line(self, series):
        for (metric, column, key), line in self.lines.items():
            if key == series:
                return line
        return None

    def rows(self):
        return [row for by_clients in self.points.values() for _, row in sorted(by_clients.items())]

    def lines_of(self, metric="rps", column=None):
        """{series label: Line2D} in one panel (its first column unless told): what tests inspect."""
        column = column or panel(metric).lines[0][0]
        return {line.get_label(): line for (m, c, _), line in self.lines.items() if m == metric and c == column}

    def png(self, dpi=80):
        """The figure as PNG bytes."""
        buffer = io.BytesIO()
        self.figure.savefig(buffer, format="png", dpi=dpi)
        return buffer.getvalue()


def label(series, variants):
    model, workload, keep_alive = series
    if len(variants) <= 1:
        return model
    return f"{model} · {workload}" + ("" if keep_alive in (True, None) else " · close")


def describe(rows):
    """A title from the rows: workloads, connection reuse, Python, cores."""
    if not rows:
        return "waiting for the first point..."
    first = rows[0]
    reuse = {row.get("keep_alive") for row in rows}
    parts = ["workload " + ", ".join(sorted({str(row.get("workload")) for row in rows})),
             {frozenset({True}): "keep-alive", frozenset({False}): "a new connection per request"}.get(
                 frozenset(reuse), ""),
             f"Python {first['python']}" + (" free-threaded" if first.get("gil_enabled") is False else "")
             if first.get("python") else "",
             f"{first['cpu_count']} CPUs" if first.get("cpu_count") else ""]
    return " · ".join(part for part in parts if part)
