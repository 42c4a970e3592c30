"""run(): put a load on any HTTP server and return what happened, as a Result.

    from labserver.load import run
    result = run("http://127.0.0.1:8000/index.html", clients=64, duration=5)
    result.rps, result.p99_ms, result.unanswered, result.fairness, result.client_cpu_pct

    result = run(url, clients=64, rate=2000, duration=5)      # open loop: 2000 requests/s offered
    result.sent_rps, result.p99_ms, result.generator_limited

Up to 16 clients run in this process, in one event loop (engine.py). More
clients are spread over worker processes ("spawn": a fresh interpreter each,
no GIL shared with this one, nor with a notebook kernel), each with its own
loop; their reports come back as plain dicts and are added up. Every worker
opens all of its connections, says so, and waits; only when all are ready do
they start together, so the clock never measures connect().

Why 16: few clients rarely need more than one core, and a worker costs ~0.3 s
to start (before the clock). Many clients against a fast server can: against
nginx at 64 clients (~70k req/s) one loop used 75 % of a core, about 11 us
of CPU per request, as much as wrk; on a 2-core machine the scheduler gives
each process its share, so two loops keep up when a busy server competes for
the same cores. Measured both ways, one or two processes at 64 clients gave
the same req/s within this machine's noise.

The generator shares the machine with the server, so a Result always carries
the generator's own CPU (client_cpu_pct, all its processes, % of one core)
next to the server's (cpu_pct, when its pid is known): when the client is the
one using a whole core, the figure measures the client, not the server.
generator_limited says so: a generator process used BUSY_CORE % of a core or
more; or it was kept from running (its waits for the sockets ended late,
engine.LATE or more) for more than LATE_SHARE of the run, which delays every
latency it measures; or (open loop) it could not keep its rate: more than
LATE_SHARE of its requests went out late on a connection that was free, or
of its waits for the sockets ended late (engine.LATE: the process was kept
from running). A rate the *server* cannot keep is not the generator's fault:
the requests wait for a free connection, their latencies grow, and sent_rps
falls below rate.
"""

import contextlib
import datetime
import math
import multiprocessing
import os
import platform
import queue as queue_module
import signal
import socket
import sys
import time
import traceback
import types
from dataclasses import asdict, dataclass, field
from urllib.parse import urlsplit

from ..limits import connection_cap, raise_open_files_limit
from .engine import Engine
from .metrics import ERROR_KINDS, combine, summarise
from .monitor import ALL_CPUS, ServerMonitor, describe_pinning, pin, pinned_cpus
from .results import COLUMNS
from .workload import encode_request, parse_workload, request_sequence

IN_PROCESS_LIMIT = 16  # more clients than this go to worker processes (given 2+ cores)
MAX_PROCESSES = 4
START_TIMEOUT = 60.0  # seconds for worker processes to start and connect
BUSY_CORE = 90.0  # % of one core: a generator process this busy may be what limits the figures
LATE_SHARE = 0.05  # open loop: more sends or waits than this late (engine.LATE): rate not kept


class LoadError(RuntimeError):
    """A run that could not happen at all (bad URL, a worker that crashed)."""


