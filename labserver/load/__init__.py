"""Load generator, metrics, sweeps and results: how the lecture measures servers.

    from labserver.load import launch, run, sweep, save_results

    with launch("threadpool") as server:                 # its own process
        result = run(server.url, clients=64, duration=5, pid=server.pid)
    print(result.rps, result.p99_ms, result.unanswered, result.fairness, result.cpu_pct, result.client_cpu_pct)

    rows = sweep(models=["threads", "threadpool"], clients=[1, 8, 64])
    rows += sweep(models=["threadpool"], rates=[500, 1000, 2000])     # open loop: offered requests/s
    save_results(rows, "sweep.csv")

Files, from the bottom up:
    workload.py   what to ask for: a path, a name, or a weighted mix; requests pre-encoded
    engine.py     the clients: one selectors event loop, many connections, minimal parsing
    metrics.py    latency histogram, percentiles, Jain's fairness index
    monitor.py    the server's CPU, memory and connections, sampled with psutil; CPU pinning
    generator.py  run(): one point, in this process or spread over worker processes
    launch.py     launch(): a server model in a child process, with the Server interface
    sweep.py      sweep() and profile(): many points, one row each
    results.py    the row columns, CSV/JSON save and load, a text table
    wrk.py        calibrate(): the same server measured with wrk and with us, side by side

Rules this package keeps, and why: the server under test never runs in the
measuring process (it would share its GIL); the measuring never uses
`requests` (~1 ms of Python per request: it would measure itself); every
figure comes with the client's own CPU, and generator_limited says when the
client, not the server, may have been the limit; latency counts the requests
left unanswered with the time they waited (coordinated omission, engine.py).
No plotting here: labserver.viz reads the rows.
"""

from .wrk import CalibrationError, calibrate, parse_wrk, run_wrk
from .generator import LoadError, Result, run
from .launch import LaunchedServer, launch
from .metrics import jain_index, percentile
from .results import COLUMNS, format_table, load_results, save_results
from .sweep import PROFILES, RATE_CLIENTS, profile, sweep
from .workload import MIX, WORKLOADS, WorkloadError, parse_workload

__all__ = [
    "COLUMNS", "MIX", "PROFILES", "RATE_CLIENTS", "WORKLOADS", "CalibrationError", "LaunchedServer", "LoadError", "Result",
    "WorkloadError", "calibrate", "format_table", "jain_index", "launch", "load_results", "parse_workload",
    "parse_wrk", "percentile", "profile", "run", "run_wrk", "save_results", "sweep",
]
