"""`labserver bench` and `labserver calibrate`: the load package from a terminal.

    labserver bench --models all --clients 1,8,64 --out results/
    labserver bench --url http://127.0.0.1:8080/ --pid 1234      # anybody's server
    labserver calibrate --clients 64 --duration 5                # are we as fast as wrk?

The parsers live in labserver/cli.py; this module does the work, and is only
imported when one of these commands runs, so `labserver serve` starts fast.
Exit status: 0 done, 2 a usage mistake or a missing tool (one line on stderr),
130 interrupted by Ctrl-C (what was measured until then is still written).
`calibrate` exits with 1 when labserver / wrk is off by more than 10 %, and
with 2 without wrk: nothing could be compared, and a script that checks the
calibration must not take that for a pass.
"""

import datetime
import importlib
import importlib.util
import sys
import threading
from pathlib import Path

from ..servers import DEFAULT_MODEL, MODELS, ServerError
from . import wrk as calibration
from .generator import LoadError
from .monitor import can_pin
from .results import format_table, save_results
from .sweep import profile, sweep
from .workload import WorkloadError, parse_workload


def fail(message):
    print(f"labserver: error: {message}", file=sys.stderr)
    return 2


def choose_models(text):
    """'a,b' or 'all' -> names, checked against MODELS as registered right now."""
    if text is None:
        return [DEFAULT_MODEL]
    names = list(MODELS) if text.strip() == "all" else [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in MODELS]
    if unknown or not names:
        raise ValueError(f"unknown model {', '.join(unknown) or repr(text)}; choose from: {', '.join(MODELS)} or all")
    return names


def pinning(pin):
    """--pin: the server on core 0, the clients on the others (None: not pinned)."""
    if not pin:
        return None, None
    import os

    cores = sorted(os.sched_getaffinity(0)) if can_pin() else []
    if len(cores) < 2:
        raise ValueError("--pin needs CPU affinity (Linux) and at least 2 cores")
    return cores[:1], cores[1:]


def bench(args):
    try:
        if args.url is not None and args.models is not None:
            raise ValueError("--url measures a running server; --models launches ours: use one of them")
        if args.pid is not None and args.url is None:
            raise ValueError("--pid only goes with --url (launched models are watched anyway)")
        models = None if args.url is not None else choose_models(args.models)
        for workload in args.workload or []:
            parse_workload(workload)
        server_cpus, client_cpus = pinning(args.pin)
    except (ValueError, WorkloadError) as error:
        return fail(str(error))
    defaults = profile()
    rows, stop = [], threading.Event()

    def on_point(row):
        rows.append(row)
        print(f"  {row['model']}  {row['workload']}  x{row['clients']}: {row['rps']:,.0f} req/s"
              + (f", {row['errors']} errors" if row["errors"] else ""), flush=True)

    print(f"Profile {defaults['name']}: {args.duration or defaults['duration']:g} s per point", flush=True)
    interrupted = False
    try:
        sweep(models=models, clients=args.clients, workloads=args.workload, duration=args.duration,
              warmup=args.warmup, keep_alive=args.keep_alive, url=args.url, pid=args.pid, root=args.root,
              workers=args.workers, server_cpus=server_cpus, client_cpus=client_cpus,
              timeout=args.timeout, on_point=on_point, stop_event=stop)
    except KeyboardInterrupt:
        stop.set()
        interrupted = True
    except (ServerError, LoadError, WorkloadError, ValueError, OSError) as error:
        if not rows:
            return fail(str(error))
        print(f"labserver: error: {error} (keeping the {len(rows)} points measured)", file=sys.stderr)
    if rows:
        print()
        print(format_table(rows))
        print()
        for path in write_outputs(rows, Path(args.out)):
            print(f"Wrote {path}")
    return 130 if interrupted else 0


def write_outputs(rows, out_dir):
    stem = out_dir / f"bench-{datetime.datetime.now():%Y%m%d-%H%M%S}"
    paths = [save_results(rows, stem.with_suffix(".csv")), save_results(rows, stem.with_suffix(".json"))]
    return paths + write_plots(rows, out_dir)


def write_plots(rows, out_dir):
    """The plotting hook: labserver.viz.write_plots(rows, out_dir) -> [paths],
    when labserver.viz exists and has it; nothing otherwise."""
    if importlib.util.find_spec("labserver.viz") is None:
        return []
    plots = getattr(importlib.import_module("labserver.viz"), "write_plots", None)
    return list(plots(rows, out_dir) or []) if plots is not None else []


def calibrate(args):
    if calibration.wrk_path() is None:
        return fail("wrk is not installed (e.g. apt-get install wrk): nothing to compare with")
    try:
        server_cpus, client_cpus = pinning(args.pin)
    except ValueError as error:
        return fail(str(error))
    if args.url is not None:
        if args.pin:
            print(f"--pin: the tools run on cores {','.join(map(str, client_cpus))}; the server at --url is "
                  f"yours to pin (e.g. taskset -c {server_cpus[0]})", flush=True)
        return calibrate_url(args.url, args, pid=args.pid, cpus=client_cpus)
    try:
        model = choose_models(args.model)[0]
        path = parse_workload(args.workload)
    except (ValueError, WorkloadError) as error:
        return fail(str(error))
    if len(path) != 1:
        return fail("calibrate needs one path, not a mix: wrk fetches a single URL")
    from .launch import launch

    try:
        with launch(model, cpus=server_cpus) as server:
            return calibrate_url(server.url.rstrip("/") + path[0][0], args, pid=server.pid, label=model,
                                 cpus=client_cpus)
    except ServerError as error:
        return fail(str(error))


def calibrate_url(url, args, pid=None, label=None, cpus=None):
    """Exit status 0: labserver / wrk within calibration.TOLERANCE; 1: outside it."""
    print(f"Calibrating on {url}{f' ({label} model)' if label else ''}: {args.clients} clients, "
          f"{calibration.whole_seconds(args.duration)} s per run, {args.rounds} rounds of wrk then labserver",
          flush=True)
    try:
        outcome = calibration.calibrate(url, args.clients, args.duration, args.rounds, pid=pid,
                                        on_run=print_run, cpus=cpus)
    except (calibration.CalibrationError, LoadError) as error:
        return fail(str(error))
    except KeyboardInterrupt:
        return 130
    ratio = outcome["ratio"]
    if ratio is None:
        print("wrk measured nothing: no ratio")
        return 1
    rounds = [r for r in outcome["round_ratios"] if r is not None]
    limit = f"{calibration.TOLERANCE:.0%}"
    print(f"labserver / wrk = {ratio:.2f} (median req/s {outcome['ours_rps']:,.0f} vs {outcome['wrk_rps']:,.0f};"
          f" rounds {min(rounds):.2f}-{max(rounds):.2f}): "
          + (f"within {limit}" if outcome["within"] else f"NOT within {limit}"))
    return 0 if outcome["within"] else 1


def print_run(run):
    cpu, ratio = run.get("client_cpu_pct"), run.get("ratio")
    print(f"  round {run['round']}  {run['tool']:<9} {run['rps']:>10,.0f} req/s   "
          f"p50 {run['p50_ms'] or 0:6.2f} ms   p99 {run['p99_ms'] or 0:7.2f} ms   "
          f"client CPU {'-' if cpu is None else f'{cpu:.0f} %'}   errors {run['errors']}"
          + (f"   ratio {ratio:.2f}" if ratio is not None else ""), flush=True)