@dataclass
class Result:
    """Everything one run measured. asdict(result) is a plain dict; result.row() a table row."""

    url: str
    workload: str
    clients: int
    keep_alive: bool
    duration_s: float  # the measured window (warm-up excluded)
    warmup_s: float
    rate: float | None  # open loop: requests/s offered; None: closed loop
    requests: int  # successful responses in the window
    unanswered: int  # requests with no answer when the clock stopped (sent, or due, or connecting)
    bytes: int  # payload (body) bytes received, of finished responses or not
    wire_bytes: int  # everything received: heads, bodies, chunk framing
    rps: float  # answered requests per second
    sent_rps: float  # requests sent per second (open loop: compare with rate)
    mbps: float  # payload megabits per second
    mbps_wire: float
    # Latency of every request that waited in the window, the unanswered ones
    # with the time they had waited so far (engine.py: coordinated omission).
    p50_ms: float | None
    p90_ms: float | None
    p99_ms: float | None
    max_ms: float | None
    mean_ms: float | None
    concurrent_max: int | None  # connections held at once (see concurrent_source)
    concurrent_mean: float | None
    concurrent_source: str  # "server": counted in its fds; "client": what the clients held open
    errors: int
    errors_refused: int
    errors_reset: int
    errors_timeout: int
    errors_bad: int
    errors_files: int  # no descriptor left in the generator (EMFILE): a limit of this machine
    fairness: float | None  # Jain's index over per-client bytes: 1.0 = perfectly fair; None: no bytes
    slowest_client_rps: float
    slowest_client_mbps: float  # the client that received the fewest bytes
    max_gap_ms: float  # the longest time any client received nothing
    cpu_pct: float | None  # server's process tree, % of one core
    rss_mb: float | None  # server's peak resident memory
    client_cpu_pct: float  # this generator, all its processes, % of one core
    client_processes: int  # 0: ran in the calling process
    late: int  # open loop: requests this generator sent late on a free connection
    stalls: int  # waits for the sockets that ended late: the generator was kept from running
    generator_limited: bool  # the generator, not the server, may have been the limit (see above)
    pinning: str | None
    stopped: bool  # cut short by stop_event
    python: str = field(default_factory=platform.python_version)
    gil_enabled: bool = field(default_factory=lambda: getattr(sys, "_is_gil_enabled", lambda: True)())
    cpu_count: int = field(default_factory=os.cpu_count)
    date: str = field(default_factory=lambda: datetime.datetime.now().astimezone().isoformat(timespec="seconds"))
    per_client_requests: list = field(default_factory=list, repr=False)
    per_client_bytes: list = field(default_factory=list, repr=False)

    def asdict(self):
        return asdict(self)

    def row(self, model=None):
        """One tidy table row (the columns of results.COLUMNS)."""
        values = asdict(self)
        values["model"] = model if model is not None else self.url
        return {name: values.get(name) for name in COLUMNS}


def run(url, clients=1, duration=None, requests=None, warmup=0.0, keep_alive=True, workload=None,
        timeout=10.0, processes=None, cpus=None, pid=None, server_cpus=None, stop_event=None, rate=None):
    """Load `url` with `clients` concurrent clients; returns a Result.

    rate: None for a closed loop (each client sends its next request when
    its response is in); a number for an open loop: that many requests per
    second in total, due at even intervals over the `clients` connections,
    each latency counted from when its request was due (engine.py).
    duration: seconds to measure (default 5 unless `requests` is given);
    requests: stop after this many responses instead; warmup: seconds of
    unmeasured load first; keep_alive=False opens a new connection per
    request; workload: a name, path or mix (workload.py) instead of the URL's
    path; timeout: seconds without a byte before a request counts as timed
    out; processes: worker processes (None: automatic, 0: this process);
    cpus: pin the clients to these cores; pid: the server's process id, for
    its CPU, memory, connections and pinning (server_cpus: recorded as the
    server's pinning; default: read from pid);
    stop_event: a threading.Event that ends the run early.
    """
    if clients < 1:
        raise ValueError("clients must be at least 1")
    if rate is not None and not rate > 0:
        raise ValueError(f"rate must be a number of requests per second above 0, got {rate!r}")
    if duration is None and requests is None:
        duration = 5.0
    config = make_config(url, clients, keep_alive, workload, timeout, rate)
    count = choose_processes(clients, cpus) if processes is None else processes
    if cpus and count == 0:
        count = 1  # pinning applies to a whole process: pin a worker, never the caller
    monitor = ServerMonitor(pid, config["port"]).start()
    try:
        if count == 0:
            report = run_here(config, warmup, duration, requests, stop_event, monitor)
        else:
            report = run_workers(config, count, cpus, warmup, duration, requests, stop_event, monitor)
    finally:
        monitor.stop()
    if server_cpus is None:
        server_cpus = pinned_cpus(pid)  # launch(cpus=...) or taskset: see for ourselves
    return make_result(config, report, monitor.results(), count, warmup,
                       describe_pinning(server_cpus, cpus))


