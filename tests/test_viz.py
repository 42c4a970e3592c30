"""The plots and the panel, headless: figures hold the lines they should, live
updates grow them in place, files are real PNGs, a notebook run leaves one
image per plot, and the panel runs and stops a real sweep leaving nothing behind.

Most tests feed made-up rows (the plots only read rows); the panel tests end
with the real labserver.load.sweep against a launched model.
"""

import base64
import hashlib
import io
import json
import os
import subprocess
import sys
import threading
import time

os.environ.setdefault("MPLBACKEND", "Agg")  # before anything imports matplotlib

import psutil  # noqa: E402
import pytest  # noqa: E402

from labserver.viz import (LivePlot, Panel, Progress, Records, SweepFigure, live_sweep,  # noqa: E402
                           plot_records, write_plots)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def fake_row(model, clients, workload="small", keep_alive=True, rps=None):
    return {"model": model, "workload": workload, "clients": clients, "keep_alive": keep_alive,
            "rps": rps if rps is not None else 1000.0 * clients, "p50_ms": 0.5 * clients, "p99_ms": 2.0 * clients,
            "cpu_pct": 40.0 + clients, "client_cpu_pct": 30.0, "rss_mb": 20.0 + clients, "fairness": 0.9,
            "errors": 0, "python": "3.12.0", "gil_enabled": True, "cpu_count": 2}


def fake_rows(models=("threads", "threadpool", "asyncio"), counts=(1, 2, 4, 8)):
    return [fake_row(model, n, rps=100.0 * (i + 1) * n) for i, model in enumerate(models) for n in counts]


def throughput_axes(figure):
    (ax,) = [ax for ax in figure.axes if ax.get_title() == "Throughput"]
    return ax


# ------------------------------------------------------------- static figures


def test_importing_labserver_imports_no_plotting_library():
    code = ("import sys, labserver, labserver.load, labserver.viz\n"
            "loaded = [m for m in ('matplotlib', 'ipywidgets') if m in sys.modules]\n"
            "assert not loaded, loaded")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_plot_records_draws_one_throughput_line_per_model():
    rows = fake_rows()
    figure = plot_records(rows)
    ax = throughput_axes(figure)
    assert ax.get_xscale() == "log" and ax.xaxis.get_transform().base == 2
    lines = {line.get_label(): line for line in ax.get_lines()}
    assert set(lines) == {"threads", "threadpool", "asyncio"}
    for model, line in lines.items():
        expected = [r for r in rows if r["model"] == model]
        assert list(line.get_xdata()) == [r["clients"] for r in expected]
        assert list(line.get_ydata()) == [r["rps"] for r in expected]
    assert len({line.get_color() for line in lines.values()}) == 3
    assert len({line.get_marker() for line in lines.values()}) == 3  # a shape per model, not only a colour
    titles = {ax.get_title() for ax in figure.axes}
    assert {"Throughput", "Latency, unanswered included", "CPU", "Server memory", "Fairness (bytes)"} <= titles


def test_latency_panel_has_p50_and_p99_and_missing_values_leave_gaps():
    rows = fake_rows(models=("threads",))
    rows[1]["cpu_pct"] = None  # a server CPU we could not measure: a gap, not zero
    figure = SweepFigure(metrics=("latency", "cpu")).extend(rows)
    latency = figure.lines_of("latency", "p50_ms")["threads"]
    p99 = figure.lines_of("latency", "p99_ms")["threads"]
    assert list(latency.get_ydata()) == [0.5, 1.0, 2.0, 4.0] and list(p99.get_ydata()) == [2, 4, 8, 16]
    assert figure.axes["latency"].get_yscale() == "log"
    cpu = list(figure.lines_of("cpu")["threads"].get_ydata())
    assert cpu[0] == 41.0 and cpu[1] != cpu[1]  # NaN


