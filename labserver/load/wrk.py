"""Is our load generator the bottleneck? Measure the same server with wrk, too.

wrk is a load generator written in C on epoll; it is the usual yardstick. If
labserver's generator reaches about the same req/s as wrk against the same
server, the numbers it reports are the server's, not its own. Both run on the
same machine as the server, so the comparison is interleaved in one session
(wrk, ours, wrk, ours, ...): noise on a fast server is 10-20 % from run to
run, and drift (another process, a warm CPU) then hits both alike. The ratio
of the medians is the result, and each round's own ratio shows how far
one run can be trusted. Within TOLERANCE (10 %) the generator is as fast as
wrk there; below it, the generator may be the limit (its CPU says so); above
it, wrk may be, or the rounds were noisy (their ratios say so).

On 2 cores the server and either tool share the CPU, and the same server
swings by 10-20 % from run to run whichever tool loads it: pinning the
server to one core and the tools to the others (`cpus`) takes the
scheduler's share out of the comparison.

Trade-off: wrk fetches one URL, so a calibration uses one path, not a mix.
"""

import os
import re
import shutil
import statistics
import subprocess
import time

from .generator import run

try:
    import resource  # POSIX: the CPU time of our reaped children (the wrk runs)
except ImportError:
    resource = None

WRK_PATTERNS = {
    "rps": r"Requests/sec:\s+([\d.]+)",
    "transfer": r"Transfer/sec:\s+([\d.]+)(\w*B)",
    "p50": r"^\s+50%\s+([\d.]+)(\w+)",
    "p99": r"^\s+99%\s+([\d.]+)(\w+)",
    "socket_errors": r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)",
    "non_2xx": r"Non-2xx or 3xx responses: (\d+)",
}
TO_MS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3, "h": 3600e3}
BYTES = {"B": 1, "KB": 2**10, "MB": 2**20, "GB": 2**30, "TB": 2**40}  # wrk counts in 1024s
TOLERANCE = 0.10  # labserver / wrk within 1 +- this: the generator is not the limit


class CalibrationError(RuntimeError):
    pass


def wrk_path():
    return shutil.which("wrk")


def parse_wrk(output):
    """wrk's report -> {'rps', 'mbps_wire', 'p50_ms', 'p99_ms', 'errors'}."""
    found = {key: re.search(pattern, output, re.MULTILINE) for key, pattern in WRK_PATTERNS.items()}
    if not found["rps"]:
        raise CalibrationError(f"cannot read wrk's output:\n{output}")
    rate, unit = found["transfer"].groups()
    result = {"rps": float(found["rps"].group(1)), "mbps_wire": float(rate) * BYTES[unit] * 8 / 1e6}
    for key in ("p50", "p99"):
        value, unit = found[key].groups() if found[key] else (None, None)
        result[f"{key}_ms"] = float(value) * TO_MS[unit] if value else None
    result["errors"] = sum(int(n) for key in ("socket_errors", "non_2xx") if found[key]
                           for n in found[key].groups())
    return result


def children_cpu_seconds():
    if resource is None:
        return None
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_wrk(url, clients, duration, threads=None, cpus=None):
    """One wrk run -> parse_wrk()'s dict plus 'client_cpu_pct' (wrk's CPU).
    cpus: run wrk on these cores only (Linux)."""
    cores = len(cpus) if cpus else os.cpu_count() or 1
    threads = threads or max(1, min(clients, cores))  # at least one connection per thread
    command = [wrk_path() or "wrk", f"-t{threads}", f"-c{clients}", f"-d{whole_seconds(duration)}s",
               "--latency", url]
    # wrk inherits the affinity of the thread that starts it: pin this thread
    # while it does (preexec_fn could deadlock in a process with threads).
    saved = os.sched_getaffinity(0) if cpus else None
    cpu_before, started = children_cpu_seconds(), time.perf_counter()
    try:
        if cpus:
            os.sched_setaffinity(0, cpus)  # 0: this thread only, on Linux
        done = subprocess.run(command, capture_output=True, text=True, encoding="utf-8", timeout=duration + 60)
    except subprocess.TimeoutExpired:
        raise CalibrationError("wrk did not finish") from None
    finally:
        if cpus:
            os.sched_setaffinity(0, saved)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise CalibrationError(f"wrk exited with status {done.returncode}: {done.stderr.strip()}")
    result = parse_wrk(done.stdout)
    cpu_after = children_cpu_seconds()
    result["client_cpu_pct"] = None if cpu_before is None else 100 * (cpu_after - cpu_before) / elapsed
    return result


def whole_seconds(duration):
    """wrk takes whole seconds only (-d1s, not -d0.5s)."""
    return max(1, round(duration))


def run_ours(url, clients, duration, pid=None, cpus=None):
    result = run(url, clients, duration=duration, pid=pid, cpus=cpus)
    return {"rps": result.rps, "mbps_wire": result.mbps_wire, "p50_ms": result.p50_ms,
            "p99_ms": result.p99_ms, "errors": result.errors, "client_cpu_pct": result.client_cpu_pct,
            "cpu_pct": result.cpu_pct}


def calibrate(url, clients=64, duration=3.0, rounds=5, pid=None, on_run=None, cpus=None):
    """wrk and labserver's generator against `url`, interleaved `rounds` times,
    for `duration` seconds each (rounded to whole seconds: wrk's unit); with
    `cpus`, both tools run on those cores only.

    Returns {'runs': [{'tool', 'round', 'rps', ...}], 'wrk_rps', 'ours_rps',
    'ratio', 'round_ratios', 'within'}: medians of each tool's req/s, ours /
    wrk, each round's ours / wrk, and whether the ratio is within TOLERANCE.
    on_run(run) is called after each run (the CLI prints it)."""
    if wrk_path() is None:
        raise CalibrationError("wrk is not installed (e.g. apt-get install wrk)")
    duration = whole_seconds(duration)  # the same for both tools
    run_wrk(url, clients, 1, cpus=cpus)  # warm-up, not recorded: first connections, caches
    runs, round_ratios = [], []
    for number in range(1, rounds + 1):
        theirs = dict(run_wrk(url, clients, duration, cpus=cpus), tool="wrk", round=number)
        if on_run is not None:
            on_run(theirs)
        ours = dict(run_ours(url, clients, duration, pid, cpus=cpus), tool="labserver", round=number)
        ours["ratio"] = ours["rps"] / theirs["rps"] if theirs["rps"] else None
        round_ratios.append(ours["ratio"])
        if on_run is not None:
            on_run(ours)
        runs += [theirs, ours]
    wrk_rps = statistics.median(r["rps"] for r in runs if r["tool"] == "wrk")
    ours_rps = statistics.median(r["rps"] for r in runs if r["tool"] == "labserver")
    ratio = ours_rps / wrk_rps if wrk_rps else None
    return {"runs": runs, "wrk_rps": wrk_rps, "ours_rps": ours_rps, "ratio": ratio,
            "round_ratios": round_ratios, "within": ratio is not None and abs(ratio - 1) <= TOLERANCE}