def make_config(url, clients, keep_alive, workload, timeout, rate=None):
    """Everything a client process needs, as plain data (it crosses processes)."""
    parts = urlsplit(url)
    if parts.scheme != "http" or not parts.hostname:
        raise LoadError(f"cannot load {url!r}: expected http://host:port/path (https is not supported)")
    port = parts.port or 80
    try:
        family, _, _, _, address = socket.getaddrinfo(parts.hostname, port, type=socket.SOCK_STREAM)[0]
    except socket.gaierror as error:
        raise LoadError(f"cannot resolve {parts.hostname!r}: {error}") from None
    if workload is None:
        workload = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    paths, weights = zip(*parse_workload(workload))
    return {
        "url": url, "workload": str(workload), "port": port, "family": int(family), "address": address,
        "requests": [encode_request(path, parts.netloc, keep_alive) for path in paths],
        "sequence": request_sequence(weights), "clients": clients,
        "keep_alive": keep_alive, "timeout": timeout, "rate": None if rate is None else float(rate),
    }


def choose_processes(clients, cpus=None, cap=None):
    """0 (this process) for few clients; else one worker per core (up to 4),
    at most one per 16 clients; and always enough workers that none holds
    more than `cap` connections (default: what one event loop may watch here,
    e.g. fewer than 512 where it is a select() loop, as on Windows)."""
    cores = len(cpus) if cpus else (len(ALL_CPUS) or os.cpu_count() or 1)
    if cap is None:
        raise_open_files_limit()  # the workers inherit it
        cap = connection_cap()[0]
    needed = math.ceil(clients / cap) if cap else 1  # the platform's limit comes first
    if clients > IN_PROCESS_LIMIT and cores >= 2:
        return max(needed, min(cores, MAX_PROCESSES, math.ceil(clients / IN_PROCESS_LIMIT)))
    return needed if needed > 1 else 0


def make_engine(config, clients, first_index, cpu_clock):
    return Engine(config["family"], tuple(config["address"]), config["requests"], config["sequence"],
                  clients, config["keep_alive"], config["timeout"], first_index, cpu_clock,
                  rate=config.get("rate"), all_clients=config["clients"])


def run_here(config, warmup, duration, requests, stop_event, monitor):
    """All clients in this thread's event loop; CPU = this thread's CPU time."""
    engine = make_engine(config, config["clients"], 0, time.thread_time)
    try:
        engine.connect_all(config["timeout"])
        return engine.run(warmup, duration, requests, stop_event,
                          on_start=monitor.begin_window, on_end=monitor.end_window)
    finally:
        engine.close()


# Worker processes.


def split(total, parts):
    """split(10, 3) -> [4, 3, 3]"""
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


def run_workers(config, count, cpus, warmup, duration, requests, stop_event, monitor):
    context = multiprocessing.get_context("spawn")  # fork would copy a notebook's threads and locks
    messages, go, stop = context.Queue(), context.Event(), context.Event()
    sizes = [n for n in split(config["clients"], count) if n]
    quotas = [None] * len(sizes) if requests is None else split(requests, len(sizes))
    workers, first = [], 0
    for index, size in enumerate(sizes):
        job = {"config": config, "clients": size, "first": first, "cpus": cpus, "warmup": warmup,
               "duration": duration, "requests": quotas[index], "index": index}
        workers.append(context.Process(target=worker_main, args=(job, messages, go, stop),
                                       name=f"labserver-load-{index}", daemon=True))
        first += size
    try:
        with caller_script_hidden():
            for worker in workers:
                worker.start()
        mailbox = Mailbox(messages, workers)
        mailbox.wait_for("ready", stop_event, stop, deadline=time.monotonic() + START_TIMEOUT)
        go.set()
        if warmup > 0:  # the workers warm up on their own; we only keep time with them
            stop_event.wait(warmup) if stop_event is not None else time.sleep(warmup)
        monitor.begin_window()
        reports = [r for r in mailbox.wait_for("done", stop_event, stop, on_end=monitor.end_window) if r]
        return combine(reports) if reports else empty_report(config)
    finally:
        stop.set()
        reap(workers)


