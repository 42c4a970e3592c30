"""Plots of results already measured: a Figure in a notebook, PNG files from the CLI.

    rows = load_results("bench-results/bench-20250101-120000.json")
    plot_records(rows)                      # a notebook shows the Figure it returns
    write_plots(rows, "bench-results/")     # -> [Path(".../bench-...-small.png")]

`labserver bench` calls write_plots() after a sweep (labserver.load.commands
looks for it), so a terminal run leaves PNGs beside its CSV and JSON.
One PNG per workload, connection mode and kind of sweep (clients, or an
offered rate): mixing a 2 KB page with a 1.6 MB image on one throughput axis
would flatten one of them into the floor.
"""

import datetime
import re
from pathlib import Path

from .figure import METRICS, SweepFigure


def plot_records(records, metrics=METRICS, title=None, models=None):
    """Rows (dicts or load Results) -> a matplotlib Figure with every panel.

    Returned, not shown: a cell ending with plot_records(rows) shows it once,
    as a PNG (figure.NotebookFigure); fig.savefig("sweep.png") saves it."""
    rows = [r.row() if hasattr(r, "row") else r for r in records]
    return SweepFigure(models or [], metrics, title).extend(rows).figure


def write_plots(records, out_dir, stem=None, metrics=METRICS, dpi=100):
    """Write one PNG per (workload, keep-alive, open loop) group of rows into
    out_dir; returns their Paths (none if there are no rows). stem: the start
    of each file name (default bench-<date and time now>, like the CLI's CSV files)."""
    rows = [r.row() if hasattr(r, "row") else r for r in records]
    groups = {}
    for row in rows:
        key = (row.get("workload"), row.get("keep_alive"), row.get("rate") is not None)
        groups.setdefault(key, []).append(row)
    out_dir = Path(out_dir)
    stem = stem or f"bench-{datetime.datetime.now():%Y%m%d-%H%M%S}"
    paths = []
    for (workload, keep_alive, open_loop), group in groups.items():
        name = (f"{stem}-{safe_name(workload)}" + ("" if keep_alive in (True, None) else "-close")
                + ("-rates" if open_loop else ""))
        path = out_dir / f"{name}.png"
        out_dir.mkdir(parents=True, exist_ok=True)
        path.write_bytes(SweepFigure([], metrics).extend(group).png(dpi))
        paths.append(path)
    return paths


def safe_name(workload):
    """A workload ('small', '/images/café au lait.png', 'small:8,large:1') -> a file-name part."""
    text = re.sub(r"[^A-Za-z0-9._-]+", "_", str(workload or "url")).strip("._")
    return text[:60] or "url"