def test_made_for_a_projector_plain_ticks_and_a_log_axis_where_rates_span_decades():
    from matplotlib.ticker import LogFormatterSciNotation

    rows = [fake_row("iterative", n, rps=20.0) for n in (1, 8, 64)] + \
           [fake_row("threadpool", n, rps=400.0 * n) for n in (1, 8, 64)]  # 20 to 25,600 req/s
    figure = SweepFigure(layout="fixed").extend(rows)
    throughput = figure.axes["rps"]
    assert throughput.get_yscale() == "log"  # 20 req/s is not flattened under 25k
    assert figure.axes["memory"].get_yscale() == "linear"  # 21-84 MB: no decades to span
    figure.png()  # draw, so that the tick labels exist
    for ax in figure.axes.values():
        for axis in (ax.xaxis, ax.yaxis):
            assert not isinstance(axis.get_major_formatter(), LogFormatterSciNotation)
            labels = [t.get_text() for t in axis.get_ticklabels() + axis.get_ticklabels(minor=True)]
            assert not any("times" in text or "^" in text or "e+" in text for text in labels), labels
    labels = [t.get_text() for t in throughput.yaxis.get_ticklabels()]
    assert "20" in labels and "10k" in labels, labels
    line = figure.lines_of("rps")["threadpool"]
    assert line.get_linewidth() >= 2.5 and line.get_markersize() >= 7
    assert throughput.title.get_fontsize() >= 14 and throughput.yaxis.get_ticklabels()[0].get_fontsize() >= 12
    assert figure.screen_width >= 1100  # CSS pixels in a notebook; the PNG has more


def test_one_client_count_makes_a_bar_chart_with_values():
    rows = [fake_row(model, 64, rps=rps) for model, rps in [("iterative", 20.0), ("select", 3000.0),
                                                             ("threadpool", 2500.0)]]
    figure = SweepFigure().extend(rows)
    assert figure.bar_mode and figure.lines_of("rps") == {}
    assert figure.bar_heights["rps", "rps"] == {"iterative": 20.0, "select": 3000.0, "threadpool": 2500.0}
    assert figure.bar_heights["latency", "p99_ms"]["select"] == 128.0
    ax = figure.axes["rps"]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["iterative", "select", "threadpool"]
    assert "20" in [t.get_text() for t in ax.texts]  # each bar says its value
    assert "64 concurrent clients" in figure.figure.get_suptitle()
    # A live plot that will measure several counts draws lines from its first point on.
    live = SweepFigure(xs=[1, 64]).extend(rows[:1])
    assert not live.bar_mode and list(live.lines_of("rps")) == ["iterative"]


def test_a_point_the_generator_limited_is_marked():
    rows = fake_rows(models=("select",))
    rows[-1]["generator_limited"] = True
    figure = SweepFigure().extend(rows)
    ring = figure.rings["rps"]
    assert list(ring.get_xdata()) == [8] and list(ring.get_ydata()) == [rows[-1]["rps"]]
    legend = [t.get_text() for t in figure.legend_ax.get_legend().get_texts()]
    assert "load generator busy or late" in legend
    assert "rps" not in SweepFigure().extend(fake_rows(models=("select",))).rings  # none: no ring


def test_a_rate_sweep_draws_latency_against_offered_load():
    rows = []
    for rate in (500, 1000, 2000, 4000):
        row = fake_row("select", 16, workload="/bytes/1024", rps=min(rate, 2500.0))
        row.update(rate=float(rate), p99_ms=2.0 if rate < 2500 else 400.0)
        rows.append(row)
    figure = SweepFigure(metrics=("latency", "rps")).extend(rows)
    assert figure.x == "rate" and figure.axes["latency"].get_xlabel() == "offered requests / s"
    p99 = figure.lines_of("latency", "p99_ms")["select"]
    assert list(p99.get_xdata()) == [500, 1000, 2000, 4000] and list(p99.get_ydata()) == [2, 2, 2, 400]
    assert "open loop over 16 connections" in figure.figure.get_suptitle()


def test_several_workloads_get_a_line_each_with_a_readable_label():
    rows = [fake_row("threads", 1), fake_row("threads", 2), fake_row("threads", 1, workload="large")]
    lines = SweepFigure().extend(rows).lines_of("rps")
    assert set(lines) == {"threads · small", "threads · large"}
    assert list(lines["threads · small"].get_xdata()) == [1, 2]


def test_notebook_figure_displays_as_one_png():
    png = plot_records(fake_rows())._repr_png_()
    assert png.startswith(PNG_MAGIC)


# ------------------------------------------------------------- live updates


def test_live_plot_adds_points_in_place():
    plot = LivePlot(models=["threads", "threadpool"])
    figure = plot.figure
    rows = fake_rows(models=("threads", "threadpool"), counts=(1, 2, 4))
    plot.add(rows[0])
    first_line = plot.plot.lines_of("rps")["threads"]
    for count, row in enumerate(rows[1:3], start=2):
        plot.add(row)
        assert plot.figure is figure
        line = plot.plot.lines_of("rps")["threads"]
        assert line is first_line  # the same Line2D, more points
        assert len(line.get_xdata()) == count
    plot.extend(rows[3:])
    ax = throughput_axes(figure)
    assert len(ax.get_lines()) == 2  # one per model, however many points
    assert list(ax.get_lines()[1].get_ydata()) == [r["rps"] for r in rows[3:]]
    assert len(plot.records) == 6