@contextlib.contextmanager
def caller_script_hidden():
    """Start spawn workers without re-running the caller's script in each.

    "spawn" normally imports the main script in every child, so that
    functions defined there can be found. Ours live in this module, and
    re-running a student's script (one without `if __name__ == "__main__":`,
    or one piped to stdin) would fail or launch its servers again. Hiding
    __main__ for the few milliseconds of start() makes each child import
    only labserver."""
    main = sys.modules["__main__"]
    sys.modules["__main__"] = types.ModuleType("__main__")
    try:
        yield
    finally:
        sys.modules["__main__"] = main


class Mailbox:
    """What the workers have said so far: ready, clock stopped ("end"), done.
    A worker told to stop before the start says "done" without running, so
    "done" also counts as ready; no message is ever dropped."""

    def __init__(self, messages, workers):
        self.messages = messages
        self.workers = workers
        self.ready = set()
        self.done = {}  # worker index -> report (None if it never ran)
        self.ended = False

    def wait_for(self, kind, stop_event, stop, deadline=None, on_end=None):
        """Until every worker has said `kind` ("ready" or "done"); passes a stop
        request on to them; calls on_end() when the first clock stops."""
        while len(self.done) < len(self.workers) and (kind == "done" or len(self.ready) < len(self.workers)):
            if stop_event is not None and stop_event.is_set():
                stop.set()  # the workers notice within a tick and report what they have
            if deadline is not None and time.monotonic() > deadline:
                raise LoadError(f"load workers not ready after {START_TIMEOUT:.0f} s")
            try:
                what, index, payload = self.messages.get(timeout=0.1)
            except queue_module.Empty:
                self.check_alive()
                continue
            if what == "error":
                raise LoadError(f"a load worker failed:\n{payload}")
            if what == "end" and on_end is not None and not self.ended:
                self.ended = True
                on_end()
            if what in ("ready", "done"):
                self.ready.add(index)
            if what == "done":
                self.done[index] = payload
        return [self.done.get(i) for i in range(len(self.workers))]

    def check_alive(self):
        dead = [w.name for i, w in enumerate(self.workers) if i not in self.done and not w.is_alive()]
        if dead and self.messages.empty():
            raise LoadError(f"load worker(s) {', '.join(dead)} exited without reporting")


def reap(workers, timeout=5.0):
    """Join every worker; terminate (then kill) any that does not end in time."""
    deadline = time.monotonic() + timeout
    for worker in workers:
        if worker.pid is None:
            continue  # never started
        worker.join(max(0.0, deadline - time.monotonic()))
        if worker.is_alive():
            worker.terminate()
            worker.join(1.0)
        if worker.is_alive():
            worker.kill()
            worker.join()


class ParentWatch:
    """A stop flag that is also set when our parent process has gone away,
    so an orphaned worker never loads a server forever. It watches the
    parent's sentinel (a pipe on POSIX, a process handle on Windows), not
    os.getppid(): on Windows that keeps returning a dead parent's pid."""

    def __init__(self, stop):
        self.stop = stop
        self.parent = multiprocessing.parent_process()  # None when not started by multiprocessing

    def is_set(self):
        return self.stop.is_set() or (self.parent is not None and not self.parent.is_alive())


