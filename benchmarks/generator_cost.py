"""What a response costs the load generator, next to what it costs wrk.

On a 2-core machine every microsecond the generator spends is taken from the
server it measures, so the generator must be about as cheap as wrk. This
script loads one labserver model with both, alternately in one run, and
prints each tool's CPU per response (user and system apart). The server runs
on core 0 and the load on core 1, so that what a tool uses is its own.

    .venv/bin/python benchmarks/generator_cost.py                # select, 64 clients
    .venv/bin/python benchmarks/generator_cost.py --model processes --rounds 5

Three rows: wrk with one thread; labserver's generator in one process; and
the same generator parsing every response head (without the shortcut that
recognises a head identical to the last one), to show what that saves.
Linux only (CPU affinity); without wrk its row is reported missing.
"""

import argparse
import os
import resource
import statistics
import sys

from labserver.load import generator, launch
from labserver.load.engine import Engine
from labserver.load.wrk import run_wrk, wrk_path


class ParsingEveryHead(Engine):
    def whole_head(self, client, n, now):
        self.known_head = None  # forget the last head: parse each one in full
        return super().whole_head(client, n, now)


def ours(url, clients, duration, engine):
    """(responses/s, user us, system us per response): this thread, pinned to core 1."""
    generator.Engine = engine  # run() builds its engine from this name
    try:
        before = os.times()
        result = generator.run(url, clients, duration=duration, processes=0)
        after = os.times()
    finally:
        generator.Engine = Engine
    n = max(1, result.requests)
    return result.rps, (after.user - before.user) / n * 1e6, (after.system - before.system) / n * 1e6


def wrk(url, clients, duration):
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    result = run_wrk(url, clients, duration, threads=1, cpus=[1])
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    n = max(1, result["rps"] * round(duration))
    return result["rps"], (after.ru_utime - before.ru_utime) / n * 1e6, (after.ru_stime - before.ru_stime) / n * 1e6


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="select", help="labserver model to load (default select)")
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--duration", type=int, default=3, help="whole seconds per run (default 3)")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if not hasattr(os, "sched_setaffinity") or len(os.sched_getaffinity(0)) < 2:
        parser.exit(2, "generator_cost.py: needs CPU affinity (Linux) and 2 cores\n")
    tools = {"labserver": lambda url: ours(url, args.clients, args.duration, Engine),
             "labserver, parsing every head": lambda url: ours(url, args.clients, args.duration, ParsingEveryHead)}
    if wrk_path():
        tools = {"wrk -t1": lambda url: wrk(url, args.clients, args.duration), **tools}
    else:
        print("wrk is not installed (apt-get install wrk): its row is missing")
    runs = {name: [] for name in tools}
    with launch(args.model, cpus=[0]) as server:
        url = server.url.rstrip("/") + "/index.html"
        os.sched_setaffinity(0, {1})  # this thread, hence our clients, on core 1
        generator.run(url, args.clients, duration=1, processes=0)  # warm-up
        for number in range(1, args.rounds + 1):
            for name, measure in tools.items():
                runs[name].append(measure(url))
                rps, user, system = runs[name][-1]
                print(f"  round {number}  {name:<30} {rps:>9,.0f} req/s  user {user:5.2f} us  system {system:5.2f} us",
                      flush=True)
    print(f"\n{args.model}, {args.clients} clients, medians of {args.rounds} rounds: CPU per response")
    for name, measured in runs.items():
        user = statistics.median(m[1] for m in measured)
        system = statistics.median(m[2] for m in measured)
        print(f"  {name:<30} user {user:5.2f} us + system {system:5.2f} us = {user + system:5.2f} us")
    return 0


if __name__ == "__main__":
    sys.exit(main())