def test_live_plot_widget_gets_a_new_png_per_point():
    plot = LivePlot(models=["threads"])
    image = plot.widget()
    assert plot.widget() is image and bytes(image.value).startswith(PNG_MAGIC)
    frames = [bytes(image.value)]
    for row in fake_rows(models=("threads",), counts=(1, 2)):
        plot.add(row)
        frames.append(bytes(image.value))
    assert len(set(frames)) == 3


def test_live_plot_outside_a_notebook_displays_nothing(capsys):
    with LivePlot(models=["threads"]) as plot:
        plot.add(fake_row("threads", 1))
    assert capsys.readouterr().out == ""
    assert plot.png().startswith(PNG_MAGIC)


# ------------------------------------------------------------- files and progress


def test_write_plots_writes_one_png_per_workload(tmp_path):
    rows = fake_rows() + [fake_row("threads", 1, workload="/images/café au lait.png"),
                          fake_row("threads", 1, keep_alive=False), {**fake_row("threads", 4), "rate": 100.0}]
    paths = write_plots(rows, tmp_path / "out", stem="run")
    names = sorted(p.name for p in paths)
    assert names == ["run-images_caf_au_lait.png.png", "run-small-close.png", "run-small-rates.png",
                     "run-small.png"]
    for path in paths:
        data = path.read_bytes()
        assert data.startswith(PNG_MAGIC) and len(data) > 10_000
    assert write_plots([], tmp_path / "none") == []


def test_the_cli_hook_finds_write_plots(tmp_path):
    from labserver.load.commands import write_plots as hook

    paths = hook(fake_rows(), tmp_path)
    assert len(paths) == 1 and paths[0].suffix == ".png" and paths[0].stat().st_size > 0


def test_progress_text_fallback():
    stream = io.StringIO()
    progress = Progress(3, form="text", stream=stream)
    progress.show()
    progress.add(fake_row("threads", 4))
    progress.add({**fake_row("threads", 8), "errors": 2})
    progress.finish("stopped")
    lines = stream.getvalue().splitlines()
    assert lines == ["sweep: 3 points", "  1/3  threads small x4: 4,000 req/s",
                     "  2/3  threads small x8: 8,000 req/s, 2 errors", "sweep: stopped (2/3 points)"]


def test_progress_bar_in_widget_form():
    progress = Progress(2, form="widget")
    progress.add(fake_row("threads", 1))
    assert (progress.bar.value, progress.bar.max) == (1, 2) and progress.label.value.startswith("1/2")
    progress.add()
    progress.finish()
    assert progress.bar.bar_style == "success"


def test_progress_in_html_form_is_plain_html():
    # What a notebook shows: HTML, which a saved notebook shows again when
    # reopened (a widget's view would need its state saved in the file).
    progress = Progress(2, form="html")
    progress.add({**fake_row("threads", 4), "rate": 2000.0})
    output = progress.html_output().data
    assert '<progress value="1" max="2"' in output and "threads small x4 @ 2,000/s" in output
    progress.finish("stopped")
    assert "1/2  stopped" in progress.html_output().data and progress.widget is None


def fake_sweep(delay=0.0, fail_at=None, interrupt_at=None):
    """A stand-in for labserver.load.sweep: made-up rows, stop_event honoured."""
    calls = []

    def sweep(models=None, clients=None, workloads=None, on_point=None, stop_event=None, **options):
        calls.append({"models": models, "clients": clients, "workloads": workloads, **options})
        rows = []
        for model in models:
            for n in clients:
                if stop_event is not None and stop_event.wait(delay):
                    return rows
                if len(rows) == fail_at:
                    raise RuntimeError("the server crashed")
                if len(rows) == interrupt_at:
                    raise KeyboardInterrupt
                rows.append(fake_row(model, n, workload=(workloads or ["small"])[0]))
                on_point(rows[-1])
        return rows

    sweep.calls = calls
    return sweep


def test_live_sweep_in_a_terminal_prints_progress_and_returns_the_rows(capsys):
    sweep = fake_sweep()
    rows = live_sweep(models=["threads", "asyncio"], clients=[1, 2], workloads=["small"], sweep=sweep,
                      duration=0.1)
    assert isinstance(rows, Records) and len(rows) == 4 and not rows.stopped
    assert sweep.calls[0]["duration"] == 0.1
    out = capsys.readouterr().out
    assert out.startswith("sweep: 4 points\n") and "4/4  asyncio small x2" in out and "sweep: done" in out
    assert repr(rows) == "<4 points of threads, asyncio>"


