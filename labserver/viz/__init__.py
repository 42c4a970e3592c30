"""Live plots and the instructor panel: sweeps drawn as they are measured.

    from labserver.viz import live_sweep
    rows = live_sweep(models=["threads", "threadpool", "asyncio"], clients=[1, 4, 16, 64])
    rows = live_sweep(models=["select", "threadpool"], rates=[500, 1000, 2000, 4000])  # hockey stick

    from labserver.viz import Panel
    Panel()                                  # pick models, Run, Stop, watch

    from labserver.viz import plot_records, write_plots
    plot_records(load_results("sweep.json"))         # a Figure of saved results
    write_plots(rows, "plots/")                       # PNG files (labserver bench does this)

Files:
    figure.py    SweepFigure: the panels (req/s, latency, CPU, memory, fairness), lines or bars
    jupyter.py   are we in a notebook; one PNG output, replaced through a display handle
    progress.py  a progress bar in a notebook (plain HTML), a widget, or a line per point
    live.py      LivePlot (add a point, it redraws) and live_sweep(), the one call
    static.py    plot_records() and write_plots(): results already measured
    panel.py     Panel: the ipywidgets controls, the sweep in a background thread

This package only reads result rows (plain dicts, labserver.load.COLUMNS);
nothing below it imports it. matplotlib and ipywidgets are imported when a
name below is first used, not by `import labserver` or `import labserver.viz`:
a server or `labserver serve` starts without them.
"""

import importlib

# name -> the module that defines it, imported on first use (PEP 562)
EXPORTS = {
    "LivePlot": "live", "Records": "live", "live_sweep": "live",
    "SweepFigure": "figure", "METRICS": "figure", "PANELS": "figure",
    "plot_records": "static", "write_plots": "static",
    "Progress": "progress", "in_notebook": "jupyter",
    "Panel": "panel",
}
__all__ = list(EXPORTS)


def __getattr__(name):
    if name not in EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{EXPORTS[name]}", __name__), name)
    globals()[name] = value  # the next lookup is an ordinary one
    return value


def __dir__():
    return sorted(list(globals()) + __all__)