def worker_main(job, messages, go, stop):
    """A worker process: connect, report ready, wait for go, run, report."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is for the parent, which stops us
    engine = None
    index = job["index"]
    try:
        pin(0, job["cpus"])
        raise_open_files_limit()  # its clients' sockets: macOS starts at 256
        engine = make_engine(job["config"], job["clients"], job["first"], time.process_time)
        engine.connect_all(job["config"]["timeout"])
        messages.put(("ready", index, None))
        watch = ParentWatch(stop)
        while not go.wait(0.1):
            if watch.is_set():
                messages.put(("done", index, None))
                return
        report = engine.run(job["warmup"], job["duration"], job["requests"], watch,
                            on_end=lambda: messages.put(("end", index, None)))
        messages.put(("done", index, report))
    except BaseException:
        messages.put(("error", index, traceback.format_exc()))
    finally:
        if engine is not None:
            engine.close()


# The Result.


def empty_report(config):
    """The report of a run stopped before it began."""
    n = config["clients"]
    return {"elapsed": 0.0, "requests": 0, "unanswered": 0, "sent": 0, "late": 0, "stalls": 0, "polls": 0, "stalled": 0.0,
            "bytes": 0, "wire_bytes": 0, "sent_bytes": 0, "latency": {}, "latency_sum": 0.0, "latency_count": 0,
            "latency_max": 0.0, "errors": dict.fromkeys(ERROR_KINDS, 0),
            "per_client_requests": [0] * n, "per_client_bytes": [0] * n, "max_gap": 0.0,
            "open_max": 0, "open_mean": 0.0, "cpu_seconds": 0.0, "stopped": True}


def generator_limited(client_cpu_pct, processes, report, open_loop):
    """Whether the load generator may have been the limit (see the module docstring)."""
    busiest = client_cpu_pct / max(1, processes)  # the processes share the load about evenly
    behind = report["late"] > LATE_SHARE * report["sent"] or report["stalls"] > LATE_SHARE * report["polls"]
    # Kept from running for more than LATE_SHARE of the run (per process, on average):
    # its latencies measure this machine's scheduler as much as the server.
    paused = report.get("stalled", 0.0) > LATE_SHARE * report["elapsed"] * max(1, processes)
    return busiest >= BUSY_CORE or paused or (open_loop and behind)


def make_result(config, report, server, processes, warmup, pinning):
    numbers = summarise(report)
    errors = report["errors"]
    elapsed = report["elapsed"]
    by_server = server["connections_max"] is not None
    client_cpu_pct = 100 * report["cpu_seconds"] / elapsed if elapsed > 0 else 0.0
    return Result(
        url=config["url"], workload=config["workload"], clients=config["clients"],
        keep_alive=config["keep_alive"], duration_s=elapsed, warmup_s=warmup, rate=config.get("rate"),
        requests=report["requests"], unanswered=report["unanswered"], bytes=report["bytes"],
        wire_bytes=report["wire_bytes"],
        concurrent_max=server["connections_max"] if by_server else report["open_max"],
        concurrent_mean=server["connections_mean"] if by_server else report["open_mean"],
        concurrent_source="server" if by_server else "client",
        errors=sum(errors.values()), **{f"errors_{kind}": errors[kind] for kind in ERROR_KINDS},
        cpu_pct=server["cpu_pct"], rss_mb=server["rss_mb"], client_cpu_pct=client_cpu_pct,
        client_processes=processes, pinning=pinning, stopped=report["stopped"], late=report["late"],
        stalls=report["stalls"],
        generator_limited=generator_limited(client_cpu_pct, processes, report, config.get("rate") is not None),
        per_client_requests=report["per_client_requests"], per_client_bytes=report["per_client_bytes"],
        **{key: numbers[key] for key in ("rps", "sent_rps", "mbps", "mbps_wire", "p50_ms", "p90_ms", "p99_ms",
                                         "max_ms", "mean_ms", "fairness", "slowest_client_rps",
                                         "slowest_client_mbps", "max_gap_ms")},
    )