def test_live_sweep_defaults_to_every_model_and_survives_an_interrupt(capsys):
    from labserver import MODELS

    sweep = fake_sweep(interrupt_at=3)
    rows = live_sweep(clients=[1], sweep=sweep)
    assert sweep.calls[0]["models"] == list(MODELS)
    assert len(rows) == 3 and rows.stopped
    assert "stopped (3/" in capsys.readouterr().out


# ------------------------------------------------------------- the panel


def new_children(before):
    """Our child processes (recursively) that did not exist before, still running;
    not multiprocessing's resource tracker, one per interpreter, kept for its life."""
    alive = []
    for child in psutil.Process().children(recursive=True):
        try:
            if (child.pid not in before and child.status() != psutil.STATUS_ZOMBIE
                    and "resource_tracker" not in " ".join(child.cmdline())):
                alive.append(child)
        except psutil.NoSuchProcess:
            pass
    return alive


def wait_until(condition, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


@pytest.fixture
def ci_profile(monkeypatch):
    monkeypatch.setenv("LABSERVER_PROFILE", "ci")


def test_panel_runs_a_sweep_in_the_background():
    sweep = fake_sweep(delay=0.05)
    panel = Panel(models=("threads", "asyncio"), clients=[1, 2, 4], duration=0.2, sweep=sweep)
    assert panel.run() is True
    assert panel.running and panel.run_button.disabled and not panel.stop_button.disabled
    assert panel.run() is False  # one sweep at a time
    assert panel.wait(10)
    assert len(panel.records) == 6 and panel.error is None
    assert sweep.calls[0]["models"] == ["threads", "asyncio"] and sweep.calls[0]["clients"] == [1, 2, 4]
    assert sweep.calls[0]["duration"] == 0.2 and sweep.calls[0]["keep_alive"] is True
    assert bytes(panel.image.value).startswith(PNG_MAGIC)
    assert panel.progress.bar.value == 6 and panel.status.value == "Done: 6 points."
    assert not panel.run_button.disabled and panel.stop_button.disabled


def test_panel_starts_empty_and_keeps_earlier_runs():
    panel = Panel(models=("threads",), clients=[1, 2], sweep=fake_sweep())
    # Before any run: words, not an empty image (a browser shows that as a broken picture).
    assert panel.image.layout.display == "none" and panel.empty.layout.display != "none"
    assert "press <b>Run</b>" in panel.empty.value and panel.earlier.children == ()
    pngs = []
    for run in range(4):
        panel.clients_text.value = ",".join(str(n) for n in range(1, run + 3))
        assert panel.run() and panel.wait(10) and panel.error is None
        assert panel.image.layout.display != "none" and panel.empty.layout.display == "none"
        pngs.append(bytes(panel.image.value))
    earlier = panel.earlier.children
    assert len(earlier) == 3  # the newest first, at most three
    assert [bytes(box.children[1].value) for box in earlier] == pngs[-2::-1]
    assert "Earlier run" in earlier[0].children[0].value and "4 points" in earlier[0].children[0].value


def test_panel_stop_and_errors_and_bad_controls():
    panel = Panel(models=("threads",), clients=[1, 2, 4, 8, 16], sweep=fake_sweep(delay=0.2))
    panel.run()
    assert wait_until(lambda: panel.records, 10)
    assert panel.stop(wait=True, timeout=5)
    assert 0 < len(panel.records) < 5 and panel.status.value.startswith("Stopped")

    failing = Panel(models=("threads",), clients=[1, 2], sweep=fake_sweep(fail_at=1))
    failing.run()
    failing.wait(5)
    assert str(failing.error) == "the server crashed" and "the server crashed" in failing.status.value

    panel.model_select.value = ()
    assert panel.run() is False and "choose at least one model" in panel.status.value
    panel.model_select.value = ("threads",)
    panel.clients_text.value = "1, two"
    assert panel.run() is False and "clients" in panel.status.value
    panel.clients_text.value = "1"
    panel.workload_box.value = "nonsense"
    assert panel.run() is False and "unknown workload" in panel.status.value


def test_panel_measures_a_real_sweep(ci_profile):
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    panel = Panel(models=("threadpool",), clients=[1, 2], workload="small", duration=0.3)
    assert panel.run()
    assert panel.wait(120), "the sweep did not finish"
    assert panel.error is None, panel.error
    assert [(r["model"], r["clients"]) for r in panel.records] == [("threadpool", 1), ("threadpool", 2)]
    assert all(r["rps"] > 0 and r["errors"] == 0 for r in panel.records)
    assert bytes(panel.image.value).startswith(PNG_MAGIC)
    assert wait_until(lambda: not new_children(before), 5), new_children(before)


def test_panel_stop_mid_sweep_leaves_no_process_behind(ci_profile):
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    # 64 clients: more than one process's worth, so the load runs in worker processes too.
    panel = Panel(models=("threadpool", "threads"), clients=[64, 1], workload="small", duration=3.0)
    assert panel.run()
    assert wait_until(lambda: len(new_children(before)) >= 3, 60), "no server and load workers started"
    time.sleep(0.5)  # well inside the first 3 s point
    started = time.monotonic()
    assert panel.stop(wait=True, timeout=30)
    assert time.monotonic() - started < 15
    assert panel.error is None, panel.error
    assert panel.records == [] and panel.status.value.startswith("Stopped")
    assert wait_until(lambda: not new_children(before), 5), new_children(before)


# ------------------------------------------------------------- in a real notebook kernel

NOTEBOOK_CELLS = [
    """from labserver.viz import LivePlot, live_sweep, plot_records
rows = [{"model": m, "workload": "small", "keep_alive": True, "clients": n, "rps": 100.0 * n,
         "p50_ms": 1.0, "p99_ms": 3.0, "cpu_pct": 50.0, "client_cpu_pct": 20.0, "rss_mb": 30.0,
         "fairness": 1.0, "errors": 0} for m in ("threads", "asyncio") for n in (1, 2, 4, 8)]""",
    """plot = LivePlot(models=["threads", "asyncio"])
plot.show()
for row in rows:
    plot.add(row)
plot.close()""",
    """def fake_sweep(models, clients, on_point, stop_event, **options):
    for row in rows:
        on_point(row)
result = live_sweep(models=["threads", "asyncio"], clients=[1, 2, 4, 8], sweep=fake_sweep)""",
    "plot_records(rows)",
    """import hashlib
print(hashlib.sha1(plot.png()).hexdigest())""",
]


def images(cell):
    return [o for o in cell["outputs"] if "image/png" in o.get("data", {})]


def test_a_notebook_run_leaves_one_image_per_plot(tmp_path):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell(source) for source in NOTEBOOK_CELLS]
    nbclient.NotebookClient(notebook, timeout=120, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}}).execute()
    setup, live, swept, static, digest = notebook.cells
    assert setup["outputs"] == []
    assert len(live["outputs"]) == 1 and len(images(live)) == 1  # updated in place, never appended
    shown = base64.b64decode(images(live)[0]["data"]["image/png"])
    assert hashlib.sha1(shown).hexdigest() == digest["outputs"][0]["text"].strip()  # the last frame
    assert len(images(swept)) == 1 and len(swept["outputs"]) == 2  # the plot and the progress bar
    assert "<progress" in json.dumps(swept["outputs"])
    # No widget views: a saved notebook reopens with its outputs, not "model not found".
    assert "application/vnd.jupyter.widget-view+json" not in json.dumps([cell["outputs"] for cell in notebook.cells])
    assert len(static["outputs"]) == 1 and len(images(static)) == 1  # no second copy from pyplot
    assert not any(o["output_type"] == "error" or o.get("name") == "stderr"
                   for cell in notebook.cells for o in cell["outputs"])


def test_thread_safe_widget_updates_from_a_sweep_thread():
    """A LivePlot bound to a widget may be fed from another thread (what Panel does)."""
    plot = LivePlot(models=["threads"])
    image = plot.widget()
    rows = fake_rows(models=("threads",), counts=(1, 2, 4))
    worker = threading.Thread(target=plot.extend, args=(rows,))
    worker.start()
    png = plot.png()  # the kernel's thread reading meanwhile: the lock keeps them apart
    worker.join(30)
    assert png.startswith(PNG_MAGIC) and len(plot.records) == 3 and bytes(image.value) == plot.png()


def test_the_coordinated_omission_picture_is_drawn(tmp_path):
    import runpy

    script = os.path.join(os.path.dirname(__file__), os.pardir, "docs", "coordinated_omission.py")
    runpy.run_path(script)["draw"](tmp_path / "picture.png")  # what `python docs/coordinated_omission.py` runs
    assert (tmp_path / "picture.png").read_bytes().startswith(PNG_MAGIC)
