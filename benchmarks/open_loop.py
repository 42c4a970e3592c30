"""The open-loop point of `make bench`: latency against offered load, and where p99 crosses 20 ms.

A closed loop (wrk, or labserver's generator by default) sends a client's next
request only when the previous answer came back, so a server that slows down
also slows the load: its queue never grows, and the waiting is not recorded
(coordinated omission). Here requests are offered at a fixed rate, as wrk2
does, each latency counted from when the request was due, so past a model's
capacity the queue shows up as latency that grows with the run: the "hockey
stick". For each model, the table gives p99 at each offered rate and the first
rate at which p99 passes 20 ms (the lecture's "response time" goal).

    python benchmarks/open_loop.py                       # select, threadpool, processes
    python benchmarks/open_loop.py --models select --rates 1000,4000 --duration 2

A rate the generator itself could not keep is marked, not counted as the
server's: on 2 shared cores the generator competes with the server for CPU.
"""

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from labserver.load import sweep  # noqa: E402
from labserver.servers import MODELS  # noqa: E402

MODELS_MEASURED = ["select", "threadpool", "processes"]
RATES = [1000, 2000, 4000, 8000, 12000, 16000, 24000, 32000, 48000]  # offered requests/s
CLIENTS = 16  # connections the offered requests are spread over
WORKLOAD = "/bytes/1024"  # the small-file point of the main benchmark
LIMIT_MS = 20.0


def run(models=MODELS_MEASURED, rates=RATES, duration=3.0):
    """One row per (model, rate), from labserver.load.sweep in open-loop mode."""
    return sweep(models=models, rates=rates, clients=[CLIENTS], workloads=[WORKLOAD], duration=duration)


def crossing(rows, limit_ms=LIMIT_MS):
    """{model: the lowest offered rate whose p99 passed limit_ms, or None}.

    A point where the generator could not keep the rate says nothing about the
    server, so it is skipped. Requests still unanswered at the end of a point
    are in its p99 with the time they had waited; a point with no p99 at all
    (nothing answered) counts as crossed."""
    found = {}
    for model in dict.fromkeys(r["model"] for r in rows):
        crossed = None
        for r in sorted((r for r in rows if r["model"] == model), key=lambda r: r["rate"]):
            if r.get("generator_limited"):
                continue
            if r.get("p99_ms") is None or r["p99_ms"] > limit_ms:
                crossed = r["rate"]
                break
        found[model] = crossed
    return found


def report(rows, limit_ms=LIMIT_MS):
    """The table and the crossing rates, as text."""
    lines = [f"Open loop: {WORKLOAD} over {CLIENTS} connections, latency from when each request was due",
             f"{'model':<11} {'offered':>8} {'sent/s':>8} {'answered/s':>10} {'p50 ms':>8} {'p99 ms':>9} "
             f"{'unanswered':>10}"]
    for r in rows:
        p50, p99 = r.get("p50_ms"), r.get("p99_ms")
        mark = "  generator could not keep the rate" if r.get("generator_limited") else ""
        lines.append(f"{r['model']:<11} {r['rate']:>8.0f} {r.get('sent_rps') or 0:>8.0f} {r.get('rps') or 0:>10.0f} "
                     f"{'-' if p50 is None else f'{p50:.1f}':>8} {'-' if p99 is None else f'{p99:.1f}':>9} "
                     f"{r.get('unanswered') or 0:>10}{mark}")
    for model, rate in crossing(rows, limit_ms).items():
        where = f"from {rate:.0f} req/s offered" if rate else f"not within the rates tried (up to {max(RATES)})"
        lines.append(f"{model}: p99 above {limit_ms:g} ms {where}")
    return "\n".join(lines)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default=",".join(MODELS_MEASURED), help="comma-separated labserver models")
    parser.add_argument("--rates", default=",".join(map(str, RATES)), help="offered requests/s, comma-separated")
    parser.add_argument("--duration", type=float, default=3.0, help="seconds per point (default 3)")
    args = parser.parse_args(argv)
    args.models = [m.strip() for m in args.models.split(",") if m.strip()]
    unknown = [m for m in args.models if m not in MODELS]
    if unknown or not args.models:
        parser.error(f"unknown model(s) {', '.join(unknown) or '(none given)'}; choose from {', '.join(MODELS)}")
    try:
        args.rates = [float(r) for r in args.rates.split(",")]
    except ValueError:
        parser.error(f"--rates: expected numbers separated by commas, got {args.rates!r}")
    if not all(r > 0 for r in args.rates):
        parser.error("--rates: every rate must be above 0")
    if args.duration <= 0:
        parser.error("--duration: expected seconds above 0")
    return args


def main(argv=None):
    args = parse_args(argv)
    print(report(run(args.models, args.rates, args.duration)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
