"""benchmarks/bench.py: its targets as data rows, and a small run of the real thing.

The full benchmark takes about 20 minutes (`make bench`); here one model and
the reference servers go through two short points and the memory phase, with
wrk where it is installed and labserver's generator where it is not (or for
a new connection per request), and every server must be stopped afterwards.
"""

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import psutil

BENCH = Path(__file__).resolve().parent.parent / "benchmarks" / "bench.py"
spec = importlib.util.spec_from_file_location("bench", BENCH)
bench = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bench)


def row(server, point, rps, p99=5.0, errors=0, lost=0):
    return {"server": server, "point": point, "req_per_s": rps, "p99_ms": p99, "errors": errors, "probe_lost": lost}


def test_targets_are_rows_checked_by_one_loop():
    rows = [row("labserver-threadpool", "small-64", 30_000), row("labserver-select", "small-64", 20_000, p99=25),
            row("labserver-iterative", "small-64", 9_000, p99=900, lost=5), row("labserver-threads", "small-64", 21_000, lost=1),
            row("stdlib", "small-64", 2_000), row("labserver-threadpool", "large-8", 90)]
    names = ["labserver-threadpool", "labserver-select", "labserver-iterative", "labserver-threads", "stdlib"]
    checks = {description: (status, shown) for description, status, shown in bench.check_targets(rows, names)}
    assert checks["labserver-threadpool: req/s >= 10x stdlib's at small-64"] == ("met", "15.00x")  # the best
    assert checks["labserver-threadpool: req/s >= 0.35x nginx's at small-64"][0] == "skipped"  # no nginx
    each = {d: s for d, s in checks.items() if "p99 ms < 20" in d}
    assert each == {  # every concurrent model, not the iterative one
        "labserver-threadpool: p99 ms < 20 at small-64, nothing lost": ("met", "5.0, 0 errors, 0 newcomers lost"),
        "labserver-select: p99 ms < 20 at small-64, nothing lost": ("MISSED", "25.0, 0 errors, 0 newcomers lost"),
        "labserver-threads: p99 ms < 20 at small-64, nothing lost": ("MISSED", "5.0, 0 errors, 1 newcomers lost"),
    }
    assert checks["labserver-processes: req/s >= 1.6x labserver-threadpool's at cpu-8"][0] == "skipped"
    target = "labserver-processes: req/s >= 1.6x labserver-threadpool's at cpu-8"
    names.append("labserver-processes")
    rows += [row("labserver-processes", "cpu-8", None), row("labserver-threadpool", "cpu-8", 100)]  # it died
    assert {d: (s, v) for d, s, v in bench.check_targets(rows, names)}[target] == ("MISSED", "not measured")
    rows[-2] = row("labserver-processes", "cpu-8", 180)
    assert {d: (s, v) for d, s, v in bench.check_targets(rows, names)}[target] == ("met", "1.80x")


def test_a_short_run_measures_every_server_side_by_side(tmp_path):
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    done = subprocess.run([sys.executable, str(BENCH), "--models", "select", "--workloads", "small-8,close-1,idle",
                           "--idle-connections", "50", "--duration", "1", "--quick", "--out", str(tmp_path)],
                          capture_output=True, text=True, encoding="utf-8", timeout=300)
    print(done.stdout, done.stderr)
    assert done.returncode == 0
    [result] = tmp_path.glob("bench-*.json")
    document = json.loads(result.read_text(encoding="utf-8"))
    servers = {"labserver-select", "stdlib", "stdlib-plain"} | ({"nginx"} if bench.find_nginx() else set())
    summary = document["summary"]
    assert {r["server"] for r in summary if r["point"] == "small-8"} == servers
    for r in summary:
        assert r["req_per_s"] > 0 and r["x_stdlib"] is not None
        assert r["tool"] == ("wrk" if bench.USE_WRK and r["point"] == "small-8" else "labserver")
    assert {r["server"] for r in document["idle"]} == servers
    assert all(r["connected"] == 50 for r in document["idle"])
    assert "Summary: req/s" in done.stdout and "Targets:" in done.stdout
    assert {p.pid for p in psutil.Process().children(recursive=True)} <= before  # every server stopped


OPEN_LOOP = Path(__file__).resolve().parent.parent / "benchmarks" / "open_loop.py"
spec = importlib.util.spec_from_file_location("open_loop", OPEN_LOOP)
open_loop = importlib.util.module_from_spec(spec)
spec.loader.exec_module(open_loop)


def point(model, rate, p99, limited=False):
    return {"model": model, "rate": rate, "p99_ms": p99, "generator_limited": limited, "unanswered": 3}


def test_the_open_loop_point_finds_where_p99_crosses_20_ms():
    rows = [point("select", 1000, 2.0), point("select", 4000, 25.0), point("select", 2000, 19.9),
            point("threadpool", 1000, 3.0), point("threadpool", 2000, 80.0, limited=True),
            point("threadpool", 4000, None),
            point("processes", 1000, 1.0), point("processes", 4000, 4.0)]
    assert open_loop.crossing(rows) == {"select": 4000, "threadpool": 4000, "processes": None}
    text = open_loop.report(rows)
    assert "generator could not keep the rate" in text and "processes: p99 above 20 ms not within" in text


def test_the_open_loop_point_runs_for_real():
    rows = open_loop.run(models=["select"], rates=[500], duration=1.0)
    assert [(r["model"], r["rate"]) for r in rows] == [("select", 500)]
    assert rows[0]["sent_rps"] > 250 and rows[0]["p99_ms"] is not None


def test_the_open_loop_script_refuses_bad_arguments(capsys):
    for argv in (["--models", "nope"], ["--rates", "fast"], ["--rates", "0"], ["--duration", "-1"]):
        try:
            open_loop.parse_args(argv)
        except SystemExit as stop:
            assert stop.code == 2
        else:
            raise AssertionError(f"{argv} accepted")
    assert "unknown model" in capsys.readouterr().err
