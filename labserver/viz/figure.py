"""SweepFigure: one matplotlib Figure of a sweep, which grows point by point.

    fig = SweepFigure(models=["threads", "threadpool"])
    for row in rows:
        fig.add(row)            # the lines get one point longer, in place
    png = fig.png()             # bytes, for a notebook, a widget or a file

Panels (choose with metrics=...): throughput (req/s), latency (p50 solid,
p99 dashed, log scale; requests left unanswered count with the time they
waited, see labserver.load.engine), CPU (server solid, the load generator's
own dotted: a figure is only the server's while the client is not the one
at 100 %), server memory (RSS), fairness (Jain's index over the bytes each
client received, 1 = every client served alike). Any other result column
(e.g. "unanswered", "max_gap_ms") also makes a panel.

The x axis is the number of concurrent clients on a log-2 scale (1, 2, 4 ...
are equally spaced: "twice the clients" is always the same step), or, for an
open-loop sweep (rows with a rate), the offered requests per second: latency
against offered load is the "hockey stick". With a single client count (or
rate) there is no line to draw: each panel is a bar chart, one bar per model.

Made for a projector: big fonts, thick lines, a marker shape per model as
well as a colour (lines that overlap stay apart, and a colour-blind reader
can tell them), plain tick labels (50, 100, 200, 1k; never 5x10^1), a log
throughput axis when the rates span more than a factor RANGE_FOR_LOG (so 20
req/s is not flattened under 5000). A point where the load generator may
have been the limit (generator_limited: it used a whole core, or it was late
to send) gets a red ring (or a red edge).

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
import textwrap
from collections import namedtuple

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter, LogLocator, NullLocator

# lines: [(column, line style, what that style means in the panel)]; yscale "auto": log if it spans decades
Panel = namedtuple("Panel", "title ylabel lines yscale ylim")
PANELS = {
    "rps": Panel("Throughput", "answered requests / s", [("rps", "-", None)], "auto", (0, None)),
    "latency": Panel("Latency, unanswered included", "ms", [("p50_ms", "-", "p50"), ("p99_ms", "--", "p99")],
                     "log", (None, None)),
    "cpu": Panel("CPU", "% of one core", [("cpu_pct", "-", "server"), ("client_cpu_pct", ":", "load generator")],
                 "linear", (0, None)),
    "memory": Panel("Server memory", "RSS, MB", [("rss_mb", "-", None)], "linear", (0, None)),
    "fairness": Panel("Fairness (bytes)", "Jain's index", [("fairness", "-", None)], "linear", (0, 1.05)),
    # Not drawn unless asked for (metrics=...):
    "mbps": Panel("Data throughput", "Mbps (body bytes)", [("mbps", "-", None)], "auto", (0, None)),
    "slowest_client_mbps": Panel("Slowest client", "Mbps", [("slowest_client_mbps", "-", None)], "linear",
                                 (0, None)),
    "max_gap_ms": Panel("Longest silence", "ms without a byte", [("max_gap_ms", "-", None)], "linear", (0, None)),
    "unanswered": Panel("Unanswered at the end", "requests", [("unanswered", "-", None)], "linear", (0, None)),
}
METRICS = ("rps", "latency", "cpu", "memory", "fairness")  # the default panels
PALETTE = ["C0", "C1", "C2", "C3", "C4", "C5", "C6", "C8", "C9"]  # tab10 without its grey (C7)
MARKERS = "osD^vP*Xhp<>"  # one per model, in lesson order like the colours
FILLS = ["full", "none", "left", "bottom"]  # one per (workload, keep-alive) variant, if several
LIMITED = "red"  # the ring around a point the load generator may have limited
LIMITED_LABEL = "load generator busy or late"
RANGE_FOR_LOG = 20  # max / min of a panel's positive values beyond which "auto" becomes a log axis
# Sizes for a lecture hall: points (1/72 inch); SCREEN_DPI is the scale a notebook shows the figure at.
FONT, TITLE, LINE, MARKER = 12, 14, 2.6, 8
SLOT = (4.3, 3.5)  # inches per panel
SCREEN_DPI = 90


def model_colors(models):
    """A fixed colour per model: lesson order first (the same colour in every
    plot of the course), then any other name (a URL) in the order given."""
    return {name: PALETTE[i % len(PALETTE)] for i, name in enumerate(model_order(models))}


def model_markers(models):
    """A fixed marker shape per model, in the same order as the colours."""
    return {name: MARKERS[i % len(MARKERS)] for i, name in enumerate(model_order(models))}


def model_order(models):
    from ..servers import MODELS

    return list(MODELS) + [m for m in models if m not in MODELS]


def number(value):
    """A plottable y value: None, NaN, inf -> NaN (a gap in the line)."""
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
    if abs(value) >= 10_000:
        return f"{value / 1000:g}k"
    return f"{value:g}" if abs(value) >= 0.01 or value == 0 else f"{value:.1g}"


def plain_axis(axis, log):
    """Tick labels in plain numbers on a linear or log axis (1 2 5 10 20 50 ...)."""
    if log:
        axis.set_major_locator(LogLocator(base=10, subs=(1, 2, 5)))
        axis.set_minor_locator(NullLocator())  # unlabelled ticks cost drawing time and say little
    axis.set_major_formatter(FuncFormatter(short_number))


def panel(metric):
    """The Panel of a metric name; any other result column gets a plain one."""
    return PANELS.get(metric) or Panel(metric, metric, [(metric, "-", None)], "linear", (None, None))


def x_column(rows):
    """'rate' for open-loop rows (an offered rate each), else 'clients'."""
    return "rate" if any(row.get("rate") is not None for row in rows) else "clients"


class SweepFigure:
    """The figure, its panels, and per panel one line per series and column.
    A series is (model, workload, keep_alive): one line per model in a
    sweep of one workload, as the lecture usually runs.

    x: "clients" or "rate" (default: "rate" once a row has one); xs: the x
    values the sweep will measure, if known (a live sweep): with one, bars
    from the first point, with more (or xs=() for "unknown, but more than
    one"), lines from the first point; never a switch from bars to lines
    half-way. None: decided by the rows (a plot of results already measured)."""

    def __init__(self, models=(), metrics=METRICS, title=None, figsize=None, layout="constrained", x=None,
                 xs=None):
        self.metrics = tuple(metrics)
        self.models = list(dict.fromkeys(models))  # in the legend before their first point
        self.title = title
        self.x = x
        self.planned = sorted(set(xs)) if xs is not None else None
        self.colors, self.markers = model_colors(self.models), model_markers(self.models)
        self.points = {}  # series -> {x: row}
        self.lines = {}  # (metric, column, series) -> Line2D
        self.rings = {}  # metric -> Line2D of red rings (points the generator may have limited)
        self.bars = []  # the artists of bar mode, removed at each redraw
        self.bar_heights = {}  # (metric, column) -> {series label: height}, what bar mode drew
        slots = len(self.metrics) + 1  # one slot more, for the legend
        width = 2 if slots == 4 else min(3, slots)  # 2 x 2 rather than 3 + 1
        height = math.ceil(slots / width)
        # layout="constrained" fits every label, at the price of laying the figure
        # out again at each render (half its time); "fixed" margins suit a live
        # plot, rendered once per point.
        fixed = layout == "fixed"
        inches = figsize or (SLOT[0] * width, SLOT[1] * height)
        self.figure = NotebookFigure(figsize=inches, layout=None if fixed else layout)
        FigureCanvasAgg(self.figure)  # draws to memory: no window, no pyplot
        grid = list(self.figure.subplots(height, width, squeeze=False).flat)
        if fixed:  # margins in inches: room for tick labels, axis labels and the titles
            title_room = 0.85 if width >= 3 else 1.15  # a narrow figure's title takes two lines
            self.figure.subplots_adjust(left=0.95 / inches[0], right=1 - 0.2 / inches[0],
                                        bottom=0.75 / inches[1], top=1 - title_room / inches[1], wspace=0.42,
                                        hspace=0.62)
        self.axes = dict(zip(self.metrics, grid))
        for metric, ax in self.axes.items():
            spec = panel(metric)
            ax.set_title(spec.title, fontsize=TITLE)
            ax.set_ylabel(spec.ylabel, fontsize=FONT)
            ax.tick_params(labelsize=FONT)
            ax.grid(True, alpha=0.3)
        self.legend_ax = grid[len(self.metrics)]
        for ax in grid[len(self.metrics) + 1:]:
            ax.remove()
        self.redraw()

    def add(self, row):
        """One result row (a dict, or a load Result) -> one more point (call redraw() to see it)."""
        row = row.row() if hasattr(row, "row") else row
        if self.x is None and row.get("rate") is not None:
            self.x = "rate"
        if row["model"] not in self.models:
            self.models.append(row["model"])
            self.colors, self.markers = model_colors(self.models), model_markers(self.models)
        series = (row["model"], row.get("workload"), row.get("keep_alive"))
        x = row.get(self.x or "clients")
        self.points.setdefault(series, {})[x] = row  # a repeated point replaces the old one

    def extend(self, rows):
        for row in rows:
            self.add(row)
        self.redraw()
        return self

    @property
    def xs(self):
        """The x values measured so far, in order."""
        return sorted({x for by_x in self.points.values() for x in by_x if x is not None})

    @property
    def bar_mode(self):
        """One x value only (planned, or measured when the plan is unknown): bars, not lines."""
        if self.planned is not None:
            return len(self.planned) == 1
        return len(self.xs) == 1

    def redraw(self):
        """Bring every line (or bar), axis range, legend and the title up to date with the points."""
        variants = list(dict.fromkeys(series[1:] for series in self.points))  # (workload, keep-alive)
        for artist in self.bars:
            artist.remove()
        self.bars, self.bar_heights = [], {}
        if self.bar_mode:
            for line in [*self.lines.values(), *self.rings.values()]:
                line.set_data([], [])
            for metric, ax in self.axes.items():
                self.draw_bars(metric, ax, variants)
        else:
            for metric, ax in self.axes.items():
                self.draw_lines(metric, ax, variants)
        for metric, ax in self.axes.items():
            self.scale_axes(metric, ax)
            self.style_legend(ax, panel(metric))
        self.draw_legend(variants)
        title = self.title or describe(self.rows(), self.x, self.xs if self.bar_mode else None)
        width = round(self.figure.get_figwidth() * 72 / (TITLE * 0.6))  # characters that fit in a line
        self.figure.suptitle(textwrap.fill(title, width, break_on_hyphens=False), fontsize=TITLE)

    def draw_lines(self, metric, ax, variants):
        spec = panel(metric)
        limited_x, limited_y = [], []
        for series, by_x in self.points.items():
            xs = sorted(x for x in by_x if x is not None)
            for index, (column, style, _) in enumerate(spec.lines):
                ys = [number(by_x[x].get(column)) for x in xs]
                if spec.yscale == "log":
                    ys = [y if y > 0 else math.nan for y in ys]
                line = self.lines.get((metric, column, series))
                if line is None:
                    (line,) = ax.plot([], [], linestyle=style, linewidth=LINE, marker=self.markers[series[0]],
                                      markersize=MARKER, fillstyle=FILLS[variants.index(series[1:]) % len(FILLS)],
                                      color=self.colors[series[0]])
                    self.lines[metric, column, series] = line
                line.set_data(xs, ys)  # the same line, longer: updated in place
                line.set_label(label(series, variants))
                if index == 0:
                    for x, y in zip(xs, ys):
                        if by_x[x].get("generator_limited") and not math.isnan(y):
                            limited_x.append(x)
                            limited_y.append(y)
        ring = self.rings.get(metric)
        if ring is None and limited_x:
            (ring,) = ax.plot([], [], linestyle="none", marker="o", markersize=MARKER * 2.2, fillstyle="none",
                              markeredgewidth=2, color=LIMITED, zorder=5)
            self.rings[metric] = ring
        if ring is not None:
            ring.set_data(limited_x, limited_y)

    def draw_bars(self, metric, ax, variants):
        """One group of bars per series (model), one bar per column of the panel
        (the first solid, a second one, p99 or the generator's CPU, hatched),
        each labelled with its value: bars on a linear axis, readable from afar."""
        spec = panel(metric)
        series_list = list(self.points)
        width = 0.8 / len(spec.lines)
        crowded = len(series_list) * len(spec.lines) > 5  # labels side by side would collide: stand them up
        ax.set_xscale("linear")
        for index, (column, _, _) in enumerate(spec.lines):
            heights = {}
            for position, series in enumerate(series_list):
                row = next(iter(self.points[series].values()))
                value = number(row.get(column))
                if math.isnan(value):
                    continue
                limited = index == 0 and bool(row.get("generator_limited"))
                bars = ax.bar(position + (index - (len(spec.lines) - 1) / 2) * width, value, width,
                              color=self.colors[series[0]], alpha=1.0 if index == 0 else 0.55,
                              hatch=None if index == 0 else "//", edgecolor=LIMITED if limited else "white",
                              linewidth=3 if limited else 0.5)
                self.bars += [*bars, *ax.bar_label(bars, labels=[short_number(float(f"{value:.3g}"))],
                                                   fontsize=FONT - 3, padding=2, rotation=90 if crowded else 0)]
                heights[label(series, variants)] = value
            self.bar_heights[metric, column] = heights
        ax.set_xticks(range(len(series_list)))
        ax.set_xticklabels([label(series, variants) for series in series_list], rotation=30, ha="right",
                           fontsize=FONT - 1)
        ax.set_xlim(-0.6, max(0, len(series_list) - 1) + 0.6)

    def scale_axes(self, metric, ax):
        spec = panel(metric)
        if not self.points:  # nothing to scale yet (a log axis of nothing cannot even place its ticks)
            ax.set_xlabel("offered requests / s" if self.x == "rate" else "concurrent clients", fontsize=FONT)
            return
        log = not self.bar_mode and (spec.yscale == "log" or (spec.yscale == "auto" and self.spans_decades(metric)))
        ax.set_yscale("log" if log else "linear")
        plain_axis(ax.yaxis, log)
        ax.relim()
        ax.autoscale_view()
        if not self.bar_mode:
            ax.tick_params(axis="x", labelrotation=0)  # (after bars, if a plot began with one point)
            ax.set_xlabel("offered requests / s" if self.x == "rate" else "concurrent clients", fontsize=FONT)
            ax.set_xscale("log", base=2 if self.x != "rate" else 10)
            plain_axis(ax.xaxis, False)
            xs = self.xs
            if xs:
                ax.set_xticks(xs)  # the counts (or rates) measured, and no others
                ax.xaxis.set_minor_locator(NullLocator())
                ax.set_xlim(xs[0] / 1.4, xs[-1] * 1.4)  # room for the end markers
                if len(xs) > 6:  # a label on every other one: they must not collide
                    ax.set_xticklabels([short_number(x) if i % 2 == 0 else "" for i, x in enumerate(xs)])
        else:
            ax.set_xlabel("")
        bottom, top = spec.ylim
        if log:
            bottom = None  # a log axis has no 0
        elif self.bar_mode:
            bottom = 0  # bars start at 0, latency's too
            ax.margins(y=0.25)  # room above the bars for their labels
        if bottom is not None or top is not None:
            ax.set_ylim(bottom=bottom, top=top, auto=True)  # auto: the next point may go higher

    def spans_decades(self, metric):
        column = panel(metric).lines[0][0]
        values = [number(row.get(column)) for row in self.rows()]
        positive = [v for v in values if v > 0]
        return len(positive) > 1 and max(positive) / min(positive) > RANGE_FOR_LOG

    def style_legend(self, ax, spec):
        """What the styles mean in a panel of two columns: p50 solid, p99 dashed (or hatched)."""
        if len(spec.lines) < 2:
            return
        if self.bar_mode:
            handles = [Patch(facecolor="0.3", alpha=1.0 if i == 0 else 0.55, hatch=None if i == 0 else "//")
                       for i in range(len(spec.lines))]
        else:
            handles = [Line2D([], [], linestyle=style, color="0.3", linewidth=LINE) for _, style, _ in spec.lines]
        ax.legend(handles, [name for _, _, name in spec.lines], fontsize=FONT - 1, loc="best")

    def draw_legend(self, variants):
        """The models (colour and marker) and, if several, workloads (fill), in a slot of their own."""
        self.legend_ax.clear()
        self.legend_ax.axis("off")
        handles, seen = [], set()
        for series in self.points:
            handles.append(Line2D([], [], color=self.colors[series[0]], marker=self.markers[series[0]],
                                  markersize=MARKER, linewidth=LINE,
                                  fillstyle=FILLS[variants.index(series[1:]) % len(FILLS)],
                                  label=label(series, variants)))
            seen.add(series[0])
        for model in self.models:  # announced, not measured yet: a faint line, no point
            if model not in seen:
                handles.append(Line2D([], [], color=self.colors[model], marker=self.markers[model], alpha=0.35,
                                      linewidth=LINE, markersize=MARKER, label=f"{model} (waiting)"))
        if any(row.get("generator_limited") for row in self.rows()):
            handles.append(Line2D([], [], linestyle="none", marker="o", markersize=MARKER * 1.6, fillstyle="none",
                                  markeredgewidth=2, color=LIMITED, label=LIMITED_LABEL)
                           if not self.bar_mode else
                           Patch(facecolor="white", edgecolor=LIMITED, linewidth=3, label=LIMITED_LABEL))
        if handles:
            self.legend_ax.legend(handles=handles, loc="center", title="model", frameon=False, fontsize=FONT,
                                  title_fontsize=FONT)

    def rows(self):
        return [row for by_x in self.points.values() for _, row in sorted(by_x.items(), key=lambda kv: kv[0] or 0)]

    def lines_of(self, metric="rps", column=None):
        """{series label: Line2D} in one panel (its first column unless told): what tests inspect."""
        column = column or panel(metric).lines[0][0]
        return {line.get_label(): line for (m, c, _), line in self.lines.items() if m == metric and c == column}

    def png(self, dpi=SCREEN_DPI):
        """The figure as PNG bytes."""
        buffer = io.BytesIO()
        self.figure.savefig(buffer, format="png", dpi=dpi)
        return buffer.getvalue()

    @property
    def screen_width(self):
        """How wide (in CSS pixels) a notebook should show the PNG, whatever its dpi."""
        return round(self.figure.get_figwidth() * SCREEN_DPI)


def label(series, variants):
    model, workload, keep_alive = series
    if len(variants) <= 1:
        return model
    return f"{model} · {workload}" + ("" if keep_alive in (True, None) else " · close")


def describe(rows, x=None, single=None):
    """A title from the rows: workloads, connection reuse, the one x value of a
    bar chart, Python, cores."""
    if not rows:
        return "waiting for the first point..."
    first = rows[0]
    reuse = {row.get("keep_alive") for row in rows}
    at = ""
    if single:
        at = (f"{short_number(single[0])} requests/s offered over {first.get('clients')} connections"
              if x == "rate" else f"{single[0]} concurrent client{'s' * (single[0] != 1)}")
    elif x == "rate":
        at = f"open loop over {first.get('clients')} connections"
    parts = ["workload " + ", ".join(sorted({str(row.get("workload")) for row in rows})), at,
             {frozenset({True}): "keep-alive", frozenset({False}): "a new connection per request"}.get(
                 frozenset(reuse), ""),
             f"Python {first['python']}" + (" free-threaded" if first.get("gil_enabled") is False else "")
             if first.get("python") else "",
             f"{first['cpu_count']} CPUs" if first.get("cpu_count") else ""]
    return " · ".join(part for part in parts if part)
